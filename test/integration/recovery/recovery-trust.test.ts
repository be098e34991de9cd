import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SFNClient } from '@aws-sdk/client-sfn';
import { tenantTable } from '@tenantflow/shared/db/sql';
import { createLogger } from '@tenantflow/shared/logging/logger';
import { type RecoveryOptions, type RecoveryService, RecoveryStore } from '@tenantflow/shared/recovery';
import { compileToAsl } from '@tenantflow/shared/workflows/asl';
import { ExecutionStore } from '@tenantflow/shared/workflows/execution-store';
import type {
  ExecutionDescription,
  ExecutionHandle,
  Orchestrator,
  RedriveOutcome,
  StartExecutionRequest,
  StartedExecution,
} from '@tenantflow/shared/workflows/orchestrator';
import {
  executionArnFor,
  StepFunctionsOrchestrator,
} from '@tenantflow/shared/workflows/step-functions-orchestrator';
import { defineTask } from '@tenantflow/shared/workflows/task';
import { defineWorkflow } from '@tenantflow/shared/workflows/workflow';
import { WorkflowRegistry } from '@tenantflow/shared/workflows/workflow-registry';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { LocalOrchestrator } from '../../../local/local-orchestrator.js';
import { LOCAL_TARGETS, localLambdas } from '../../../local/local-runtime.js';
import { createTestPlatform, type TestPlatform } from '../../support/platform.js';
import { CountingOrchestrator, testRecovery } from '../../support/recovery.js';

/**
 * Recovery trusts nothing a tenant could have written. A tenant's `executions` rows only name
 * executions: the orchestrator's execution by that name must carry the same tenant and execution id
 * before recovery acts on it, and the tenant's limits, read from the registry (which no tenant can
 * write), decide what recovery may start. The rows below are written straight into the tenant
 * schemas, as SQL running as a tenant role could have written them.
 */

const logger = createLogger('recovery-trust-test');

/** Lets a test break the second task from outside. */
const gates = { broken: false };

const first = defineTask({
  id: 'first',
  run: (ctx) => {
    ctx.set('first', true);
  },
});
const second = defineTask({
  id: 'second',
  retry: { attempts: 1 },
  run: (ctx) => {
    if (gates.broken) {
      throw new Error('second is broken right now');
    }
    ctx.set('second', true);
  },
});
const steps = defineWorkflow({
  name: 'trust_steps',
  tasks: [first, second],
  dependsOn: { second: ['first'] },
});
const workflows = new WorkflowRegistry([steps]);

/**
 * Executions that start and then run for ever: what recovery starts stays running, so it keeps its
 * concurrency slot for as long as the test looks. Anything never started is `not_found`.
 */
class EndlessOrchestrator implements Orchestrator {
  readonly #running = new Map<string, string>();

  async start(request: StartExecutionRequest): Promise<StartedExecution> {
    this.#running.set(request.executionId, request.tenantId);
    return { ref: `endless:${request.executionId}`, alreadyStarted: false };
  }

  async describe(handle: ExecutionHandle): Promise<ExecutionDescription> {
    const tenantId = this.#running.get(handle.executionId);
    if (tenantId === undefined) {
      return { status: 'not_found', redrivable: false };
    }
    return tenantId === handle.tenantId
      ? { status: 'running', ref: `endless:${handle.executionId}`, redrivable: false }
      : { status: 'foreign', redrivable: false };
  }

  async stop(): Promise<void> {}

  async redrive(): Promise<RedriveOutcome> {
    return { kind: 'not_redrivable', reason: 'endless executions never fail' };
  }
}

let env: TestPlatform;
let store: ExecutionStore;

function recoveryWith(
  orchestrator: Orchestrator,
  options: Partial<RecoveryOptions> = {},
  pool: pg.Pool = env.platform.pool,
): RecoveryService {
  return testRecovery(env, { orchestrator, workflows, logger, options, pool });
}

function localOrchestrator(): LocalOrchestrator {
  return new LocalOrchestrator({
    definitions: { [steps.name]: compileToAsl(steps, LOCAL_TARGETS) },
    lambdas: localLambdas({ core: env.platform, access: env.platform, workflows, logger }),
    retryIntervalMs: 0,
  });
}

async function provision(base: string, limits: Record<string, number> = {}): Promise<string> {
  const tenantId = env.id(base);
  await env.platform.provisioning.provision({
    tenantId,
    name: base,
    config: { settings: {}, features: {}, limits },
  });
  return tenantId;
}

/**
 * Rows written straight into a tenant's `executions`, quiet for an hour, as a tenant role could
 * write them: no API, no limit checked. Returns their ids in insertion order.
 */
async function writeRows(
  tenantId: string,
  rows: { count: number; input: unknown; status?: 'pending' | 'running'; id?: string },
): Promise<string[]> {
  const { rows: inserted } = await env.platform.pool.query<{ id: string }>(
    `INSERT INTO ${tenantTable(tenantId, 'executions')} (id, workflow, status, input, created_at, updated_at)
     SELECT COALESCE($5, gen_random_uuid()::text), $1, $2, $3::jsonb, now() - interval '1 hour', now() - interval '1 hour'
       FROM generate_series(1, $4) AS n
     RETURNING id`,
    [steps.name, rows.status ?? 'pending', JSON.stringify(rows.input), rows.count, rows.id ?? null],
  );
  return inserted.map((row) => row.id);
}

async function backdateInFlight(tenantId: string): Promise<void> {
  await env.platform.pool.query(
    `UPDATE ${tenantTable(tenantId, 'executions')} SET updated_at = now() - interval '1 hour'
      WHERE status IN ('pending', 'running')`,
  );
}

async function statusCounts(tenantId: string): Promise<Record<string, number>> {
  const { rows } = await env.platform.pool.query<{ status: string; count: number }>(
    `SELECT status, count(*)::int AS count FROM ${tenantTable(tenantId, 'executions')} GROUP BY status`,
  );
  return Object.fromEntries(rows.map((row) => [row.status, row.count]));
}

async function record(tenantId: string, executionId: string) {
  const found = await store.get(tenantId, executionId);
  if (found === undefined) {
    throw new Error(`no execution ${executionId} in ${tenantId}`);
  }
  return found;
}

async function eventsFor(targetId: string) {
  return new RecoveryStore(env.platform.pool).eventsFor(targetId);
}

/** Recovery passes scan every tenant: a test's leftovers are put out of their reach. */
async function retire(tenantId: string): Promise<void> {
  await env.platform.tenants.deactivateTenant(tenantId);
}

beforeAll(async () => {
  env = await createTestPlatform();
  store = new ExecutionStore(env.platform.pool);
});

afterAll(async () => {
  await env?.cleanup();
});

describe("recovery and an execution id that names another tenant's execution", () => {
  it("does not redrive another tenant's failed execution that a row in this tenant's schema names, and abandons that row", async () => {
    // Prepare: the owner's execution fails for real in the local orchestrator, and is finalized.
    const owner = await provision('owner');
    const forger = await provision('forger');
    const local = localOrchestrator();
    const counting = new CountingOrchestrator(local);
    const executionId = randomUUID();
    await store.insertWithinLimit(owner, { executionId, workflow: steps.name, input: {} }, 100);
    gates.broken = true;
    try {
      await local.start({ workflow: steps.name, tenantId: owner, executionId });
      await local.drain();
    } finally {
      gates.broken = false;
    }
    expect((await record(owner, executionId)).status).toBe('failed');
    // The forger's schema names the same execution, as stuck in flight.
    await writeRows(forger, { count: 1, input: {}, status: 'running', id: executionId });

    // Act
    const summary = await recoveryWith(counting).run();
    await local.drain();

    // Assert: nothing was done to the owner's execution.
    expect(counting.redrives).toEqual([]);
    expect(counting.starts).toEqual([]);
    expect(summary.actions.redrive).toBe(0);
    expect(await local.describe({ workflow: steps.name, tenantId: owner, executionId })).toMatchObject({
      status: 'failed',
      redriveCount: 0,
    });
    const owners = await record(owner, executionId);
    expect(owners.status).toBe('failed');
    expect(owners.attempts).toBe(0);
    expect(owners.tasks.find((task) => task.taskId === 'second')?.attempt).toBe(1);
    // The forger's row is abandoned, with a reason that tells it nothing about the owner.
    const forged = await record(forger, executionId);
    expect(forged.status).toBe('failed');
    expect(forged.error).toMatch(/^ABANDONED: .*not this tenant's/);
    expect(forged.error).not.toContain(owner);
    const events = await eventsFor(executionId);
    expect(events.map((event) => [event.tenantId, event.action, event.outcome])).toEqual([
      [forger, 'abandon', 'done'],
    ]);
    await retire(forger);
    await retire(owner);
  });

  it('through Step Functions, asks DescribeExecution and never sends RedriveExecution for an execution whose input names another tenant', async () => {
    // Prepare: Step Functions knows the name as another tenant's failed, redrivable execution.
    const forger = await provision('sfn_forger');
    const executionId = randomUUID();
    const stateMachineArn = `arn:aws:states:us-east-1:123456789012:stateMachine:${steps.name}`;
    const fake = await startFakeStepFunctions({
      DescribeExecution: {
        status: 200,
        body: {
          executionArn: executionArnFor(stateMachineArn, executionId),
          stateMachineArn,
          name: executionId,
          status: 'FAILED',
          startDate: Date.now() / 1_000 - 3_600,
          stopDate: Date.now() / 1_000 - 3_000,
          input: JSON.stringify({ tenantId: 'someone_else', executionId }),
          error: 'States.TaskFailed',
          cause: "someone else's secret cause",
          redriveStatus: 'REDRIVABLE',
        },
      },
      RedriveExecution: { status: 200, body: { redriveDate: Date.now() / 1_000 } },
    });
    const client = new SFNClient({
      endpoint: fake.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
      maxAttempts: 1,
    });
    onTestFinished(() => client.destroy());
    const orchestrator = new StepFunctionsOrchestrator({
      client,
      stateMachineArns: { [steps.name]: stateMachineArn },
    });
    await writeRows(forger, { count: 1, input: {}, status: 'running', id: executionId });

    // Act
    const summary = await recoveryWith(orchestrator).run();

    // Assert
    expect(fake.received).toEqual(['AWSStepFunctions.DescribeExecution']);
    expect(summary.actions.redrive).toBe(0);
    const forged = await record(forger, executionId);
    expect(forged.status).toBe('failed');
    expect(forged.error).toMatch(/^ABANDONED: /);
    expect(forged.error).not.toMatch(/someone_else|secret cause/);
    await retire(forger);
  });
});

describe("recovery re-checks the tenant's limits before it starts anything", () => {
  const limits = { maxConcurrentExecutions: 5, maxInputBytes: 64 * 1024 };

  it('starts none of 30 pending executions whose 300 KiB inputs exceed maxInputBytes, and fails each with the reason', async () => {
    // Prepare
    const tenantId = await provision('oversized', limits);
    const ids = await writeRows(tenantId, { count: 30, input: { blob: 'x'.repeat(300 * 1024) } });
    const orchestrator = new CountingOrchestrator(new EndlessOrchestrator());

    // Act
    const summary = await recoveryWith(orchestrator).run();

    // Assert
    expect(orchestrator.starts).toEqual([]);
    expect(summary.actions.start).toBe(0);
    expect(await statusCounts(tenantId)).toEqual({ failed: 30 });
    for (const executionId of ids) {
      const failed = await record(tenantId, executionId);
      expect(failed.error).toMatch(
        /^ABANDONED: not started: its input is \d{6} bytes as stored, over twice what tenant '.+' allows \(limits\.maxInputBytes = 65536\)$/,
      );
      expect(failed.attempts).toBe(0);
      expect((await eventsFor(executionId)).map((event) => [event.action, event.outcome])).toEqual([
        ['abandon', 'done'],
      ]);
    }
  });

  it('starts at most maxConcurrentExecutions of 30 pending executions, even with two passes at once, and leaves the rest pending for a later pass', async () => {
    // Prepare
    const tenantId = await provision('crowded', limits);
    await writeRows(tenantId, { count: 30, input: { n: 1 } });
    const orchestrator = new CountingOrchestrator(new EndlessOrchestrator());
    const otherPool = new pg.Pool({ connectionString: env.databaseUrl, max: 4 });
    // Dropping the database WITH (FORCE) may end a socket the pool is still closing: not a failure.
    otherPool.on('error', () => {});
    onTestFinished(() => otherPool.end());

    // Act: two passes at once, as two Lambdas would run them.
    const [one, two] = await Promise.all([
      recoveryWith(orchestrator).run(),
      recoveryWith(orchestrator, {}, otherPool).run(),
    ]);

    // Assert
    expect(orchestrator.starts).toHaveLength(5);
    expect(one.actions.start + two.actions.start).toBe(5);
    expect(await statusCounts(tenantId)).toEqual({ running: 5, pending: 25 });
    const { rows: deferred } = await env.platform.pool.query<{ id: string }>(
      `SELECT id FROM ${tenantTable(tenantId, 'executions')} WHERE status = 'pending'`,
    );
    for (const { id } of deferred) {
      const events = await eventsFor(id);
      expect(events.map((event) => [event.action, event.outcome])).toEqual([['defer', 'skipped']]);
      expect(events[0]?.detail).toMatch(
        /has 5 execution\(s\) running, its limit \(limits\.maxConcurrentExecutions = 5\); left pending/,
      );
      expect((await record(tenantId, id)).attempts).toBe(0);
    }

    // Act again: two of the running ones finish, and a later pass finds the rest stale again.
    const { rows: running } = await env.platform.pool.query<{ id: string }>(
      `SELECT id FROM ${tenantTable(tenantId, 'executions')} WHERE status = 'running' ORDER BY id LIMIT 2`,
    );
    for (const { id } of running) {
      await store.finalize(tenantId, id, 'succeeded', null);
    }
    await backdateInFlight(tenantId);
    await recoveryWith(orchestrator).run();

    // Assert: the two freed slots were taken, and no more.
    expect(orchestrator.starts).toHaveLength(7);
    expect(await statusCounts(tenantId)).toEqual({ succeeded: 2, running: 5, pending: 23 });
    await retire(tenantId);
  });

  it("starts a pending execution whose input is within maxInputBytes as JSON, though PostgreSQL's text of it is longer", async () => {
    // Prepare: 60 000 bytes as JSON; jsonb prints it with a space after every comma (~90 000).
    const tenantId = await provision('spacious', limits);
    const input = { values: new Array<number>(29_994).fill(0) };
    expect(Buffer.byteLength(JSON.stringify(input))).toBeLessThanOrEqual(limits.maxInputBytes);
    const [executionId] = await writeRows(tenantId, { count: 1, input });
    const orchestrator = new CountingOrchestrator(new EndlessOrchestrator());

    // Act
    await recoveryWith(orchestrator).run();

    // Assert
    expect(orchestrator.starts).toEqual([executionId]);
    expect((await record(tenantId, executionId as string)).status).toBe('running');
    await retire(tenantId);
  });
});

/**
 * A stand-in for the Step Functions endpoint (AWS JSON 1.0, as the SDK reads it), recording the
 * operation of every request; moto cannot make an execution fail or be redrivable. An operation
 * without an answer gets a 400, so an unexpected call fails the test.
 */
async function startFakeStepFunctions(
  answers: Readonly<Record<string, { status: number; body: unknown }>>,
): Promise<{ endpoint: string; received: string[] }> {
  const received: string[] = [];
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', function answerLikeStepFunctions() {
      const target = headerOf(request.headers, 'x-amz-target') ?? '';
      received.push(target);
      const answer = answers[target.replace(/^AWSStepFunctions\./, '')] ?? {
        status: 400,
        body: { __type: 'UnknownOperationException', message: `No answer for ${target}` },
      };
      response.writeHead(answer.status, {
        'content-type': 'application/x-amz-json-1.0',
        'x-amzn-requestid': randomBytes(8).toString('hex'),
      });
      response.end(JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const { port } = server.address() as AddressInfo;
  return { endpoint: `http://127.0.0.1:${port}`, received };
}

function headerOf(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}
