import { defineTenantMigrations } from '@tenantflow/shared/db/migrations';
import { loadTenantMigrations } from '@tenantflow/shared/provisioning/tenant-migrations';
import { createDatabaseAdmin } from '@tenantflow/shared/runtime/provisioning';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, type TestPlatform } from '../../support/platform.js';

/**
 * An application's tenant tables (`defineTenantMigrations`, registered with its workflows): applied
 * to each tenant after the platform's, recorded in a history of their own that the tenant may read
 * but never write, and brought to existing tenants by the next migration run.
 */

const orders = defineTenantMigrations('orders', [
  {
    name: '0001_orders',
    sql: 'CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, total_cents integer NOT NULL)',
  },
]);

let env: TestPlatform;

beforeAll(async () => {
  // Only the orders tables: not the examples' (the installation's default).
  env = await createTestPlatform({ tenantMigrations: [orders] });
});

afterAll(async () => {
  await env?.cleanup();
});

async function asAdmin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: env.databaseUrl });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

const tablesOf = (tenantId: string) =>
  asAdmin(async (client) => {
    const { rows } = await client.query<{ name: string }>(
      `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relkind = 'r' ORDER BY 1`,
      [tenantId],
    );
    return rows.map((row) => row.name);
  });

describe('application tenant migrations', () => {
  it("provisions a tenant with the set's tables and its history, after the platform's, and none of the examples'", async () => {
    // Prepare
    const tenantId = env.id('acme');

    // Act
    await env.platform.provisioning.provision({ tenantId, name: 'Acme' });

    // Assert
    const tables = await tablesOf(tenantId);
    expect(tables).toEqual(
      expect.arrayContaining(['orders', 'schema_migrations', 'schema_migrations_orders']),
    );
    expect(tables).not.toContain('example_results');
    const history = await asAdmin(
      async (client) =>
        (await client.query(`SELECT version, name FROM "${tenantId}".schema_migrations_orders`)).rows,
    );
    expect(history).toEqual([{ version: 1, name: '0001_orders' }]);
  });

  it('lets the tenant use its tables and read its histories, never write them', async () => {
    // Prepare
    const tenantId = env.id('globex');
    await env.platform.provisioning.provision({ tenantId, name: 'Globex' });
    const db = await env.platform.tenantConnections.tenantDb(tenantId);

    // Act
    await db.query('INSERT INTO orders (total_cents) VALUES (1250)');

    // Assert
    expect((await db.query('SELECT total_cents FROM orders')).rows).toEqual([{ total_cents: 1250 }]);
    expect((await db.query('SELECT count(*)::int AS n FROM schema_migrations_orders')).rows).toEqual([
      { n: 1 },
    ]);
    await expect(db.query('DELETE FROM schema_migrations_orders')).rejects.toThrow(/permission denied/);
    await expect(
      db.query(`INSERT INTO schema_migrations_orders (version, name, checksum) VALUES (2, 'x', 'x')`),
    ).rejects.toThrow(/permission denied/);
  });

  it("brings a new migration of the set to existing tenants on the next run, and the platform role cannot read the set's tables", async () => {
    // Prepare
    const tenantId = env.id('initech');
    await env.platform.provisioning.provision({ tenantId, name: 'Initech' });
    const grown = defineTenantMigrations('orders', [
      ...orders.migrations.map(({ name, sql }) => ({ name, sql })),
      { name: '0002_order_notes', sql: 'ALTER TABLE orders ADD COLUMN note text' },
    ]);
    const admin = await createDatabaseAdmin(env.platform.core, { tenantMigrations: [grown] });

    // Act
    const report = await admin.withConnection((client) => admin.migrateTenant(client, tenantId));
    const again = await admin.withConnection((client) => admin.migrateTenant(client, tenantId));

    // Assert
    expect(report.applied).toEqual(['orders/0002_order_notes']);
    expect(again.applied).toEqual([]);
    expect(again.alreadyApplied).toBe((await loadTenantMigrations()).length + 2);
    await expect(env.platform.pool.query(`SELECT * FROM "${tenantId}".orders`)).rejects.toThrow(
      /permission denied/,
    );
  });

  it('refuses a set whose applied migration was edited, naming it, when the set next migrates', async () => {
    // Prepare
    const tenantId = env.id('hooli');
    await env.platform.provisioning.provision({ tenantId, name: 'Hooli' });
    // Checksums are compared when a set has something to apply (an up-to-date schema costs one read).
    const edited = defineTenantMigrations('orders', [
      { name: '0001_orders', sql: 'CREATE TABLE orders (id bigint PRIMARY KEY)' },
      { name: '0002_order_notes', sql: 'ALTER TABLE orders ADD COLUMN note text' },
    ]);
    const admin = await createDatabaseAdmin(env.platform.core, { tenantMigrations: [edited] });

    // Act
    const attempt = admin.withConnection((client) => admin.migrateTenant(client, tenantId));

    // Assert
    await expect(attempt).rejects.toThrow(/Migration 0001_orders was changed after it was applied/);
    const columns = await asAdmin(
      async (client) =>
        (
          await client.query(
            `SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'orders'`,
            [tenantId],
          )
        ).rows,
    );
    expect(columns.map((column) => column.column_name)).not.toContain('note');
  });
});
