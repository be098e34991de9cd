import { checksumOf, defineTenantMigrations, type Migration } from '@tenantflow/shared/db/migrations';
import { DatabaseAdmin, type DatabaseAdminOptions } from '@tenantflow/shared/provisioning/database-admin';
import { migrateFleet, readFleetMigrationState } from '@tenantflow/shared/provisioning/fleet-migrator';
import { loadTenantMigrations } from '@tenantflow/shared/provisioning/tenant-migrations';
import type { TenantInfo } from '@tenantflow/shared/tenancy/tenant-registry';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTestPlatform, type TestPlatform } from '../../support/platform.js';

/**
 * migrateFleet reads every schema's history once, up front, and sends each ready schema its
 * pending migrations as one transaction in one round trip; every other schema goes through
 * DatabaseAdmin.migrateTenant, one statement at a time.
 */

let env: TestPlatform;
let shipped: Migration[];
let platformRole: string;
let nextVersion: number;

beforeAll(async () => {
  env = await createTestPlatform({ tenantMigrations: [] });
  shipped = await loadTenantMigrations();
  platformRole = await env.platform.admin.platformRoleName();
  nextVersion = Math.max(...shipped.map((migration) => migration.version)) + 1;
});

afterAll(async () => {
  await env?.cleanup();
});

/** A new platform tenant migration, after the shipped ones (each test takes versions of its own). */
function nextMigration(name: string, sql: string): Migration {
  const version = nextVersion++;
  return { version, name: `${String(version).padStart(4, '0')}_${name}.sql`, sql, checksum: checksumOf(sql) };
}

function adminWith(
  tenantMigrations: readonly Migration[],
  options: Partial<DatabaseAdminOptions> = {},
): DatabaseAdmin {
  return new DatabaseAdmin({ adminUrl: env.databaseUrl, platformRole, tenantMigrations, ...options });
}

/** A registry of exactly these tenants, so each test migrates only its own. */
function only(...tenantIds: string[]): { list(): Promise<TenantInfo[]> } {
  return {
    list: async () => {
      const all = await env.platform.registry.list();
      return all.filter((tenant) => tenantIds.includes(tenant.tenantId));
    },
  };
}

async function provisioned(base: string): Promise<string> {
  const tenantId = env.id(base);
  await env.platform.provisioning.provision({ tenantId, name: tenantId });
  return tenantId;
}

async function look<R extends Record<string, unknown>>(sql: string, values: unknown[] = []): Promise<R[]> {
  return (await env.adminPool.query<R>(sql, values)).rows;
}

describe('readFleetMigrationState', () => {
  it("gives, for the whole fleet at once, what each schema's own history says, and which schemas are ready", async () => {
    // Prepare: two tenants as provisioning leaves them, one with CREATE on its schema (as earlier
    // versions granted), and an id with no schema at all.
    const [alpha, bravo, legacy] = [
      await provisioned('st_alpha'),
      await provisioned('st_bravo'),
      await provisioned('st_legacy'),
    ];
    await env.adminPool.query(`GRANT CREATE ON SCHEMA "${legacy}" TO "${legacy}_user"`);
    const missing = env.id('st_missing');
    const orders = defineTenantMigrations('orders', [
      { name: '0001_orders', sql: 'CREATE TABLE orders (id bigint)' },
    ]);
    const admin = adminWith(shipped, { applicationMigrations: [orders] });

    // Act
    const state = await admin.withConnection((client) =>
      readFleetMigrationState(client, admin, [alpha, bravo, legacy, missing]),
    );

    // Assert
    for (const tenantId of [alpha, bravo, legacy]) {
      const rows = await look<{ version: number; checksum: string }>(
        `SELECT version, checksum FROM "${tenantId}".schema_migrations ORDER BY version`,
      );
      expect(rows.length).toBe(shipped.length);
      const history = state.tenants.get(tenantId)?.history;
      expect([...(history?.keys() ?? [])]).toEqual(['schema_migrations']);
      expect([...(history?.get('schema_migrations')?.entries() ?? [])]).toEqual(
        rows.map((row) => [row.version, row.checksum]),
      );
    }
    expect(state.tenants.get(alpha)?.ready).toBe(true);
    expect(state.tenants.get(bravo)?.ready).toBe(true);
    expect(state.tenants.get(legacy)?.ready).toBe(false);
    expect(state.tenants.get(missing)).toEqual({ ready: false, history: new Map() });
    expect(state.lockTimeoutMs).toBe(5_000);
  });
});

describe('migrateFleet, one round trip per schema', () => {
  it("applies a ready schema's migrations without migrating it one statement at a time, granting a new history table's rights once", async () => {
    // Prepare
    const [alpha, bravo] = [await provisioned('rt_alpha'), await provisioned('rt_bravo')];
    const next = nextMigration(
      'execution_weight',
      'ALTER TABLE executions ADD COLUMN weight integer;\nCREATE INDEX executions_weight_idx ON executions (weight) -- last line, a comment',
    );
    const ledger = defineTenantMigrations('ledger', [
      { name: '0001_ledger', sql: 'CREATE TABLE ledger (id bigint PRIMARY KEY)' },
      { name: '0002_ledger_note', sql: 'ALTER TABLE ledger ADD COLUMN note text' },
    ]);
    const admin = adminWith([...shipped, next], { applicationMigrations: [ledger] });
    const oneByOne = vi.spyOn(admin, 'migrateTenant');

    // Act
    const summary = await migrateFleet(only(alpha, bravo), admin, { concurrency: 2 });
    const again = await migrateFleet(only(alpha, bravo), admin, { concurrency: 2 });

    // Assert
    expect(summary).toMatchObject({ total: 2, migrated: 2, upToDate: 0, failed: [] });
    expect(again).toMatchObject({ total: 2, migrated: 0, upToDate: 2, failed: [] });
    expect(oneByOne).not.toHaveBeenCalled();
    for (const tenantId of [alpha, bravo]) {
      const [history] = await look<{ platform: string[]; ledger: string[] }>(
        `SELECT (SELECT array_agg(name ORDER BY version) FROM "${tenantId}".schema_migrations) AS platform,
                (SELECT array_agg(name ORDER BY version) FROM "${tenantId}".schema_migrations_ledger) AS ledger`,
      );
      expect(history).toEqual({
        platform: [...shipped.map((migration) => migration.name), next.name],
        ledger: ['0001_ledger', '0002_ledger_note'],
      });
      const [rights] = await look<Record<string, boolean>>(
        `SELECT has_table_privilege($1, $2, 'SELECT') AS "readsHistory",
                has_table_privilege($1, $2, 'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER') AS "writesHistory",
                has_table_privilege($1, $3, 'INSERT') AS "writesLedger",
                has_schema_privilege($1, $4, 'CREATE') AS "creates"`,
        [`${tenantId}_user`, `"${tenantId}".schema_migrations_ledger`, `"${tenantId}".ledger`, tenantId],
      );
      expect(rights).toEqual({
        readsHistory: true,
        writesHistory: false,
        writesLedger: true,
        creates: false,
      });
      expect(await look(`SELECT weight FROM "${tenantId}".executions LIMIT 0`)).toEqual([]);
    }
  });

  it('never applies a migration twice when two runs reach a schema at once', async () => {
    // Prepare: a migration whose second run would show (a second row). Both runs read the history
    // before either applies it, then wait for the schema's migration lock, held here.
    const tenantId = await provisioned('race');
    const counted = nextMigration(
      'applied_once',
      'CREATE TABLE IF NOT EXISTS applied_count (n integer); INSERT INTO applied_count VALUES (1);',
    );
    const holder = new pg.Client({ connectionString: env.databaseUrl });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(
        `INSERT INTO tenantflow.platform_locks (name) VALUES ($1) ON CONFLICT (name) DO NOTHING`,
        [`migrations:${tenantId}`],
      );
      await holder.query('SELECT 1 FROM tenantflow.platform_locks WHERE name = $1 FOR UPDATE', [
        `migrations:${tenantId}`,
      ]);
      const runs = [1, 2].map(() => migrateFleet(only(tenantId), adminWith([...shipped, counted])));
      await waitFor(async () => {
        const [waiting] = await look<{ count: number }>(
          `SELECT count(*)::int AS count FROM pg_stat_activity
            WHERE application_name = 'tenantflow-admin' AND wait_event_type = 'Lock' AND datname = current_database()`,
        );
        return (waiting?.count ?? 0) >= 2;
      });
      await holder.query('COMMIT');

      // Act
      const summaries = await Promise.all(runs);

      // Assert: one applied it, the other found it applied.
      expect(summaries.map((summary) => summary.failed)).toEqual([[], []]);
      expect(summaries.map((summary) => summary.migrated).sort()).toEqual([0, 1]);
      expect(await look(`SELECT n FROM "${tenantId}".applied_count`)).toEqual([{ n: 1 }]);
      expect(
        await look(`SELECT count(*)::int AS count FROM "${tenantId}".schema_migrations WHERE version = $1`, [
          counted.version,
        ]),
      ).toEqual([{ count: 1 }]);
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      await holder.end();
    }
  });

  it('reports a schema whose migration lock stays held as a lock timeout, leaving it as it was, and migrates the others', async () => {
    // Prepare
    const [held, free] = [await provisioned('held'), await provisioned('free')];
    const next = nextMigration('execution_flag', 'ALTER TABLE executions ADD COLUMN flag boolean');
    const admin = adminWith([...shipped, next], { lockTimeoutMs: 300 });
    const oneByOne = vi.spyOn(admin, 'migrateTenant');
    const holder = new pg.Client({ connectionString: env.databaseUrl });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`LOCK TABLE "${held}".executions IN ACCESS EXCLUSIVE MODE`);

      // Act
      const summary = await migrateFleet(only(held, free), admin, { concurrency: 2 });

      // Assert
      expect(summary).toMatchObject({ total: 2, migrated: 1 });
      expect(summary.failed).toEqual([
        {
          tenantId: held,
          error: expect.stringMatching(/^Schema '.*' was not migrated: .*300 ms \(lock_timeout\)/),
        },
      ]);
      expect(oneByOne).not.toHaveBeenCalled();
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    const versions = await look<{ schema: string }>(
      `SELECT $1 AS schema FROM "${held}".schema_migrations WHERE version = $3
       UNION ALL SELECT $2 FROM "${free}".schema_migrations WHERE version = $3`,
      [held, free, next.version],
    );
    expect(versions).toEqual([{ schema: free }]);
  });

  it('sends a schema whose migration leaves the bookkeeping with the wrong grants through migrateTenant, which renews them', async () => {
    // Prepare: a migration that hands the tenant write access to its executions.
    const tenantId = await provisioned('regrant');
    const loosening = nextMigration('loosen', `GRANT INSERT ON executions TO "${tenantId}_user"`);
    const admin = adminWith([...shipped, loosening]);
    const oneByOne = vi.spyOn(admin, 'migrateTenant');

    // Act
    const summary = await migrateFleet(only(tenantId), admin);

    // Assert
    expect(summary).toMatchObject({ total: 1, migrated: 1, failed: [] });
    expect(oneByOne).toHaveBeenCalledTimes(1);
    const [rights] = await look<{ writes: boolean }>(
      `SELECT has_table_privilege($1, $2, 'INSERT') AS writes`,
      [`${tenantId}_user`, `"${tenantId}".executions`],
    );
    expect(rights).toEqual({ writes: false });
  });

  it("does not commit in one round trip a migration that loosens the tenant's rights through a role it joins, its tables' grants unchanged", async () => {
    // Prepare: a role that may write the tenant's executions; the migration makes the tenant a member.
    const tenantId = await provisioned('joins');
    const writer = env.id('writer');
    await env.adminPool.query(`CREATE ROLE "${writer}" NOLOGIN`);
    await env.adminPool.query(`GRANT INSERT ON "${tenantId}".executions TO "${writer}"`);
    const joining = nextMigration('join_writer', `GRANT "${writer}" TO "${tenantId}_user" WITH INHERIT TRUE`);
    const admin = adminWith([...shipped, joining]);
    const oneByOne = vi.spyOn(admin, 'migrateTenant').mockRejectedValue(new Error('refused'));
    try {
      // Act
      const summary = await migrateFleet(only(tenantId), admin);

      // Assert: the one-round-trip transaction rolled back, so the schema went to migrateTenant.
      expect(oneByOne).toHaveBeenCalledTimes(1);
      expect(summary).toMatchObject({ total: 1, migrated: 0, failed: [{ tenantId, error: 'refused' }] });
      const [state] = await look<{ member: boolean; recorded: number }>(
        `SELECT pg_has_role($1, $2, 'MEMBER') AS member,
                (SELECT count(*)::int FROM "${tenantId}".schema_migrations WHERE version = $3) AS recorded`,
        [`${tenantId}_user`, writer, joining.version],
      );
      expect(state).toEqual({ member: false, recorded: 0 });
    } finally {
      await env.adminPool.query(`REVOKE ALL ON "${tenantId}".executions FROM "${writer}"`);
      await env.adminPool.query(`DROP ROLE "${writer}"`);
    }
  });

  it('refuses a migration that makes the tenant role a member of another role, even one it could only SET ROLE to', async () => {
    // Prepare: a role that may write the tenant's executions; the migration lets the tenant SET ROLE
    // to it (no inheritance), which no check of the tenant role's own rights would show.
    const tenantId = await provisioned('setrole');
    const writer = env.id('setwriter');
    await env.adminPool.query(`CREATE ROLE "${writer}" NOLOGIN`);
    await env.adminPool.query(`GRANT INSERT ON "${tenantId}".executions TO "${writer}"`);
    const joining = nextMigration(
      'set_writer',
      `GRANT "${writer}" TO "${tenantId}_user" WITH INHERIT FALSE, SET TRUE`,
    );
    const admin = adminWith([...shipped, joining]);
    try {
      // Act
      const summary = await migrateFleet(only(tenantId), admin);

      // Assert: refused for that schema, rolled back, named in the report.
      expect(summary).toMatchObject({ total: 1, migrated: 0, failed: [{ tenantId }] });
      expect(summary.failed[0]?.error).toMatch(/may belong only to the tenants group/);
      const [state] = await look<{ member: boolean; recorded: number }>(
        `SELECT pg_has_role($1, $2, 'MEMBER') AS member,
                (SELECT count(*)::int FROM "${tenantId}".schema_migrations WHERE version = $3) AS recorded`,
        [`${tenantId}_user`, writer, joining.version],
      );
      expect(state).toEqual({ member: false, recorded: 0 });
    } finally {
      await env.adminPool.query(`REVOKE ALL ON "${tenantId}".executions FROM "${writer}"`);
      await env.adminPool.query(`DROP ROLE "${writer}"`);
    }
  });
});

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 4_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) {
      throw new Error('Timed out waiting for the condition');
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
