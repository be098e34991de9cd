import { randomUUID } from 'node:crypto';
import { chmod, mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { assertValidTenantId, isValidTenantId } from '../kernel/tenant-id.js';
import type { SecretStore, TenantSecret } from './secret-store.js';
import { parseTenantSecret, serializeTenantSecret } from './tenant-secret.js';

/** Where `npm start` keeps tenant secrets, relative to the working directory. */
export const DEFAULT_LOCAL_SECRET_DIRECTORY = '.tenantflow/secrets';

const SECRET_FILE_SUFFIX = '.json';
const TEMPORARY_FILE_SUFFIX = '.tmp';

export interface LocalSecretStoreProps {
  /**
   * The directory holding one `<tenantId>.json` per tenant. Created on first write with mode 0700.
   * @default '.tenantflow/secrets' (resolved against the working directory)
   */
  readonly directory?: string;
}

/**
 * {@link SecretStore} over files, for local mode only (Lambda's filesystem is read-only): each
 * tenant's secret is `<directory>/<tenantId>.json`, mode 0600, in a directory of mode 0700.
 *
 * Writes go to a temporary file in the same directory that is flushed to disk and then renamed
 * over the secret, so a crash leaves either the old secret or the new one, never half of one. Ids
 * are validated before any path is built, so no id can name a file outside the directory.
 *
 * @example
 * ```ts
 * const secrets = new LocalSecretStore({ directory: '.tenantflow/secrets' });
 * await secrets.put('acme', { engine: 'postgres', host: '127.0.0.1', port: 5432, username: 'acme_user', password, dbname: 'tenantflow', schema: 'acme' });
 * const secret = await secrets.get('acme');
 * ```
 */
export class LocalSecretStore implements SecretStore {
  /** The absolute directory the secrets are kept in. */
  readonly directory: string;
  private directoryReady: Promise<void> | undefined;

  constructor(props: LocalSecretStoreProps = {}) {
    this.directory = resolve(props.directory ?? DEFAULT_LOCAL_SECRET_DIRECTORY);
  }

  /** Writes the secret atomically and returns the path of its file. */
  async put(tenantId: string, secret: TenantSecret): Promise<string> {
    const file = this.fileOf(tenantId);
    const text = `${serializeTenantSecret(tenantId, secret)}\n`;
    await this.ensureDirectory();
    // A dot-prefixed, uniquely named temporary file: concurrent puts never share one, and `list`
    // can never mistake it for a tenant.
    const temporary = join(this.directory, `.${tenantId}.${randomUUID()}${TEMPORARY_FILE_SUFFIX}`);
    try {
      // 'wx': fail rather than write through anything already at that name (a planted symlink).
      const handle = await open(temporary, 'wx', 0o600);
      try {
        await handle.writeFile(text, 'utf8');
        // The umask can only clear bits, but an explicit chmod states the contract.
        await handle.chmod(0o600);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temporary, file);
    } catch (error) {
      await unlink(temporary).catch(() => {});
      throw error;
    }
    await this.syncDirectory();
    return file;
  }

  async get(tenantId: string): Promise<TenantSecret | undefined> {
    const file = this.fileOf(tenantId);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      if (errorCode(error) === 'ENOENT') {
        return undefined;
      }
      throw error;
    }
    return parseTenantSecret(text, tenantId, file);
  }

  async delete(tenantId: string): Promise<boolean> {
    const file = this.fileOf(tenantId);
    try {
      await unlink(file);
    } catch (error) {
      if (errorCode(error) === 'ENOENT') {
        return false;
      }
      throw error;
    }
    await this.syncDirectory();
    return true;
  }

  async list(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.directory);
    } catch (error) {
      if (errorCode(error) === 'ENOENT') {
        return [];
      }
      throw error;
    }
    return names
      .filter((name) => name.endsWith(SECRET_FILE_SUFFIX))
      .map((name) => name.slice(0, -SECRET_FILE_SUFFIX.length))
      .filter((tenantId) => isValidTenantId(tenantId))
      .sort();
  }

  /** Validates the id first: it is the only thing standing between a request and the filesystem. */
  private fileOf(tenantId: string): string {
    assertValidTenantId(tenantId);
    return join(this.directory, `${tenantId}${SECRET_FILE_SUFFIX}`);
  }

  private ensureDirectory(): Promise<void> {
    this.directoryReady ??= this.createDirectory().catch((error: unknown) => {
      // Let the next put try again rather than remember a transient failure forever.
      this.directoryReady = undefined;
      throw error;
    });
    return this.directoryReady;
  }

  private async createDirectory(): Promise<void> {
    // Parents keep the default mode: `.tenantflow/` also holds the embedded PostgreSQL's data,
    // which the `postgres` OS user must be able to reach when tenantflow runs as root.
    await mkdir(dirname(this.directory), { recursive: true });
    await mkdir(this.directory, { mode: 0o700 }).catch((error: unknown) => {
      if (errorCode(error) !== 'EEXIST') {
        throw error;
      }
    });
    // mkdir's mode is filtered by the umask and ignored for a directory that already exists.
    await chmod(this.directory, 0o700);
  }

  /** Makes a rename or unlink durable: on Linux it is only on disk once the directory is synced. */
  private async syncDirectory(): Promise<void> {
    let handle: Awaited<ReturnType<typeof open>> | undefined;
    try {
      handle = await open(this.directory, 'r');
      await handle.sync();
    } catch {
      // Some platforms (Windows) cannot open or sync a directory; the data itself is already synced.
    } finally {
      await handle?.close();
    }
  }
}

function errorCode(error: unknown): string | undefined {
  return error instanceof Error ? (error as NodeJS.ErrnoException).code : undefined;
}
