import { checksumOf, type Migration } from '@tenantflow/shared/db/migrations';
import { DatabaseAdmin } from '@tenantflow/shared/provisioning/database-admin';
import { migrateFleet } from '@tenantflow/shared/provisioning/fleet-migrator';
import { loadTenantMigrations } from '@tenantflow/shared/provisioning/tenant-migrations';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, type TestPlatform } from '../../support/platform.js';

/** The version after the last of `migrations` (versions may have gaps: the numbering is never reused). */
const versionAfter = (migrations: readonly { version: number }[]) =>
  Math.max(0, ...migrations.map((migration) => migration.version)) + 1;

let env: TestPlatform;
let tenantIds: string[];

function migration(version: number, name: string, sql: string): Migration {
  return { version, name: `${String(version).padStart(4, '0')}_${name}.sql`, sql, checksum: checksumOf(sql) };
}

async function adminQuery(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: env.databaseUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  env = await createTestPlatform();
  tenantIds = [env.id('alpha'), env.id('bravo'), env.id('charlie'), env.id('delta')];
  for (const tenantId of tenantIds) {
    await env.platform.provisioning.provision({ tenantId, name: tenantId });
  }
  await env.platform.tenants.deactivateTenant(tenantIds[3] as string);
});

afterAll(async () => {
  await env?.cleanup();
});

describe('migrateFleet', () => {
  it('is a no-op when every tenant is up to date', async () => {
    const summary = await migrateFleet(env.platform.registry, env.platform.admin, { concurrency: 2 });
    expect(summary).toMatchObject({ total: 4, migrated: 0, upToDate: 4, failed: [] });
  });

  it('applies a new migration to every tenant, reports a failing one without stopping the others, and finishes on a re-run', async () => {
    const [alpha, bravo] = tenantIds as [string, string];
    const shipped = await loadTenantMigrations();
    const next = migration(
      versionAfter(shipped),
      'execution_priority',
      'ALTER TABLE executions ADD COLUMN priority integer NOT NULL DEFAULT 0; CREATE INDEX executions_priority_idx ON executions (priority);',
    );
    const admin = new DatabaseAdmin({
      adminUrl: env.databaseUrl,
      platformRole: await env.platform.admin.platformRoleName(),
      tenantMigrations: [...shipped, next],
    });
    // Break bravo: the migration will fail on it alone.
    await adminQuery(`ALTER TABLE "${bravo}".executions ADD COLUMN priority text`);
    const progress: number[] = [];

    const first = await migrateFleet(env.platform.registry, admin, {
      concurrency: 3,
      onTenantDone: (_outcome, done) => progress.push(done),
    });

    expect(first.total).toBe(4);
    expect(first.migrated).toBe(3);
    expect(first.failed).toEqual([
      { tenantId: bravo, error: expect.stringContaining(`${next.name} failed`) },
    ]);
    expect(progress.sort((a, b) => a - b)).toEqual([1, 2, 3, 4]);
    const client = new pg.Client({ connectionString: env.databaseUrl });
    await client.connect();
    const columns = await client.query(
      `SELECT table_schema FROM information_schema.columns WHERE table_name = 'executions' AND column_name = 'priority' AND data_type = 'integer' ORDER BY 1`,
    );
    await client.end();
    expect(columns.rows.map((row) => row.table_schema)).toContain(alpha);
    expect(columns.rows.map((row) => row.table_schema)).not.toContain(bravo);

    // The operator fixes bravo; the re-run migrates only what is left.
    await adminQuery(`ALTER TABLE "${bravo}".executions DROP COLUMN priority`);
    const second = await migrateFleet(env.platform.registry, admin, { concurrency: 3 });

    expect(second).toMatchObject({ total: 4, migrated: 1, upToDate: 3, failed: [] });
  });

  it('skips tenants that are still being provisioned', async () => {
    const pending = env.id('pending');
    await env.platform.registry.create({
      tenantId: pending,
      name: 'Pending',
      metadata: {},
      status: 'provisioning',
    });
    const summary = await migrateFleet(env.platform.registry, env.platform.admin);
    expect(summary.total).toBe(4);
    await env.platform.registry.remove(pending);
  });
});
