import { fileURLToPath } from 'node:url';
import { loadMigrations, type Migration } from '../db/migrations.js';

/** Where the per-tenant migrations live, relative to this module. */
export const TENANT_MIGRATIONS_DIR = fileURLToPath(new URL('../migrations/tenant', import.meta.url));

/** The tenant migrations, in order. */
export function loadTenantMigrations(directory = TENANT_MIGRATIONS_DIR): Promise<Migration[]> {
  return loadMigrations(directory);
}
