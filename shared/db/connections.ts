import pg from 'pg';

export interface PlatformPoolOptions {
  readonly connectionString: string;
  /** Lambda: 1–2 (one invocation at a time per sandbox). Local server: more. */
  readonly max?: number;
  /** Keep below the proxy's idle client timeout so the proxy never cuts a connection we still hold. */
  readonly idleTimeoutMillis?: number;
  readonly connectionTimeoutMillis?: number;
  readonly applicationName?: string;
}

const poolDefaults = {
  max: 2,
  idleTimeoutMillis: 60_000,
  connectionTimeoutMillis: 5_000,
  applicationName: 'tenantflow',
} satisfies Omit<PlatformPoolOptions, 'connectionString'>;

/**
 * The platform role's pool. Through RDS Proxy (or any multiplexing pooler) a connection may be
 * shared with other clients between transactions, so code using this pool must never set session
 * state: no `SET`, no named prepared statements, no session advisory locks, no temp tables.
 * Every table is named schema-qualified (see `qualified()`).
 *
 * @example
 * ```ts
 * const pool = createPlatformPool({ connectionString: config.databaseUrl });
 * const registry = new PgTenantRegistry(pool);
 * ```
 */
export function createPlatformPool(options: PlatformPoolOptions): pg.Pool {
  const settings = { ...poolDefaults, ...options };
  const pool = new pg.Pool({
    connectionString: settings.connectionString,
    max: settings.max,
    idleTimeoutMillis: settings.idleTimeoutMillis,
    connectionTimeoutMillis: settings.connectionTimeoutMillis,
    application_name: settings.applicationName,
  });
  // An idle client that dies (a proxy restart, a Lambda thawed after the server closed the socket)
  // emits 'error' on the pool; without a listener that would crash the process. The pool already
  // discards the client, so the next query simply opens a new connection.
  pool.on('error', function discardDeadIdleClient() {});
  return pool;
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
