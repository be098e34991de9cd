import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { withDedicatedClient } from '@tenantflow/shared/db/connections';
import { CONTROL_MIGRATIONS_DIR, migrateControlSchema } from '@tenantflow/shared/db/control-schema';
import { loadMigrations, migrateSchema } from '@tenantflow/shared/db/migrations';
import { MigrationError } from '@tenantflow/shared/kernel/errors';
import type pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../../support/database.js';

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let migrationsDir: string;

beforeEach(async () => {
  database = await createTestDatabase();
  migrationsDir = await mkdtemp(join(tmpdir(), 'tenantflow-migrations-'));
});

afterEach(async () => {
  await database.drop();
  await rm(migrationsDir, { recursive: true, force: true });
});

async function query<R extends pg.QueryResultRow>(sql: string): Promise<R[]> {
  return withDedicatedClient(database.url, async (client) => (await client.query<R>(sql)).rows);
}

async function migrate(schema = 'app') {
  const migrations = await loadMigrations(migrationsDir);
  return withDedicatedClient(database.url, (client) => migrateSchema(client, schema, migrations));
}

describe('migrateControlSchema', () => {
  it('creates the control schema, and a second run is a no-op', async () => {
    const shipped = await loadMigrations(CONTROL_MIGRATIONS_DIR);
    const first = await migrateControlSchema(database.url);
    const second = await migrateControlSchema(database.url);

    expect(first.applied).toEqual(shipped.map((m) => m.name));
    expect(first.applied.slice(0, 2)).toEqual(['0001_tenants.sql', '0002_provisioning.sql']);
    expect(second).toEqual({ schema: 'tenantflow', applied: [], alreadyApplied: shipped.length });
    const tables = await query<{ table_name: string }>(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = 'tenantflow' ORDER BY table_name",
    );
    expect(tables.map((t) => t.table_name)).toEqual([
      'platform_leases',
      'platform_locks',
      'recovery_events',
      'recovery_runs',
      'schedule_firings',
      'schedules',
      'schema_migrations',
      'task_claim_key',
      'tenant_metrics',
      'tenants',
    ]);
  });

  it('survives two processes migrating at once: both succeed and each migration is applied once', async () => {
    const shipped = await loadMigrations(CONTROL_MIGRATIONS_DIR);
    const runs = await Promise.all(Array.from({ length: 4 }, () => migrateControlSchema(database.url)));

    const appliedCount = runs.reduce((sum, run) => sum + run.applied.length, 0);
    expect(appliedCount).toBe(shipped.length);
    const recorded = await query<{ version: number }>(
      'SELECT version FROM "tenantflow"."schema_migrations" ORDER BY version',
    );
    expect(recorded).toEqual(shipped.map((m) => ({ version: m.version })));
  });

  it('loads the shipped control migrations with stable checksums', async () => {
    const migrations = await loadMigrations(CONTROL_MIGRATIONS_DIR);
    // Versions are consecutive from 1: a gap would mean a file was lost.
    expect(migrations.map((m) => m.version)).toEqual(migrations.map((_, index) => index + 1));
    expect(migrations.length).toBeGreaterThanOrEqual(3);
    expect(migrations[0]?.checksum).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('migrateSchema', () => {
  it('applies only the new migrations on a later run', async () => {
    await writeFile(join(migrationsDir, '0001_items.sql'), 'CREATE TABLE app.items (id int PRIMARY KEY);');
    await migrate();
    await writeFile(join(migrationsDir, '0002_item_name.sql'), 'ALTER TABLE app.items ADD COLUMN name text;');

    const report = await migrate();

    expect(report).toEqual({ schema: 'app', applied: ['0002_item_name.sql'], alreadyApplied: 1 });
  });

  it('refuses an applied migration whose file changed', async () => {
    await writeFile(join(migrationsDir, '0001_items.sql'), 'CREATE TABLE app.items (id int PRIMARY KEY);');
    await migrate();
    await writeFile(join(migrationsDir, '0001_items.sql'), 'CREATE TABLE app.items (id bigint PRIMARY KEY);');

    await expect(migrate()).rejects.toThrow(/0001_items\.sql was changed after it was applied/);
  });

  it('rolls back every pending migration when one fails, and names it', async () => {
    await writeFile(join(migrationsDir, '0001_items.sql'), 'CREATE TABLE app.items (id int PRIMARY KEY);');
    await writeFile(join(migrationsDir, '0002_broken.sql'), 'ALTER TABLE app.nope ADD COLUMN x int;');

    const attempt = migrate();

    await expect(attempt).rejects.toBeInstanceOf(MigrationError);
    await expect(attempt).rejects.toThrow(/0002_broken\.sql failed/);
    const schemas = await query("SELECT 1 FROM information_schema.schemata WHERE schema_name = 'app'");
    expect(schemas).toEqual([]);
  });

  it('refuses misnamed and duplicate-version files instead of skipping them', async () => {
    await writeFile(join(migrationsDir, 'items.sql'), 'SELECT 1;');
    await expect(loadMigrations(migrationsDir)).rejects.toThrow(/not named NNNN_description\.sql/);
    await rm(join(migrationsDir, 'items.sql'));
    await writeFile(join(migrationsDir, '0001_a.sql'), 'SELECT 1;');
    await writeFile(join(migrationsDir, '0001_b.sql'), 'SELECT 2;');
    await expect(loadMigrations(migrationsDir)).rejects.toThrow(/share version 1/);
  });
});
