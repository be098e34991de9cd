import { randomUUID } from 'node:crypto';
import { createLogger, type Logger } from '@tenantflow/shared/logging/logger';
import type { TenantDb } from '@tenantflow/shared/tenancy/tenant-connections';
import { ExecutionFinalizer } from '@tenantflow/shared/workflows/execution-finalizer';
import { ExecutionService } from '@tenantflow/shared/workflows/execution-service';
import { ExecutionStore } from '@tenantflow/shared/workflows/execution-store';
import { defineTask, type JsonValue, type TaskTenant } from '@tenantflow/shared/workflows/task';
import { TaskRunner } from '@tenantflow/shared/workflows/task-runner';
import { defineWorkflow } from '@tenantflow/shared/workflows/workflow';
import type { WorkflowRegistry } from '@tenantflow/shared/workflows/workflow-registry';
import { createFinalizeHandler } from '../functions/workflow/finalize.js';
import { createRunTaskHandler } from '../functions/workflow/run-task.js';
import { createLambdaContext } from '../local/lambda-context.js';
import type { LocalPlatform } from '../local/local-platform.js';
import {
  acceptOnlyOrchestrator,
  benchTenantId,
  countDatabaseWork,
  type Distribution,
  distribution,
  recordBenchResult,
  timed,
} from './support.js';

const LINEAR_TASK_IDS = Array.from({ length: 10 }, (_, index) => `step${String(index + 1).padStart(2, '0')}`);

/** Ten tasks one after another (ten waves of one: plain Task states, no Parallel). */
export const linearWorkflow = defineWorkflow({
  name: 'bench_linear_10',
  description: 'Ten tasks in a line, each one INSERT and one ctx.set (bench/workflow-overhead.bench.ts)',
  tasks: LINEAR_TASK_IDS.map((id) => defineTask({ id, run: recordBenchResult })),
  dependsOn: Object.fromEntries(
    LINEAR_TASK_IDS.slice(1).map((id, index) => [id, [LINEAR_TASK_IDS[index] as string]]),
  ),
});

/** Rounds run before timing starts: pools opened, statements and the interpreter warmed up. */
const WARM_UP_ROUNDS = 3;

/** Executions of each path whose round trips and commits are counted, after the timed rounds. */
const COUNTED_EXECUTIONS = 5;

export interface WorkflowOverheadResult {
  readonly tasks: number;
  /** Timed executions on each path. */
  readonly executions: number;
  /** The ten task bodies called one after another with a hand-made context: ms per workflow. */
  readonly direct: Distribution;
  /**
   * The run-task handler for each task and the finalize handler, called one after another, after
   * `ExecutionService.start` with an orchestrator that runs nothing: everything but the state machine.
   */
  readonly handlers: Distribution;
  /** `executions.start` on the local platform until the LocalOrchestrator has settled the execution. */
  readonly orchestrated: Distribution;
  /** (orchestrated p50 − direct p50) / tasks. */
  readonly overheadPerTaskMs: number;
  /** The same from the means. */
  readonly overheadPerTaskMeanMs: number;
  /** (handlers p50 − direct p50) / tasks: start, run-task and finalize bookkeeping. */
  readonly handlersPerTaskMs: number;
  /** (orchestrated p50 − handlers p50) / tasks: the interpreter, payload round trips, scheduling. */
  readonly interpreterPerTaskMs: number;
  /** CPU time of this process (user + system) per workflow, mean: the rest of the wall time is waiting. */
  readonly cpuMeanMs: { readonly direct: number; readonly handlers: number; readonly orchestrated: number };
  /** The handler path's pieces: ms per start, per run-task invocation, per finalize. */
  /**
   * Per task, above the task bodies called directly: round trips to PostgreSQL and write
   * transactions (commits), counted over {@link COUNTED_EXECUTIONS} executions of each path.
   */
  readonly perTask: { readonly roundTrips: number; readonly commits: number };
  readonly handlerSegments: {
    readonly start: Distribution;
    readonly runTask: Distribution;
    readonly finalize: Distribution;
  };
}

/**
 * Local orchestration overhead per task: a 10-task linear workflow run by the LocalOrchestrator
 * against the same ten task bodies called directly, in the same run, one execution at a time.
 *
 * A third path, the handlers called in sequence without a state machine, splits the overhead in
 * two: the platform's bookkeeping (the execution row, the tenant switch, the task-run rows, the
 * transaction around each task, finalize) and the local state machine itself. The three paths
 * are interleaved, in an order that rotates every round, so drift affects them alike.
 *
 * `linearWorkflow` must be in the local platform's workflow registry.
 */
export async function benchmarkWorkflowOverhead(
  local: LocalPlatform,
  workflows: WorkflowRegistry,
  adminUrl: string,
  suffix: string,
  executions: number,
): Promise<WorkflowOverheadResult> {
  const { platform } = local;
  const tenantId = benchTenantId('wfo', 0, suffix);
  await platform.tenantAdmin.register({ tenantId, name: tenantId });
  // Registration starts the onboarding state machine; the tenant can run work once it is active.
  await platform.lifecycleOrchestrator.drain();
  const info = await platform.registry.get(tenantId);
  if (info?.status !== 'active') {
    throw new Error(`tenant ${tenantId} was not onboarded: ${JSON.stringify(info)}`);
  }
  const tenant: TaskTenant = { id: tenantId, name: info.name, metadata: info.metadata, config: info.config };
  const db = await platform.tenantConnections.tenantDb(tenantId);
  const logger = createLogger('bench-overhead');
  const sequence = handlerSequence(local, workflows, logger);

  let lastSegments: HandlerSegments | undefined;
  const paths = {
    direct: () => runBodiesDirectly(db, tenant, logger),
    handlers: async () => {
      lastSegments = await sequence(tenantId);
    },
    orchestrated: () => runOrchestrated(local, tenantId),
  };
  const names = Object.keys(paths) as (keyof typeof paths)[];
  const samples: Record<keyof typeof paths, number[]> = { direct: [], handlers: [], orchestrated: [] };
  const cpu: Record<keyof typeof paths, number[]> = { direct: [], handlers: [], orchestrated: [] };
  const segments: HandlerSegments[] = [];
  for (let round = 0; round < WARM_UP_ROUNDS + executions; round += 1) {
    for (let offset = 0; offset < names.length; offset += 1) {
      const name = names[(round + offset) % names.length] as keyof typeof paths;
      const cpuBefore = process.cpuUsage();
      const run = await timed(paths[name]);
      const cpuUsed = process.cpuUsage(cpuBefore);
      if (round >= WARM_UP_ROUNDS) {
        samples[name].push(run.ms);
        cpu[name].push((cpuUsed.user + cpuUsed.system) / 1000);
        if (name === 'handlers' && lastSegments !== undefined) {
          segments.push(lastSegments);
        }
      }
    }
  }
  // Counted apart from the timed rounds (the counting wraps every query) and one path at a time,
  // so each count is that path's alone.
  const counted = async (path: () => Promise<void>) =>
    countDatabaseWork(adminUrl, async () => {
      for (let index = 0; index < COUNTED_EXECUTIONS; index += 1) {
        await path();
      }
    });
  const directWork = await counted(paths.direct);
  const orchestratedWork = await counted(paths.orchestrated);
  // Closed now, so the throughput benchmark's backend count is its tenants' alone.
  await platform.tenantConnections.forget(tenantId);

  const tasks = linearWorkflow.tasks.length;
  const direct = distribution(samples.direct);
  const handlers = distribution(samples.handlers);
  const orchestrated = distribution(samples.orchestrated);
  const meanOf = (values: readonly number[]) => distribution(values).mean;
  return {
    tasks,
    executions,
    direct,
    handlers,
    orchestrated,
    cpuMeanMs: {
      direct: meanOf(cpu.direct),
      handlers: meanOf(cpu.handlers),
      orchestrated: meanOf(cpu.orchestrated),
    },
    perTask: {
      roundTrips: (orchestratedWork.roundTrips - directWork.roundTrips) / (COUNTED_EXECUTIONS * tasks),
      commits:
        (orchestratedWork.writeTransactions - directWork.writeTransactions) / (COUNTED_EXECUTIONS * tasks),
    },
    handlerSegments: {
      start: distribution(segments.map((segment) => segment.startMs)),
      runTask: distribution(segments.flatMap((segment) => segment.runTaskMs)),
      finalize: distribution(segments.map((segment) => segment.finalizeMs)),
    },
    overheadPerTaskMs: (orchestrated.p50 - direct.p50) / tasks,
    overheadPerTaskMeanMs: (orchestrated.mean - direct.mean) / tasks,
    handlersPerTaskMs: (handlers.p50 - direct.p50) / tasks,
    interpreterPerTaskMs: (orchestrated.p50 - handlers.p50) / tasks,
  };
}

/** Where the handler path's time goes, for one execution. */
interface HandlerSegments {
  /** `ExecutionService.start`: registry lookup, execution row (tenant row locked), `markStarted`. */
  readonly startMs: number;
  /** Each run-task invocation, its task body included. */
  readonly runTaskMs: readonly number[];
  readonly finalizeMs: number;
}

/**
 * The ten bodies with a context made by hand: the tenant-role connection itself as `db` (each
 * INSERT commits on its own, one commit per task as on the other paths), a Map for `get`/`set`.
 */
async function runBodiesDirectly(db: TenantDb, tenant: TaskTenant, logger: Logger): Promise<void> {
  const executionId = randomUUID();
  const values = new Map<string, JsonValue>();
  const signal = new AbortController().signal;
  for (const task of linearWorkflow.tasks) {
    await task.run({
      taskId: task.id,
      workflow: linearWorkflow.name,
      executionId,
      attempt: 1,
      input: {},
      tenant,
      db,
      logger,
      signal,
      get: (key) => values.get(key) as never,
      set: (key, value) => {
        values.set(key, value as JsonValue);
      },
    });
  }
}

/**
 * What the state machine would invoke, invoked in order by hand: the execution is recorded by an
 * ExecutionService whose orchestrator only accepts it, then the run-task handler runs each task and
 * the finalize handler records success. Built as `startLocalPlatform` builds them.
 */
function handlerSequence(
  local: LocalPlatform,
  workflows: WorkflowRegistry,
  logger: Logger,
): (tenantId: string) => Promise<HandlerSegments> {
  const { platform } = local;
  const store = new ExecutionStore(platform.pool);
  const runTask = createRunTaskHandler({
    logger,
    runner: new TaskRunner({
      tenants: platform.tenants,
      workflows,
      store,
      tenantConnections: platform.tenantConnections,
      logger,
    }),
  });
  const finalize = createFinalizeHandler({ logger, finalizer: new ExecutionFinalizer(store, logger) });
  const executions = new ExecutionService({
    registry: platform.registry,
    workflows,
    store,
    orchestrator: acceptOnlyOrchestrator,
    logger,
  });
  return async (tenantId) => {
    const started = await timed(() =>
      executions.start(tenantId, { workflow: linearWorkflow.name, input: {} }),
    );
    const { executionId } = started.result;
    const runTaskMs: number[] = [];
    for (const task of linearWorkflow.tasks) {
      const invocation = await timed(() =>
        runTask(
          { tenantId, executionId, taskId: task.id },
          createLambdaContext({ functionName: 'tenantflow-bench' }),
        ),
      );
      if (invocation.result.outcome !== 'succeeded') {
        throw new Error(`task ${task.id} of ${executionId}: ${invocation.result.outcome}`);
      }
      runTaskMs.push(invocation.ms);
    }
    const finalized = await timed(() =>
      finalize(
        { tenantId, executionId, outcome: 'succeeded' },
        createLambdaContext({ functionName: 'tenantflow-bench' }),
      ),
    );
    if (!finalized.result.finalized) {
      throw new Error(`execution ${executionId} was not finalized`);
    }
    return { startMs: started.ms, runTaskMs, finalizeMs: finalized.ms };
  };
}

/** Starts through the local platform and waits until the LocalOrchestrator has settled it. */
async function runOrchestrated(local: LocalPlatform, tenantId: string): Promise<void> {
  const { executionId, status } = await local.executions.start(tenantId, {
    workflow: linearWorkflow.name,
    input: {},
  });
  if (status !== 'running') {
    throw new Error(`execution ${executionId} did not start: ${status}`);
  }
  // One execution at a time, so draining waits for exactly this one.
  await local.orchestrator.drain();
  const settled = await local.orchestrator.describe({ workflow: linearWorkflow.name, tenantId, executionId });
  if (settled.status !== 'succeeded') {
    throw new Error(`execution ${executionId} ${settled.status}: ${settled.error}: ${settled.cause}`);
  }
}
