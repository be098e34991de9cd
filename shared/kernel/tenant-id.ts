import { ValidationError } from './errors.js';

/** `<id>_user` must fit PostgreSQL's 63-byte identifier limit, so ids stop at 58 characters. */
export const TENANT_ID_MAX_LENGTH = 58;

export const TENANT_ID_PATTERN = /^[a-z][a-z0-9_]*$/;

/**
 * Names a tenant may never take: PostgreSQL's own schemas, databases and bootstrap role, Amazon
 * RDS's, and the platform's schemas and roles. A tenant id becomes a schema name, and a schema named
 * like a role is first on that role's default `search_path` (`"$user", public`). Provisioning also
 * refuses, at run time, any id that names a role, schema or database that exists.
 */
export const RESERVED_TENANT_IDS: ReadonlySet<string> = new Set([
  'public',
  'information_schema',
  'pg_catalog',
  'pg_toast',
  'postgres',
  'template0',
  'template1',
  'rdsadmin',
  'tenantflow',
  'tenantflow_api',
  'tenantflow_admin',
  'tenantflow_platform',
]);

/** Prefixes reserved for the server's own objects: PostgreSQL's, and Amazon RDS's roles. */
export const RESERVED_TENANT_ID_PREFIXES: readonly string[] = ['pg_', 'rds_'];

/**
 * Returns every reason `id` is not a valid tenant id; an empty array means it is valid.
 *
 * A tenant id becomes a schema name and part of a role name, so the rules are strict: they are
 * checked once at the boundary, and identifiers are still always quoted in SQL.
 *
 * @example
 * ```ts
 * validateTenantId('acme_corp'); // []
 * validateTenantId('pg_temp');   // ["must not start with 'pg_' (reserved by PostgreSQL)"]
 * ```
 */
export function validateTenantId(id: unknown): string[] {
  if (typeof id !== 'string') {
    return ['must be a string'];
  }
  if (id.length === 0) {
    return ['must not be empty'];
  }
  const reasons: string[] = [];
  if (!TENANT_ID_PATTERN.test(id)) {
    reasons.push(
      'must start with a lowercase letter and contain only lowercase letters, digits and underscores (^[a-z][a-z0-9_]*$)',
    );
  }
  if (id.length > TENANT_ID_MAX_LENGTH) {
    reasons.push(`must be at most ${TENANT_ID_MAX_LENGTH} characters (got ${id.length})`);
  }
  for (const prefix of RESERVED_TENANT_ID_PREFIXES) {
    if (id.startsWith(prefix)) {
      reasons.push(
        `must not start with '${prefix}' (reserved by ${prefix === 'pg_' ? 'PostgreSQL' : 'Amazon RDS'})`,
      );
    }
  }
  if (RESERVED_TENANT_IDS.has(id)) {
    reasons.push(`'${id}' is a reserved name`);
  }
  return reasons;
}

/** Whether `id` is a valid tenant id; narrows it to `string`. */
export function isValidTenantId(id: unknown): id is string {
  return validateTenantId(id).length === 0;
}

/**
 * Throws a {@link ValidationError} listing every reason `id` is invalid.
 *
 * @example
 * ```ts
 * assertValidTenantId(event.pathParameters?.tenantId);
 * ```
 */
export function assertValidTenantId(id: unknown): asserts id is string {
  const reasons = validateTenantId(id);
  if (reasons.length > 0) {
    throw new ValidationError(`Invalid tenant id ${describeForMessage(id)}`, reasons);
  }
}

/** Renders untrusted input safely for an error message: JSON-quoted and truncated. */
function describeForMessage(value: unknown): string {
  if (typeof value !== 'string') {
    return `(${value === null ? 'null' : typeof value})`;
  }
  const shown = value.length > 80 ? `${value.slice(0, 80)}…` : value;
  return JSON.stringify(shown);
}
