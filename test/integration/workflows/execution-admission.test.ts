import { randomUUID } from 'node:crypto';
import { qualified, tenantTable } from '@tenantflow/shared/db/sql';
import { LimitExceededError, TenantInactiveError } from '@tenantflow/shared/kernel/errors';
import { ExecutionStore } from '@tenantflow/shared/workflows/execution-store';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, type TestPlatform } from '../../support/platform.js';

/**
 * The concurrency limit (limits.maxConcurrentExecutions) as the execution store enforces it: exact
 * under many concurrent starts, finishes and reruns, and without serializing a tenant's starts on
 * its registry row. The store runs on a pool of its own, wide enough that the starts really are
 * concurrent in PostgreSQL.
 */

let env: TestPlatform;
let pool: pg.Pool;
let store: ExecutionStore;

beforeAll(async () => {
  env = await createTestPlatform();
  pool = new pg.Pool({ connectionString: env.platformUrl, max: 24 });
  store = new ExecutionStore(pool);
}, 120_000);

afterAll(async () => {
  await pool?.end();
  await env?.cleanup();
});

async function provision(base: string): Promise<string> {
  const tenantId = env.id(base);
  await env.platform.provisioning.provision({ tenantId, name: base });
  return tenantId;
}

function start(tenantId: string, limit: number, executionId = randomUUID()) {
  return store.insertWithinLimit(tenantId, { executionId, workflow: 'pipeline', input: {} }, limit);
}

async function inFlight(tenantId: string): Promise<{ id: string; admission_slot: number | null }[]> {
  const { rows } = await env.adminPool.query<{ id: string; admission_slot: number | null }>(
    `SELECT id, admission_slot FROM ${tenantTable(tenantId, 'executions')}
      WHERE status IN ('pending', 'running')`,
  );
  return rows;
}

describe('the concurrency limit', () => {
  it('never admits more than the limit over rounds of concurrent starts racing finishes and reruns', async () => {
    const tenantId = await provision('racing');
    const limit = 5;
    let admittedTotal = 0;
    for (let round = 0; round < 8; round += 1) {
      const current = await inFlight(tenantId);
      // Finish some of what is in flight while 30 starts race for the free slots, and rerun
      // executions that failed in earlier rounds.
      const { rows: failed } = await pool.query<{ id: string }>(
        `SELECT id FROM ${tenantTable(tenantId, 'executions')} WHERE status = 'failed' LIMIT 3`,
      );
      const settled = await Promise.allSettled([
        ...Array.from({ length: 30 }, () => start(tenantId, limit)),
        ...current
          .slice(0, 2)
          .map((row, index) =>
            store.finalize(
              tenantId,
              row.id,
              index === 0 ? 'failed' : 'succeeded',
              index === 0 ? 'boom' : null,
            ),
          ),
        ...failed.map((row) => store.beginRerun(tenantId, row.id, limit)),
      ]);
      for (const result of settled) {
        if (result.status === 'rejected') {
          expect(result.reason).toBeInstanceOf(LimitExceededError);
        }
      }
      admittedTotal += settled.slice(0, 30).filter((result) => result.status === 'fulfilled').length;
      const after = await inFlight(tenantId);
      expect(after.length).toBeLessThanOrEqual(limit);
      const slots = after.map((row) => row.admission_slot);
      expect(slots.every((slot) => slot !== null && slot >= 0 && slot < limit)).toBe(true);
      expect(new Set(slots).size).toBe(slots.length);
    }
    // Not trivially refused: every round found slots freed by the finishes of the one before.
    expect(admittedTotal).toBeGreaterThanOrEqual(limit + 7);
  });

  it('admits exactly the limit of 40 concurrent starts, and again once they finish', async () => {
    const tenantId = await provision('exact');
    for (const limit of [7, 1]) {
      const settled = await Promise.allSettled(Array.from({ length: 40 }, () => start(tenantId, limit)));
      const admitted = settled.filter((result) => result.status === 'fulfilled');
      expect(admitted).toHaveLength(limit);
      expect(await inFlight(tenantId)).toHaveLength(limit);
      for (const row of await inFlight(tenantId)) {
        await store.finalize(tenantId, row.id, 'succeeded', null);
      }
    }
  });

  it('counts what is in flight against a lowered limit', async () => {
    const tenantId = await provision('lowered');
    for (let index = 0; index < 4; index += 1) {
      await start(tenantId, 10);
    }
    const refused = await start(tenantId, 3).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(LimitExceededError);
    expect(String((refused as Error).message)).toContain('4 executions pending or running');
    expect(await inFlight(tenantId)).toHaveLength(4);
  });

  it('records one execution for concurrent starts with the same caller-chosen id', async () => {
    const tenantId = await provision('same_id');
    const executionId = randomUUID();
    const results = await Promise.all(
      Array.from({ length: 10 }, () =>
        store.insertWithinLimit(tenantId, { executionId, workflow: 'pipeline', input: {} }, 100, {
          ifAbsent: true,
        }),
      ),
    );
    expect(results.filter((result) => result.inserted)).toHaveLength(1);
    expect(results.every((result) => result.executionId === executionId)).toBe(true);
    expect(await inFlight(tenantId)).toHaveLength(1);
  });

  it('does not wait for another start in progress on the same tenant', async () => {
    const tenantId = await provision('unblocked');
    // What a start holds while it runs: the tenant's registry row, FOR SHARE. A start that took it
    // FOR UPDATE (the tenant's starts one at a time) would wait here until the lock times out.
    const holder = new pg.Client({ connectionString: env.platformUrl });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(
        `SELECT 1 FROM ${qualified('tenantflow', 'tenants')} WHERE tenant_id = $1 FOR SHARE`,
        [tenantId],
      );
      const began = performance.now();
      const outcome = await Promise.race([
        start(tenantId, 10).then(() => 'started' as const),
        new Promise<'blocked'>((resolve) => setTimeout(() => resolve('blocked'), 3_000).unref()),
      ]);
      expect(outcome).toBe('started');
      expect(performance.now() - began).toBeLessThan(3_000);
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      await holder.end();
    }
  });

  it('refuses starts once the tenant is deactivated', async () => {
    const tenantId = await provision('deactivated');
    await start(tenantId, 10);
    await env.platform.tenants.deactivateTenant(tenantId);
    const refused = await start(tenantId, 10).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(TenantInactiveError);
    expect(await inFlight(tenantId)).toHaveLength(1);
  });
});
