import { randomUUID } from 'node:crypto';
import { CONTROL_SCHEMA, qualified, tenantTable } from '@tenantflow/shared/db/sql';
import { createLogger, type Logger } from '@tenantflow/shared/logging/logger';
import { RecoveryService, RecoveryStore, type RecoverySummary } from '@tenantflow/shared/recovery';
import { compileToAsl } from '@tenantflow/shared/workflows/asl';
import { ExecutionFinalizer } from '@tenantflow/shared/workflows/execution-finalizer';
import { ExecutionStore } from '@tenantflow/shared/workflows/execution-store';
import type { Orchestrator } from '@tenantflow/shared/workflows/orchestrator';
import { defineTask } from '@tenantflow/shared/workflows/task';
import { TaskRunner } from '@tenantflow/shared/workflows/task-runner';
import { defineWorkflow } from '@tenantflow/shared/workflows/workflow';
import { WorkflowRegistry } from '@tenantflow/shared/workflows/workflow-registry';
import pg from 'pg';
import { createFinalizeHandler } from '../functions/workflow/finalize.js';
import { createRunTaskHandler } from '../functions/workflow/run-task.js';
import { LocalOrchestrator } from '../local/local-orchestrator.js';
import { LOCAL_TARGETS } from '../local/local-runtime.js';
import type { PlatformServices } from '../local/platform-services.js';
import { benchTenantId, distribution, forEachConcurrently, recordBenchResult, timed } from './support.js';

/** Two tasks, one after the other: what each repaired execution runs once recovery starts it again. */
export const recoveryWorkflow = defineWorkflow({
  name: 'bench_recovery_2',
  description: 'Two tasks in a line, each one INSERT and one ctx.set (bench/recovery.bench.ts)',
  tasks: ['first', 'second'].map((id) => defineTask({ id, run: recordBenchResult })),
  dependsOn: { second: ['first'] },
});

/** Tenants provisioned at once while topping the fleet up or creating the stuck tenants: setup only. */
const SETUP_CONCURRENCY = 4;

/** How much the recovery benchmarks do; `BENCH_QUICK=1` scales them down for a smoke run. */
export interface RecoveryBenchScale {
  readonly quick: boolean;
  /** Timed rounds of the idle pass and of each floor, after one warm-up round. */
  readonly idleRounds: number;
  /** Tenants of their own whose executions are stuck. */
  readonly stuckTenants: number;
  readonly stuckPerTenant: number;
  /** Rounds of `stuckTenants × stuckPerTenant` stuck executions, each repaired by one pass. */
  readonly repairRounds: number;
  /** Idle passes over the fleet (with the stuck tenants in it) timed before the repair rounds. */
  readonly baselinePasses: number;
}

export function recoveryBenchScale(env: NodeJS.ProcessEnv = process.env): RecoveryBenchScale {
  const quick = env.BENCH_QUICK === '1';
  return quick
    ? { quick, idleRounds: 5, stuckTenants: 4, stuckPerTenant: 5, repairRounds: 1, baselinePasses: 3 }
    : { quick, idleRounds: 5, stuckTenants: 10, stuckPerTenant: 10, repairRounds: 3, baselinePasses: 3 };
}

/** Wall times of the timed rounds, in the order they ran. */
export interface RoundTimes {
  readonly samples: readonly number[];
  /** Nearest-rank p50: with an odd count, the median. */
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

function roundTimes(samples: readonly number[]): RoundTimes {
  return {
    samples,
    median: distribution(samples).p50,
    min: Math.min(...samples),
    max: Math.max(...samples),
  };
}

export interface IdleRecoveryResult {
  /** Rows in `tenantflow.tenants`: the tenants one pass reads. */
  readonly tenants: number;
  /** Active tenants, whose schemas the pass scans (and the floor queries). */
  readonly activeTenants: number;
  /** Tenants provisioned to reach the target, and how long that took (setup, not a figure). */
  readonly toppedUp: number;
  readonly setupMs: number;
  /** `RecoveryService.run()`, wall time per pass. */
  readonly pass: RoundTimes;
  /** One floor query per active tenant, one after another, on one open connection. */
  readonly floor: RoundTimes;
  /** The same queries from one queue over as many open connections as the pass's concurrency. */
  readonly parallelFloor: RoundTimes;
  /** RecoveryService's concurrency (TENANTFLOW_RECOVERY_CONCURRENCY, local default). */
  readonly concurrency: number;
  /** pass median / floor median, and / parallel floor median. */
  readonly ratio: number;
  readonly ratioAtEqualParallelism: number;
  /** What one pass sent, counted on its store: tenant pages and batched scan statements. */
  readonly pages: number;
  readonly scanStatements: number;
  readonly scanBatchSize: number;
  readonly pageSize: number;
}

/**
 * One recovery pass over an idle fleet against its floor, in the same run: for each active tenant
 * one round trip of the cheapest query that answers "does this tenant have a stale in-flight
 * execution?", on one open connection, one tenant after another (and again over as many
 * connections as the pass's concurrency, to compare like with like).
 *
 * The fleet is the one the earlier benchmarks left, topped up to `tenants` active tenants through
 * the real `ProvisioningService` if it is smaller, so every schema has every tenant migration
 * (`0004_recovery_claims` included). The pass is a `RecoveryService` wired as the local runtime
 * wires it, with a real `LocalOrchestrator` (no journal) that is never asked anything, since there
 * is nothing to repair. The three paths run interleaved, in an order that rotates every round,
 * after one warm-up round. The floor's connections log in as the platform role (`platformUrl`),
 * as the pass's pool does.
 */
export async function benchmarkIdleRecovery(
  platform: PlatformServices,
  platformUrl: string,
  suffix: string,
  options: { readonly tenants: number; readonly rounds: number },
): Promise<IdleRecoveryResult> {
  const setup = await timed(() => topUpActiveTenants(platform, suffix, options.tenants));
  const registered = await platform.registry.list();
  const activeIds = registered
    .filter((tenant) => tenant.status === 'active')
    .map((tenant) => tenant.tenantId);

  const logger = createLogger('bench-recovery');
  const store = new CountingRecoveryStore(platform.pool);
  const recovery = benchRecovery(platform, store, benchOrchestrator(platform, logger), logger);
  const { concurrency, staleAfterSeconds } = platform.config.recovery;

  const clients = await openClients(platformUrl, concurrency);
  try {
    let lastCounts = { pages: 0, scans: 0 };
    const paths = {
      pass: async () => {
        store.reset();
        const summary = await recovery.run();
        assertIdle(summary, registered.length);
        lastCounts = { pages: store.pages, scans: store.scans };
      },
      floor: () => floorQueries(clients.slice(0, 1), activeIds, staleAfterSeconds),
      parallelFloor: () => floorQueries(clients, activeIds, staleAfterSeconds),
    };
    const names = Object.keys(paths) as (keyof typeof paths)[];
    const samples: Record<keyof typeof paths, number[]> = { pass: [], floor: [], parallelFloor: [] };
    for (let round = 0; round < 1 + options.rounds; round += 1) {
      for (let offset = 0; offset < names.length; offset += 1) {
        const name = names[(round + offset) % names.length] as keyof typeof paths;
        const run = await timed(paths[name]);
        if (round > 0) {
          samples[name].push(run.ms);
        }
      }
    }
    const pass = roundTimes(samples.pass);
    const floor = roundTimes(samples.floor);
    const parallelFloor = roundTimes(samples.parallelFloor);
    return {
      tenants: registered.length,
      activeTenants: activeIds.length,
      toppedUp: setup.result,
      setupMs: setup.ms,
      pass,
      floor,
      parallelFloor,
      concurrency,
      ratio: pass.median / floor.median,
      ratioAtEqualParallelism: pass.median / parallelFloor.median,
      pages: lastCounts.pages,
      scanStatements: lastCounts.scans,
      scanBatchSize: SCAN_BATCH_SIZE,
      pageSize: PAGE_SIZE,
    };
  } finally {
    await Promise.all(clients.map((client) => client.end()));
  }
}

export interface RepairRound {
  readonly executions: number;
  /** `RecoveryService.run()`: scan, claim, describe, start, `markStarted`, release, event, per execution. */
  readonly passMs: number;
  /** From the start of the pass until every repaired execution has succeeded (`orchestrator.drain()`). */
  readonly untilSucceededMs: number;
  /**
   * The same pass over as many other stuck executions, with an orchestrator that accepts each start
   * and runs nothing: recovery's own bookkeeping, without the repaired executions running alongside.
   */
  readonly bookkeepingPassMs: number;
  /** What the pass reported and recorded. */
  readonly examined: number;
  readonly started: number;
  readonly startEvents: number;
  readonly succeeded: number;
}

export interface RecoveryRepairResult {
  readonly tenants: number;
  readonly executionsPerTenant: number;
  readonly tasksPerExecution: number;
  /** Tenants the pass read (the whole fleet, these included). */
  readonly fleetTenants: number;
  /** Provisioning the stuck executions' tenants: setup, not a figure. */
  readonly setupMs: number;
  /** The same pass over the same fleet with nothing stuck, just before the rounds: the scan's share. */
  readonly idlePass: RoundTimes;
  readonly rounds: readonly RepairRound[];
}

/**
 * Time to repair stuck executions: `stuckPerTenant` executions in each of `stuckTenants` tenants of
 * their own, inserted as `pending` through `ExecutionStore.insertWithinLimit` and backdated by an
 * hour, as if the process that started them died before its start call reached the orchestrator.
 * A fresh `LocalOrchestrator` (no journal) has never heard of them, so it answers `not_found` and
 * the pass starts each again; the local orchestrator then runs `bench_recovery_2` through the same
 * run-task and finalize handlers as `npm start`.
 *
 * The pass reads the whole fleet, so idle passes over the same fleet are timed first: the repair's
 * own cost is a round's pass minus that. The repaired executions run while the pass is still
 * repairing others, on the same machine, so each round also times a pass over another set of stuck
 * executions with an orchestrator that runs nothing (those are then failed by hand, so they leave
 * no execution in flight behind).
 */
export async function benchmarkRecoveryRepair(
  platform: PlatformServices,
  suffix: string,
  options: {
    readonly stuckTenants: number;
    readonly stuckPerTenant: number;
    readonly rounds: number;
    readonly baselinePasses: number;
  },
): Promise<RecoveryRepairResult> {
  const tenantIds = Array.from({ length: options.stuckTenants }, (_, index) =>
    benchTenantId('rcv', index, suffix),
  );
  const setup = await timed(() =>
    forEachConcurrently(tenantIds, SETUP_CONCURRENCY, async (tenantId) => {
      await platform.provisioning.provision({ tenantId, name: tenantId });
    }),
  );
  const fleetTenants = (await platform.registry.list()).length;

  const logger = createLogger('bench-recovery');
  const orchestrator = benchOrchestrator(platform, logger);
  const store = new RecoveryStore(platform.pool);
  const recovery = benchRecovery(platform, store, orchestrator, logger);
  const executions = new ExecutionStore(platform.pool);

  const idle: number[] = [];
  for (let pass = 0; pass < options.baselinePasses; pass += 1) {
    const run = await timed(() => recovery.run());
    assertIdle(run.result, fleetTenants);
    idle.push(run.ms);
  }

  const bookkeepingOnly = benchRecovery(platform, store, acceptOnlyOrchestrator, logger);
  const rounds: RepairRound[] = [];
  for (let round = 0; round < options.rounds; round += 1) {
    const notRun = await insertStuckExecutions(platform, executions, tenantIds, options.stuckPerTenant);
    const bookkeeping = await timed(() => bookkeepingOnly.run());
    if (bookkeeping.result.actions.start !== notRun.size * options.stuckPerTenant) {
      throw new Error(
        `recovery round ${round + 1}, orchestrator that runs nothing: ${bookkeeping.result.actions.start} started (outcomes ${JSON.stringify(bookkeeping.result.outcomes)})`,
      );
    }
    for (const [tenantId, ids] of notRun) {
      for (const executionId of ids) {
        await executions.finalize(
          tenantId,
          executionId,
          'failed',
          'bench: started by an orchestrator that runs nothing',
        );
      }
    }

    const stuck = await insertStuckExecutions(platform, executions, tenantIds, options.stuckPerTenant);
    const started = performance.now();
    const summary = await recovery.run();
    const passMs = performance.now() - started;
    await orchestrator.drain();
    const untilSucceededMs = performance.now() - started;
    const succeeded = await countSucceeded(platform, stuck);
    const startEvents = await countStartEvents(platform, summary.runId);
    if (succeeded !== stuck.size * options.stuckPerTenant || summary.actions.start !== succeeded) {
      throw new Error(
        `recovery round ${round + 1}: ${summary.actions.start} started, ${succeeded} succeeded of ${stuck.size * options.stuckPerTenant} (outcomes ${JSON.stringify(summary.outcomes)})`,
      );
    }
    rounds.push({
      executions: stuck.size * options.stuckPerTenant,
      passMs,
      untilSucceededMs,
      bookkeepingPassMs: bookkeeping.ms,
      examined: summary.executionsExamined,
      started: summary.actions.start,
      startEvents,
      succeeded,
    });
  }
  return {
    tenants: options.stuckTenants,
    executionsPerTenant: options.stuckPerTenant,
    tasksPerExecution: recoveryWorkflow.tasks.length,
    fleetTenants,
    setupMs: setup.ms,
    idlePass: roundTimes(idle),
    rounds,
  };
}

/** RecoveryService's defaults for these two (RecoveryOptions `pageSize`, `scanBatchSize`). */
const PAGE_SIZE = 200;
const SCAN_BATCH_SIZE = 50;

/** Counts the statements a pass sends per tenant page and per scan batch. */
class CountingRecoveryStore extends RecoveryStore {
  pages = 0;
  scans = 0;

  reset(): void {
    this.pages = 0;
    this.scans = 0;
  }

  override tenantPage(range: Parameters<RecoveryStore['tenantPage']>[0]) {
    this.pages += 1;
    return super.tenantPage(range);
  }

  override findStuckExecutions(...args: Parameters<RecoveryStore['findStuckExecutions']>) {
    this.scans += 1;
    return super.findStuckExecutions(...args);
  }
}

/** Accepts every start and runs nothing; has never heard of anything else. */
const acceptOnlyOrchestrator: Orchestrator = {
  start: async (request) => ({ ref: `bench:${request.executionId}`, alreadyStarted: false }),
  describe: async () => ({ status: 'not_found', redrivable: false }),
  stop: async () => {},
  redrive: async () => ({ kind: 'not_redrivable', reason: 'benchmark orchestrator' }),
};

/** The recovery service as the local runtime wires it, with the platform's configured options. */
function benchRecovery(
  platform: PlatformServices,
  store: RecoveryStore,
  orchestrator: Orchestrator,
  logger: Logger,
): RecoveryService {
  return new RecoveryService({
    store,
    executions: new ExecutionStore(platform.pool),
    registry: platform.registry,
    orchestrator,
    workflows: new WorkflowRegistry([recoveryWorkflow]),
    lifecycle: platform.lifecycle,
    logger,
    options: { ...platform.config.recovery, pageSize: PAGE_SIZE, scanBatchSize: SCAN_BATCH_SIZE },
  });
}

/**
 * A LocalOrchestrator as `createLocalRuntime` builds one (the ASL `compileToAsl` gives CDK, the
 * in-process run-task and finalize handlers) but with no journal: it knows only what it started, so
 * an execution started before it existed is `not_found`. Retry waits are 0 ms.
 */
function benchOrchestrator(platform: PlatformServices, logger: Logger): LocalOrchestrator {
  const store = new ExecutionStore(platform.pool);
  const workflows = new WorkflowRegistry([recoveryWorkflow]);
  return new LocalOrchestrator({
    definitions: { [recoveryWorkflow.name]: compileToAsl(recoveryWorkflow, LOCAL_TARGETS) },
    lambdas: {
      [LOCAL_TARGETS.taskRunnerArn]: createRunTaskHandler({
        logger,
        runner: new TaskRunner({
          tenants: platform.tenants,
          workflows,
          store,
          tenantConnections: platform.tenantConnections,
          logger,
        }),
      }),
      [LOCAL_TARGETS.finalizeArn]: createFinalizeHandler({
        logger,
        finalizer: new ExecutionFinalizer(store, logger),
      }),
    },
    retryIntervalMs: 0,
  });
}

/** An idle pass covers every tenant and finds nothing; anything else would time something else. */
function assertIdle(summary: RecoverySummary, tenants: number): void {
  const findings = Object.values(summary.findings).reduce((sum, count) => sum + count, 0);
  if (!summary.complete || summary.tenantsScanned !== tenants || findings > 0) {
    throw new Error(
      `an idle recovery pass scanned ${summary.tenantsScanned}/${tenants} tenants and found ${JSON.stringify(summary.findings)}`,
    );
  }
}

/**
 * The floor: per active tenant, one round trip of the cheapest query that still reads its
 * `executions` table for a stale in-flight row, with the pass's threshold. Tenants are taken from
 * one queue by `clients.length` connections that are already open, as the pass's pool is.
 */
async function floorQueries(
  clients: readonly pg.Client[],
  tenantIds: readonly string[],
  staleAfterSeconds: number,
): Promise<void> {
  let next = 0;
  await Promise.all(
    clients.map(async (client) => {
      for (let index = next++; index < tenantIds.length; index = next++) {
        await client.query(
          `SELECT 1 FROM ${tenantTable(tenantIds[index] as string, 'executions')}
            WHERE status IN ('pending', 'running')
              AND updated_at < now() - make_interval(secs => $1::double precision)
            LIMIT 1`,
          [staleAfterSeconds],
        );
      }
    }),
  );
}

/** Connections named `tenantflow-bench`, opened before timing starts. */
async function openClients(url: string, count: number): Promise<pg.Client[]> {
  const clients: pg.Client[] = [];
  try {
    for (let index = 0; index < count; index += 1) {
      const client = new pg.Client({ connectionString: url, application_name: 'tenantflow-bench' });
      await client.connect();
      clients.push(client);
    }
    return clients;
  } catch (error) {
    await Promise.all(clients.map((client) => client.end()));
    throw error;
  }
}

/**
 * `perTenant` executions in each tenant, as `ExecutionService.start` records them (`pending`,
 * through `insertWithinLimit`), then quiet for an hour: their start never reached the orchestrator.
 * Returns each tenant's new execution ids.
 */
async function insertStuckExecutions(
  platform: PlatformServices,
  executions: ExecutionStore,
  tenantIds: readonly string[],
  perTenant: number,
): Promise<Map<string, string[]>> {
  const stuck = new Map<string, string[]>();
  await forEachConcurrently(tenantIds, SETUP_CONCURRENCY, async (tenantId) => {
    const ids: string[] = [];
    for (let index = 0; index < perTenant; index += 1) {
      const { executionId } = await executions.insertWithinLimit(
        tenantId,
        { executionId: randomUUID(), workflow: recoveryWorkflow.name, input: { index } },
        perTenant,
      );
      ids.push(executionId);
    }
    await platform.pool.query(
      `UPDATE ${tenantTable(tenantId, 'executions')} SET updated_at = now() - interval '1 hour' WHERE id = ANY($1)`,
      [ids],
    );
    stuck.set(tenantId, ids);
  });
  return stuck;
}

async function countSucceeded(
  platform: PlatformServices,
  stuck: ReadonlyMap<string, string[]>,
): Promise<number> {
  let succeeded = 0;
  for (const [tenantId, ids] of stuck) {
    const { rows } = await platform.pool.query<{ count: number }>(
      `SELECT count(*)::int AS count FROM ${tenantTable(tenantId, 'executions')}
        WHERE id = ANY($1) AND status = 'succeeded'`,
      [ids],
    );
    succeeded += rows[0]?.count ?? 0;
  }
  return succeeded;
}

async function countStartEvents(platform: PlatformServices, runId: string): Promise<number> {
  const { rows } = await platform.pool.query<{ count: number }>(
    `SELECT count(*)::int AS count FROM ${qualified(CONTROL_SCHEMA, 'recovery_events')}
      WHERE run_id = $1 AND action = 'start' AND outcome = 'done'`,
    [runId],
  );
  return rows[0]?.count ?? 0;
}

/**
 * Provisions `recfleet####` tenants through the real service until `count` are active (as the fleet
 * migration benchmark tops up its fleet), reusing every one already there. Returns how many it
 * provisioned.
 */
async function topUpActiveTenants(
  platform: PlatformServices,
  suffix: string,
  count: number,
): Promise<number> {
  const active = (await platform.registry.list()).filter((tenant) => tenant.status === 'active').length;
  const missing = Math.max(0, count - active);
  const ids = Array.from({ length: missing }, (_, index) => benchTenantId('recfleet', index, suffix));
  await forEachConcurrently(ids, SETUP_CONCURRENCY, async (tenantId) => {
    await platform.provisioning.provision({ tenantId, name: tenantId });
  });
  return missing;
}
