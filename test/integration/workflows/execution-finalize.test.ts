import { randomUUID } from 'node:crypto';
import { tenantTable } from '@tenantflow/shared/db/sql';
import { ExecutionStore, MAX_RECORDED_DURATION_MS } from '@tenantflow/shared/workflows/execution-store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, type TestPlatform } from '../../support/platform.js';

/**
 * ExecutionStore.finalize against timestamps a tenant role could have written into its own
 * `executions` row: whatever they say, the execution is finalized and the tenant's counters take a
 * duration between 0 and {@link MAX_RECORDED_DURATION_MS}, so no row can stay in flight for ever.
 */

let env: TestPlatform;
let store: ExecutionStore;
let tenantId: string;

beforeAll(async () => {
  env = await createTestPlatform();
  store = new ExecutionStore(env.platform.pool);
  tenantId = env.id('clocks');
  await env.platform.provisioning.provision({ tenantId, name: 'Clocks' });
});

afterAll(async () => {
  await env?.cleanup();
});

/** A running execution whose timestamps are set as given, straight in the tenant's table. */
async function runningWith(times: { startedAt: string | null; createdAt?: string }): Promise<string> {
  const executionId = randomUUID();
  await env.platform.pool.query(
    `INSERT INTO ${tenantTable(tenantId, 'executions')} (id, workflow, status, started_at, created_at)
     VALUES ($1, 'clock_test', 'running', $2::timestamptz, COALESCE($3::timestamptz, now()))`,
    [executionId, times.startedAt, times.createdAt ?? null],
  );
  return executionId;
}

/** Finalizes, and returns what this one execution added to the tenant's counters. */
async function finalizeMeasured(executionId: string) {
  const before = await store.metrics(tenantId);
  const finalized = await store.finalize(tenantId, executionId, 'failed', 'ended by the test');
  const after = await store.metrics(tenantId);
  return {
    finalized,
    finished: after.executionsFinished - before.executionsFinished,
    durationMs: after.totalDurationMs - before.totalDurationMs,
    status: (await store.get(tenantId, executionId))?.status,
  };
}

describe('ExecutionStore.finalize', () => {
  it.each([['-infinity'], ['infinity'], ['9999-12-31T00:00:00Z']])(
    'finalizes an execution whose started_at is %s, counting no duration',
    async (startedAt) => {
      // Prepare
      const executionId = await runningWith({ startedAt });

      // Act
      const measured = await finalizeMeasured(executionId);

      // Assert
      expect(measured).toEqual({ finalized: true, finished: 1, durationMs: 0, status: 'failed' });
    },
  );

  it('finalizes an execution never started whose created_at is -infinity, counting no duration', async () => {
    const executionId = await runningWith({ startedAt: null, createdAt: '-infinity' });

    const measured = await finalizeMeasured(executionId);

    expect(measured).toEqual({ finalized: true, finished: 1, durationMs: 0, status: 'failed' });
  });

  it('caps the duration of an execution that says it started in year 1', async () => {
    const executionId = await runningWith({ startedAt: '0001-01-01T00:00:00Z' });

    const measured = await finalizeMeasured(executionId);

    expect(measured).toEqual({
      finalized: true,
      finished: 1,
      durationMs: MAX_RECORDED_DURATION_MS,
      status: 'failed',
    });
  });

  it('still counts the real duration of an execution that started a minute ago', async () => {
    const executionId = await runningWith({ startedAt: new Date(Date.now() - 60_000).toISOString() });

    const measured = await finalizeMeasured(executionId);

    expect(measured.finalized).toBe(true);
    expect(measured.durationMs).toBeGreaterThanOrEqual(59_000);
    expect(measured.durationMs).toBeLessThan(120_000);
  });
});
