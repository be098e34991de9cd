import { randomBytes } from 'node:crypto';
import { createPlatformPool, withDedicatedClient } from '@tenantflow/shared/db/connections';
import { CONTROL_MIGRATIONS_DIR } from '@tenantflow/shared/db/control-schema';
import { checksumOf, loadMigrations, type Migration, migrateSchema } from '@tenantflow/shared/db/migrations';
import { DatabaseAdmin } from '@tenantflow/shared/provisioning/database-admin';
import { migrateFleet } from '@tenantflow/shared/provisioning/fleet-migrator';
import { loadTenantMigrations } from '@tenantflow/shared/provisioning/tenant-migrations';
import { PgTenantRegistry } from '@tenantflow/shared/tenancy/pg-tenant-registry';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { exampleTables } from '../../../examples/tables.js';
import { LOCAL_ADMIN_ROLE, prepareLocalDatabase, withLogin } from '../../../local/local-roles.js';
import { onDatabase } from '../../support/database.js';
import { dropTenantRoles, tenantIdSuffix } from '../../support/tenants.js';

/**
 * A `.tenantflow/` made by a version before the roles were split: everything was the superuser's,
 * and each tenant role had CREATE on its schema and write access to the bookkeeping. `npm start`
 * (prepareLocalDatabase) and the next migration must bring it to the current rules, and report
 * what a tenant created while it could, without ever running it.
 */

const suffix = tenantIdSuffix();
const clean = `legacy_clean_${suffix}`;
const planted = `legacy_planted_${suffix}`;
const platformRole = `tf_platform_${suffix}`;
const databaseName = `tf_legacy_${suffix}`;
const superuserUrl = onDatabase(inject('superuserUrl'), databaseName);
const TENANT_PASSWORD = `legacy-${randomBytes(9).toString('hex')}`;

let fleet: Awaited<ReturnType<typeof migrateFleet>>;
let adminUrl: string;
let platformUrl: string;

async function asSuperuser<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  return withDedicatedClient(superuserUrl, work);
}

async function asTenant<T>(tenantId: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  return withDedicatedClient(withLogin(superuserUrl, `${tenantId}_user`, TENANT_PASSWORD), work);
}

/** Provisioning as the earlier version did it, as the superuser, with the migrations of its day. */
async function provisionTheOldWay(client: pg.Client, tenantId: string, migrations: readonly Migration[]) {
  const role = `"${tenantId}_user"`;
  await client.query(`INSERT INTO tenantflow.tenants (tenant_id, name, status) VALUES ($1, $1, 'active')`, [
    tenantId,
  ]);
  await client.query(`CREATE SCHEMA "${tenantId}"`);
  await client.query(`CREATE ROLE ${role} LOGIN NOINHERIT PASSWORD '${TENANT_PASSWORD}'`);
  await client.query(`GRANT CONNECT ON DATABASE "${databaseName}" TO ${role}`);
  await client.query(`GRANT USAGE, CREATE ON SCHEMA "${tenantId}" TO ${role}`);
  await client.query(
    `ALTER DEFAULT PRIVILEGES IN SCHEMA "${tenantId}" GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${role}`,
  );
  await client.query(`ALTER ROLE ${role} SET search_path = "${tenantId}"`);
  await migrateSchema(client, tenantId, migrations, { createSchema: false, unqualifiedNamesInSchema: true });
}

beforeAll(async () => {
  await withDedicatedClient(inject('superuserUrl'), (client) =>
    client.query(`CREATE DATABASE "${databaseName}"`),
  );
  const control = (await loadMigrations(CONTROL_MIGRATIONS_DIR)).filter(
    (migration) => migration.version <= 5,
  );
  // The tenant migrations of its day: the platform's first ones, and the examples' table, which the
  // platform's own migrations created then (as version 3).
  const [exampleResults] = exampleTables.migrations;
  const tenant = [
    ...(await loadTenantMigrations()).filter((migration) => migration.version <= 2),
    ...(exampleResults === undefined
      ? []
      : [{ ...exampleResults, version: 3, name: '0003_example_results.sql' }]),
    ...(await loadTenantMigrations()).filter((migration) => migration.version === 4),
  ];
  await asSuperuser(async (client) => {
    await migrateSchema(client, 'tenantflow', control);
    await provisionTheOldWay(client, clean, tenant);
    await provisionTheOldWay(client, planted, tenant);
  });
  // What the earlier version let a tenant do: create objects in its schema, among them an overload
  // that a migration running as a privileged role would pick over pg_catalog's.
  await asTenant(planted, async (client) => {
    await client.query('CREATE TABLE orders (id int)');
    await client.query(
      `CREATE FUNCTION jsonb_build_object(k text, v integer) RETURNS jsonb LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'planted overload ran as %', current_user; END $$`,
    );
  });

  // Act: what `npm start` (or npm run migrate) does first, then the next fleet migration, whose new
  // tenant migration calls jsonb_build_object('k', 1).
  vi.stubEnv('TENANTFLOW_PLATFORM_ROLE', platformRole);
  const logins = await prepareLocalDatabase(superuserUrl, {
    admin: randomBytes(18).toString('base64url'),
    platform: randomBytes(18).toString('base64url'),
  });
  vi.unstubAllEnvs();
  adminUrl = logins.adminUrl;
  platformUrl = logins.platformUrl;
  const shipped = await loadTenantMigrations();
  const version = Math.max(...shipped.map((migration) => migration.version)) + 1;
  const sql = `CREATE TABLE settings AS SELECT jsonb_build_object('k', 1) AS value;`;
  const next: Migration = {
    version,
    name: `${String(version).padStart(4, '0')}_settings.sql`,
    sql,
    checksum: checksumOf(sql),
  };
  const pool = createPlatformPool({ connectionString: platformUrl, max: 2 });
  try {
    const admin = new DatabaseAdmin({ adminUrl, platformRole, tenantMigrations: [...shipped, next] });
    fleet = await migrateFleet(new PgTenantRegistry(pool), admin, { concurrency: 2 });
  } finally {
    await pool.end();
  }
});

afterAll(async () => {
  await withDedicatedClient(inject('superuserUrl'), async (client) => {
    await client.query(`DROP DATABASE IF EXISTS "${databaseName}" WITH (FORCE)`);
  });
  await dropTenantRoles(inject('superuserUrl'), suffix);
  await withDedicatedClient(inject('superuserUrl'), (client) =>
    client.query(`DROP ROLE IF EXISTS ${LOCAL_ADMIN_ROLE}`),
  );
});

const privilege = (role: string, table: string, kind: string) =>
  asSuperuser(async (client) => {
    const { rows } = await client.query<{ has: boolean }>('SELECT has_table_privilege($1, $2, $3) AS has', [
      role,
      table,
      kind,
    ]);
    return rows[0]?.has;
  });

describe('upgrading a database provisioned by an earlier version', () => {
  it('hands the database and its schemas to a non-superuser admin', async () => {
    const owners = await asSuperuser(
      async (client) =>
        (
          await client.query<{ what: string; owner: string; rolsuper: boolean }>(
            `SELECT 'database' AS what, pg_get_userbyid(datdba)::text AS owner FROM pg_database WHERE datname = current_database()
             UNION ALL SELECT nspname, pg_get_userbyid(nspowner)::text FROM pg_namespace WHERE nspname IN ('tenantflow', $1, $2)
             UNION ALL SELECT 'tenantflow.tenants', pg_get_userbyid(relowner)::text FROM pg_class WHERE oid = 'tenantflow.tenants'::regclass
             ORDER BY 1`,
            [clean, planted],
          )
        ).rows,
    );
    expect(owners.map((row) => row.owner)).toEqual([
      LOCAL_ADMIN_ROLE,
      LOCAL_ADMIN_ROLE,
      LOCAL_ADMIN_ROLE,
      LOCAL_ADMIN_ROLE,
      LOCAL_ADMIN_ROLE,
    ]);
    const admin = await withDedicatedClient(adminUrl, async (client) => {
      const { rows } = await client.query<{ rolsuper: boolean; rolcreaterole: boolean }>(
        'SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user',
      );
      return rows[0];
    });
    expect(admin).toEqual({ rolsuper: false, rolcreaterole: true });
  });

  it('migrates a clean tenant, and takes CREATE and the bookkeeping writes away from its role', async () => {
    expect(fleet.failed.map((failure) => failure.tenantId)).not.toContain(clean);
    const role = `${clean}_user`;
    await asTenant(clean, async (client) => {
      await expect(client.query('CREATE TABLE stolen (x int)')).rejects.toThrow(/permission denied/);
      await expect(client.query(`INSERT INTO executions (id, workflow) VALUES ('x', 'y')`)).rejects.toThrow(
        /permission denied/,
      );
      expect((await client.query('SELECT value FROM settings')).rows).toEqual([{ value: { k: 1 } }]);
    });
    expect(await privilege(role, `"${clean}".executions`, 'SELECT')).toBe(true);
    expect(await privilege(role, `"${clean}".task_runs`, 'UPDATE')).toBe(false);
    expect(await privilege(role, `"${clean}".example_results`, 'INSERT')).toBe(true);
    expect(await privilege(platformRole, `"${clean}".executions`, 'UPDATE')).toBe(true);
    expect(await privilege(platformRole, `"${clean}".example_results`, 'SELECT')).toBe(false);
  });

  it('refuses to migrate a schema holding objects its tenant created, names them, and never runs them', async () => {
    const failure = fleet.failed.find((entry) => entry.tenantId === planted);
    expect(failure?.error).toMatch(/was not migrated/);
    expect(failure?.error).toContain('table orders');
    expect(failure?.error).toContain('function');
    expect(failure?.error).toContain('jsonb_build_object(text,integer)');
    expect(failure?.error).not.toMatch(/planted overload ran/);
    // Its rights are brought to the current rules all the same.
    await asTenant(planted, async (client) => {
      await expect(client.query('CREATE TABLE more (x int)')).rejects.toThrow(/permission denied/);
      await expect(client.query(`DELETE FROM executions`)).rejects.toThrow(/permission denied/);
    });
    const attributes = await asSuperuser(
      async (client) =>
        (
          await client.query<{ rolsuper: boolean; rolcreaterole: boolean }>(
            'SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = $1',
            [`${planted}_user`],
          )
        ).rows[0],
    );
    expect(attributes).toEqual({ rolsuper: false, rolcreaterole: false });
  });
});
