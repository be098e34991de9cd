import { randomBytes } from 'node:crypto';
import pg from 'pg';

/**
 * Roles are cluster-wide, and test files run in parallel on one PostgreSQL, so every suite names
 * its tenants with a suffix of its own: `uniqueTenantIds('acme', 'globex')` → `acme_3f9a1c`, ….
 */
export function tenantIdSuffix(): string {
  return randomBytes(3).toString('hex');
}

/**
 * Drops the login roles a suite's tenants left behind, and the suite's platform role (after their
 * database was dropped). `superuserUrl`: cleaning up is the superuser's, like bootstrapping.
 */
export async function dropTenantRoles(superuserUrl: string, suffix: string): Promise<void> {
  const client = new pg.Client({ connectionString: superuserUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ rolname: string }>(
      `SELECT rolname FROM pg_roles WHERE rolname LIKE '%\\_' || $1 || '\\_user' OR rolname IN ('tf_platform_' || $1, 'tf_platform_' || $1 || '_tenants')`,
      [suffix],
    );
    for (const { rolname } of rows) {
      await client.query(`DROP ROLE IF EXISTS "${rolname.replaceAll('"', '""')}"`);
    }
  } finally {
    await client.end();
  }
}
