import { tenantTable } from '@tenantflow/shared/db/sql';
import {
  ExecutionNotFoundError,
  LimitExceededError,
  TenantflowError,
} from '@tenantflow/shared/kernel/errors';
import { createLogger } from '@tenantflow/shared/logging/logger';
import { compileToAsl } from '@tenantflow/shared/workflows/asl';
import {
  ExecutionNotRedrivableError,
  ExecutionStateConflictError,
} from '@tenantflow/shared/workflows/execution-control-errors';
import { ExecutionFinalizer } from '@tenantflow/shared/workflows/execution-finalizer';
import { ExecutionService } from '@tenantflow/shared/workflows/execution-service';
import { ExecutionStore } from '@tenantflow/shared/workflows/execution-store';
import type {
  ExecutionDescription,
  ExecutionHandle,
  Orchestrator,
  RedriveOutcome,
} from '@tenantflow/shared/workflows/orchestrator';
import { ExecutionNotRunnableError } from '@tenantflow/shared/workflows/state-errors';
import { defineTask } from '@tenantflow/shared/workflows/task';
import { TaskRunner } from '@tenantflow/shared/workflows/task-runner';
import { defineWorkflow } from '@tenantflow/shared/workflows/workflow';
import { WorkflowRegistry } from '@tenantflow/shared/workflows/workflow-registry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFinalizeHandler } from '../../../functions/workflow/finalize.js';
import { createRunTaskHandler } from '../../../functions/workflow/run-task.js';
import { LocalOrchestrator } from '../../../local/local-orchestrator.js';
import { LOCAL_TARGETS } from '../../../local/local-runtime.js';
import { failpointGate } from '../../support/failpoint-gate.js';
import { createTestPlatform, type TestPlatform } from '../../support/platform.js';
import { testRecovery } from '../../support/recovery.js';

/**
 * Cancelling and rerunning executions, through the local orchestrator (the same ASL, run-task and
 * finalize handlers as in AWS) against a real PostgreSQL: a cancel mid-task, its races with a
 * task's commit, finalize and recovery, and a rerun from the failed task.
 */

const logger = createLogger('execution-control-test');

/** Each run of `wait_for_cancel` reports here why its signal fired. */
const signalled: Array<(reason: unknown) => void> = [];
const nextSignal = () =>
  new Promise<unknown>((resolve, reject) => {
    signalled.push(resolve);
    setTimeout(() => reject(new Error('the task signal did not fire within 10 s')), 10_000).unref();
  });

/** Each run of `wait_for_cancel` reports here once it waits on its signal. */
const waiting: Array<() => void> = [];
const nextWait = () =>
  new Promise<void>((resolve) => {
    waiting.push(resolve);
  });

/** Writes to the tenant's own table and the context, then waits until its signal fires. */
const waitForCancel = defineTask({
  id: 'wait_for_cancel',
  timeoutSeconds: 60,
  run: async (ctx) => {
    await ctx.db.query(
      'INSERT INTO example_results (execution_id, workflow, tenant_id, payload) VALUES ($1, $2, $3, $4)',
      [ctx.executionId, ctx.workflow, ctx.tenant.id, '{}'],
    );
    ctx.set('touched', true);
    await new Promise<void>((resolve) => {
      ctx.signal.addEventListener('abort', () => resolve(), { once: true });
      waiting.shift()?.();
    });
    signalled.shift()?.(ctx.signal.reason);
  },
});

const quickWrite = defineTask({
  id: 'quick_write',
  run: async (ctx) => {
    await ctx.db.query(
      'INSERT INTO example_results (execution_id, workflow, tenant_id, payload) VALUES ($1, $2, $3, $4)',
      [ctx.executionId, ctx.workflow, ctx.tenant.id, '{}'],
    );
    ctx.set('written', true);
  },
});

let prepareRuns = 0;
let fragileBroken = true;
const prepare = defineTask({
  id: 'prepare',
  run: async (ctx) => {
    prepareRuns += 1;
    await ctx.db.query(
      'INSERT INTO example_results (execution_id, workflow, tenant_id, payload) VALUES ($1, $2, $3, $4)',
      [ctx.executionId, ctx.workflow, ctx.tenant.id, '{}'],
    );
    ctx.set('prepared', true);
  },
});
const fragile = defineTask({
  id: 'fragile',
  retry: { attempts: 1 },
  run: (ctx) => {
    if (fragileBroken) {
      throw new Error('the downstream service is down');
    }
    ctx.set('fragile', 'ok');
  },
});
const finish = defineTask({ id: 'finish', run: (ctx) => ctx.set('finished', true) });
const alwaysFails = defineTask({
  id: 'always_fails',
  retry: { attempts: 1 },
  run: () => {
    throw new Error('never works');
  },
});

const workflows = new WorkflowRegistry([
  defineWorkflow({ name: 'slow', tasks: [waitForCancel] }),
  defineWorkflow({ name: 'quick', tasks: [quickWrite] }),
  defineWorkflow({
    name: 'flaky',
    tasks: [prepare, fragile, finish],
    dependsOn: { fragile: ['prepare'], finish: ['fragile'] },
  }),
  defineWorkflow({ name: 'doomed', tasks: [alwaysFails] }),
]);

let env: TestPlatform;
let acme: string;
let capped: string;
let store: ExecutionStore;
let finalizer: ExecutionFinalizer;
let runner: TaskRunner;
let local: LocalOrchestrator;
let executions: ExecutionService;
const gate = failpointGate();

beforeAll(async () => {
  env = await createTestPlatform();
  acme = env.id('acme');
  capped = env.id('capped');
  await env.platform.provisioning.provision({ tenantId: acme, name: 'Acme' });
  await env.platform.provisioning.provision({
    tenantId: capped,
    name: 'Capped',
    config: { settings: {}, features: {}, limits: { maxConcurrentExecutions: 1 } },
  });
  store = new ExecutionStore(env.platform.pool);
  finalizer = new ExecutionFinalizer(store, logger);
  runner = new TaskRunner({
    tenants: env.platform.tenants,
    workflows,
    store,
    tenantConnections: env.platform.tenantConnections,
    logger,
    // A cancel is noticed at the next heartbeat: often here, so the tests need not wait 10 s.
    heartbeatIntervalMs: 50,
    failpoints: gate.failpoints,
  });
  local = new LocalOrchestrator({
    definitions: Object.fromEntries(
      workflows.list().map((workflow) => [workflow.name, compileToAsl(workflow, LOCAL_TARGETS)]),
    ),
    lambdas: {
      [LOCAL_TARGETS.taskRunnerArn]: createRunTaskHandler({ runner, logger }),
      [LOCAL_TARGETS.finalizeArn]: createFinalizeHandler({ finalizer, logger }),
    },
    retryIntervalMs: 0,
  });
  executions = serviceWith(local);
});

afterAll(async () => {
  gate.releaseAll();
  await local?.drain();
  await env?.cleanup();
});

function serviceWith(orchestrator: Orchestrator): ExecutionService {
  return new ExecutionService({ registry: env.platform.registry, workflows, store, orchestrator, logger });
}

/** The local orchestrator with its calls recorded, and `redrive`/`stop` replaceable per test. */
class SpyOrchestrator implements Orchestrator {
  readonly calls: Array<{ method: string; handle: ExecutionHandle }> = [];
  onRedrive: ((handle: ExecutionHandle) => Promise<RedriveOutcome>) | undefined;
  onStop: ((handle: ExecutionHandle) => Promise<void>) | undefined;
  onDescribe: ((handle: ExecutionHandle) => Promise<ExecutionDescription>) | undefined;

  start: Orchestrator['start'] = (request) => {
    this.calls.push({ method: 'start', handle: request });
    return local.start(request);
  };
  describe: Orchestrator['describe'] = (handle) => {
    this.calls.push({ method: 'describe', handle });
    return this.onDescribe?.(handle) ?? local.describe(handle);
  };
  stop: Orchestrator['stop'] = (handle, reason) => {
    this.calls.push({ method: 'stop', handle });
    return this.onStop?.(handle) ?? local.stop(handle, reason);
  };
  redrive: Orchestrator['redrive'] = (handle) => {
    this.calls.push({ method: 'redrive', handle });
    return this.onRedrive?.(handle) ?? local.redrive(handle);
  };

  callsFor(executionId: string): string[] {
    return this.calls.filter((call) => call.handle.executionId === executionId).map((call) => call.method);
  }
}

/** The error a call rejected with; fails the test if it resolved instead. */
async function rejection(work: Promise<unknown>): Promise<TenantflowError> {
  const error = await work.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error, 'the call should have failed').toBeInstanceOf(TenantflowError);
  return error as TenantflowError;
}

/** Rows the execution's tasks wrote to the tenant's own table (read as the admin). */
async function writtenRows(tenantId: string, executionId: string): Promise<number> {
  const { rows } = await env.adminPool.query<{ count: number }>(
    `SELECT count(*)::int AS count FROM ${tenantTable(tenantId, 'example_results')} WHERE execution_id = $1`,
    [executionId],
  );
  return rows[0]?.count ?? 0;
}

/** An execution recorded and marked started, as the API leaves it, without running anything. */
async function recordedRunning(tenantId: string, workflow: string): Promise<string> {
  const executionId = crypto.randomUUID();
  await store.insertWithinLimit(tenantId, { executionId, workflow, input: {} }, 100);
  await store.markStarted(tenantId, executionId, `test:${executionId}`);
  return executionId;
}

async function failedExecution(tenantId: string, workflow: 'doomed' | 'flaky'): Promise<string> {
  const { executionId } = await executions.start(tenantId, { workflow, input: {} });
  await local.drain();
  expect((await executions.get(tenantId, executionId)).status).toBe('failed');
  return executionId;
}

describe('Cancelling an execution', () => {
  it("stops a running execution mid-task: the task's signal fires, its work rolls back, and the execution ends aborted with who cancelled it", async () => {
    const metricsBefore = await executions.metrics(acme);
    const waits = nextWait();
    const signal = nextSignal();
    const { executionId } = await executions.start(acme, { workflow: 'slow', input: {} });
    await waits;

    const cancelled = await executions.cancel(acme, executionId, 'tenant_api_key');

    expect(cancelled).toMatchObject({
      executionId,
      status: 'aborted',
      cancelledBy: 'tenant_api_key',
      alreadyCancelled: false,
    });
    expect(await signal).toBeInstanceOf(ExecutionNotRunnableError);
    await local.drain();
    const view = await executions.get(acme, executionId);
    expect(view).toMatchObject({
      status: 'aborted',
      cancelledBy: 'tenant_api_key',
      cancelledAt: cancelled.cancelledAt,
      error: "Cancelled by the tenant's API key",
      rerunCount: 0,
    });
    expect(view.finishedAt).toBeInstanceOf(Date);
    expect(view.context).toEqual({});
    expect(await writtenRows(acme, executionId)).toBe(0);
    expect((await local.describe({ workflow: 'slow', tenantId: acme, executionId })).status).toBe('aborted');
    const metricsAfter = await executions.metrics(acme);
    expect(metricsAfter.executionsAborted).toBe(metricsBefore.executionsAborted + 1);
    expect(metricsAfter.executionsFinished).toBe(metricsBefore.executionsFinished + 1);
  });

  it('answers a repeated cancel as the first did, and counts the execution once', async () => {
    const executionId = await recordedRunning(acme, 'slow');
    const first = await executions.cancel(acme, executionId, 'admin');
    const metricsBefore = await executions.metrics(acme);

    const repeated = await executions.cancel(acme, executionId, 'tenant_api_key');

    expect(repeated).toEqual({ ...first, alreadyCancelled: true });
    expect(repeated.cancelledBy).toBe('admin');
    expect((await executions.metrics(acme)).executionsAborted).toBe(metricsBefore.executionsAborted);
  });

  it('refuses with a 409 naming the status an execution that already ended', async () => {
    const { executionId } = await executions.start(acme, { workflow: 'quick', input: {} });
    await local.drain();

    const error = await rejection(executions.cancel(acme, executionId, 'tenant_api_key'));

    expect(error).toBeInstanceOf(ExecutionStateConflictError);
    expect(error.statusCode).toBe(409);
    expect(error.message).toContain('already succeeded');
    expect(error.details()).toEqual({ status: 'succeeded' });
    expect((await executions.get(acme, executionId)).status).toBe('succeeded');
  });

  it('answers 404 for an execution the tenant does not have', async () => {
    const error = await rejection(executions.cancel(acme, crypto.randomUUID(), 'admin'));

    expect(error).toBeInstanceOf(ExecutionNotFoundError);
    expect(error.statusCode).toBe(404);
  });

  it('keeps the cancel when the orchestrator cannot be reached, and a repeated cancel finishes the stop', async () => {
    const spy = new SpyOrchestrator();
    spy.onStop = () => Promise.reject(new Error('connect ETIMEDOUT'));
    const executionId = await recordedRunning(acme, 'slow');

    const first = await serviceWith(spy).cancel(acme, executionId, 'tenant_api_key');

    expect(first.status).toBe('aborted');
    expect(await stopConfirmed(acme, executionId)).toBe(false);
    spy.onStop = undefined;
    const repeated = await serviceWith(spy).cancel(acme, executionId, 'tenant_api_key');
    expect(repeated.alreadyCancelled).toBe(true);
    expect(spy.callsFor(executionId)).toEqual(['stop', 'stop']);
    expect(await stopConfirmed(acme, executionId)).toBe(true);
    // Once confirmed, a further cancel does not ask the orchestrator again.
    await serviceWith(spy).cancel(acme, executionId, 'tenant_api_key');
    expect(spy.callsFor(executionId)).toEqual(['stop', 'stop']);
  });

  it('is never overwritten by a finalize that comes after it', async () => {
    const executionId = await recordedRunning(acme, 'quick');
    await executions.cancel(acme, executionId, 'tenant_api_key');

    const finalized = await finalizer.finalize({ tenantId: acme, executionId, outcome: 'succeeded' });
    const failed = await finalizer.finalize({ tenantId: acme, executionId, outcome: 'failed' });

    expect(finalized.finalized).toBe(false);
    expect(failed.finalized).toBe(false);
    expect((await executions.get(acme, executionId)).status).toBe('aborted');
  });
});

describe('A cancel racing a task commit', () => {
  it("refuses the commit of a task still running when the cancel lands: the task's writes roll back", async () => {
    const executionId = await recordedRunning(acme, 'quick');
    const held = gate.hold('after-body', { tenantId: acme, name: 'quick_write' });
    const run = runner.run({ tenantId: acme, executionId, taskId: 'quick_write' });
    const outcome = run.then(
      () => undefined,
      (error: unknown) => error,
    );
    await held.reached;

    await executions.cancel(acme, executionId, 'tenant_api_key');
    held.release();

    expect(await outcome).toBeInstanceOf(ExecutionNotRunnableError);
    const view = await executions.get(acme, executionId);
    expect(view.status).toBe('aborted');
    expect(view.context).toEqual({});
    expect(await writtenRows(acme, executionId)).toBe(0);
  });

  it('lets a task that committed first stand, and lands the cancel after it', async () => {
    const executionId = await recordedRunning(acme, 'quick');
    // The completion and the COMMIT are one round trip: a cancel lands before both or after both.
    const held = gate.hold('after-commit', { tenantId: acme, name: 'quick_write' });
    const run = runner.run({ tenantId: acme, executionId, taskId: 'quick_write' });
    await held.reached;

    const cancel = await executions.cancel(acme, executionId, 'tenant_api_key');
    held.release();

    expect(await run).toMatchObject({ outcome: 'succeeded' });
    expect(cancel.alreadyCancelled).toBe(false);
    const view = await executions.get(acme, executionId);
    expect(view.status).toBe('aborted');
    expect(view.context).toEqual({ written: true });
    expect(await writtenRows(acme, executionId)).toBe(1);
  });

  it('refuses to run a task of a cancelled execution at all', async () => {
    const executionId = await recordedRunning(acme, 'quick');
    await executions.cancel(acme, executionId, 'tenant_api_key');

    const error = await runner.run({ tenantId: acme, executionId, taskId: 'quick_write' }).then(
      () => undefined,
      (caught: unknown) => caught,
    );

    expect(error).toBeInstanceOf(ExecutionNotRunnableError);
    expect(await writtenRows(acme, executionId)).toBe(0);
  });
});

describe('Rerunning a failed execution', () => {
  it('redrives it from its failed task to success, keeping the single commit of the task that had succeeded', async () => {
    fragileBroken = true;
    prepareRuns = 0;
    const executionId = await failedExecution(acme, 'flaky');
    expect(prepareRuns).toBe(1);
    fragileBroken = false;

    const rerun = await executions.rerun(acme, executionId);

    expect(rerun).toEqual({ executionId, status: 'running', rerunCount: 1 });
    await local.drain();
    const view = await executions.get(acme, executionId);
    expect(view).toMatchObject({
      status: 'succeeded',
      error: null,
      rerunCount: 1,
      context: { prepared: true, fragile: 'ok', finished: true },
    });
    expect(view.lastRerunAt).toBeInstanceOf(Date);
    expect(prepareRuns).toBe(1);
    expect(await writtenRows(acme, executionId)).toBe(1);
    expect(view.tasks.map(({ taskId, status, attempt }) => ({ taskId, status, attempt }))).toEqual([
      { taskId: 'prepare', status: 'succeeded', attempt: 1 },
      { taskId: 'fragile', status: 'succeeded', attempt: 2 },
      { taskId: 'finish', status: 'succeeded', attempt: 1 },
    ]);
  });

  it('refuses with a 409 naming the status an execution that did not fail', async () => {
    const { executionId: succeeded } = await executions.start(acme, { workflow: 'quick', input: {} });
    await local.drain();
    const running = await recordedRunning(acme, 'slow');
    const cancelled = await recordedRunning(acme, 'slow');
    await executions.cancel(acme, cancelled, 'tenant_api_key');

    const ofSucceeded = await rejection(executions.rerun(acme, succeeded));
    const ofRunning = await rejection(executions.rerun(acme, running));
    const ofCancelled = await rejection(executions.rerun(acme, cancelled));

    expect(ofSucceeded).toBeInstanceOf(ExecutionStateConflictError);
    expect(ofSucceeded.statusCode).toBe(409);
    expect(ofSucceeded.message).toContain('is succeeded; only a failed execution can be rerun');
    expect(ofRunning.message).toContain('is running');
    expect(ofCancelled.statusCode).toBe(409);
    expect(ofCancelled.message).toContain('cancelled');
    expect((await executions.get(acme, cancelled)).status).toBe('aborted');
    await executions.cancel(acme, running, 'admin');
  });

  it('answers 404 for an execution the tenant does not have', async () => {
    expect(await rejection(executions.rerun(acme, crypto.randomUUID()))).toBeInstanceOf(
      ExecutionNotFoundError,
    );
  });

  it("applies the tenant's concurrency limit (429), leaving the execution failed", async () => {
    const failed = await failedExecution(capped, 'doomed');
    const holder = await recordedRunning(capped, 'slow');

    const error = await rejection(executions.rerun(capped, failed));

    expect(error).toBeInstanceOf(LimitExceededError);
    expect(error.statusCode).toBe(429);
    expect(error.message).toContain('limits.maxConcurrentExecutions = 1');
    expect(await executions.get(capped, failed)).toMatchObject({ status: 'failed', rerunCount: 0 });
    await executions.cancel(capped, holder, 'admin');
  });

  it("puts the execution back to failed and answers 409 with the orchestrator's reason when it refuses the redrive", async () => {
    const executionId = await failedExecution(acme, 'doomed');
    const before = await executions.get(acme, executionId);
    const spy = new SpyOrchestrator();
    spy.onRedrive = async () => ({
      kind: 'not_redrivable',
      reason: 'Execution is past the 14-day redrive window',
    });

    const error = await rejection(serviceWith(spy).rerun(acme, executionId));

    expect(error).toBeInstanceOf(ExecutionNotRedrivableError);
    expect(error.statusCode).toBe(409);
    expect(error.message).toContain('past the 14-day redrive window');
    const after = await executions.get(acme, executionId);
    expect(after).toMatchObject({
      status: 'failed',
      error: before.error,
      rerunCount: 0,
      lastRerunAt: null,
      finishedAt: before.finishedAt,
    });
  });
});

describe('Recovery and cancelled executions', () => {
  it('never redrives or restarts an execution cancelled while it was stuck', async () => {
    const executionId = await recordedRunning(acme, 'slow');
    await makeStale(acme, executionId);
    await executions.cancel(acme, executionId, 'tenant_api_key');
    const spy = new SpyOrchestrator();

    await testRecovery(env, {
      orchestrator: spy,
      workflows,
      logger,
      options: { staleAfterSeconds: 1 },
    }).run();

    expect(spy.callsFor(executionId)).toEqual([]);
    expect(await executions.get(acme, executionId)).toMatchObject({ status: 'aborted', attempts: 0 });
  });

  it('stops again a run it restarted when a cancel landed between its admission and the redrive', async () => {
    const executionId = await recordedRunning(acme, 'slow');
    await makeStale(acme, executionId);
    const spy = new SpyOrchestrator();
    spy.onDescribe = async () => ({ status: 'failed', redrivable: true, ref: `test:${executionId}` });
    spy.onRedrive = async () => {
      // The client's cancel, through another orchestrator, lands while recovery calls this one.
      await serviceWith(new SpyOrchestrator()).cancel(acme, executionId, 'tenant_api_key');
      return { kind: 'redriven', redrivenAt: new Date() };
    };
    spy.onStop = async () => {};

    await testRecovery(env, {
      orchestrator: spy,
      workflows,
      logger,
      options: { staleAfterSeconds: 1 },
    }).run();

    expect(spy.callsFor(executionId)).toEqual(['describe', 'redrive', 'stop']);
    expect((await executions.get(acme, executionId)).status).toBe('aborted');
    expect(await stopConfirmed(acme, executionId)).toBe(true);
  });
});

async function makeStale(tenantId: string, executionId: string): Promise<void> {
  await env.adminPool.query(
    `UPDATE ${tenantTable(tenantId, 'executions')} SET updated_at = now() - interval '1 hour' WHERE id = $1`,
    [executionId],
  );
}

async function stopConfirmed(tenantId: string, executionId: string): Promise<boolean> {
  const { rows } = await env.adminPool.query<{ stopped: boolean }>(
    `SELECT orchestrator_stopped_at IS NOT NULL AS stopped FROM ${tenantTable(tenantId, 'executions')} WHERE id = $1`,
    [executionId],
  );
  return rows[0]?.stopped ?? false;
}
