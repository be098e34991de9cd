import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ValidationError } from '@tenantflow/shared/kernel/errors';
import { LocalSecretStore } from '@tenantflow/shared/secrets/local-secret-store';
import { MalformedSecretError } from '@tenantflow/shared/secrets/tenant-secret';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeSecretStoreContract, tenantSecret } from '../../support/secret-store.contract.js';

let root: string;
let counter = 0;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'tenantflow-local-secrets-'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A directory path that does not exist yet, so each test also covers creating it. */
function freshDirectory(): string {
  counter += 1;
  return join(root, `store-${counter}`, 'secrets');
}

const modeOf = async (path: string) => (await stat(path)).mode & 0o777;

describeSecretStoreContract('LocalSecretStore', () => new LocalSecretStore({ directory: freshDirectory() }));

describe('LocalSecretStore', () => {
  it('keeps each secret in <directory>/<tenantId>.json and returns that path', async () => {
    const directory = freshDirectory();
    const store = new LocalSecretStore({ directory });
    const secret = tenantSecret('acme');

    const reference = await store.put('acme', secret);

    expect(reference).toBe(join(directory, 'acme.json'));
    expect(JSON.parse(await readFile(reference, 'utf8'))).toEqual(secret);
  });

  it('writes secret files with mode 0600 in a directory with mode 0700', async () => {
    const directory = freshDirectory();
    const store = new LocalSecretStore({ directory });

    const file = await store.put('acme', tenantSecret('acme'));

    expect(await modeOf(file)).toBe(0o600);
    expect(await modeOf(directory)).toBe(0o700);
  });

  it('tightens an existing directory to 0700 and a replaced file to 0600', async () => {
    const directory = freshDirectory();
    await mkdir(directory, { recursive: true, mode: 0o755 });
    await chmod(directory, 0o755);
    await writeFile(join(directory, 'acme.json'), '{}', { mode: 0o644 });
    const store = new LocalSecretStore({ directory });

    const file = await store.put('acme', tenantSecret('acme'));

    expect(await modeOf(directory)).toBe(0o700);
    expect(await modeOf(file)).toBe(0o600);
  });

  it('leaves no temporary file behind after puts', async () => {
    const directory = freshDirectory();
    const store = new LocalSecretStore({ directory });

    await Promise.all([
      store.put('acme', tenantSecret('acme')),
      store.put('acme', tenantSecret('acme')),
      store.put('globex', tenantSecret('globex')),
    ]);

    expect((await readdir(directory)).sort()).toEqual(['acme.json', 'globex.json']);
  });

  it('lists only tenant files, ignoring temporary files and other names', async () => {
    const directory = freshDirectory();
    const store = new LocalSecretStore({ directory });
    await store.put('acme', tenantSecret('acme'));
    await writeFile(join(directory, '.globex.0b9c.tmp'), '{}');
    await writeFile(join(directory, 'Not-A-Tenant.json'), '{}');
    await writeFile(join(directory, 'notes.txt'), 'hello');

    expect(await store.list()).toEqual(['acme']);
  });

  it('rejects ../etc/passwd with a ValidationError before touching the filesystem', async () => {
    const directory = freshDirectory();
    const store = new LocalSecretStore({ directory });

    await expect(store.put('../etc/passwd', tenantSecret('acme'))).rejects.toBeInstanceOf(ValidationError);
    await expect(store.get('../etc/passwd')).rejects.toBeInstanceOf(ValidationError);
    await expect(store.delete('../etc/passwd')).rejects.toBeInstanceOf(ValidationError);

    // Not even the store's own directory was created, let alone anything beside it.
    await expect(stat(directory)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(stat(join(directory, '..', 'etc'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('reports a corrupt file as MalformedSecretError without quoting its content', async () => {
    const directory = freshDirectory();
    const store = new LocalSecretStore({ directory });
    const file = await store.put('acme', tenantSecret('acme'));
    const password = 'hunter2-do-not-leak';
    await writeFile(file, `{"engine":"postgres","password":"${password}",`);

    const attempt = store.get('acme');

    await expect(attempt).rejects.toBeInstanceOf(MalformedSecretError);
    await expect(attempt).rejects.not.toThrow(password);
    await expect(attempt).rejects.toSatisfy((error: Error) => error.cause === undefined);
  });

  it('reports a file of the wrong shape by the fields at fault, without their values', async () => {
    const directory = freshDirectory();
    const store = new LocalSecretStore({ directory });
    const file = await store.put('acme', tenantSecret('acme'));
    const password = 'hunter2-do-not-leak';
    await writeFile(file, JSON.stringify({ ...tenantSecret('acme'), port: password }));

    const attempt = store.get('acme');

    await expect(attempt).rejects.toBeInstanceOf(MalformedSecretError);
    await expect(attempt).rejects.toThrow(/port/);
    await expect(attempt).rejects.not.toThrow(password);
  });
});
