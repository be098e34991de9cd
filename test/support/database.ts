import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';

/**
 * A fresh database on the run's PostgreSQL, for one suite, created by (and so owned by) the
 * non-superuser admin role, as Aurora's `tenantflow` database is owned by its master user. Returns
 * the admin's URL on it, the superuser's (to look only), and a function that drops it (terminating
 * any connection the suite left open).
 */
export async function createTestDatabase(
  prefix = 'tf_test',
): Promise<{ url: string; superuserUrl: string; drop: () => Promise<void> }> {
  const adminUrl = inject('databaseUrl');
  const superuserUrl = inject('superuserUrl');
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  await withAdminClient(adminUrl, (client) => client.query(`CREATE DATABASE "${name}"`));
  return {
    url: onDatabase(adminUrl, name),
    superuserUrl: onDatabase(superuserUrl, name),
    drop: async () => {
      await withAdminClient(superuserUrl, (client) =>
        client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`),
      );
    },
  };
}

/** `url` on another database of the same server. */
export function onDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

async function withAdminClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}
