import { tenantTable } from '@tenantflow/shared/db/sql';
import {
  ConfigurationError,
  LimitExceededError,
  PayloadTooLargeError,
  TenantflowError,
  ValidationError,
} from '@tenantflow/shared/kernel/errors';
import { createLogger } from '@tenantflow/shared/logging/logger';
import { compileToAsl } from '@tenantflow/shared/workflows/asl';
import { ExecutionFinalizer } from '@tenantflow/shared/workflows/execution-finalizer';
import { ExecutionService, type ExecutionView } from '@tenantflow/shared/workflows/execution-service';
import { ExecutionStore } from '@tenantflow/shared/workflows/execution-store';
import type {
  ExecutionDescription,
  Orchestrator,
  RedriveOutcome,
  StartExecutionRequest,
  StartedExecution,
} from '@tenantflow/shared/workflows/orchestrator';
import { defineTask } from '@tenantflow/shared/workflows/task';
import { defineWorkflow } from '@tenantflow/shared/workflows/workflow';
import { WorkflowRegistry } from '@tenantflow/shared/workflows/workflow-registry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalOrchestrator } from '../../../local/local-orchestrator.js';
import { LOCAL_TARGETS, localLambdas } from '../../../local/local-runtime.js';
import { createTestPlatform, type TestPlatform } from '../../support/platform.js';

/**
 * Starting and reading executions: real runs through the local orchestrator (the same ASL and the
 * same run-task and finalize handlers as in AWS), and the service's own checks (limits, workflow,
 * tenant state, start failures, listing) against a real PostgreSQL.
 */

const extract = defineTask({
  id: 'extract',
  run: (ctx) => {
    ctx.set('rows', [1, 2, 3]);
  },
});
const double = defineTask({
  id: 'double',
  run: (ctx) => {
    ctx.set(
      'doubled',
      (ctx.get<number[]>('rows') ?? []).map((n) => n * 2),
    );
  },
});
const total = defineTask({
  id: 'total',
  run: (ctx) => {
    ctx.set(
      'total',
      (ctx.get<number[]>('rows') ?? []).reduce((sum, n) => sum + n, 0),
    );
  },
});
const load = defineTask({
  id: 'load',
  run: async (ctx) => {
    await ctx.db.query(
      'INSERT INTO example_results (execution_id, workflow, tenant_id, payload) VALUES ($1, $2, $3, $4)',
      [ctx.executionId, ctx.workflow, ctx.tenant.id, JSON.stringify({ total: ctx.get('total') })],
    );
    ctx.set('loaded', true);
  },
});
const prepare = defineTask({
  id: 'prepare',
  run: (ctx) => {
    ctx.set('prepared', true);
  },
});
const explode = defineTask({
  id: 'explode',
  retry: { attempts: 2 },
  run: () => {
    throw new Error('disk on fire');
  },
});
const never = defineTask({
  id: 'never',
  run: (ctx) => {
    ctx.set('reached', true);
  },
});

const workflows = new WorkflowRegistry([
  defineWorkflow({
    name: 'pipeline',
    tasks: [extract, double, total, load],
    dependsOn: { double: ['extract'], total: ['extract'], load: ['double', 'total'] },
  }),
  defineWorkflow({
    name: 'doomed',
    tasks: [prepare, explode, never],
    dependsOn: { explode: ['prepare'], never: ['explode'] },
  }),
]);

/**
 * Records starts and never runs anything. For the checks the service makes before and around
 * `start` (limits, listing), what matters is what was recorded in the database; a real run would
 * finish the executions and free their concurrency slots while the test counts them.
 */
class RecordingOrchestrator implements Orchestrator {
  readonly started: StartExecutionRequest[] = [];

  constructor(private readonly failure?: () => Error) {}

  async start(request: StartExecutionRequest): Promise<StartedExecution> {
    this.started.push(request);
    if (this.failure !== undefined) {
      throw this.failure();
    }
    return { ref: `test:${request.executionId}`, alreadyStarted: false };
  }

  async describe(): Promise<ExecutionDescription> {
    return { status: 'not_found', redrivable: false };
  }

  async stop(): Promise<void> {}

  async redrive(): Promise<RedriveOutcome> {
    return { kind: 'not_redrivable', reason: 'test double' };
  }
}

/** The local orchestrator, with a look at the execution just before the state machine starts. */
class ObservedOrchestrator implements Orchestrator {
  readonly beforeStart = new Map<string, ExecutionView>();

  constructor(
    private readonly inner: LocalOrchestrator,
    private readonly look: (tenantId: string, executionId: string) => Promise<ExecutionView>,
  ) {}

  async start(request: StartExecutionRequest): Promise<StartedExecution> {
    this.beforeStart.set(request.executionId, await this.look(request.tenantId, request.executionId));
    return this.inner.start(request);
  }

  describe: Orchestrator['describe'] = (handle) => this.inner.describe(handle);
  stop: Orchestrator['stop'] = (handle, reason) => this.inner.stop(handle, reason);
  redrive: Orchestrator['redrive'] = (handle) => this.inner.redrive(handle);
}

let env: TestPlatform;
let acme: string;
let capped: string;
let dormant: string;
let ledger: string;
let store: ExecutionStore;
let finalizer: ExecutionFinalizer;
let local: LocalOrchestrator;
let observed: ObservedOrchestrator;
let executions: ExecutionService;
const logger = createLogger('execution-service-test');

beforeAll(async () => {
  env = await createTestPlatform();
  acme = env.id('acme');
  capped = env.id('capped');
  dormant = env.id('dormant');
  ledger = env.id('ledger');
  await env.platform.provisioning.provision({ tenantId: acme, name: 'Acme' });
  await env.platform.provisioning.provision({
    tenantId: capped,
    name: 'Capped',
    config: { settings: {}, features: {}, limits: { maxConcurrentExecutions: 3, maxInputBytes: 100 } },
  });
  await env.platform.provisioning.provision({ tenantId: dormant, name: 'Dormant' });
  await env.platform.tenants.deactivateTenant(dormant);
  await env.platform.provisioning.provision({ tenantId: ledger, name: 'Ledger' });

  store = new ExecutionStore(env.platform.pool);
  finalizer = new ExecutionFinalizer(store, logger);
  local = new LocalOrchestrator({
    definitions: Object.fromEntries(
      workflows.list().map((workflow) => [workflow.name, compileToAsl(workflow, LOCAL_TARGETS)]),
    ),
    lambdas: localLambdas({ core: env.platform, access: env.platform, workflows, logger }),
    retryIntervalMs: 0,
  });
  observed = new ObservedOrchestrator(local, (tenantId, executionId) =>
    executions.get(tenantId, executionId),
  );
  executions = serviceWith(observed);
});

afterAll(async () => {
  await local?.drain();
  await env?.cleanup();
});

function serviceWith(orchestrator: Orchestrator): ExecutionService {
  return new ExecutionService({ registry: env.platform.registry, workflows, store, orchestrator, logger });
}

/** Every execution row of a tenant, read by the platform role: what really got recorded. */
async function rows(tenantId: string): Promise<Array<{ id: string; status: string; error: string | null }>> {
  const result = await env.platform.pool.query<{ id: string; status: string; error: string | null }>(
    `SELECT id, status, error FROM ${tenantTable(tenantId, 'executions')} ORDER BY created_at, id`,
  );
  return result.rows;
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

describe('ExecutionService', () => {
  describe('real runs', () => {
    it('runs an execution to succeeded, shows every declared task, and counts it once', async () => {
      const metricsBefore = await executions.metrics(acme);

      const started = await executions.start(acme, { workflow: 'pipeline', input: { batch: 7 } });
      await local.drain();

      expect(started.status).toBe('running');
      const before = observed.beforeStart.get(started.executionId);
      expect(before?.status).toBe('pending');
      expect(before?.startedAt).toBeNull();
      expect(before?.tasks).toEqual(
        ['extract', 'double', 'total', 'load'].map((taskId) => ({
          taskId,
          status: 'pending',
          attempt: 0,
          error: null,
          startedAt: null,
          finishedAt: null,
          heartbeatAt: null,
        })),
      );
      const view = await executions.get(acme, started.executionId);
      expect(view).toMatchObject({
        tenantId: acme,
        executionId: started.executionId,
        workflow: 'pipeline',
        status: 'succeeded',
        error: null,
        input: { batch: 7 },
        context: { rows: [1, 2, 3], doubled: [2, 4, 6], total: 6, loaded: true },
      });
      expect(view).not.toHaveProperty('orchestratorRef');
      expect(view.tasks.map((task) => [task.taskId, task.status, task.attempt])).toEqual([
        ['extract', 'succeeded', 1],
        ['double', 'succeeded', 1],
        ['total', 'succeeded', 1],
        ['load', 'succeeded', 1],
      ]);
      const { createdAt, startedAt, finishedAt } = view;
      expect(startedAt?.getTime()).toBeGreaterThanOrEqual(createdAt.getTime());
      expect(finishedAt?.getTime()).toBeGreaterThanOrEqual(startedAt?.getTime() ?? Infinity);
      const loaded = await env.adminPool.query(
        `SELECT payload FROM ${tenantTable(acme, 'example_results')} WHERE execution_id = $1`,
        [started.executionId],
      );
      expect(loaded.rows).toEqual([{ payload: { total: 6 } }]);

      const metricsAfter = await executions.metrics(acme);
      expect(metricsAfter.executionsFinished - metricsBefore.executionsFinished).toBe(1);
      expect(metricsAfter.executionsSucceeded - metricsBefore.executionsSucceeded).toBe(1);
      expect(metricsAfter.executionsFailed - metricsBefore.executionsFailed).toBe(0);
      expect(metricsAfter.lastActivityAt).toBeInstanceOf(Date);

      // A retried (or recovery's) finalize changes nothing, whatever outcome it claims.
      const again = await finalizer.finalize({
        tenantId: acme,
        executionId: started.executionId,
        outcome: 'failed',
        error: 'Late',
      });

      expect(again).toEqual({ finalized: false });
      expect(await executions.metrics(acme)).toEqual(metricsAfter);
      expect((await executions.get(acme, started.executionId)).status).toBe('succeeded');
    });

    it('fails an execution whose task keeps failing, naming the task and the cause', async () => {
      const metricsBefore = await executions.metrics(acme);

      const started = await executions.start(acme, { workflow: 'doomed', input: {} });
      await local.drain();

      const view = await executions.get(acme, started.executionId);
      expect(view.status).toBe('failed');
      expect(view.error).toContain("Task 'explode'");
      expect(view.error).toContain('disk on fire');
      expect(view.finishedAt).toBeInstanceOf(Date);
      expect(view.context).toEqual({ prepared: true });
      expect(view.tasks.map((task) => [task.taskId, task.status, task.attempt])).toEqual([
        ['prepare', 'succeeded', 1],
        ['explode', 'failed', 2],
        ['never', 'pending', 0],
      ]);
      const metricsAfter = await executions.metrics(acme);
      expect(metricsAfter.executionsFailed - metricsBefore.executionsFailed).toBe(1);
      expect(metricsAfter.executionsSucceeded - metricsBefore.executionsSucceeded).toBe(0);
    });
  });

  describe('limits', () => {
    it('accepts exactly maxConcurrentExecutions of many concurrent starts and refuses the rest with 429', async () => {
      const orchestrator = new RecordingOrchestrator();
      const service = serviceWith(orchestrator);

      const settled = await Promise.allSettled(
        Array.from({ length: 10 }, (_, n) => service.start(capped, { workflow: 'pipeline', input: { n } })),
      );

      const accepted = settled.filter((result) => result.status === 'fulfilled');
      const refused = settled.flatMap((result) => (result.status === 'rejected' ? [result.reason] : []));
      expect(accepted).toHaveLength(3);
      expect(refused).toHaveLength(7);
      for (const error of refused) {
        expect(error).toBeInstanceOf(LimitExceededError);
        expect(error.statusCode).toBe(429);
        expect(error.message).toContain('limits.maxConcurrentExecutions');
      }
      const recorded = await rows(capped);
      expect(recorded).toHaveLength(3);
      expect(recorded.every((row) => row.status === 'running')).toBe(true);
      expect(orchestrator.started.map((request) => request.executionId).sort()).toEqual(
        recorded.map((row) => row.id).sort(),
      );

      // Free the slots for the next test.
      for (const row of recorded) {
        await store.finalize(capped, row.id, 'aborted', 'test over');
      }
    });

    it('refuses an input over maxInputBytes with 413 and records nothing', async () => {
      const orchestrator = new RecordingOrchestrator();
      const service = serviceWith(orchestrator);
      const rowsBefore = await rows(capped);

      const error = await rejection(
        service.start(capped, { workflow: 'pipeline', input: { blob: 'x'.repeat(100) } }),
      );

      expect(error).toBeInstanceOf(PayloadTooLargeError);
      expect(error.statusCode).toBe(413);
      expect(error.message).toContain('limits.maxInputBytes');
      expect(await rows(capped)).toEqual(rowsBefore);
      expect(orchestrator.started).toEqual([]);
      // Just within the limit, the same tenant is accepted: the size alone was refused.
      const fits = await service.start(capped, { workflow: 'pipeline', input: { blob: 'x'.repeat(80) } });
      expect((await rows(capped)).map((row) => row.id)).toContain(fits.executionId);
    });
  });

  describe('refusals', () => {
    it('answers 404 WORKFLOW_NOT_FOUND for an unknown workflow, listing the registered ones', async () => {
      const orchestrator = new RecordingOrchestrator();
      const rowsBefore = await rows(acme);

      const error = await rejection(serviceWith(orchestrator).start(acme, { workflow: 'nope', input: {} }));

      expect(error.statusCode).toBe(404);
      expect(error.code).toBe('WORKFLOW_NOT_FOUND');
      expect(error.message).toContain('pipeline');
      expect(error.message).toContain('doomed');
      expect(await rows(acme)).toEqual(rowsBefore);
      expect(orchestrator.started).toEqual([]);
    });

    it('answers 423 TENANT_INACTIVE for an inactive tenant and records nothing', async () => {
      const orchestrator = new RecordingOrchestrator();

      const error = await rejection(
        serviceWith(orchestrator).start(dormant, { workflow: 'pipeline', input: {} }),
      );

      expect(error.statusCode).toBe(423);
      expect(error.code).toBe('TENANT_INACTIVE');
      expect(await rows(dormant)).toEqual([]);
      expect(orchestrator.started).toEqual([]);
    });
  });

  describe('start failures', () => {
    it('keeps an execution pending for recovery when the orchestrator fails transiently', async () => {
      // Throws, as a throttled or unreachable Step Functions would.
      const orchestrator = new RecordingOrchestrator(() => new Error('ThrottlingException: Rate exceeded'));

      const result = await serviceWith(orchestrator).start(acme, { workflow: 'pipeline', input: {} });

      expect(result.status).toBe('pending');
      expect(orchestrator.started.map((request) => request.executionId)).toEqual([result.executionId]);
      const view = await executions.get(acme, result.executionId);
      expect(view.status).toBe('pending');
      expect(view.startedAt).toBeNull();
      expect(view.error).toBeNull();
    });

    it('records the execution failed and rethrows when the orchestrator has no state machine for it', async () => {
      const orchestrator = new RecordingOrchestrator(
        () => new ConfigurationError("No state machine for workflow 'pipeline'"),
      );

      const error = await rejection(
        serviceWith(orchestrator).start(acme, { workflow: 'pipeline', input: {} }),
      );

      expect(error).toBeInstanceOf(ConfigurationError);
      const [request] = orchestrator.started;
      expect(request).toBeDefined();
      const view = await executions.get(acme, request?.executionId ?? '');
      expect(view.status).toBe('failed');
      expect(view.error).toContain('Not started');
      expect(view.error).toContain("No state machine for workflow 'pipeline'");
    });
  });

  describe('list', () => {
    let created: string[];
    let succeeded: string[];

    beforeAll(async () => {
      const service = serviceWith(new RecordingOrchestrator());
      created = [];
      for (let n = 0; n < 5; n++) {
        created.push((await service.start(ledger, { workflow: 'pipeline', input: { n } })).executionId);
      }
      succeeded = [created[1] ?? '', created[3] ?? ''];
      for (const executionId of succeeded) {
        await store.finalize(ledger, executionId, 'succeeded', null);
      }
    });

    it('lists newest first', async () => {
      const page = await executions.list(ledger, { limit: 50 });

      expect(page.executions.map((execution) => execution.executionId)).toEqual([...created].reverse());
      expect(page.nextToken).toBeUndefined();
    });

    it('pages with nextToken without overlap or gap', async () => {
      const seen: string[][] = [];
      let nextToken: string | undefined;
      do {
        const page = await executions.list(ledger, { limit: 2, nextToken });
        seen.push(page.executions.map((execution) => execution.executionId));
        nextToken = page.nextToken;
      } while (nextToken !== undefined && seen.length < 10);

      expect(seen.map((page) => page.length)).toEqual([2, 2, 1]);
      expect(seen.flat()).toEqual([...created].reverse());
    });

    it('filters by status', async () => {
      const done = await executions.list(ledger, { status: 'succeeded', limit: 50 });
      const running = await executions.list(ledger, { status: 'running', limit: 50 });

      expect(done.executions.map((execution) => execution.executionId)).toEqual([...succeeded].reverse());
      expect(done.executions.every((execution) => execution.status === 'succeeded')).toBe(true);
      expect(running.executions.map((execution) => execution.executionId)).toEqual(
        [...created].reverse().filter((id) => !succeeded.includes(id)),
      );
    });

    it.each([
      ['not base64 JSON', 'garbage!!'],
      ['JSON without a position', Buffer.from(JSON.stringify({ before: 'x' })).toString('base64url')],
    ])('refuses a malformed token with 400 (%s)', async (_case, nextToken) => {
      const error = await rejection(executions.list(ledger, { limit: 2, nextToken }));

      expect(error).toBeInstanceOf(ValidationError);
      expect(error.statusCode).toBe(400);
    });
  });
});
