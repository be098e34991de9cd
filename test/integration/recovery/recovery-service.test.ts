import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONTROL_SCHEMA, qualified, tenantTable } from '@tenantflow/shared/db/sql';
import { createLogger } from '@tenantflow/shared/logging/logger';
import {
  type RecoveryOptions,
  type RecoveryService,
  RecoveryStore,
  type RecoverySummary,
} from '@tenantflow/shared/recovery';
import { compileToAsl } from '@tenantflow/shared/workflows/asl';
import { ExecutionStore } from '@tenantflow/shared/workflows/execution-store';
import type { Orchestrator } from '@tenantflow/shared/workflows/orchestrator';
import { defineTask } from '@tenantflow/shared/workflows/task';
import { defineWorkflow } from '@tenantflow/shared/workflows/workflow';
import { WorkflowRegistry } from '@tenantflow/shared/workflows/workflow-registry';
import type { Context } from 'aws-lambda';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRecoverHandler } from '../../../functions/recovery/recover.js';
import { LocalOrchestrator } from '../../../local/local-orchestrator.js';
import { LOCAL_TARGETS, localLambdas } from '../../../local/local-runtime.js';
import { createTestPlatform, type TestPlatform } from '../../support/platform.js';
import { CountingOrchestrator, testRecovery } from '../../support/recovery.js';

/**
 * The recovery service against a real PostgreSQL and the real local orchestrator (the same ASL and
 * handlers as in AWS): what it finds, what it asks the orchestrator, what it does about each answer,
 * and that two passes at once act once.
 */

const logger = createLogger('recovery-test');

/** Lets a test hold a task in flight, or break it, from outside. */
const gates = {
  hold: undefined as Promise<void> | undefined,
  broken: false,
};

const first = defineTask({
  id: 'first',
  run: async (ctx) => {
    await ctx.db.query(
      `INSERT INTO example_results (execution_id, workflow, tenant_id, payload) VALUES ($1, 'first', $2, '{}')`,
      [ctx.executionId, ctx.tenant.id],
    );
    ctx.set('first', true);
  },
});
const second = defineTask({
  id: 'second',
  retry: { attempts: 1 },
  run: async (ctx) => {
    await gates.hold;
    if (gates.broken) {
      throw new Error('second is broken right now');
    }
    ctx.set('second', true);
  },
});
const steps = defineWorkflow({
  name: 'recovery_steps',
  tasks: [first, second],
  dependsOn: { second: ['first'] },
});
const workflows = new WorkflowRegistry([steps]);

let env: TestPlatform;
let store: ExecutionStore;
let journal: string;
const tenantIds: string[] = [];

function localOrchestrator(journalDirectory?: string): LocalOrchestrator {
  return new LocalOrchestrator({
    definitions: { [steps.name]: compileToAsl(steps, LOCAL_TARGETS) },
    lambdas: localLambdas({ core: env.platform, access: env.platform, workflows, logger }),
    retryIntervalMs: 0,
    ...(journalDirectory === undefined ? {} : { journalDirectory }),
  });
}

function recoveryWith(
  orchestrator: Orchestrator,
  options: Partial<RecoveryOptions> = {},
  pool: pg.Pool = env.platform.pool,
): RecoveryService {
  return testRecovery(env, { orchestrator, workflows, logger, options, pool });
}

/** An execution row as if its start had been lost: pending, quiet for an hour. */
async function insertStuck(tenantId: string, attempts = 0): Promise<string> {
  const { executionId } = await store.insertWithinLimit(
    tenantId,
    { executionId: crypto.randomUUID(), workflow: steps.name, input: { n: 1 } },
    100,
  );
  await backdate(tenantId, executionId, attempts);
  return executionId;
}

async function backdate(tenantId: string, executionId: string, attempts?: number): Promise<void> {
  await env.platform.pool.query(
    `UPDATE ${tenantTable(tenantId, 'executions')}
        SET updated_at = now() - interval '1 hour', attempts = COALESCE($2, attempts),
            running_tasks = COALESCE(
              (SELECT jsonb_object_agg(key, value || jsonb_build_object('heartbeatAt', now() - interval '1 hour'))
                 FROM jsonb_each(running_tasks)), '{}')
        WHERE id = $1`,
    [executionId, attempts ?? null],
  );
  await env.platform.pool.query(
    `UPDATE ${tenantTable(tenantId, 'task_runs')} SET heartbeat_at = now() - interval '1 hour' WHERE execution_id = $1`,
    [executionId],
  );
}

async function status(tenantId: string, executionId: string) {
  const record = await store.get(tenantId, executionId);
  if (record === undefined) {
    throw new Error(`no execution ${executionId}`);
  }
  return record;
}

async function eventsFor(targetId: string) {
  return new RecoveryStore(env.platform.pool).eventsFor(targetId);
}

async function runToEnd(orchestrator: LocalOrchestrator, tenantId: string, executionId: string) {
  await orchestrator.drain();
  return status(tenantId, executionId);
}

beforeAll(async () => {
  env = await createTestPlatform();
  store = new ExecutionStore(env.platform.pool);
  journal = await mkdtemp(join(tmpdir(), 'tenantflow-journal-'));
  for (const base of ['alpha', 'bravo', 'charlie', 'delta', 'echo']) {
    const tenantId = env.id(base);
    await env.platform.provisioning.provision({ tenantId, name: base });
    tenantIds.push(tenantId);
  }
});

afterAll(async () => {
  await env?.cleanup();
  await rm(journal, { recursive: true, force: true });
});

describe('two recovery passes at once', () => {
  it('act on each of 20 stuck executions across 5 tenants exactly once', async () => {
    const stuck: { tenantId: string; executionId: string }[] = [];
    for (const tenantId of tenantIds) {
      for (let index = 0; index < 4; index += 1) {
        stuck.push({ tenantId, executionId: await insertStuck(tenantId) });
      }
    }
    const local = localOrchestrator();
    const counting = new CountingOrchestrator(local);
    // Two pools: the passes share nothing but the database, like two Lambdas.
    const otherPool = new pg.Pool({ connectionString: env.databaseUrl, max: 4 });
    // Dropping the database WITH (FORCE) may end a socket the pool is still closing: not a failure.
    otherPool.on('error', () => {});
    try {
      const [one, two] = await Promise.all([
        recoveryWith(counting).run(),
        recoveryWith(counting, {}, otherPool).run(),
      ]);
      expect(one.actions.start + two.actions.start).toBe(20);
      expect(one.executionsExamined + two.executionsExamined).toBe(20);
      expect([...counting.starts].sort()).toEqual(stuck.map((s) => s.executionId).sort());
      for (const { tenantId, executionId } of stuck) {
        const events = await eventsFor(executionId);
        expect(events.map((event) => [event.finding, event.action, event.outcome])).toEqual([
          ['stale_pending', 'start', 'done'],
        ]);
        expect(events[0]?.tenantId).toBe(tenantId);
      }
      await local.drain();
      for (const { tenantId, executionId } of stuck) {
        const record = await status(tenantId, executionId);
        expect(record.status).toBe('succeeded');
        expect(record.attempts).toBe(1);
        expect(record.context).toEqual({ first: true, second: true });
      }
      // Repaired executions are fresh again: a third pass right after finds nothing to do.
      const third = await recoveryWith(counting).run();
      expect(third.findings.stale_pending + third.findings.stale_running).toBe(0);
      expect(counting.starts).toHaveLength(20);
    } finally {
      await otherPool.end();
    }
  });
});

describe('what the orchestrator says decides the action', () => {
  let local: LocalOrchestrator;
  let counting: CountingOrchestrator;
  const tenant = () => tenantIds[0] as string;

  beforeAll(() => {
    local = localOrchestrator();
    counting = new CountingOrchestrator(local);
  });
  afterAll(async () => {
    await local.drain();
  });

  it('finalizes an execution that succeeded but whose finalize was lost', async () => {
    const executionId = await insertStuck(tenant());
    await local.start({ workflow: steps.name, tenantId: tenant(), executionId });
    expect((await runToEnd(local, tenant(), executionId)).status).toBe('succeeded');
    // As if the finalize Lambda had died: the row still says running.
    await env.platform.pool.query(
      `UPDATE ${tenantTable(tenant(), 'executions')} SET status = 'running', finished_at = NULL WHERE id = $1`,
      [executionId],
    );
    await backdate(tenant(), executionId);
    const summary = await recoveryWith(counting).run();
    expect(summary.actions.finalize).toBe(1);
    const record = await status(tenant(), executionId);
    expect(record.status).toBe('succeeded');
    expect(record.finishedAt).not.toBeNull();
    expect(record.attempts).toBe(0);
  });

  it('redrives an execution that failed without being finalized, and it resumes', async () => {
    const executionId = await insertStuck(tenant());
    gates.broken = true;
    await local.start({ workflow: steps.name, tenantId: tenant(), executionId });
    expect((await runToEnd(local, tenant(), executionId)).status).toBe('failed');
    expect((await local.describe({ workflow: steps.name, tenantId: tenant(), executionId })).status).toBe(
      'failed',
    );
    // The failure was recorded by the state machine's Catch; pretend that write was lost.
    await env.platform.pool.query(
      `UPDATE ${tenantTable(tenant(), 'executions')} SET status = 'running', error = NULL, finished_at = NULL WHERE id = $1`,
      [executionId],
    );
    await backdate(tenant(), executionId);
    gates.broken = false;
    const summary = await recoveryWith(counting).run();
    expect(summary.actions.redrive).toBe(1);
    const record = await runToEnd(local, tenant(), executionId);
    expect(record.status).toBe('succeeded');
    expect(record.attempts).toBe(1);
    const effects = await env.adminPool.query(
      `SELECT count(*)::int AS count FROM ${tenantTable(tenant(), 'example_results')} WHERE execution_id = $1`,
      [executionId],
    );
    expect(effects.rows[0]?.count).toBe(1);
  });

  it('leaves an execution alone while the orchestrator runs it, and marks a task with a stale heartbeat', async () => {
    let release: () => void = () => {};
    gates.hold = new Promise<void>((resolve) => {
      release = resolve;
    });
    const executionId = await insertStuck(tenant());
    await local.start({ workflow: steps.name, tenantId: tenant(), executionId });
    await expect
      .poll(
        async () => (await status(tenant(), executionId)).tasks.find((t) => t.taskId === 'second')?.status,
      )
      .toBe('running');
    await backdate(tenant(), executionId);
    const summary = await recoveryWith(counting).run();
    release();
    gates.hold = undefined;
    expect(summary.findings.stale_heartbeat).toBe(1);
    expect(summary.actions.mark_task_lost).toBe(1);
    expect((await eventsFor(executionId)).map((event) => [event.action, event.outcome])).toEqual([
      ['none', 'skipped'],
    ]);
    expect((await eventsFor(`${executionId}/second`)).map((event) => event.action)).toEqual([
      'mark_task_lost',
    ]);
    // The slow attempt was not dead after all: it still commits, and the execution finishes.
    expect((await runToEnd(local, tenant(), executionId)).status).toBe('succeeded');
  });

  it('abandons an execution past the attempt cap, with the reason, and never touches it again', async () => {
    const executionId = await insertStuck(tenant(), 3);
    const before = counting.starts.length;
    const summary = await recoveryWith(counting).run();
    expect(summary.actions.abandon).toBe(1);
    const record = await status(tenant(), executionId);
    expect(record.status).toBe('failed');
    expect(record.error).toMatch(/^ABANDONED: recovery restarted it 3 time\(s\), its cap .*never started/);
    expect(counting.starts.length).toBe(before);
    await backdate(tenant(), executionId);
    await recoveryWith(counting).run();
    expect((await eventsFor(executionId)).map((event) => event.action)).toEqual(['abandon']);
  });

  it('abandons an execution of a workflow that is no longer deployed', async () => {
    const executionId = crypto.randomUUID();
    await store.insertWithinLimit(tenant(), { executionId, workflow: 'retired_workflow', input: {} }, 100);
    await backdate(tenant(), executionId);
    await recoveryWith(counting).run();
    expect((await status(tenant(), executionId)).error).toBe(
      "ABANDONED: workflow 'retired_workflow' is not deployed any more",
    );
  });

  it('leaves the executions of an inactive tenant for when it is active again', async () => {
    const dormant = tenantIds[1] as string;
    const executionId = await insertStuck(dormant);
    await env.platform.tenants.deactivateTenant(dormant);
    try {
      const starts = counting.starts.length;
      await recoveryWith(counting).run();
      expect(counting.starts.length).toBe(starts);
      expect((await status(dormant, executionId)).status).toBe('pending');
      expect(await eventsFor(executionId)).toEqual([]);
    } finally {
      await env.platform.tenants.activateTenant(dormant);
    }
    await backdate(dormant, executionId);
    await recoveryWith(counting).run();
    expect((await runToEnd(local, dormant, executionId)).status).toBe('succeeded');
  });
});

describe('after the local process is lost', () => {
  it('the journal tells recovery the execution was lost, and a redrive resumes after its last committed task', async () => {
    const tenantId = tenantIds[2] as string;
    let release: () => void = () => {};
    gates.hold = new Promise<void>((resolve) => {
      release = resolve;
    });
    const crashed = localOrchestrator(journal);
    const executionId = await insertStuck(tenantId);
    await crashed.start({ workflow: steps.name, tenantId, executionId });
    await expect
      .poll(
        async () => (await status(tenantId, executionId)).tasks.find((t) => t.taskId === 'second')?.status,
      )
      .toBe('running');
    crashed.simulateCrash();
    // The crashed process's task must not finish: it fails instead, as a dying process would.
    gates.broken = true;
    release();
    gates.hold = undefined;
    await expect
      .poll(
        async () => (await status(tenantId, executionId)).tasks.find((t) => t.taskId === 'second')?.status,
      )
      .toBe('failed');
    gates.broken = false;
    await backdate(tenantId, executionId);

    const restarted = localOrchestrator(journal);
    const seen = await restarted.describe({ workflow: steps.name, tenantId, executionId });
    expect(seen).toMatchObject({ status: 'failed', error: 'Local.ProcessExited', redrivable: true });
    const summary = await recoveryWith(restarted).run();
    expect(summary.actions.redrive).toBe(1);
    const record = await runToEnd(restarted, tenantId, executionId);
    expect(record.status).toBe('succeeded');
    expect(record.context).toEqual({ first: true, second: true });
    // `first` had committed before the crash: it was skipped, not run again; `second` ran again.
    expect(record.tasks.find((task) => task.taskId === 'first')?.attempt).toBe(1);
    expect(record.tasks.find((task) => task.taskId === 'second')?.attempt).toBe(2);
    const effects = await env.adminPool.query(
      `SELECT count(*)::int AS count FROM ${tenantTable(tenantId, 'example_results')} WHERE execution_id = $1`,
      [executionId],
    );
    expect(effects.rows[0]?.count).toBe(1);
  });
});

describe('tenants and the fleet', () => {
  it('completes a tenant whose provisioning never got past its registry row: one schema, role and secret', async () => {
    const tenantId = env.id('halfway');
    // As if the process died right after writing the registry row: nothing else exists yet.
    await env.platform.pool.query(
      `INSERT INTO ${qualified(CONTROL_SCHEMA, 'tenants')} (tenant_id, name, status, updated_at)
       VALUES ($1, 'Halfway', 'provisioning', now() - interval '1 hour')`,
      [tenantId],
    );
    const summary = await recoveryWith(new CountingOrchestrator(localOrchestrator())).run();
    expect(summary.findings.stuck_provisioning).toBe(1);
    expect(summary.actions.resume_provisioning).toBe(1);
    // Recovery started the tenant's onboarding state machine, which never started; it does the rest.
    const [event] = await eventsFor(tenantId);
    expect(event).toMatchObject({
      finding: 'stuck_provisioning',
      action: 'resume_provisioning',
      outcome: 'done',
      detail: expect.stringMatching(/^Started the onboarding execution/),
    });
    await env.platform.lifecycleOrchestrator.drain();
    expect((await env.platform.registry.get(tenantId))?.status).toBe('active');
    const objects = await env.platform.pool.query<{ schemas: number; roles: number }>(
      `SELECT (SELECT count(*)::int FROM pg_namespace WHERE nspname = $1) AS schemas,
              (SELECT count(*)::int FROM pg_roles WHERE rolname = $1 || '_user') AS roles`,
      [tenantId],
    );
    expect(objects.rows[0]).toEqual({ schemas: 1, roles: 1 });
    expect(await env.platform.secrets.get(tenantId)).toBeDefined();
    tenantIds.push(tenantId);
  });

  it('reports a tenant it cannot scan and still repairs the others', async () => {
    const ghost = env.id('ghost');
    await env.platform.pool.query(
      `INSERT INTO ${qualified(CONTROL_SCHEMA, 'tenants')} (tenant_id, name, status) VALUES ($1, 'Ghost', 'active')`,
      [ghost],
    );
    const executionId = await insertStuck(tenantIds[3] as string);
    const local = localOrchestrator();
    try {
      const summary = await recoveryWith(local).run();
      expect(summary.findings.scan_failed).toBe(1);
      expect(summary.actions.start).toBe(1);
      const [event] = await eventsFor(ghost);
      expect(event).toMatchObject({ finding: 'scan_failed', outcome: 'failed' });
      expect(event?.detail).toMatch(/does not exist/);
      await local.drain();
    } finally {
      await env.platform.pool.query(
        `DELETE FROM ${qualified(CONTROL_SCHEMA, 'tenants')} WHERE tenant_id = $1`,
        [ghost],
      );
    }
    expect((await status(tenantIds[3] as string, executionId)).status).toBe('succeeded');
  });

  it('stops at its deadline, records where, and the next pass resumes there and wraps around', async () => {
    const ordered = [...tenantIds].sort();
    const early = ordered[0] as string;
    const executionId = await insertStuck(early);
    const local = localOrchestrator();
    const deadline = Date.now() + 40;
    const cut: RecoverySummary = await recoveryWith(local, { pageSize: 2 }).run({
      deadline,
      onProgress: () => {
        // The first page outlives the deadline.
        while (Date.now() <= deadline) {
          // busy wait
        }
      },
    });
    expect(cut.complete).toBe(false);
    expect(cut.tenantsScanned).toBe(2);
    expect(cut.resumeAfter).toBe(ordered[1]);
    const next = await recoveryWith(local, { pageSize: 2 }).run();
    expect(next.complete).toBe(true);
    expect(next.tenantsScanned).toBe(ordered.length);
    await local.drain();
    // The stuck execution of the first tenant was reached by the first pass, before the cut.
    expect((await status(early, executionId)).status).toBe('succeeded');
  });

  it("records a logins-only run like a pass, without moving the passes' cursor", async () => {
    // Prepare: a pass cut short after its first page.
    const ordered = [...tenantIds].sort();
    const local = localOrchestrator();
    const deadline = Date.now() + 40;
    const cut = await recoveryWith(local, { pageSize: 2 }).run({
      deadline,
      onProgress: () => {
        while (Date.now() <= deadline) {
          // busy wait: the first page outlives the deadline
        }
      },
    });
    expect(cut.resumeAfter).toBe(ordered[1]);

    // Act: a deployment's run between two passes.
    const logins = await recoveryWith(local).reconcileLogins();
    const next = await recoveryWith(local, { pageSize: 2 }).run({
      deadline: Date.now() - 1,
    });

    // Assert: the run is on record, and the next pass still starts after the cut pass's cursor.
    expect(logins).toMatchObject({ scope: 'logins', tenantsScanned: 0, complete: true });
    const { rows } = await env.platform.pool.query<{ complete: boolean | null; scope: string }>(
      `SELECT complete, summary->>'scope' AS scope FROM ${qualified(CONTROL_SCHEMA, 'recovery_runs')}
        WHERE run_id = $1 AND finished_at IS NOT NULL`,
      [logins.runId],
    );
    expect(rows).toEqual([{ complete: null, scope: 'logins' }]);
    expect(next.resumeAfter).toBe(ordered[3]);
    // A whole pass, so the next test starts from a finished cycle, as this one did.
    expect((await recoveryWith(local).run()).complete).toBe(true);
    await local.drain();
  });

  it('the scheduled handler stops short of the Lambda timeout, after one page at least, and returns its summary', async () => {
    const handler = createRecoverHandler({
      recovery: recoveryWith(localOrchestrator(), { pageSize: 2 }),
      logger,
    });
    // Less time left than the handler's safety margin: one page, then it stops and says so.
    const summary = await handler({ 'detail-type': 'Scheduled Event', source: 'aws.events' }, {
      getRemainingTimeInMillis: () => 1_000,
    } as Context);
    expect(summary).toMatchObject({ tenantsScanned: 2, complete: false });
    expect(summary.resumeAfter).toBe([...tenantIds].sort()[1]);
  });
});
