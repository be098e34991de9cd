import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { tenantTable } from '@tenantflow/shared/db/sql';
import { TenantflowError } from '@tenantflow/shared/kernel/errors';
import { createLogger } from '@tenantflow/shared/logging/logger';
import { TenantContextSwitch } from '@tenantflow/shared/tenancy/tenant-context';
import { ExecutionStore, type TaskRunRecord } from '@tenantflow/shared/workflows/execution-store';
import { toStateError } from '@tenantflow/shared/workflows/state-errors';
import { defineTask, type TaskContext } from '@tenantflow/shared/workflows/task';
import { TaskRunner } from '@tenantflow/shared/workflows/task-runner';
import { defineWorkflow } from '@tenantflow/shared/workflows/workflow';
import { WorkflowRegistry } from '@tenantflow/shared/workflows/workflow-registry';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, type TestPlatform } from '../../support/platform.js';

/**
 * The task runner against a real PostgreSQL: each task runs as its tenant's own role, in one
 * transaction with its context changes and its completion, at most once per execution, under its
 * timeout, and never for a tenant that is unknown or inactive.
 */

let env: TestPlatform;
let acme: string;
let globex: string;
let dormant: string;
let lapsing: string;
let store: ExecutionStore;
let runner: TaskRunner;
const logger = createLogger('task-runner-test');

/** How many times each task body was entered: what proves a body did, or did not, run. */
const bodyCalls = new Map<string, number>();
function countCall(ctx: TaskContext): void {
  bodyCalls.set(ctx.taskId, (bodyCalls.get(ctx.taskId) ?? 0) + 1);
}
const callsOf = (taskId: string) => bodyCalls.get(taskId) ?? 0;

/** Writes one row to the tenant's own results table, by its unqualified name. */
async function insertResult(ctx: TaskContext, label: string): Promise<void> {
  await ctx.db.query(
    'INSERT INTO example_results (execution_id, workflow, tenant_id, payload) VALUES ($1, $2, $3, $4)',
    [ctx.executionId, label, ctx.tenant.id, JSON.stringify({ attempt: ctx.attempt })],
  );
}

/** A promise each concurrent body arrives at; it opens once `parties` have arrived (or after 2 s). */
function barrier(parties: number): () => Promise<void> {
  let arrived = 0;
  let open: () => void = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return async () => {
    arrived += 1;
    if (arrived >= parties) {
      open();
    }
    await Promise.race([opened, sleep(2_000)]);
  };
}

/** A promise that settles when `open()` is called. */
function gate(): { readonly opened: Promise<void>; readonly open: () => void } {
  let open: () => void = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

/** Holds the racing task's body until the test opens it. */
let raceGate = gate();
let parallelArrival = barrier(2);
let lateQuery: Promise<'refused' | 'accepted'> | undefined;
/** What the heartbeat task saw of its execution, mid-run. */
const heartbeatsSeen: Array<{ status: string; startedAt: Date; heartbeatAt: Date }> = [];

const whoAmI = defineTask({
  id: 'who_am_i',
  run: async (ctx) => {
    countCall(ctx);
    const { rows } = await ctx.db.query<{ user: string; schema: string }>(
      `SELECT current_user AS user,
              (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.oid = 'example_results'::regclass) AS schema`,
    );
    ctx.set('user', rows[0]?.user);
    ctx.set('resolvedSchema', rows[0]?.schema);
    await insertResult(ctx, 'who_am_i');
  },
});

const seed = defineTask({
  id: 'seed',
  run: (ctx) => {
    ctx.set('keep', 'kept');
    ctx.set('drop', 'dropped');
  },
});

/** Writes, changes the context, then throws on its first attempt only. */
const writeThenThrow = defineTask({
  id: 'write_then_throw',
  run: async (ctx) => {
    countCall(ctx);
    await insertResult(ctx, `write_then_throw-${ctx.attempt}`);
    ctx.set('touched', ctx.attempt);
    if (ctx.attempt === 1) {
      throw new Error('exploded after writing');
    }
  },
});

const countOnce = defineTask({
  id: 'count_once',
  run: (ctx) => {
    countCall(ctx);
    ctx.set('counted', true);
  },
});

/** Both invocations' bodies are in flight together before either inserts (see the barrier). */
const raceToCommit = defineTask({
  id: 'race_to_commit',
  run: async (ctx) => {
    countCall(ctx);
    await raceGate.opened;
    // A label per attempt, so the table's unique key cannot be what keeps a second row out.
    await insertResult(ctx, `race_to_commit-${ctx.attempt}`);
  },
});

const outlive = defineTask({
  id: 'outlive',
  timeoutSeconds: 1,
  run: async (ctx) => {
    countCall(ctx);
    await insertResult(ctx, 'outlive-before');
    await sleep(3_000);
    // The transaction was abandoned meanwhile: a late write must not land, not even in autocommit.
    lateQuery = insertResult(ctx, 'outlive-after').then(
      () => 'accepted' as const,
      () => 'refused' as const,
    );
    await lateQuery;
  },
});

const left = defineTask({
  id: 'left',
  run: async (ctx) => {
    await parallelArrival();
    ctx.set('left', 'from left');
  },
});

const right = defineTask({
  id: 'right',
  run: async (ctx) => {
    await parallelArrival();
    ctx.set('right', 'from right');
    ctx.set('drop', undefined);
    ctx.set('dropSeenAs', ctx.get('drop') ?? 'gone');
  },
});

/** Reads, then tries to change, another tenant's table, named in the execution input. */
const trespass = defineTask({
  id: 'trespass',
  run: async (ctx) => {
    countCall(ctx);
    const { target, statement } = ctx.input as { target: string; statement: 'select' | 'delete' };
    const table = tenantTable(target, 'example_results');
    const { rows } = await ctx.db.query(
      statement === 'select' ? `SELECT * FROM ${table}` : `DELETE FROM ${table} RETURNING *`,
    );
    ctx.set('stolen', rows as never);
  },
});

const slowBeat = defineTask({
  id: 'slow_beat',
  run: async (ctx) => {
    await sleep(300);
    const { rows } = await env.platform.pool.query<{
      status: string;
      started_at: Date;
      heartbeat_at: Date;
    }>(
      `SELECT status, created_at AS started_at, updated_at AS heartbeat_at
         FROM ${tenantTable(ctx.tenant.id, 'executions')} WHERE id = $1`,
      [ctx.executionId],
    );
    for (const row of rows) {
      heartbeatsSeen.push({ status: row.status, startedAt: row.started_at, heartbeatAt: row.heartbeat_at });
    }
  },
});

/** Writes, then waits until the test has finalized its execution, then tries to commit. */
let releaseOutlived: () => void = () => {};
const outlivedReleased = new Promise<void>((resolve) => {
  releaseOutlived = resolve;
});
let outlivedWaiting = false;
const outlivedExecution = defineTask({
  id: 'outlived_execution',
  run: async (ctx) => {
    await insertResult(ctx, 'outlived_execution');
    ctx.set('late', true);
    outlivedWaiting = true;
    await outlivedReleased;
  },
});

/** Writes, then waits for the test (which deactivates its tenant meanwhile), then tries to commit. */
let lapseGate = gate();
let lapseWaiting = false;
const lapseWrite = defineTask({
  id: 'lapse_write',
  run: async (ctx) => {
    await insertResult(ctx, 'lapse_write');
    ctx.set('late', true);
    lapseWaiting = true;
    await lapseGate.opened;
  },
});

const workflows = new WorkflowRegistry([
  defineWorkflow({ name: 'lapse', tasks: [lapseWrite] }),
  defineWorkflow({ name: 'identity', tasks: [whoAmI] }),
  defineWorkflow({
    name: 'atomic',
    tasks: [seed, writeThenThrow],
    dependsOn: { write_then_throw: ['seed'] },
  }),
  defineWorkflow({ name: 'once', tasks: [countOnce] }),
  defineWorkflow({ name: 'race', tasks: [raceToCommit] }),
  defineWorkflow({ name: 'timeout', tasks: [outlive] }),
  defineWorkflow({
    name: 'fan_out',
    tasks: [seed, left, right],
    dependsOn: { left: ['seed'], right: ['seed'] },
  }),
  defineWorkflow({ name: 'trespass', tasks: [trespass] }),
  defineWorkflow({ name: 'heartbeat', tasks: [slowBeat] }),
  defineWorkflow({ name: 'outlived', tasks: [outlivedExecution] }),
]);

beforeAll(async () => {
  env = await createTestPlatform();
  acme = env.id('acme');
  globex = env.id('globex');
  dormant = env.id('dormant');
  lapsing = env.id('lapsing');
  for (const [tenantId, name] of [
    [lapsing, 'Lapsing'],
    [acme, 'Acme'],
    [globex, 'Globex'],
    [dormant, 'Dormant'],
  ] as const) {
    await env.platform.provisioning.provision({ tenantId, name });
  }
  store = new ExecutionStore(env.platform.pool);
  runner = newRunner();
  // globex has data of its own, for the isolation test to aim at.
  await env.adminPool.query(
    `INSERT INTO ${tenantTable(globex, 'example_results')} (execution_id, workflow, tenant_id, payload)
     VALUES ('g-1', 'billing', $1, '{"secret": "globex"}')`,
    [globex],
  );
});

afterAll(async () => {
  await env?.cleanup();
});

function newRunner(heartbeatIntervalMs?: number): TaskRunner {
  return new TaskRunner({
    tenants: env.platform.tenants,
    workflows,
    store,
    tenantConnections: env.platform.tenantConnections,
    logger,
    ...(heartbeatIntervalMs === undefined ? {} : { heartbeatIntervalMs }),
  });
}

async function newExecution(tenantId: string, workflow: string, input: object = {}): Promise<string> {
  const executionId = randomUUID();
  await store.insertWithinLimit(tenantId, { executionId, workflow, input: input as never }, 1_000);
  return executionId;
}

/** The rows a tenant's results table holds for an execution, read by the admin (the platform role may not). */
async function results(tenantId: string, executionId: string): Promise<string[]> {
  const { rows } = await env.adminPool.query<{ workflow: string }>(
    `SELECT workflow FROM ${tenantTable(tenantId, 'example_results')} WHERE execution_id = $1 ORDER BY id`,
    [executionId],
  );
  return rows.map((row) => row.workflow);
}

async function execution(tenantId: string, executionId: string) {
  const record = await store.get(tenantId, executionId);
  if (record === undefined) {
    throw new Error(`execution ${executionId} is gone`);
  }
  return record;
}

async function taskRun(tenantId: string, executionId: string, taskId: string): Promise<TaskRunRecord> {
  const run = (await execution(tenantId, executionId)).tasks.find((task) => task.taskId === taskId);
  if (run === undefined) {
    throw new Error(`no task run for ${taskId}`);
  }
  return run;
}

/** The error a run rejected with; fails the test if it resolved instead. */
async function rejection(work: Promise<unknown>): Promise<TenantflowError> {
  const error = await work.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error, 'the invocation should have failed').toBeInstanceOf(TenantflowError);
  return error as TenantflowError;
}

describe('TaskRunner', () => {
  it("runs the body as the tenant's own role in its own schema and commits its context and writes", async () => {
    const executionId = await newExecution(acme, 'identity');

    const outcome = await runner.run({ tenantId: acme, executionId, taskId: 'who_am_i' });

    expect(outcome).toEqual({ outcome: 'succeeded', attempt: 1 });
    const record = await execution(acme, executionId);
    expect(record.context).toEqual({ user: `${acme}_user`, resolvedSchema: acme });
    expect(record.status).toBe('running');
    expect(record.tasks).toMatchObject([
      { taskId: 'who_am_i', status: 'succeeded', attempt: 1, error: null },
    ]);
    expect(record.tasks[0]?.finishedAt).toBeInstanceOf(Date);
    expect(await results(acme, executionId)).toEqual(['who_am_i']);
    expect(await results(globex, executionId)).toEqual([]);
  });

  it('commits nothing of an attempt that throws, and counts the next invocation as attempt 2', async () => {
    const executionId = await newExecution(acme, 'atomic');
    await runner.run({ tenantId: acme, executionId, taskId: 'seed' });
    const contextBefore = (await execution(acme, executionId)).context;

    const error = await rejection(runner.run({ tenantId: acme, executionId, taskId: 'write_then_throw' }));

    expect(error.code).toBe('TASK_FAILED');
    expect(toStateError(error).name).toBe('TASK_FAILED');
    expect(error.message).toContain('exploded after writing');
    expect(await results(acme, executionId)).toEqual([]);
    expect((await execution(acme, executionId)).context).toEqual(contextBefore);
    expect(contextBefore).toEqual({ keep: 'kept', drop: 'dropped' });
    expect(await taskRun(acme, executionId, 'write_then_throw')).toMatchObject({
      status: 'failed',
      attempt: 1,
      error: 'exploded after writing',
    });

    const retried = await runner.run({ tenantId: acme, executionId, taskId: 'write_then_throw' });

    expect(retried).toEqual({ outcome: 'succeeded', attempt: 2 });
    expect(await results(acme, executionId)).toEqual(['write_then_throw-2']);
    expect((await execution(acme, executionId)).context).toEqual({ ...contextBefore, touched: 2 });
    expect(await taskRun(acme, executionId, 'write_then_throw')).toMatchObject({
      status: 'succeeded',
      attempt: 2,
      error: null,
    });
  });

  it('costs a task three round trips above its body: tenant lookup, BEGIN with the claim, the completion with COMMIT', async () => {
    const executionId = await newExecution(acme, 'once');
    const prototype = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
    const original = prototype.query;
    const sent: string[] = [];
    prototype.query = function countedQuery(this: unknown, ...args: unknown[]) {
      sent.push(typeof args[0] === 'string' ? args[0] : String((args[0] as { text?: string })?.text));
      return original.apply(this, args);
    };
    // A switch that reads the registry every time, as the first task of a burst does.
    const reading = new TaskRunner({
      tenants: new TenantContextSwitch(env.platform.registry),
      workflows,
      store,
      tenantConnections: env.platform.tenantConnections,
      logger,
    });
    let outcome: Awaited<ReturnType<TaskRunner['run']>>;
    try {
      outcome = await reading.run({ tenantId: acme, executionId, taskId: 'count_once' });
    } finally {
      prototype.query = original;
    }

    expect(outcome).toMatchObject({ outcome: 'succeeded', attempt: 1 });
    // The body itself sends nothing; the claim opens the transaction and the completion ends it.
    expect(sent).toHaveLength(3);
    expect(sent[1]).toMatch(/^BEGIN;\s+SELECT[\s\S]*tenantflow_api"?\."?claim_task/);
    expect(sent[2]).toMatch(/tenantflow_api"?\."?finish_task[\s\S]*;\s+COMMIT$/);
    const record = await execution(acme, executionId);
    expect(record.status).toBe('running');
    expect(record.context).toMatchObject({ counted: true });
  });

  it('does not run a task again once it succeeded', async () => {
    const executionId = await newExecution(acme, 'once');
    const callsBefore = callsOf('count_once');
    await runner.run({ tenantId: acme, executionId, taskId: 'count_once' });

    const repeated = await runner.run({ tenantId: acme, executionId, taskId: 'count_once' });

    expect(repeated).toEqual({ outcome: 'already_succeeded' });
    expect(callsOf('count_once') - callsBefore).toBe(1);
    expect(await taskRun(acme, executionId, 'count_once')).toMatchObject({ status: 'succeeded', attempt: 1 });
  });

  it('runs one of two concurrent invocations of the same task: the second waits for the first, then finds it done', async () => {
    const executionId = await newExecution(acme, 'race');
    const callsBefore = callsOf('race_to_commit');
    raceGate = gate();

    const first = runner.run({ tenantId: acme, executionId, taskId: 'race_to_commit' });
    await expect.poll(() => callsOf('race_to_commit') - callsBefore).toBe(1);
    const second = runner.run({ tenantId: acme, executionId, taskId: 'race_to_commit' });
    await sleep(200);
    raceGate.open();
    const outcomes = await Promise.all([first, second]);

    expect(outcomes.map((outcome) => outcome.outcome)).toEqual(['succeeded', 'already_succeeded']);
    expect(callsOf('race_to_commit') - callsBefore).toBe(1);
    expect(await results(acme, executionId)).toHaveLength(1);
    expect(await taskRun(acme, executionId, 'race_to_commit')).toMatchObject({
      status: 'succeeded',
      attempt: 1,
    });
  });

  it('refuses a second invocation whose first still holds the task past the claim lock timeout, running nothing twice', async () => {
    const executionId = await newExecution(acme, 'race');
    const callsBefore = callsOf('race_to_commit');
    raceGate = gate();

    const first = runner.run({ tenantId: acme, executionId, taskId: 'race_to_commit' });
    await expect.poll(() => callsOf('race_to_commit') - callsBefore).toBe(1);
    const error = await rejection(runner.run({ tenantId: acme, executionId, taskId: 'race_to_commit' }));
    raceGate.open();

    expect(error.code).toBe('TASK_FAILED');
    expect(error.message).toMatch(/still running in another attempt/);
    expect(await first).toEqual({ outcome: 'succeeded', attempt: 1 });
    expect(callsOf('race_to_commit') - callsBefore).toBe(1);
    expect(await taskRun(acme, executionId, 'race_to_commit')).toMatchObject({
      status: 'succeeded',
      attempt: 1,
    });
  }, 15_000);

  it('abandons a task past its timeout, rolls it back and records why', async () => {
    const executionId = await newExecution(acme, 'timeout');
    lateQuery = undefined;
    const started = Date.now();

    const error = await rejection(runner.run({ tenantId: acme, executionId, taskId: 'outlive' }));

    const elapsed = Date.now() - started;
    expect(error.code).toBe('TASK_TIMED_OUT');
    expect(elapsed).toBeGreaterThanOrEqual(900);
    expect(elapsed).toBeLessThan(2_500);
    expect(await results(acme, executionId)).toEqual([]);
    const run = await taskRun(acme, executionId, 'outlive');
    expect(run.status).toBe('failed');
    expect(run.error).toMatch(/timed out/);

    // The body keeps going after it was abandoned: its late write is refused, nothing ever lands.
    await expect.poll(() => lateQuery, { timeout: 5_000 }).toBeDefined();
    expect(await lateQuery).toBe('refused');
    expect(await results(acme, executionId)).toEqual([]);
  });

  describe('fails closed', () => {
    it('runs nothing for an inactive tenant', async () => {
      const executionId = await newExecution(dormant, 'once');
      await env.platform.tenants.deactivateTenant(dormant);
      const callsBefore = callsOf('count_once');

      const error = await rejection(runner.run({ tenantId: dormant, executionId, taskId: 'count_once' }));

      expect(error.code).toBe('TENANT_INACTIVE');
      expect(callsOf('count_once')).toBe(callsBefore);
      expect((await execution(dormant, executionId)).tasks).toEqual([]);
    });

    it('commits nothing of a task whose tenant was deactivated while it ran, even when its start trusted an earlier lookup', async () => {
      const trusting = new TaskRunner({
        tenants: new TenantContextSwitch(env.platform.registry, undefined, { trustActiveForMs: 60_000 }),
        workflows,
        store,
        tenantConnections: env.platform.tenantConnections,
        logger,
      });
      const executionId = await newExecution(lapsing, 'lapse');
      const next = await newExecution(lapsing, 'once');
      lapseGate = gate();
      const running = trusting.run({ tenantId: lapsing, executionId, taskId: 'lapse_write' });
      await expect.poll(() => lapseWaiting).toBe(true);
      await env.platform.tenants.deactivateTenant(lapsing);

      lapseGate.open();
      const error = await rejection(running);

      expect(error.code).toBe('TENANT_INACTIVE');
      expect(await results(lapsing, executionId)).toEqual([]);
      const record = await execution(lapsing, executionId);
      expect(record.context).toEqual({});
      expect(record.tasks).toMatchObject([{ taskId: 'lapse_write', status: 'failed' }]);
      // The switch still trusts its earlier lookup: the next task starts, and again nothing commits.
      const again = await rejection(
        trusting.run({ tenantId: lapsing, executionId: next, taskId: 'count_once' }),
      );
      expect(again.code).toBe('TENANT_INACTIVE');
      expect((await execution(lapsing, next)).context).toEqual({});
    });

    it('refuses an unknown tenant', async () => {
      const error = await rejection(
        runner.run({ tenantId: env.id('nobody'), executionId: randomUUID(), taskId: 'count_once' }),
      );

      expect(error.code).toBe('TENANT_NOT_FOUND');
    });

    it('refuses an unknown execution', async () => {
      const executionId = randomUUID();

      const error = await rejection(runner.run({ tenantId: acme, executionId, taskId: 'count_once' }));

      expect(error.code).toBe('EXECUTION_NOT_FOUND');
      expect(await store.exists(acme, executionId)).toBe(false);
    });

    it("refuses a task the execution's workflow does not have", async () => {
      const executionId = await newExecution(acme, 'once');
      const callsBefore = callsOf('who_am_i');

      const error = await rejection(runner.run({ tenantId: acme, executionId, taskId: 'who_am_i' }));

      expect(error.code).toBe('UNKNOWN_TASK');
      expect(callsOf('who_am_i')).toBe(callsBefore);
      expect((await execution(acme, executionId)).tasks).toEqual([]);
    });

    it('refuses to run a task of an execution already finalized', async () => {
      const executionId = await newExecution(acme, 'once');
      await store.finalize(acme, executionId, 'aborted', 'stopped by an operator');
      const callsBefore = callsOf('count_once');

      const error = await rejection(runner.run({ tenantId: acme, executionId, taskId: 'count_once' }));

      expect(error.code).toBe('EXECUTION_NOT_RUNNABLE');
      expect(callsOf('count_once')).toBe(callsBefore);
      const record = await execution(acme, executionId);
      expect(record.status).toBe('aborted');
      expect(record.tasks).toEqual([]);
    });
  });

  it('merges the context changes of parallel tasks, and removes a key set to undefined', async () => {
    const executionId = await newExecution(acme, 'fan_out');
    await runner.run({ tenantId: acme, executionId, taskId: 'seed' });
    parallelArrival = barrier(2);

    const outcomes = await Promise.all([
      runner.run({ tenantId: acme, executionId, taskId: 'left' }),
      runner.run({ tenantId: acme, executionId, taskId: 'right' }),
    ]);

    expect(outcomes).toEqual([
      { outcome: 'succeeded', attempt: 1 },
      { outcome: 'succeeded', attempt: 1 },
    ]);
    expect((await execution(acme, executionId)).context).toEqual({
      keep: 'kept',
      left: 'from left',
      right: 'from right',
      dropSeenAs: 'gone',
    });
  });

  it("refuses a task access to another tenant's tables, schema-qualified", async () => {
    const globexBefore = await results(globex, 'g-1');
    const callsBefore = callsOf('trespass');

    for (const statement of ['select', 'delete'] as const) {
      const executionId = await newExecution(acme, 'trespass', { target: globex, statement });

      const error = await rejection(runner.run({ tenantId: acme, executionId, taskId: 'trespass' }));

      expect(error.code).toBe('TASK_FAILED');
      expect(error.message).toMatch(/permission denied for schema/);
      expect((await execution(acme, executionId)).context).toEqual({});
    }
    expect(callsOf('trespass') - callsBefore).toBe(2);
    expect(globexBefore).toEqual(['billing']);
    expect(await results(globex, 'g-1')).toEqual(globexBefore);
  });

  it('moves the execution forward with heartbeats while the task runs', async () => {
    const executionId = await newExecution(acme, 'heartbeat');
    heartbeatsSeen.length = 0;

    await newRunner(50).run({ tenantId: acme, executionId, taskId: 'slow_beat' });

    expect(heartbeatsSeen).toHaveLength(1);
    const [seen] = heartbeatsSeen;
    // The attempt is claimed in the task's transaction, so only the execution shows it alive.
    expect(seen?.status).toBe('pending');
    expect(seen?.heartbeatAt.getTime()).toBeGreaterThan(seen?.startedAt.getTime() ?? Infinity);
  });

  it('commits nothing of a task whose execution ended while it ran', async () => {
    const executionId = await newExecution(acme, 'outlived');
    const running = runner.run({ tenantId: acme, executionId, taskId: 'outlived_execution' });
    // The body has written and is waiting: the execution now ends under it.
    await expect.poll(() => outlivedWaiting).toBe(true);
    await store.finalize(acme, executionId, 'aborted', 'Stopped by an operator');

    releaseOutlived();
    const error = await rejection(running);

    expect(error.message).toContain('ended while');
    expect(await results(acme, executionId)).toEqual([]);
    const record = await execution(acme, executionId);
    expect(record).toMatchObject({ status: 'aborted', context: {} });
    expect(record.tasks).toMatchObject([{ taskId: 'outlived_execution', status: 'failed' }]);
  });
});
