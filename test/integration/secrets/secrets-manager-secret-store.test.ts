import { randomBytes } from 'node:crypto';
import {
  CreateSecretCommand,
  DeleteSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import {
  SecretsManagerSecretStore,
  type SecretsManagerSecretStoreProps,
  tenantSecretName,
} from '@tenantflow/shared/secrets/secrets-manager-secret-store';
import { MalformedSecretError } from '@tenantflow/shared/secrets/tenant-secret';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { MOTO_INSTALL_HINT } from '../../support/moto-setup.js';
import { describeSecretStoreContract, tenantSecret } from '../../support/secret-store.contract.js';

const motoEndpoint = inject('motoEndpoint');
const motoMissing = motoEndpoint === '';

/** A stage no other test uses, so tests share one moto_server without seeing each other's secrets. */
const uniqueStage = () => `t${randomBytes(6).toString('hex')}`;

const clients: SecretsManagerClient[] = [];

/** A client of the run's moto_server, counting the operations it sends. */
function motoClient(): { client: SecretsManagerClient; calls: string[] } {
  const client = new SecretsManagerClient({
    endpoint: motoEndpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });
  const calls: string[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      calls.push(String(context.commandName));
      return next(args);
    },
    { step: 'initialize', name: 'countCalls' },
  );
  clients.push(client);
  return { client, calls };
}

afterAll(() => {
  for (const client of clients) {
    client.destroy();
  }
});

function freshStore(props: Partial<SecretsManagerSecretStoreProps> = {}) {
  const { client, calls } = motoClient();
  const stage = props.stage ?? uniqueStage();
  const store = new SecretsManagerSecretStore({ client, stage, ...props });
  const calledOperations = () => calls.filter((name) => name.endsWith('Command'));
  return { store, stage, client, calls: calledOperations };
}

/** A clock the test moves by hand, for the cache's TTL. */
function fakeClock(start = 1_000_000) {
  let now = start;
  return {
    now: () => now,
    advance: (ms: number): void => {
      now += ms;
    },
  };
}

describe.skipIf(motoMissing)(
  motoMissing
    ? `SecretsManagerSecretStore on moto_server (skipped: moto_server is not on the PATH; install it with ${MOTO_INSTALL_HINT})`
    : 'SecretsManagerSecretStore on moto_server',
  () => {
    describeSecretStoreContract('SecretsManagerSecretStore', () => freshStore().store);

    describe('naming and format', () => {
      it('names the secret tenantflow/<stage>/tenants/<id>, tags it with the tenant, and returns its ARN', async () => {
        const { store, stage, client } = freshStore();

        const reference = await store.put('acme', tenantSecret('acme'));

        const described = await client.send(
          new DescribeSecretCommand({ SecretId: `tenantflow/${stage}/tenants/acme` }),
        );
        expect(described.Name).toBe(`tenantflow/${stage}/tenants/acme`);
        expect(tenantSecretName(stage, 'acme')).toBe(described.Name);
        expect(described.Tags).toEqual(
          expect.arrayContaining([
            { Key: 'tenant', Value: 'acme' },
            { Key: 'tenantflow:stage', Value: stage },
          ]),
        );
        expect(reference).toBe(described.ARN);
        expect(reference).toMatch(/^arn:aws:secretsmanager:/);
      });

      it('stores the value as the JSON of the RDS secret shape plus the schema', async () => {
        const { store, stage, client } = freshStore();
        const secret = tenantSecret('acme');

        await store.put('acme', secret);

        const raw = await client.send(
          new GetSecretValueCommand({ SecretId: tenantSecretName(stage, 'acme') }),
        );
        expect(JSON.parse(raw.SecretString ?? 'null')).toEqual({
          engine: 'postgres',
          host: secret.host,
          port: secret.port,
          username: secret.username,
          password: secret.password,
          dbname: secret.dbname,
          schema: 'acme',
        });
      });

      it('keeps the previous value as AWSPREVIOUS on rotation, as the RDS rotation function expects', async () => {
        const { store, stage, client } = freshStore();
        const first = tenantSecret('acme');
        await store.put('acme', first);

        await store.put('acme', tenantSecret('acme'));

        const previous = await client.send(
          new GetSecretValueCommand({
            SecretId: tenantSecretName(stage, 'acme'),
            VersionStage: 'AWSPREVIOUS',
          }),
        );
        expect(JSON.parse(previous.SecretString ?? 'null')).toEqual(first);
      });

      it('maps ResourceNotFoundException to undefined on get and false on delete', async () => {
        const { store, calls } = freshStore();

        expect(await store.get('nobody')).toBeUndefined();
        expect(await store.delete('nobody')).toBe(false);
        expect(calls()).toEqual(['GetSecretValueCommand', 'DescribeSecretCommand']);
      });

      it("lists neither another stage's tenants nor names under the prefix that are not tenant ids", async () => {
        const { store, stage, client } = freshStore();
        const other = freshStore({ stage: `${stage}x` });
        await store.put('acme', tenantSecret('acme'));
        await other.store.put('globex', tenantSecret('globex'));
        await client.send(
          new CreateSecretCommand({
            Name: `tenantflow/${stage}/tenants/acme/extra`,
            SecretString: '{}',
            Tags: [{ Key: 'tenant', Value: 'acme' }],
          }),
        );

        expect(await store.list()).toEqual(['acme']);
        expect(await other.store.list()).toEqual(['globex']);
      });

      it('follows NextToken through every page of the listing', async () => {
        const { store, calls } = freshStore();
        const tenantIds = Array.from(
          { length: 105 },
          (_, index) => `tenant_${String(index).padStart(3, '0')}`,
        );
        for (const tenantId of tenantIds) {
          await store.put(tenantId, tenantSecret(tenantId));
        }

        const listed = await store.list();

        expect(listed).toEqual(tenantIds);
        expect(calls().filter((name) => name === 'ListSecretsCommand')).toHaveLength(2);
      });
    });

    describe('malformed secrets', () => {
      it.each([
        ['text that is not JSON', (password: string) => `password=${password}`],
        [
          'JSON of the wrong shape',
          (password: string) => JSON.stringify({ engine: 'postgres', port: password }),
        ],
      ])('reports %s as MalformedSecretError without the password', async (_, content) => {
        const { store, stage, client } = freshStore();
        const password = `pw_${randomBytes(8).toString('hex')}`;
        await client.send(
          new CreateSecretCommand({ Name: tenantSecretName(stage, 'acme'), SecretString: content(password) }),
        );

        const attempt = store.get('acme');

        await expect(attempt).rejects.toBeInstanceOf(MalformedSecretError);
        await expect(attempt).rejects.toThrow(tenantSecretName(stage, 'acme'));
        await expect(attempt).rejects.not.toThrow(password);
      });

      it('reports a binary secret as MalformedSecretError', async () => {
        const { store, stage, client } = freshStore();
        await client.send(
          new CreateSecretCommand({
            Name: tenantSecretName(stage, 'acme'),
            SecretBinary: new Uint8Array([1, 2, 3]),
          }),
        );

        await expect(store.get('acme')).rejects.toThrow(/binary/);
      });
    });

    describe('cache', () => {
      it('serves reads from memory within the TTL and reads Secrets Manager again after it', async () => {
        const clock = fakeClock();
        const { store, calls } = freshStore({ cacheTtlMs: 30_000, now: clock.now });
        const secret = tenantSecret('acme');
        await store.put('acme', secret);
        const callsAfterPut = calls().length;

        await store.get('acme');
        clock.advance(29_999);
        const cachedRead = await store.get('acme');
        const readsWithinTtl = calls().length - callsAfterPut;
        clock.advance(2);
        await store.get('acme');
        const readsAfterTtl = calls().length - callsAfterPut;

        expect(cachedRead).toEqual(secret);
        expect(readsWithinTtl).toBe(1);
        expect(readsAfterTtl).toBe(2);
      });

      it('keeps serving the cached value when the secret changes behind its back, until the TTL ends', async () => {
        const clock = fakeClock();
        const { store, stage } = freshStore({ cacheTtlMs: 30_000, now: clock.now });
        const elsewhere = motoClient().client;
        const original = tenantSecret('acme');
        const rotatedElsewhere = tenantSecret('acme');
        await store.put('acme', original);
        await store.get('acme');

        await elsewhere.send(
          new PutSecretValueCommand({
            SecretId: tenantSecretName(stage, 'acme'),
            SecretString: JSON.stringify(rotatedElsewhere),
          }),
        );

        expect(await store.get('acme')).toEqual(original);
        clock.advance(30_000);
        expect(await store.get('acme')).toEqual(rotatedElsewhere);
      });

      it('reads Secrets Manager again after invalidate(tenantId)', async () => {
        const clock = fakeClock();
        const { store, stage } = freshStore({ cacheTtlMs: 30_000, now: clock.now });
        const elsewhere = motoClient().client;
        await store.put('acme', tenantSecret('acme'));
        await store.get('acme');
        const rotatedElsewhere = tenantSecret('acme');
        await elsewhere.send(
          new PutSecretValueCommand({
            SecretId: tenantSecretName(stage, 'acme'),
            SecretString: JSON.stringify(rotatedElsewhere),
          }),
        );

        store.invalidate('acme');

        expect(await store.get('acme')).toEqual(rotatedElsewhere);
      });

      it('does not cache a miss, so a secret created elsewhere is seen at once', async () => {
        const clock = fakeClock();
        const { store, stage } = freshStore({ cacheTtlMs: 30_000, now: clock.now });
        const elsewhere = motoClient().client;
        const createdElsewhere = tenantSecret('acme');
        expect(await store.get('acme')).toBeUndefined();

        await elsewhere.send(
          new CreateSecretCommand({
            Name: tenantSecretName(stage, 'acme'),
            SecretString: JSON.stringify(createdElsewhere),
          }),
        );

        expect(await store.get('acme')).toEqual(createdElsewhere);
      });

      it('reads Secrets Manager on every get when cacheTtlMs is 0', async () => {
        const { store, calls } = freshStore({ cacheTtlMs: 0 });
        await store.put('acme', tenantSecret('acme'));
        const callsAfterPut = calls().length;

        await store.get('acme');
        await store.get('acme');

        expect(calls().length - callsAfterPut).toBe(2);
      });
    });

    describe('a secret scheduled for deletion elsewhere (with a recovery window)', () => {
      async function scheduleDeletion() {
        const scheduled = freshStore({ cacheTtlMs: 0 });
        await scheduled.store.put('acme', tenantSecret('acme'));
        await motoClient().client.send(
          new DeleteSecretCommand({
            SecretId: tenantSecretName(scheduled.stage, 'acme'),
            RecoveryWindowInDays: 7,
          }),
        );
        return scheduled;
      }

      it('is neither read nor listed', async () => {
        const { store } = await scheduleDeletion();

        expect(await store.get('acme')).toBeUndefined();
        expect(await store.list()).toEqual([]);
      });

      it('is restored with the new value by put', async () => {
        const { store } = await scheduleDeletion();
        const secret = tenantSecret('acme');

        await store.put('acme', secret);

        expect(await store.get('acme')).toEqual(secret);
        expect(await store.list()).toEqual(['acme']);
      });

      it('is purged by delete, which reports there was no secret, so the id can be reused', async () => {
        const { store, stage, client } = await scheduleDeletion();

        const deleted = await store.delete('acme');

        expect(deleted).toBe(false);
        await expect(
          client.send(new DescribeSecretCommand({ SecretId: tenantSecretName(stage, 'acme') })),
        ).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
      });
    });
  },
);
