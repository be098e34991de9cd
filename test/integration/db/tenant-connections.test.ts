import { TenantContextRequiredError, TenantNotFoundError } from '@tenantflow/shared/kernel/errors';
import { TenantConnections } from '@tenantflow/shared/tenancy/tenant-connections';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, type TestPlatform } from '../../support/platform.js';

let env: TestPlatform;
let tenantIds: string[];

beforeAll(async () => {
  env = await createTestPlatform();
  tenantIds = ['one', 'two', 'three', 'four'].map((base) => env.id(base));
  for (const tenantId of tenantIds) {
    await env.platform.provisioning.provision({ tenantId, name: tenantId });
  }
});

afterAll(async () => {
  await env?.cleanup();
});

async function tenantBackends(): Promise<number> {
  const { rows } = await env.platform.pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = ANY($1::text[])`,
    [tenantIds.map((id) => `${id}_user`)],
  );
  return rows[0]?.n ?? -1;
}

describe('TenantConnections', () => {
  it('keeps at most maxTenants pools, so tenant-role connections stay bounded', async () => {
    const connections = new TenantConnections({
      secrets: env.platform.secrets,
      maxTenants: 2,
      maxConnectionsPerTenant: 1,
    });
    try {
      for (const tenantId of tenantIds) {
        const db = await connections.tenantDb(tenantId);
        const { rows } = await db.query<{ user: string }>('SELECT current_user AS user');
        expect(rows[0]?.user).toBe(`${tenantId}_user`);
      }
      // Evicted pools close asynchronously; give them a moment.
      await new Promise((resolve) => setTimeout(resolve, 200));

      expect(connections.openPools).toBe(2);
      expect(await tenantBackends()).toBeLessThanOrEqual(2);
    } finally {
      await connections.close();
    }
  });

  it("opens one pool for concurrent first uses of a tenant, within the tenant's connection bound", async () => {
    const connections = new TenantConnections({ secrets: env.platform.secrets, maxConnectionsPerTenant: 2 });
    const [first] = tenantIds as [string];
    try {
      // Ten first uses at once, each holding its connection until all have one or time is up.
      await Promise.all(
        Array.from({ length: 10 }, async () => {
          const db = await connections.tenantDb(first);
          await db.transaction(async (client) => {
            await client.query('SELECT pg_sleep(0.05)');
          });
        }),
      );
      const { rows } = await env.platform.pool.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1',
        [`${first}_user`],
      );
      expect(connections.openPools).toBe(1);
      expect(rows[0]?.n).toBeLessThanOrEqual(2);
    } finally {
      await connections.close();
    }
  });

  it('keeps a handle usable after its pool was evicted', async () => {
    const connections = new TenantConnections({ secrets: env.platform.secrets, maxTenants: 1 });
    try {
      const first = await connections.tenantDb(tenantIds[0] as string);
      await connections.tenantDb(tenantIds[1] as string);

      const { rows } = await first.query<{ user: string }>('SELECT current_user AS user');

      expect(rows[0]?.user).toBe(`${tenantIds[0]}_user`);
    } finally {
      await connections.close();
    }
  });

  it('runs a transaction on one connection and rolls it back on error', async () => {
    const db = await env.platform.tenantConnections.tenantDb(tenantIds[2] as string);
    await expect(
      db.transaction(async (client) => {
        await client.query(
          `INSERT INTO example_results (execution_id, workflow, tenant_id, payload) VALUES ('rolled_back', 'w', 't', '{}')`,
        );
        throw new Error('task failed');
      }),
    ).rejects.toThrow('task failed');
    const { rows } = await db.query(`SELECT id FROM example_results WHERE execution_id = 'rolled_back'`);
    expect(rows).toEqual([]);
  });

  it('fails closed: no credentials, no connection; no tenant context, no connection', async () => {
    await expect(env.platform.tenantConnections.tenantDb(env.id('ghost'))).rejects.toBeInstanceOf(
      TenantNotFoundError,
    );
    await expect(env.platform.tenantConnections.currentTenantDb()).rejects.toBeInstanceOf(
      TenantContextRequiredError,
    );
    const inside = await env.platform.tenants.switch(tenantIds[3] as string, async () => {
      const db = await env.platform.tenantConnections.currentTenantDb();
      return (await db.query<{ user: string }>('SELECT current_user AS user')).rows[0]?.user;
    });
    expect(inside).toBe(`${tenantIds[3]}_user`);
  });
});
