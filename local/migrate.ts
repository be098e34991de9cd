/**
 * `npm run migrate`: brings the control schema and every tenant schema up to date.
 *
 * Uses DATABASE_URL (a superuser, or an admin role with CREATEROLE) when given; otherwise the local
 * platform's embedded PostgreSQL, whether `npm start` is running or not.
 * TENANTFLOW_MIGRATE_CONCURRENCY sets how many tenants migrate at once (default 8). The tenant
 * tables are the platform's and those of the workflows `npm start` runs: the installation's, or
 * the module TENANTFLOW_WORKFLOWS_MODULE names.
 */

import { createPlatformPool } from '@tenantflow/shared/db/connections';
import { ConfigurationError } from '@tenantflow/shared/kernel/errors';
import { DatabaseAdmin } from '@tenantflow/shared/provisioning/database-admin';
import { migrateDatabase, migrationSettings } from '@tenantflow/shared/provisioning/database-migrator';
import { loadTenantMigrations } from '@tenantflow/shared/provisioning/tenant-migrations';
import { PgTenantRegistry } from '@tenantflow/shared/tenancy/pg-tenant-registry';
import cliProgress from 'cli-progress';
import { withLocalDatabase } from './local-database.js';
import { localPlatformRole } from './local-roles.js';
import { loadLocalWorkflows } from './workflows-module.js';

const settings = readSettings();

function readSettings() {
  try {
    return migrationSettings(process.env);
  } catch (error) {
    if (!(error instanceof ConfigurationError)) {
      throw error;
    }
    console.error(error.message);
    process.exit(2);
  }
}

const home = process.env.TENANTFLOW_HOME ?? '.tenantflow';
const failedCount = await withLocalDatabase(home, async ({ adminUrl, platformUrl, controlApplied }) => {
  const pool = createPlatformPool({ connectionString: platformUrl, max: 2 });
  try {
    const admin = new DatabaseAdmin({
      adminUrl,
      platformRole: localPlatformRole(),
      tenantMigrations: await loadTenantMigrations(),
      applicationMigrations: (await loadLocalWorkflows()).tenantMigrations(),
    });
    const bar = process.stdout.isTTY
      ? new cliProgress.SingleBar(
          {
            format: 'tenant schemas [{bar}] {value}/{total} · {failed} failed · {eta_formatted} left',
            hideCursor: true,
          },
          cliProgress.Presets.shades_classic,
        )
      : undefined;
    let failed = 0;
    let barStarted = false;
    const { tenants } = await migrateDatabase(
      { admin, registry: new PgTenantRegistry(pool) },
      {
        ...settings,
        // Preparing the roles migrated the control schema already; say what that applied.
        onControlSchemaMigrated: (control) => {
          const applied = [...controlApplied, ...control.applied];
          console.log(
            `control schema: ${applied.length === 0 ? 'up to date' : `applied ${applied.join(', ')}`}`,
          );
        },
        onTenantDone: (outcome, done, total) => {
          if (!outcome.ok) {
            failed += 1;
            bar?.stop();
            barStarted = false;
            console.error(`  ✗ ${outcome.tenantId}: ${outcome.error}`);
          }
          if (bar !== undefined) {
            if (!barStarted) {
              bar.start(total, done, { failed });
              barStarted = true;
            }
            bar.update(done, { failed });
          } else if (done === total || done % 100 === 0) {
            console.log(`  ${done}/${total} tenant schemas`);
          }
        },
      },
    );
    bar?.stop();
    console.log(
      `tenant schemas: ${tenants.total} in all, ${tenants.migrated} migrated, ${tenants.upToDate} already up to date, ` +
        `${tenants.failed.length} failed (${(tenants.durationMs / 1000).toFixed(1)} s)`,
    );
    return tenants.failed.length;
  } finally {
    await pool.end();
  }
});

if (failedCount > 0) {
  console.error(`${failedCount} tenant schema(s) failed to migrate; fix them and run npm run migrate again.`);
  process.exitCode = 1;
}
