import { assertValidTenantId } from '../kernel/tenant-id.js';

/**
 * The one place identifiers are turned into SQL. Values are never spliced into SQL: they are
 * always query parameters. Identifiers (schema and table names) cannot be parameters, so they go
 * through {@link quoteIdent}, which quotes unconditionally: even a validated tenant id is quoted.
 */

/** The minimal query surface platform code needs; a `pg.Pool`, `pg.Client` or `pg.PoolClient` fits. */
export interface Queryable {
  query<R extends Record<string, unknown> = Record<string, unknown>>(
    text: string,
    values?: unknown[],
  ): Promise<{ rows: R[]; rowCount: number | null }>;
}

/** The control schema that holds the tenant registry. */
export const CONTROL_SCHEMA = 'tenantflow';

/**
 * Quotes a PostgreSQL identifier. Rejects empty names and NUL bytes, which PostgreSQL cannot store
 * and which would otherwise surface as a confusing server error.
 *
 * @example
 * ```ts
 * quoteIdent('acme');      // "acme"
 * quoteIdent('we"ird');    // "we""ird"
 * ```
 */
export function quoteIdent(name: string): string {
  if (name.length === 0 || name.includes('\0')) {
    throw new TypeError('An SQL identifier must be non-empty and contain no NUL byte');
  }
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * A schema-qualified, quoted table name. Platform SQL always names tables this way, so no query
 * depends on a connection's `search_path`.
 *
 * @example
 * ```ts
 * qualified('tenantflow', 'tenants'); // "tenantflow"."tenants"
 * ```
 */
export function qualified(schema: string, table: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(table)}`;
}

/**
 * A table in a tenant's schema, for platform code (which runs as the platform role and so must
 * never rely on `search_path`). The tenant id is validated before it becomes an identifier.
 *
 * @example
 * ```ts
 * await pool.query(`SELECT status FROM ${tenantTable('acme', 'executions')} WHERE id = $1`, [id]);
 * // SELECT status FROM "acme"."executions" WHERE id = $1
 * ```
 */
export function tenantTable(tenantId: string, table: string): string {
  assertValidTenantId(tenantId);
  return qualified(tenantId, table);
}

/**
 * The row of a statement that always returns one, such as an `INSERT … RETURNING` of one row or a
 * `SELECT` of aggregates. Getting none means the statement did not do what its caller relies on,
 * so it throws rather than return `undefined`, naming `source` so the failure can be traced.
 *
 * @example
 * ```ts
 * const { rows } = await pool.query<{ id: string }>(`INSERT INTO ${table} (name) VALUES ($1) RETURNING id`, [name]);
 * const { id } = single(rows, 'the tenant registry');
 * ```
 */
export function single<T>(rows: readonly T[], source: string): T {
  const [row] = rows;
  if (row === undefined) {
    throw new Error(`Expected one row from ${source}, got none`);
  }
  return row;
}

/** PostgreSQL SQLSTATE of an error thrown by `pg`, if it is one. */
export function sqlState(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string') {
    return error.code;
  }
  return undefined;
}

/** The SQLSTATEs platform code reacts to, named as PostgreSQL's errcodes appendix names them. */
export const SQLSTATE = {
  uniqueViolation: '23505',
  undefinedTable: '42P01',
  undefinedColumn: '42703',
  invalidSchemaName: '3F000',
  invalidPassword: '28P01',
  insufficientPrivilege: '42501',
  duplicateObject: '42710',
  duplicateSchema: '42P06',
  /** What `lock_timeout` expiring raises. */
  lockNotAvailable: '55P03',
  /** What `statement_timeout` expiring raises. */
  queryCanceled: '57014',
  internalError: 'XX000',
  /** The server is starting up or recovering: waiting can cure it. */
  cannotConnectNow: '57P03',
} as const;
