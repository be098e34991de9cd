import { tenantTable } from '@tenantflow/shared/db/sql';
import { defineTask } from '@tenantflow/shared/workflows/task';
import { defineWorkflow } from '@tenantflow/shared/workflows/workflow';
import type { LocalPlatform } from '../local/local-platform.js';
import {
  benchTenantId,
  type Distribution,
  distribution,
  recordBenchResult,
  sampleWhile,
  timed,
  withClient,
} from './support.js';

/** One task, three in parallel after it, one that joins them: waves of 1, 3 and 1. */
export const fanOutWorkflow = defineWorkflow({
  name: 'bench_fan_out_5',
  description:
    'A task, three in parallel, a join; each one INSERT and one ctx.set (bench/workflow-throughput.bench.ts)',
  tasks: ['prepare', 'branch_a', 'branch_b', 'branch_c', 'combine'].map((id) =>
    defineTask({ id, run: recordBenchResult }),
  ),
  dependsOn: {
    branch_a: ['prepare'],
    branch_b: ['prepare'],
    branch_c: ['prepare'],
    combine: ['branch_a', 'branch_b', 'branch_c'],
  },
});

/** Executions per tenant in the warm-up round: enough to open both connections of each tenant pool. */
const WARM_UP_PER_TENANT = 2;

/** How often the background sampler counts backends while a round runs. */
const SAMPLE_INTERVAL_MS = 10;

/**
 * The platform pool's connections (`tenantflow`) and the tenant-role ones (`tenantflow-task`)
 * of this database. The sampler's own connection is `tenantflow-bench`, so it never counts itself;
 * it logs in as the admin, a member of the platform and tenant roles, so it sees their sessions.
 */
const BACKENDS = `SELECT count(*) FILTER (WHERE application_name = 'tenantflow')::int AS platform,
       count(*) FILTER (WHERE application_name = 'tenantflow-task')::int AS tenant
  FROM pg_stat_activity
 WHERE backend_type = 'client backend' AND datname = current_database()`;

/** What `createTenantAccess` gives the tenant pools on the local server (maxTenants 32 × 2 connections). */
const LOCAL_TENANT_POOLS_KEPT = 32;
const CONNECTIONS_PER_TENANT_POOL = 2;

export interface ThroughputRound {
  readonly executions: number;
  readonly succeeded: number;
  /** Task runs committed (`task_runs.status = 'succeeded'`) for this round's executions. */
  readonly tasksCompleted: number;
  /** Task runs that needed more than one attempt. */
  readonly tasksRetried: number;
  /** From the first `start` call to the last execution settled. */
  readonly wallMs: number;
  readonly tasksPerSecond: number;
  /** Per execution: from its `start` call until the orchestrator settled it. */
  readonly latency: Distribution;
  /** Per execution: from its `start` call until the orchestrator had it (row inserted, tenant row locked). */
  readonly startLatency: Distribution;
  /** CPU time of this process (user + system, all its threads) while the round ran. */
  readonly processCpuMs: number;
  /** Backends open just before the round started (idle ones left by earlier rounds included). */
  readonly backendsBefore: number;
  /** Most backends seen at one sample: platform pool + tenant roles, and each alone. */
  readonly peakBackends: number;
  readonly peakPlatformBackends: number;
  readonly peakTenantBackends: number;
  /** The first failure, if any execution did not succeed. */
  readonly firstFailure?: string;
}

export interface WorkflowThroughputResult {
  readonly tenants: number;
  readonly executionsPerTenant: number;
  readonly tasksPerExecution: number;
  /** Provisioning the tenants: setup, not a figure. */
  readonly setupMs: number;
  readonly rounds: readonly ThroughputRound[];
  /** The platform pool's max plus what the tenant pools may hold for these tenants. */
  readonly backendBound: number;
  readonly platformPoolMax: number;
}

/**
 * Local throughput: `tenants × executionsPerTenant` executions of a 5-task fan-out workflow started
 * at once on the local platform, and completed tasks per second of wall time. Each round starts
 * every execution concurrently through `executions.start` and waits for the LocalOrchestrator to
 * settle them all; a background sampler counts the PostgreSQL backends the platform holds.
 *
 * `fanOutWorkflow` must be in the local platform's workflow registry.
 */
export async function benchmarkWorkflowThroughput(
  local: LocalPlatform,
  adminUrl: string,
  suffix: string,
  scale: { tenants: number; executionsPerTenant: number; rounds: number },
): Promise<WorkflowThroughputResult> {
  const { platform } = local;
  const tenantIds = Array.from({ length: scale.tenants }, (_, index) => benchTenantId('wft', index, suffix));
  const setup = await timed(async () => {
    for (const tenantId of tenantIds) {
      await platform.tenantAdmin.register({ tenantId, name: tenantId });
    }
    // Registration starts each onboarding state machine; the tenants run work once they are active.
    await platform.lifecycleOrchestrator.drain();
  });
  for (const tenantId of tenantIds) {
    const tenant = await platform.registry.get(tenantId);
    if (tenant?.status !== 'active') {
      throw new Error(`tenant ${tenantId} was not onboarded: ${JSON.stringify(tenant)}`);
    }
  }

  const rounds = await withClient(adminUrl, async (sampler) => {
    const countBackends = async () =>
      (await sampler.query<{ platform: number; tenant: number }>(BACKENDS)).rows[0];
    await runRound(local, tenantIds, WARM_UP_PER_TENANT);
    const measured: ThroughputRound[] = [];
    for (let round = 0; round < scale.rounds; round += 1) {
      const before = await countBackends();
      const cpuBefore = process.cpuUsage();
      const sampled = await sampleWhile(countBackends, SAMPLE_INTERVAL_MS, () =>
        runRound(local, tenantIds, scale.executionsPerTenant),
      );
      const cpuUsed = process.cpuUsage(cpuBefore);
      const counts = sampled.samples.flatMap((sample) => (sample === undefined ? [] : [sample]));
      measured.push({
        ...(await summariseRound(local, sampled.result)),
        processCpuMs: (cpuUsed.user + cpuUsed.system) / 1000,
        backendsBefore: (before?.platform ?? 0) + (before?.tenant ?? 0),
        peakBackends: Math.max(0, ...counts.map((count) => count.platform + count.tenant)),
        peakPlatformBackends: Math.max(0, ...counts.map((count) => count.platform)),
        peakTenantBackends: Math.max(0, ...counts.map((count) => count.tenant)),
      });
    }
    return measured;
  });

  return {
    tenants: scale.tenants,
    executionsPerTenant: scale.executionsPerTenant,
    tasksPerExecution: fanOutWorkflow.tasks.length,
    setupMs: setup.ms,
    rounds,
    backendBound:
      platform.config.dbPoolMax +
      Math.min(scale.tenants, LOCAL_TENANT_POOLS_KEPT) * CONNECTIONS_PER_TENANT_POOL,
    platformPoolMax: platform.config.dbPoolMax,
  };
}

interface StartedExecution {
  readonly tenantId: string;
  readonly executionId: string;
  readonly status: string;
  /** `Date.now()` just before `start` was called: the orchestrator reports its times as Dates. */
  readonly requestedAt: number;
}

interface RoundRun {
  readonly started: readonly StartedExecution[];
  readonly wallMs: number;
}

/** Starts `perTenant` executions for every tenant, all at once, and waits for every one to settle. */
async function runRound(
  local: LocalPlatform,
  tenantIds: readonly string[],
  perTenant: number,
): Promise<RoundRun> {
  const run = await timed(async () => {
    const started = await Promise.all(
      tenantIds.flatMap((tenantId) =>
        Array.from({ length: perTenant }, async (): Promise<StartedExecution> => {
          const requestedAt = Date.now();
          const { executionId, status } = await local.executions.start(tenantId, {
            workflow: fanOutWorkflow.name,
            input: {},
          });
          return { tenantId, executionId, status, requestedAt };
        }),
      ),
    );
    await local.orchestrator.drain();
    return started;
  });
  return { started: run.result, wallMs: run.ms };
}

/** Counts, from the orchestrator and the tenants' `task_runs`, what a round completed. */
async function summariseRound(
  local: LocalPlatform,
  run: RoundRun,
): Promise<
  Omit<
    ThroughputRound,
    'processCpuMs' | 'backendsBefore' | 'peakBackends' | 'peakPlatformBackends' | 'peakTenantBackends'
  >
> {
  const latency: number[] = [];
  const startLatency: number[] = [];
  let succeeded = 0;
  let firstFailure: string | undefined;
  for (const execution of run.started) {
    const described = await local.orchestrator.describe({
      workflow: fanOutWorkflow.name,
      tenantId: execution.tenantId,
      executionId: execution.executionId,
    });
    if (described.status === 'succeeded') {
      succeeded += 1;
    } else {
      firstFailure ??= `${execution.tenantId}/${execution.executionId}: start ${execution.status}, orchestrator ${described.status} ${described.error ?? ''} ${described.cause ?? ''}`;
    }
    if (described.startedAt !== undefined) {
      startLatency.push(described.startedAt.getTime() - execution.requestedAt);
    }
    if (described.stoppedAt !== undefined) {
      latency.push(described.stoppedAt.getTime() - execution.requestedAt);
    }
  }

  if (succeeded === 0) {
    throw new Error(`no execution of the round succeeded; the first: ${firstFailure}`);
  }

  const byTenant = new Map<string, string[]>();
  for (const execution of run.started) {
    byTenant.set(execution.tenantId, [...(byTenant.get(execution.tenantId) ?? []), execution.executionId]);
  }
  let tasksCompleted = 0;
  let tasksRetried = 0;
  for (const [tenantId, executionIds] of byTenant) {
    const { rows } = await local.platform.pool.query<{ succeeded: number; retried: number }>(
      `SELECT count(*) FILTER (WHERE status = 'succeeded')::int AS succeeded,
              count(*) FILTER (WHERE attempt > 1)::int AS retried
         FROM ${tenantTable(tenantId, 'task_runs')} WHERE execution_id = ANY($1)`,
      [executionIds],
    );
    tasksCompleted += rows[0]?.succeeded ?? 0;
    tasksRetried += rows[0]?.retried ?? 0;
  }

  return {
    executions: run.started.length,
    succeeded,
    tasksCompleted,
    tasksRetried,
    wallMs: run.wallMs,
    tasksPerSecond: tasksCompleted / (run.wallMs / 1000),
    latency: distribution(latency),
    startLatency: distribution(startLatency),
    ...(firstFailure === undefined ? {} : { firstFailure }),
  };
}
