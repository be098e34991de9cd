import { defineTask } from '@tenantflow/shared/workflows/task';
import { defineWorkflow } from '@tenantflow/shared/workflows/workflow';
import { WorkflowRegistry } from '@tenantflow/shared/workflows/workflow-registry';
import { describe, expect, it } from 'vitest';
import { apiClient } from '../../support/http.js';
import { localPlatformSuite } from '../../support/local-platform-suite.js';
import { tenantIdSuffix } from '../../support/tenants.js';

/**
 * `POST …/executions/{id}/cancel` and `…/rerun` over HTTP on the local server: who may call them,
 * what they answer, and their refusals.
 */

const ADMIN_TOKEN = 'test-admin-token-execution-control-0123';
const suffix = tenantIdSuffix();
const acme = `acme_${suffix}`;
const globex = `globex_${suffix}`;

/** Holds an execution `running` until the test ends (or its signal fires). */
let releaseHeld: () => void = () => {};
const held = new Promise<void>((resolve) => {
  releaseHeld = resolve;
});
const hold = defineTask({
  id: 'hold',
  timeoutSeconds: 60,
  run: (ctx) =>
    Promise.race([
      held,
      new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve())),
    ]),
});
let broken = true;
const fragile = defineTask({
  id: 'fragile',
  retry: { attempts: 1 },
  run: (ctx) => {
    if (broken) {
      throw new Error('the downstream service is down');
    }
    ctx.set('done', true);
  },
});
const quick = defineTask({ id: 'quick', run: (ctx) => ctx.set('quick', true) });

const workflows = new WorkflowRegistry([
  defineWorkflow({ name: 'hold', tasks: [hold] }),
  defineWorkflow({ name: 'fragile', tasks: [fragile] }),
  defineWorkflow({ name: 'quick', tasks: [quick] }),
]);

const suite = localPlatformSuite({
  homePrefix: 'tenantflow-execution-control-api-',
  adminToken: ADMIN_TOKEN,
  workflows,
  tenants: [acme, globex].map((tenantId) => ({
    tenantId,
    config: { limits: { maxConcurrentExecutions: 2 } },
  })),
  tenantSuffix: suffix,
  beforeStop: () => releaseHeld(),
});
const admin: ReturnType<typeof apiClient> = (...args) => suite.admin(...args);
const asTenant = (tenantId: string) => suite.asTenant(tenantId);

async function start(tenantId: string, workflow: string): Promise<string> {
  const started = await asTenant(tenantId)('POST', `/tenants/${tenantId}/executions`, { body: { workflow } });
  expect(started.status).toBe(202);
  return started.body.executionId;
}

async function settled(tenantId: string, executionId: string, statuses: string[]) {
  for (let i = 0; i < 400; i++) {
    const response = await admin('GET', `/tenants/${tenantId}/executions/${executionId}`);
    if (statuses.includes(response.body.status)) {
      return response.body;
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`execution ${executionId} never reached ${statuses.join(' or ')}`);
}

async function taskRunning(tenantId: string, executionId: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const response = await admin('GET', `/tenants/${tenantId}/executions/${executionId}`);
    if (response.body.tasks?.[0]?.status === 'running') {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`the task of ${executionId} never started`);
}

describe('POST /tenants/{tenantId}/executions/{executionId}/cancel', () => {
  it("cancels a running execution with the tenant's key (202), and GET shows it aborted and by whom", async () => {
    const executionId = await start(acme, 'hold');
    await settled(acme, executionId, ['running']);

    const cancelled = await asTenant(acme)('POST', `/tenants/${acme}/executions/${executionId}/cancel`);

    expect(cancelled.status).toBe(202);
    expect(cancelled.body).toEqual({
      executionId,
      status: 'aborted',
      cancelledAt: expect.any(String),
      cancelledBy: 'tenant_api_key',
      alreadyCancelled: false,
    });
    const view = await asTenant(acme)('GET', `/tenants/${acme}/executions/${executionId}`);
    expect(view.body).toMatchObject({
      status: 'aborted',
      cancelledBy: 'tenant_api_key',
      cancelledAt: cancelled.body.cancelledAt,
      error: "Cancelled by the tenant's API key",
    });

    const repeated = await asTenant(acme)('POST', `/tenants/${acme}/executions/${executionId}/cancel`);
    expect(repeated.status).toBe(202);
    expect(repeated.body).toEqual({ ...cancelled.body, alreadyCancelled: true });
  });

  it('records the admin as the canceller when the admin token cancels', async () => {
    const executionId = await start(acme, 'hold');

    const cancelled = await admin('POST', `/tenants/${acme}/executions/${executionId}/cancel`);

    expect(cancelled.status).toBe(202);
    expect(cancelled.body.cancelledBy).toBe('admin');
    expect((await admin('GET', `/tenants/${acme}/executions/${executionId}`)).body.cancelledBy).toBe('admin');
  });

  it('answers 409 naming the status of an execution that already ended', async () => {
    const executionId = await start(acme, 'quick');
    await settled(acme, executionId, ['succeeded']);

    const refused = await asTenant(acme)('POST', `/tenants/${acme}/executions/${executionId}/cancel`);

    expect(refused.status).toBe(409);
    expect(refused.body.error).toEqual({
      code: 'EXECUTION_STATE_CONFLICT',
      message: `Execution '${executionId}' is already succeeded; only a pending or running execution can be cancelled`,
      status: 'succeeded',
    });
  });

  it("answers 404 for an unknown execution, 400 for a malformed id, 403 to another tenant's key and 401 without one", async () => {
    const executionId = await start(acme, 'quick');
    const unknown = await asTenant(acme)(
      'POST',
      `/tenants/${acme}/executions/00000000-0000-4000-8000-000000000000/cancel`,
    );
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('EXECUTION_NOT_FOUND');
    expect((await asTenant(acme)('POST', `/tenants/${acme}/executions/nope/cancel`)).status).toBe(400);
    const foreign = await asTenant(globex)('POST', `/tenants/${acme}/executions/${executionId}/cancel`);
    expect(foreign.status).toBe(403);
    const anonymous = await apiClient(suite.local.url)(
      'POST',
      `/tenants/${acme}/executions/${executionId}/cancel`,
    );
    expect(anonymous.status).toBe(401);
  });
});

describe('POST /tenants/{tenantId}/executions/{executionId}/rerun', () => {
  it('reruns a failed execution (202) to success, and GET shows the rerun', async () => {
    broken = true;
    const executionId = await start(globex, 'fragile');
    await settled(globex, executionId, ['failed']);
    broken = false;

    const rerun = await asTenant(globex)('POST', `/tenants/${globex}/executions/${executionId}/rerun`);

    expect(rerun.status).toBe(202);
    expect(rerun.body).toEqual({ executionId, status: 'running', rerunCount: 1 });
    const view = await settled(globex, executionId, ['succeeded', 'failed']);
    expect(view).toMatchObject({ status: 'succeeded', rerunCount: 1, lastRerunAt: expect.any(String) });
    expect(view.context).toEqual({ done: true });

    const again = await asTenant(globex)('POST', `/tenants/${globex}/executions/${executionId}/rerun`);
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({ code: 'EXECUTION_STATE_CONFLICT', status: 'succeeded' });
  });

  it('answers 429 when the tenant is at its concurrency limit, and the execution stays failed', async () => {
    broken = true;
    const failed = await start(globex, 'fragile');
    await settled(globex, failed, ['failed']);
    const holders = [await start(globex, 'hold'), await start(globex, 'hold')];

    const refused = await asTenant(globex)('POST', `/tenants/${globex}/executions/${failed}/rerun`);

    expect(refused.status).toBe(429);
    expect(refused.body.error.message).toContain('limits.maxConcurrentExecutions = 2');
    expect((await admin('GET', `/tenants/${globex}/executions/${failed}`)).body).toMatchObject({
      status: 'failed',
      rerunCount: 0,
    });
    for (const holder of holders) {
      expect((await admin('POST', `/tenants/${globex}/executions/${holder}/cancel`)).status).toBe(202);
    }
  });

  it('answers 409 for a cancelled execution, and 423 while the tenant is inactive (a cancel still goes through)', async () => {
    const cancelled = await start(acme, 'hold');
    await admin('POST', `/tenants/${acme}/executions/${cancelled}/cancel`);
    const ofCancelled = await asTenant(acme)('POST', `/tenants/${acme}/executions/${cancelled}/rerun`);
    expect(ofCancelled.status).toBe(409);
    expect(ofCancelled.body.error.message).toContain('cancelled');

    broken = true;
    const failed = await start(acme, 'fragile');
    await settled(acme, failed, ['failed']);
    const running = await start(acme, 'hold');
    // Its task must be under way: one that has not begun when the tenant is deactivated refuses to
    // run, and the execution ends failed before the cancel.
    await taskRunning(acme, running);
    expect((await admin('POST', `/tenants/${acme}/deactivate`)).status).toBe(200);
    try {
      const locked = await admin('POST', `/tenants/${acme}/executions/${failed}/rerun`);
      expect(locked.status).toBe(423);
      const stopped = await admin('POST', `/tenants/${acme}/executions/${running}/cancel`);
      expect(stopped.status).toBe(202);
    } finally {
      await admin('POST', `/tenants/${acme}/activate`);
    }
  });
});
