import pg from 'pg';
import { SQLSTATE, sqlState } from './sql.js';

/** Host, port, database, login and TLS given one by one: the AWS form, resolved from the platform secret. */
export type PlatformConnection = Pick<
  pg.ClientConfig,
  'host' | 'port' | 'database' | 'user' | 'password' | 'ssl'
>;

/** Where the pool connects: a connection string, or the same as separate fields. */
export type PlatformPoolTarget =
  | { readonly connectionString: string; readonly connection?: never }
  | { readonly connection: PlatformConnection; readonly connectionString?: never };

export type PlatformPoolOptions = PlatformPoolTarget & PlatformPoolSettings;

export interface PlatformPoolSettings {
  /** Lambda: 1–2 (one invocation at a time per sandbox). Local server: more. */
  readonly max?: number;
  /** Keep below the proxy's idle client timeout so the proxy never cuts a connection we still hold. */
  readonly idleTimeoutMillis?: number;
  readonly connectionTimeoutMillis?: number;
  readonly applicationName?: string;
  /**
   * Called when the server refuses the pool's password (SQLSTATE 28P01) on a new connection: the
   * password was rotated after it was read. The caller's query still fails with that error.
   */
  readonly onAuthenticationFailure?: (error: Error) => void;
}

const poolDefaults = {
  max: 2,
  idleTimeoutMillis: 60_000,
  connectionTimeoutMillis: 5_000,
  applicationName: 'tenantflow',
} satisfies PlatformPoolSettings;

/**
 * The platform role's pool. Through RDS Proxy (or any multiplexing pooler) a connection may be
 * shared with other clients between transactions, so code using this pool must never set session
 * state: no `SET`, no named prepared statements, no session advisory locks, no temp tables.
 * Every table is named schema-qualified (see `qualified()`).
 *
 * @example
 * ```ts
 * const pool = createPlatformPool({ connectionString: 'postgres://tenantflow@localhost/tenantflow' });
 * // AWS: the login resolved from the platform secret (shared/config/database-credentials.ts).
 * const proxied = createPlatformPool({ connection: databaseConnectionConfig(target, credentials), max: 2 });
 * const registry = new PgTenantRegistry(pool);
 * ```
 */
export function createPlatformPool(options: PlatformPoolOptions): pg.Pool {
  const settings = { ...poolDefaults, ...options };
  const config: pg.PoolConfig = {
    ...(settings.connection === undefined
      ? { connectionString: settings.connectionString }
      : settings.connection),
    max: settings.max,
    idleTimeoutMillis: settings.idleTimeoutMillis,
    connectionTimeoutMillis: settings.connectionTimeoutMillis,
    application_name: settings.applicationName,
  };
  const pool =
    settings.onAuthenticationFailure === undefined
      ? new pg.Pool(config)
      : new AuthenticationReportingPool(config, settings.onAuthenticationFailure);
  // An idle client that dies (a proxy restart, a Lambda thawed after the server closed the socket)
  // emits 'error' on the pool; without a listener that would crash the process. The pool already
  // discards the client, so the next query simply opens a new connection.
  pool.on('error', function discardDeadIdleClient() {});
  return pool;
}

type ConnectCallback = (
  error: Error | undefined,
  client: pg.PoolClient | undefined,
  done: (release?: unknown) => void,
) => void;

/**
 * A pool that reports a refused password. Every connection, `pool.query`'s included, is opened
 * through `connect()`, so this is the one place a new connection's failure can be seen.
 */
class AuthenticationReportingPool extends pg.Pool {
  readonly #onAuthenticationFailure: (error: Error) => void;

  constructor(config: pg.PoolConfig, onAuthenticationFailure: (error: Error) => void) {
    super(config);
    this.#onAuthenticationFailure = onAuthenticationFailure;
  }

  override connect(): Promise<pg.PoolClient>;
  override connect(callback: ConnectCallback): void;
  override connect(callback?: ConnectCallback): Promise<pg.PoolClient> | undefined {
    if (callback === undefined) {
      return super.connect().catch((error: unknown) => {
        this.#report(error);
        throw error;
      });
    }
    super.connect((error, client, done) => {
      this.#report(error);
      callback(error, client, done);
    });
    return undefined;
  }

  #report(error: unknown): void {
    if (error instanceof Error && sqlState(error) === SQLSTATE.invalidPassword) {
      this.#onAuthenticationFailure(error);
    }
  }
}

/**
 * Runs `work` on a dedicated, unpooled connection and always closes it. This is the only kind of
 * connection on which session-level commands are acceptable (admin and migration work).
 */
export async function withDedicatedClient<T>(
  connectionString: string,
  work: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = new pg.Client({ connectionString, application_name: 'tenantflow-admin' });
  client.on('error', function ignoreErrorAfterWorkFailed() {});
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Runs `work` in one transaction on one pooled connection, rolling back if it throws. A
 * transaction is safe on a pooled connection (RDS Proxy multiplexes between transactions, not
 * inside one); locks taken with `FOR UPDATE` end with it, so no session state is left behind.
 *
 * @example
 * ```ts
 * await inTransaction(pool, async (client) => {
 *   await client.query(`SELECT 1 FROM ${TENANTS} WHERE tenant_id = $1 FOR UPDATE`, [tenantId]);
 * });
 * ```
 */
export async function inTransaction<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  let result: T;
  try {
    await client.query('BEGIN');
    result = await work(client);
    await client.query('COMMIT');
  } catch (error) {
    // A connection whose rollback fails is in an unknown state: destroy it rather than reuse it.
    const rollbackError = await client.query('ROLLBACK').then(
      () => undefined,
      (rollbackFailure: unknown) => rollbackFailure,
    );
    client.release(
      rollbackError === undefined ? undefined : new Error('rollback failed', { cause: rollbackError }),
    );
    throw error;
  }
  client.release();
  return result;
}

/**
 * The user a connection string names, if it names one (otherwise libpq's defaults decide, and only
 * a connection can tell).
 *
 * @example
 * ```ts
 * connectionUser('postgres://tenantflow_platform:pw@host/db'); // 'tenantflow_platform'
 * ```
 */
export function connectionUser(url: string): string | undefined {
  try {
    const user = decodeURIComponent(new URL(url).username);
    return user.length > 0 ? user : undefined;
  } catch {
    return undefined;
  }
}
