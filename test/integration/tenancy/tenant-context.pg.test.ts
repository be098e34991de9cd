import { createPlatformPool } from '@tenantflow/shared/db/connections';
import { migrateControlSchema } from '@tenantflow/shared/db/control-schema';
import { PgTenantRegistry } from '@tenantflow/shared/tenancy/pg-tenant-registry';
import { TenantContextSwitch } from '@tenantflow/shared/tenancy/tenant-context';
import { directRegistration } from '@tenantflow/shared/testing/direct-registration';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../../support/database.js';
import { describeTenantContextSwitch } from '../../support/tenant-context.behaviour.js';
import { describeTenantRegistry } from '../../support/tenant-registry.behaviour.js';

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let pool: pg.Pool;

beforeAll(async () => {
  database = await createTestDatabase();
  await migrateControlSchema(database.url);
  pool = createPlatformPool({ connectionString: database.url, max: 4 });
});

afterAll(async () => {
  await pool?.end();
  await database?.drop();
});

describeTenantContextSwitch('PgTenantRegistry', async () => {
  // Each test starts from an empty registry in this suite's own database.
  await pool.query('DELETE FROM "tenantflow"."tenants"');
  return new PgTenantRegistry(pool);
});

describeTenantRegistry('PgTenantRegistry', async () => {
  await pool.query('DELETE FROM "tenantflow"."tenants"');
  return new PgTenantRegistry(pool);
});

describe('PgTenantRegistry', () => {
  it('keeps metadata as JSON, including nested values', async () => {
    await pool.query('DELETE FROM "tenantflow"."tenants"');
    const registry = new PgTenantRegistry(pool);
    const metadata = { plan: 'pro', seats: 12, flags: { beta: true }, regions: ['eu-west-1'] };

    await registry.create({ tenantId: 'acme', name: 'Acme', metadata, status: 'active' });

    expect((await registry.get('acme'))?.metadata).toEqual(metadata);
  });

  it('removes only when the expected status still holds', async () => {
    await pool.query('DELETE FROM "tenantflow"."tenants"');
    const registry = new PgTenantRegistry(pool);
    await registry.create({ tenantId: 'acme', name: 'Acme', metadata: {}, status: 'active' });

    expect(await registry.remove('acme', 'inactive')).toBe('status_mismatch');
    expect(await registry.get('acme')).toBeDefined();
    expect(await registry.remove('nobody', 'inactive')).toBe('not_found');
    await registry.setStatus('acme', 'inactive');
    expect(await registry.remove('acme', 'inactive')).toBe('removed');
    expect(await registry.get('acme')).toBeUndefined();
  });

  it('is backed by a check constraint that refuses an invalid id even if validation were bypassed', async () => {
    await expect(
      pool.query(`INSERT INTO "tenantflow"."tenants" (tenant_id, name) VALUES ('Bad-Id', 'x')`),
    ).rejects.toThrow(/check constraint/);
  });
});

describe('TenantContextSwitch over two databases', () => {
  it('keeps independent registries', async () => {
    const other = await createTestDatabase();
    await migrateControlSchema(other.url);
    const otherPool = createPlatformPool({ connectionString: other.url });
    try {
      await pool.query('DELETE FROM "tenantflow"."tenants"');
      const firstRegistry = new PgTenantRegistry(pool);
      const secondRegistry = new PgTenantRegistry(otherPool);
      const first = new TenantContextSwitch(firstRegistry, directRegistration(firstRegistry));
      const second = new TenantContextSwitch(secondRegistry, directRegistration(secondRegistry));

      await first.registerTenant('acme', 'Acme in the first database');
      await second.registerTenant('globex', 'Globex in the second database');
      await second.registerTenant('acme', 'Acme in the second database');

      expect((await first.listTenants()).map((t) => t.tenantId)).toEqual(['acme']);
      expect((await second.listTenants()).map((t) => t.tenantId)).toEqual(['acme', 'globex']);
      expect((await first.getTenant('acme'))?.name).toBe('Acme in the first database');
      expect(await first.isTenantRegistered('globex')).toBe(false);
      await second.deactivateTenant('acme');
      expect(await first.isTenantActive('acme')).toBe(true);
    } finally {
      await otherPool.end();
      await other.drop();
    }
  });
});
