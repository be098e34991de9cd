import pg from 'pg';
import { isConnectionFailure } from '../kernel/database-unavailable.js';
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
  pool.on('connect', surviveConnectionLossWhileCheckedOut);
  return pool;
}

/**
 * A `pool.on('connect')` listener: a client that is checked out (a transaction waiting on task
 * code, say) and loses its connection (the server killed or restarted) emits 'error' on itself,
 * which the pool does not listen to while the client is out; unheard, it would crash the process
 * and every tenant's work in it. Heard here, the error surfaces where it belongs: the holder's next
 * query fails, and releasing the client with that error discards it.
 */
export function surviveConnectionLossWhileCheckedOut(client: pg.PoolClient): void {
  client.on('error', function connectionLostWhileCheckedOut() {});
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
 * How long a dedicated connection may take to open. Without a bound, a server that accepts the TCP
 * connection and never answers (a proxy whose target is not available yet) would hold the caller
 * until its own timeout; bounded, the attempt fails and {@link withConnectionRetry} can try again.
 */
const DEDICATED_CONNECT_TIMEOUT_MS = 5_000;

/**
 * Runs `work` on a dedicated, unpooled connection and always closes it. This is the only kind of
 * connection on which session-level commands are acceptable (admin and migration work).
 */
export async function withDedicatedClient<T>(
  connectionString: string,
  work: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = new pg.Client({
    connectionString,
    application_name: 'tenantflow-admin',
    connectionTimeoutMillis: DEDICATED_CONNECT_TIMEOUT_MS,
  });
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

// Whether an error says the server could not be reached: in the kernel, so the HTTP layer can
// answer such an error with a 503 without depending on this module.
export { isConnectionFailure };

/** One failed attempt that will be tried again, as {@link ConnectionRetryOptions.onRetry} is told it. */
export interface ConnectionRetryEvent {
  /** The attempt that failed, from 1. */
  readonly attempt: number;
  readonly error: unknown;
  /** How long until the next attempt. */
  readonly delayMs: number;
  /** Since the first attempt started. */
  readonly elapsedMs: number;
  /** Epoch milliseconds of the last moment an attempt may start. */
  readonly deadline: number;
}

export interface ConnectionRetryOptions {
  /**
   * How long to keep trying, from the first attempt.
   * @default 300_000 (5 minutes)
   */
  readonly maxWaitMs?: number;
  /**
   * Epoch milliseconds after which no attempt starts, whatever `maxWaitMs` allows: a Lambda's
   * remaining time, less what the work after connecting needs.
   */
  readonly deadline?: number | undefined;
  /**
   * The longest first wait; each later wait may be twice as long as the one before.
   * @default 1_000
   */
  readonly initialDelayMs?: number;
  /** @default 20_000 */
  readonly maxDelayMs?: number;
  /**
   * Which errors are worth another attempt.
   * @default isConnectionFailure
   */
  readonly isRetryable?: (error: unknown) => boolean;
  /** Told of every failed attempt that will be tried again, before the wait: log it. */
  readonly onRetry?: (retry: ConnectionRetryEvent) => void;
  /** @default Date.now */
  readonly now?: () => number;
  /** @default a timer */
  readonly sleep?: (ms: number) => Promise<void>;
  /** A number in [0, 1) for the jitter. @default Math.random */
  readonly random?: () => number;
}

const connectionRetryDefaults = {
  maxWaitMs: 300_000,
  initialDelayMs: 1_000,
  maxDelayMs: 20_000,
} as const;

/**
 * The wait after the `failures`-th failed attempt: exponential backoff with "equal jitter", a
 * random time between half and all of `min(maxDelayMs, initialDelayMs * 2^(failures - 1))`. The
 * lower half keeps the waits growing (a server that is still starting gets time to finish); the
 * random half keeps functions deployed together from knocking at the same instant.
 *
 * @example
 * ```ts
 * connectionRetryDelay(1, { random: () => 0 });   // 500
 * connectionRetryDelay(3, { random: () => 0.5 }); // 3000 (between 2000 and 4000)
 * ```
 */
export function connectionRetryDelay(
  failures: number,
  options: Pick<ConnectionRetryOptions, 'initialDelayMs' | 'maxDelayMs' | 'random'> = {},
): number {
  const initialDelayMs = options.initialDelayMs ?? connectionRetryDefaults.initialDelayMs;
  const maxDelayMs = options.maxDelayMs ?? connectionRetryDefaults.maxDelayMs;
  const random = options.random ?? Math.random;
  const ceiling = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.max(0, failures - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/**
 * Runs `connect` until it succeeds, trying again after a connection failure
 * ({@link isConnectionFailure}) with {@link connectionRetryDelay}'s backoff, for up to `maxWaitMs`
 * (5 minutes) and never past `deadline`. The last attempt starts at the deadline at the latest;
 * when it fails too, its error is thrown as it is. Any other error is thrown at once.
 *
 * Meant for the first connection of a job that runs right after its database was created (RDS
 * Proxy reports its target group ready before the target accepts connections): wrap the
 * connection, not work with side effects, unless `isRetryable` rules out errors from the work.
 *
 * @example
 * ```ts
 * const report = await withConnectionRetry(
 *   () => withDedicatedClient(url, (client) => client.query('SELECT 1')),
 *   { deadline: invocationDeadline(context, 60_000), onRetry: (retry) => logger.warn('database not reachable yet', { ...retry }) },
 * );
 * ```
 */
export async function withConnectionRetry<T>(
  connect: () => Promise<T>,
  options: ConnectionRetryOptions = {},
): Promise<T> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? sleepFor;
  const isRetryable = options.isRetryable ?? isConnectionFailure;
  const started = now();
  const budgetEnd = started + (options.maxWaitMs ?? connectionRetryDefaults.maxWaitMs);
  const deadline = options.deadline === undefined ? budgetEnd : Math.min(budgetEnd, options.deadline);
  for (let attempt = 1; ; attempt++) {
    try {
      return await connect();
    } catch (error) {
      const failedAt = now();
      if (!isRetryable(error) || failedAt >= deadline) {
        throw error;
      }
      // The last wait is cut short so that one attempt still starts at the deadline.
      const delayMs = Math.min(connectionRetryDelay(attempt, options), deadline - failedAt);
      options.onRetry?.({ attempt, error, delayMs, elapsedMs: failedAt - started, deadline });
      await sleep(delayMs);
    }
  }
}

function sleepFor(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
