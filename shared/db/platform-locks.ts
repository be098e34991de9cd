import { CONTROL_SCHEMA, type Queryable, qualified } from './sql.js';

const LOCKS = qualified(CONTROL_SCHEMA, 'platform_locks');

/**
 * Takes the platform's lock named `name` until the current transaction ends: a row lock in
 * `tenantflow.platform_locks`, a table only the admin and platform roles can reach.
 *
 * Why not an advisory lock: any role can take any advisory lock key, so SQL running as a tenant
 * could hold the key of, say, the database ACL and stall every onboarding. A row lock in a schema
 * the tenant cannot see cannot be taken by it. Call it inside a transaction that has set
 * `lock_timeout` (see `setTransactionLimits`), so a stuck holder fails the caller in bounded time.
 *
 * @example
 * ```ts
 * await client.query('BEGIN');
 * await setTransactionLimits(client, { lockTimeoutMs: 5_000, statementTimeoutMs: 60_000 });
 * await lockPlatformResource(client, 'database-acl');
 * ```
 */
export async function lockPlatformResource(client: Queryable, name: string): Promise<void> {
  await client.query(`INSERT INTO ${LOCKS} (name) VALUES ($1) ON CONFLICT (name) DO NOTHING`, [name]);
  await client.query(`SELECT 1 FROM ${LOCKS} WHERE name = $1 FOR UPDATE`, [name]);
}
