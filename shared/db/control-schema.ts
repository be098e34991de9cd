import { fileURLToPath } from 'node:url';
import { withDedicatedClient } from './connections.js';
import { loadMigrations, type MigrationReport, migrateSchema } from './migrations.js';
import { CONTROL_SCHEMA } from './sql.js';

/** Where the control schema's migrations live, relative to this module. */
export const CONTROL_MIGRATIONS_DIR = fileURLToPath(new URL('../migrations/control', import.meta.url));

/**
 * Creates or upgrades the `tenantflow` control schema. Safe to run repeatedly and concurrently.
 *
 * @example
 * ```ts
 * const report = await migrateControlSchema(process.env.DATABASE_URL);
 * console.log(report.applied); // ['0001_tenants.sql'] on a new database, [] afterwards
 * ```
 */
export async function migrateControlSchema(
  connectionString: string,
  migrationsDir = CONTROL_MIGRATIONS_DIR,
): Promise<MigrationReport> {
  const migrations = await loadMigrations(migrationsDir);
  return withDedicatedClient(connectionString, (client) => migrateSchema(client, CONTROL_SCHEMA, migrations));
}
