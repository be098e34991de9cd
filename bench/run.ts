/**
 * `npm run bench`: runs every benchmark and prints the figures it measured. Nothing here asserts a
 * time: figures go into docs/benchmarks.md with the machine they were measured on.
 *
 * The database benchmarks share one PostgreSQL (embedded, durable commits, unless DATABASE_URL is
 * set), on a database with production's roles: the platform's pool logs in as the platform role and
 * DDL runs as a non-superuser admin; a superuser only creates the database and the admin role, and
 * cleans up. They run in order: provisioning leaves tenants that the fleet migration tops up to its fleet,
 * an idle recovery pass reads that fleet, and the connection benchmark serves it; the recovery
 * repair benchmark follows, on tenants of its own. `BENCH_QUICK=1` scales them down for a smoke run.
 *
 * The workflow benchmarks follow on the same server, on the local platform (`startLocalPlatform`)
 * with tenants of their own, once the first platform has closed its connections. The handler
 * bundles are measured last, with the server stopped, then the deployment packages CDK builds
 * (`cold-start`).
 *
 * `npm run bench -- <name>…` runs the named benchmarks only (`bench/results.ts` lists the names;
 * `cold-start`, `handler-bundle` and `tenant-switch` need no database). Each benchmark ends with
 * one `RESULT <name> key=value …` line beside its table, for machines to read.
 */
import { cpus } from 'node:os';
import { WorkflowRegistry } from '@tenantflow/shared/workflows/workflow-registry';
import { exampleTables } from '../examples/tables.js';
import { benchmarkAuthorizer } from './authorizer.bench.js';
import { benchmarkColdStart, type ColdStartResult } from './cold-start.bench.js';
import { benchmarkConnections, type ConnectionPathResult } from './connections.bench.js';
import { benchmarkFaults, type FaultsBenchmarkResult } from './faults.bench.js';
import {
  benchmarkFleetMigration,
  type FleetMigrationBenchmarkResult,
  topUpActiveTenants,
} from './fleet-migration.bench.js';
import { BUNDLE_TARGETS, benchmarkHandlerBundles, type HandlerBundleResult } from './handler-bundle.bench.js';
import { benchmarkLoad, type LoadBenchmarkResult, type LoadPhase, loadBenchScale } from './load.bench.js';
import {
  benchmarkProvisioning,
  benchmarkProvisioningAtScale,
  type ProvisioningAtScaleResult,
  type ProvisioningBenchmarkResult,
  ProvisioningStepTimer,
  STEP_CONTENTS,
  type StepSegment,
} from './provisioning.bench.js';
import {
  benchmarkIdleRecovery,
  benchmarkRecoveryRepair,
  type IdleRecoveryResult,
  type RecoveryRepairResult,
  type RepairRound,
  type RoundTimes,
  recoveryBenchScale,
} from './recovery.bench.js';
import { BENCHMARK_NAMES, type BenchmarkName, printResult, selectBenchmarks } from './results.js';
import { benchmarkStart, type StartBenchmarkResult, startBenchScale } from './start.bench.js';
import {
  type BenchDatabase,
  benchScale,
  createBenchPlatform,
  type Distribution,
  distribution,
  fmt,
  openBenchDatabase,
  startBenchLocalPlatform,
  timed,
  workflowBenchScale,
} from './support.js';
import { benchmarkTenantSwitch } from './tenant-switch.bench.js';
import {
  benchmarkWorkflowOverhead,
  linearWorkflow,
  type WorkflowOverheadResult,
} from './workflow-overhead.bench.js';
import {
  benchmarkWorkflowThroughput,
  fanOutWorkflow,
  type WorkflowThroughputResult,
} from './workflow-throughput.bench.js';

const cpu = cpus()[0]?.model ?? 'unknown CPU';

/** Module initialisation of every function, p50, as deployed: the target of `cold-start`. */
const COLD_START_TARGET_MS = 120;

let selected: ReadonlySet<BenchmarkName>;
try {
  selected = selectBenchmarks(process.argv.slice(2));
} catch (error) {
  console.error((error as Error).message);
  process.exit(2);
}
const runs = (name: BenchmarkName) => selected.has(name);
console.log(
  `tenantflow benchmarks — Node ${process.version}, ${cpus().length} × ${cpu}${selected.size < BENCHMARK_NAMES.length ? ` — ${[...selected].join(', ')}` : ''}\n`,
);

if (runs('tenant-switch')) {
  const result = await benchmarkTenantSwitch();
  console.log('TenantContextSwitch.switch() vs bare AsyncLocalStorage.run (async callback, awaited)');
  console.log(
    `  iterations per round        ${result.iterations.toLocaleString('en-US')} (best of 5 rounds)`,
  );
  console.log(`  AsyncLocalStorage.run       ${result.baselineNsPerCall.toFixed(0)} ns/call`);
  console.log(`  switch() (memory registry)  ${result.switchNsPerCall.toFixed(0)} ns/call`);
  console.log(`  ratio                       ${result.ratio.toFixed(2)}× (target ≤ 2×)`);
  printResult('tenant-switch', {
    ratio: result.ratio,
    switch_ns: result.switchNsPerCall,
    baseline_ns: result.baselineNsPerCall,
    met: result.ratio <= 2,
  });
}

const PLATFORM_BENCHMARKS: readonly BenchmarkName[] = [
  'provisioning',
  'fleet-migration',
  'recovery',
  'connections',
];
const WORKFLOW_BENCHMARKS: readonly BenchmarkName[] = [
  'task-overhead',
  'start',
  'authorizer',
  'throughput',
  'load',
];
if ([...PLATFORM_BENCHMARKS, ...WORKFLOW_BENCHMARKS].some(runs)) {
  const scale = benchScale();
  const recoveryScale = recoveryBenchScale();
  const database = await openBenchDatabase();
  console.log(`\n${database.description}${scale.quick ? ' — BENCH_QUICK=1, counts scaled down' : ''}`);
  const stepTimer = new ProvisioningStepTimer();
  const databaseRun = await timed(async () => {
    try {
      if (PLATFORM_BENCHMARKS.some(runs)) {
        const bench = await createBenchPlatform(database, { failpoints: stepTimer });
        try {
          const provisioning = runs('provisioning')
            ? await benchmarkProvisioning(
                bench.platform,
                database.adminUrl,
                database.suffix,
                stepTimer,
                scale.provisionedTenants,
              )
            : undefined;
          if (provisioning !== undefined) {
            printProvisioning(provisioning);
          }
          if (runs('fleet-migration')) {
            const fleet = await benchmarkFleetMigration(
              bench.platform,
              database.adminUrl,
              database.suffix,
              scale.fleetTenants,
            );
            printFleetMigration(fleet);
            const serial = fleet.runs.find((run) => run.label === 'new migration' && run.concurrency === 1);
            const parallel = fleet.runs.find((run) => run.label === 'new migration' && run.concurrency > 1);
            printResult('fleet-migration', {
              schemas: fleet.schemas,
              ratio_c1: serial?.ratio ?? Number.NaN,
              ratio_default: parallel?.ratioAtEqualParallelism ?? Number.NaN,
              concurrency_default: parallel?.concurrency ?? Number.NaN,
              ms_per_schema_c1: serial?.msPerSchema ?? Number.NaN,
              met:
                (serial?.ratio ?? Number.POSITIVE_INFINITY) <= 3 &&
                (parallel?.ratioAtEqualParallelism ?? Number.POSITIVE_INFINITY) <= 1.5,
            });
          }
          // Here the fleet is `fleetTenants` active tenants (when the fleet benchmark ran): the
          // later benchmarks add their own.
          const idleRecovery = runs('recovery')
            ? await benchmarkIdleRecovery(bench.platform, database.platformUrl, database.suffix, {
                tenants: scale.fleetTenants,
                rounds: recoveryScale.idleRounds,
              })
            : undefined;
          if (idleRecovery !== undefined) {
            printIdleRecovery(idleRecovery);
          }
          if (provisioning !== undefined) {
            const toppedUp = await topUpActiveTenants(bench.platform, database.suffix, scale.fleetTenants);
            if (toppedUp > 0) {
              console.log(`\n(provisioned ${toppedUp} more tenants for the fleet, not measured)`);
            }
            const atScale = await benchmarkProvisioningAtScale(
              bench.platform,
              database.adminUrl,
              database.suffix,
              stepTimer,
              scale.tenantsAtScale,
            );
            printProvisioningAtScale(atScale);
            printResult('provisioning', {
              ratio: provisioning.ratioP50,
              scale_ratio: atScale.service.p50 / provisioning.service.p50,
              p50_ms: provisioning.service.p50,
              floor_p50_ms: provisioning.floor.p50,
              tenants: provisioning.tenants,
              p50_at_scale_ms: atScale.service.p50,
              tenants_at_scale: atScale.existingTenants,
              met: provisioning.ratioP50 <= 2 && atScale.service.p50 / provisioning.service.p50 <= 1.2,
            });
          }
          if (runs('connections')) {
            const connections = await benchmarkConnections(
              bench.platform,
              database.adminUrl,
              scale.fleetTenants,
            );
            console.log(`\nConnections while serving ${connections.tenants.toLocaleString('en-US')} tenants`);
            printConnectionPath(
              'platform path: registry get + switch() + schema-qualified query, via platform.pool',
              connections.platformPath,
              'pool max (TENANTFLOW_DB_POOL_MAX, local default)',
            );
            printConnectionPath(
              "tenant-role path: tenantDb(id) + 2 concurrent 'SELECT 1' per tenant",
              connections.tenantPath,
              `maxTenants ${connections.tenantPath.poolsKept} × maxConnectionsPerTenant ${connections.tenantPath.connectionsPerPool}`,
            );
            console.log(`    tenant pools open at the end    ${connections.tenantPath.openPools}`);
            printResult('connections', {
              tenants: connections.tenants,
              platform_peak: connections.platformPath.peak,
              platform_bound: connections.platformPath.bound,
              tenant_peak: connections.tenantPath.peak,
              tenant_bound: connections.tenantPath.bound,
              met:
                connections.platformPath.peak <= connections.platformPath.bound &&
                connections.tenantPath.peak <= connections.tenantPath.bound,
            });
          }
          if (idleRecovery !== undefined) {
            // Recovery logs an INFO line per repair and finalize one per execution; loggers read
            // the level when they are built, and the benchmark builds its own.
            process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
            const repair = await benchmarkRecoveryRepair(bench.platform, database.suffix, {
              stuckTenants: recoveryScale.stuckTenants,
              stuckPerTenant: recoveryScale.stuckPerTenant,
              rounds: recoveryScale.repairRounds,
              baselinePasses: recoveryScale.baselinePasses,
            });
            printRecoveryRepair(repair);
            printResult('recovery', {
              tenants: idleRecovery.activeTenants,
              idle_ratio: idleRecovery.ratio,
              idle_pass_ms: idleRecovery.pass.median,
              repaired: repair.rounds.reduce((sum, round) => sum + round.started, 0),
              repair_pass_ms: distribution(repair.rounds.map((round) => round.passMs)).p50,
              unrecovered: repair.rounds.reduce(
                (sum, round) => sum + (round.executions - round.succeeded),
                0,
              ),
            });
          }
        } finally {
          await bench.close();
        }
      }
      // After the first platform has closed: its tenant pools and the local platform's together
      // would pass PostgreSQL's default 100 connections.
      if (WORKFLOW_BENCHMARKS.some(runs)) {
        await runWorkflowBenchmarks(database);
      }
    } finally {
      await database.close();
    }
  });
  console.log(`\nDatabase benchmarks took ${fmt(databaseRun.ms / 1000)} s`);
}

if (runs('faults')) {
  const faults = await timed(() =>
    benchmarkFaults({ executions: 30, pauseSeconds: benchScale().quick ? 3 : 10 }),
  );
  printFaults(faults.result);
  console.log(`\nFault benchmarks took ${fmt(faults.ms / 1000)} s`);
  const outage = faults.result.outageAnswers;
  printResult('faults', {
    executions: faults.result.executions,
    lost: faults.result.lost,
    duplicated: faults.result.duplicated,
    unrecovered: faults.result.unrecovered,
    outage_503: outage.filter((answer) => answer.status === 503 && answer.retryAfter !== undefined).length,
    outage_other: outage.filter((answer) => answer.status !== 503 || answer.retryAfter === undefined).length,
    shutdown_ms: faults.result.shutdown.ms,
    stopped_cleanly: faults.result.shutdown.printedStopped && !faults.result.shutdown.pidFileLeft,
    recovered_ms: faults.result.recoveredMs,
    pause_errors: faults.result.pause.errorsAfter,
  });
}

if (runs('handler-bundle')) {
  const imports = workflowBenchScale().bundleImports;
  const bundles = await timed(() => benchmarkHandlerBundles(imports));
  printHandlerBundles(bundles.result, imports);
  console.log(`\nHandler bundle benchmarks took ${fmt(bundles.ms / 1000)} s`);
  printResult('handler-bundle', {
    bundles: bundles.result.length,
    max_kb: Math.max(...bundles.result.map((bundle) => bundle.bytes / 1024)),
    max_import_p50_ms: Math.max(...bundles.result.map((bundle) => bundle.importMs.p50)),
    met: bundles.result.every(
      (bundle) =>
        bundle.bytes / 1024 <= BUNDLE_TARGETS.maxKb && bundle.importMs.p50 <= BUNDLE_TARGETS.maxImportMs,
    ),
  });
}

if (runs('cold-start')) {
  await runColdStart();
}

async function runColdStart(): Promise<void> {
  const imports = workflowBenchScale().bundleImports;
  const coldStart = await timed(() => benchmarkColdStart(imports));
  printColdStart(coldStart.result, imports);
  console.log(`\nDeployment package benchmarks took ${fmt(coldStart.ms / 1000)} s`);
  const slowest = coldStart.result.functions.reduce((worst, fn) =>
    fn.initMs.p50 > worst.initMs.p50 ? fn : worst,
  );
  printResult('cold-start', {
    functions: coldStart.result.functions.length,
    max_init_p50_ms: slowest.initMs.p50,
    slowest: slowest.name,
    layer_kb: coldStart.result.layer.sizes.bytes / 1024,
    met: slowest.initMs.p50 <= COLD_START_TARGET_MS,
  });
}

async function runWorkflowBenchmarks(benchDatabase: BenchDatabase): Promise<void> {
  // The finalize handler logs a line per execution at INFO: hundreds of JSON lines between the
  // figures. Loggers read the level when they are built, so this covers the local platform's.
  process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
  const workflowScale = workflowBenchScale();
  // Their tasks write to `example_results`, the examples' table (see `recordBenchResult`).
  const workflows = new WorkflowRegistry([linearWorkflow, fanOutWorkflow], {
    tenantMigrations: [exampleTables],
  });
  const bench = await startBenchLocalPlatform(benchDatabase, workflows);
  try {
    if (runs('task-overhead')) {
      const overhead = await benchmarkWorkflowOverhead(
        bench.local,
        workflows,
        benchDatabase.adminUrl,
        benchDatabase.suffix,
        workflowScale.overheadExecutions,
      );
      printWorkflowOverhead(overhead);
      printResult('task-overhead', {
        overhead_ms: overhead.overheadPerTaskMs,
        round_trips: overhead.perTask.roundTrips,
        commits: overhead.perTask.commits,
        bookkeeping_ms: overhead.handlersPerTaskMs,
        interpreter_ms: overhead.interpreterPerTaskMs,
        met:
          overhead.overheadPerTaskMs <= 1 &&
          overhead.perTask.roundTrips <= 3 &&
          overhead.perTask.commits <= 1,
      });
    }
    if (runs('start')) {
      const start = await benchmarkStart(
        bench.local,
        workflows,
        benchDatabase.adminUrl,
        benchDatabase.suffix,
        startBenchScale(),
      );
      printStart(start);
      printResult('start', {
        round_trips: start.roundTrips,
        commits: start.writeTransactions,
        p50_ms: start.start.p50,
        p99_ms: start.start.p99,
        floor_p50_ms: start.floor.p50,
        floor_p99_ms: start.floor.p99,
        clients: start.clients,
        met: start.roundTrips <= 4,
      });
    }
    if (runs('authorizer')) {
      const authorizer = await benchmarkAuthorizer(
        bench.local,
        benchDatabase.adminUrl,
        benchDatabase.suffix,
        workflowScale.quick ? 200 : 2_000,
      );
      console.log(
        `\nThe tenant routes' authorizer, ${authorizer.calls} calls with one API key, one after another (API Gateway's own cache off)`,
      );
      console.log(
        `  key cache on (${authorizer.cacheSeconds} s)   ${describe(authorizer.cached)}   ${fmt(authorizer.roundTrips, 3)} round trips per call`,
      );
      console.log(
        `  key cache off        ${describe(authorizer.uncached)}   ${fmt(authorizer.uncachedRoundTrips, 3)} round trips per call`,
      );
      printResult('authorizer', {
        round_trips: authorizer.roundTrips,
        uncached_round_trips: authorizer.uncachedRoundTrips,
        p50_ms: authorizer.cached.p50,
        uncached_p50_ms: authorizer.uncached.p50,
        cache_seconds: authorizer.cacheSeconds,
        met: authorizer.roundTrips <= 1,
      });
    }
    if (runs('throughput')) {
      const throughput = await benchmarkWorkflowThroughput(
        bench.local,
        benchDatabase.adminUrl,
        benchDatabase.suffix,
        {
          tenants: workflowScale.throughputTenants,
          executionsPerTenant: workflowScale.executionsPerTenant,
          rounds: workflowScale.throughputRounds,
        },
      );
      printWorkflowThroughput(throughput);
      const rates = throughput.rounds.map((round) => round.tasksPerSecond);
      printResult('throughput', {
        tenants: throughput.tenants,
        executions: throughput.tenants * throughput.executionsPerTenant,
        tasks_per_s: distribution(rates).p50,
        failed: throughput.rounds.reduce((sum, round) => sum + (round.executions - round.succeeded), 0),
      });
    }
    if (runs('load')) {
      const load = await benchmarkLoad(
        bench.local,
        benchDatabase.adminUrl,
        benchDatabase.suffix,
        loadBenchScale(),
      );
      printLoad(load);
      printResult('load', {
        reads_per_s: load.reads.perSecond,
        starts_per_s: load.starts.perSecond,
        accepted_per_s: load.starts.accepted / loadBenchScale().seconds,
        p99_ms: Math.max(load.reads.latencyMs.p99, load.starts.latencyMs.p99),
        '5xx': load.reads.serverErrors + load.starts.serverErrors,
        transport_errors: load.reads.transportErrors + load.starts.transportErrors,
        accepted: load.check.accepted,
        lost: load.check.lost,
        duplicated: load.check.duplicated,
        wrong_tenant: load.check.wrongTenant,
      });
    }
  } finally {
    await bench.close();
  }
}

function printFaults(figures: FaultsBenchmarkResult): void {
  console.log(
    `\nFaults on npm start: kill -9 of PostgreSQL with ${figures.executions} executions of a 3-task workflow in flight, SIGINT, restart; then SIGSTOP for ${figures.pause.seconds} s`,
  );
  console.log('  answers while PostgreSQL was down:');
  for (const answer of figures.outageAnswers) {
    console.log(
      `    GET ${answer.route.padEnd(60)} ${answer.status}${answer.retryAfter === undefined ? '' : ` (Retry-After: ${answer.retryAfter})`}`,
    );
  }
  const { shutdown } = figures;
  console.log(
    `  SIGINT with the database gone: exited ${shutdown.exitCode} after ${fmt(shutdown.ms)} ms; ${shutdown.printedStopped ? "printed 'Stopped.'" : "did not print 'Stopped.'"}; pid file ${shutdown.pidFileLeft ? 'left behind' : 'removed'}`,
  );
  console.log(
    `  restart ${fmt(figures.restartMs)} ms; every execution ended ${fmt(figures.recoveredMs)} ms later: ${figures.succeeded} succeeded, ${figures.unrecovered} not, ${figures.lost} task runs lost, ${figures.duplicated} committed twice`,
  );
  const { pause } = figures;
  console.log(
    `  kept-alive client around a ${pause.seconds} s SIGSTOP: ${pause.requestsBefore} answered before, ${pause.requestsAfter} after, ${pause.errorsAfter} failed after${pause.firstError === undefined ? '' : ` (${pause.firstError})`}`,
  );
}

function printStart(figures: StartBenchmarkResult): void {
  console.log(
    `\nA start (ExecutionService.start, orchestrator that only accepts) at ${figures.clients} concurrent callers, ${figures.starts} starts, vs a bare INSERT of the row + the same orchestrator call`,
  );
  const row = (label: string, times: StartBenchmarkResult['start']) =>
    console.log(`  ${label.padEnd(34)} ${describe(times)}   p99 ${fmt(times.p99, 2).padStart(6)} ms`);
  row('ExecutionService.start', figures.start);
  row('floor: INSERT + orchestrator call', figures.floor);
  console.log(
    `  per start: ${fmt(figures.roundTrips, 1)} round trips (floor ${fmt(figures.floorRoundTrips, 1)}), ${fmt(figures.writeTransactions, 1)} write transactions (target ≤ 4 round trips)`,
  );
}

function printLoad(figures: LoadBenchmarkResult): void {
  const scale = loadBenchScale();
  console.log(
    `\nLoad on the local server over loopback (autocannon): ${figures.tenants} tenants, ${scale.seconds} s per phase`,
  );
  const phase = (label: string, result: LoadPhase) =>
    console.log(
      `  ${label.padEnd(34)} ${fmt(result.perSecond).padStart(8)} req/s   p50 ${fmt(result.latencyMs.p50).padStart(6)} ms   p99 ${fmt(result.latencyMs.p99).padStart(6)} ms   max ${fmt(result.latencyMs.max).padStart(6)} ms   ${JSON.stringify(result.statuses)}${result.transportErrors > 0 ? `   ${result.transportErrors} transport errors` : ''}`,
    );
  phase(`status reads, ${scale.readConnections} clients`, figures.reads);
  phase(`starts, ${scale.startConnections} clients`, figures.starts);
  const { check } = figures;
  console.log(
    `  accepted ${check.accepted} executions (${figures.starts.refusedOverLimit} refused over the limit); drained in ${fmt(check.drainMs / 1000, 1)} s`,
  );
  console.log(
    `  checked in PostgreSQL: ${check.succeeded} succeeded with every task committed once, ${check.lost} lost, ${check.duplicated} duplicated, ${check.wrongTenant} in the wrong tenant`,
  );
  console.log(`  start → succeeded        ${describe(check.executionLatency)}`);
}

function printWorkflowOverhead(figures: WorkflowOverheadResult): void {
  console.log(
    `\nLocal orchestration overhead: a ${figures.tasks}-task linear workflow vs its ${figures.tasks} task bodies called directly (${figures.executions} executions each, interleaved, one after another)`,
  );
  const path = (label: string, times: Distribution, cpuMs: number) =>
    console.log(`  ${label.padEnd(40)} ${describe(times)}   process CPU ${fmt(cpuMs, 2).padStart(5)} ms`);
  path('task bodies called directly', figures.direct, figures.cpuMeanMs.direct);
  path('handlers in sequence, no state machine', figures.handlers, figures.cpuMeanMs.handlers);
  path('LocalOrchestrator (startLocalPlatform)', figures.orchestrated, figures.cpuMeanMs.orchestrated);
  console.log(
    `  overhead per task (p50s)                 ${fmt(figures.overheadPerTaskMs, 2).padStart(6)} ms   (from the means: ${fmt(figures.overheadPerTaskMeanMs, 2)} ms)`,
  );
  console.log(
    `    start, run-task and finalize bookkeeping ${fmt(figures.handlersPerTaskMs, 2).padStart(6)} ms/task`,
  );
  console.log(
    `    state machine (aws-local-stepfunctions)  ${fmt(figures.interpreterPerTaskMs, 2).padStart(6)} ms/task`,
  );
  console.log(
    `  per task above the bodies: ${fmt(figures.perTask.roundTrips, 1)} round trips, ${fmt(figures.perTask.commits, 2)} commits (target ≤ 1.0 ms, ≤ 3 round trips, ≤ 1 commit)`,
  );
  console.log('  handler path, per call:');
  console.log(`    ExecutionService.start                 ${describe(figures.handlerSegments.start)}`);
  console.log(`    run-task (task body included)          ${describe(figures.handlerSegments.runTask)}`);
  console.log(`    finalize                               ${describe(figures.handlerSegments.finalize)}`);
}

function printWorkflowThroughput(figures: WorkflowThroughputResult): void {
  const executions = figures.tenants * figures.executionsPerTenant;
  console.log(
    `\nLocal throughput: ${figures.tenants} tenants × ${figures.executionsPerTenant} executions at once (${executions} executions of a ${figures.tasksPerExecution}-task fan-out workflow per round)`,
  );
  console.log(
    `  setup, not measured: provisioned ${figures.tenants} tenants in ${fmt(figures.setupMs / 1000)} s`,
  );
  figures.rounds.forEach((round, index) => {
    console.log(
      `  round ${index + 1}: ${round.succeeded}/${round.executions} succeeded, ${round.tasksCompleted} tasks in ${fmt(round.wallMs / 1000, 2)} s = ${fmt(round.tasksPerSecond)} tasks/s (${round.tasksRetried} retried)`,
    );
    console.log(`    execution latency        ${describe(round.latency)}`);
    console.log(`      of which until started ${describe(round.startLatency)}`);
    console.log(
      `    process CPU              ${fmt(round.processCpuMs / 1000, 2)} s in ${fmt(round.wallMs / 1000, 2)} s (${fmt((100 * round.processCpuMs) / round.wallMs, 0)} % of one core)`,
    );
    console.log(
      `    peak backends            ${round.peakBackends} (platform pool ${round.peakPlatformBackends}, tenant roles ${round.peakTenantBackends}; sampled every 10 ms); ${round.backendsBefore} open before the round`,
    );
    if (round.firstFailure !== undefined) {
      console.log(`    first failure            ${round.firstFailure}`);
    }
  });
  const rates = figures.rounds.map((round) => round.tasksPerSecond).sort((a, b) => a - b);
  console.log(
    `  median of ${rates.length} round(s): ${fmt(rates[Math.floor((rates.length - 1) / 2)] ?? 0)} tasks/s`,
  );
  console.log(
    `  bound: ${figures.backendBound} backends = pool max ${figures.platformPoolMax} + ${figures.tenants} tenant pools × 2 (the local server keeps up to 32)`,
  );
}

function printHandlerBundles(results: readonly HandlerBundleResult[], imports: number): void {
  console.log(
    `\nHandler bundles: esbuild (node, esm, target node22, minified, external source map); import in a fresh node with an empty environment, ${imports} times each`,
  );
  for (const result of results) {
    const kb = result.bytes / 1024;
    console.log(
      `  ${result.entry} — ${result.packaging === 'runtime-sdk' ? 'as CDK ships it (AWS SDK from the Lambda runtime)' : 'self-contained (AWS SDK bundled)'}`,
    );
    console.log(
      `    size        ${fmt(kb).padStart(7)} KB  (map ${fmt(result.mapBytes / 1024)} KB)   target ≤ ${BUNDLE_TARGETS.maxKb} KB: ${kb <= BUNDLE_TARGETS.maxKb ? 'met' : 'missed'}`,
    );
    console.log(
      `    import      ${describe(result.importMs)}   target ≤ ${BUNDLE_TARGETS.maxImportMs} ms: ${result.importMs.p50 <= BUNDLE_TARGETS.maxImportMs ? 'met' : 'missed'} (p50)`,
    );
    console.log(`    process     ${describe(result.processMs)}   (node start + import + exit)`);
    console.log(
      `    handler after an import with no environment: ${result.handlerType}${result.handlerType === 'function' ? ' (built lazily, on first invocation)' : ''}`,
    );
    if (kb > BUNDLE_TARGETS.maxKb) {
      console.log('    largest inputs (bytes in the minified bundle):');
      for (const input of result.topFiles) {
        console.log(`      ${fmt(input.bytes / 1024).padStart(6)} KB  ${input.name}`);
      }
      console.log(
        `    largest packages: ${result.topPackages.map((input) => `${input.name} ${fmt(input.bytes / 1024)} KB`).join(', ')}`,
      );
    }
  }
}

function printColdStart(figures: ColdStartResult, imports: number): void {
  const kb = (bytes: number | undefined) => (bytes === undefined ? '–' : fmt(bytes / 1024));
  console.log(
    `\nDeployment packages (CDK): stage bench synthesized offline as cdk synth does (addTenantflowStacks: both stacks) in ${fmt(figures.synthMs / 1000)} s; each bundle imported in a fresh node with an empty environment and only the layer (and the runtime's SDK) beside it, ${imports} times after a warm-up`,
  );
  const layer = figures.layer;
  console.log(
    `  shared layer      ${kb(layer.sizes.bytes).padStart(8)} KB in ${layer.sizes.files} files, zip ${kb(layer.sizes.zipBytes)} KB`,
  );
  if (layer.platform !== undefined) {
    console.log(
      `    ${layer.platform.name}: ${layer.platform.modules} modules: ${kb(layer.platform.jsBytes)} KB .js + ${kb(layer.platform.mapBytes)} KB .map + ${kb(layer.platform.sqlBytes)} KB migrations`,
    );
  }
  console.log(
    `    largest packages: ${layer.packages
      .slice(0, 5)
      .map((entry) => `${entry.name} ${kb(entry.bytes)} KB`)
      .join(', ')}`,
  );
  console.log(
    '  function          dir KB   zip KB   .mjs KB   .map KB   init, --enable-source-maps (as deployed)   init, plain node       process p50   init CPU p50',
  );
  for (const fn of figures.functions) {
    console.log(
      `  ${fn.name.padEnd(16)} ${kb(fn.sizes.bytes).padStart(7)} ${kb(fn.sizes.zipBytes).padStart(8)} ${kb(fn.mjsBytes).padStart(9)} ${kb(fn.mapBytes).padStart(9)}   p50 ${fmt(fn.initMs.p50).padStart(6)} / p95 ${fmt(fn.initMs.p95).padStart(6)} ms         p50 ${fmt(fn.initWithoutSourceMapsMs.p50).padStart(6)} / p95 ${fmt(fn.initWithoutSourceMapsMs.p95).padStart(6)} ms   ${fmt(fn.processMs.p50).padStart(6)} ms   ${fmt(fn.initCpuMs.p50).padStart(8)} ms${fn.handlerType === 'function' ? '' : `  (handler: ${fn.handlerType})`}`,
    );
  }
}

function printProvisioning(figures: ProvisioningBenchmarkResult): void {
  console.log(
    `\nProvisioningService.provision() vs the same DDL on one open connection (${figures.tenants} tenants each, interleaved, one after another)`,
  );
  console.log(`  provision()               ${describe(figures.service)}`);
  console.log(`  floor: raw DDL            ${describe(figures.floor)}`);
  console.log(`    statements              ${describe(figures.floorStatements)}`);
  console.log(`    migration transaction   ${describe(figures.floorMigration)}`);
  console.log(`  ratio of p50s             ${figures.ratioP50.toFixed(2)}× (target ≤ 2×)`);
  printSteps(figures.steps);
  console.log('  unit costs on this server, measured alone:');
  console.log(`    admin connection open+close   ${describe(figures.adminConnect)}`);
  console.log(`    lock-down check (no-op)       ${describe(figures.lockDownCheck)}`);
  console.log(
    `      (after the run: database ACL of ${figures.databaseAclEntries.toLocaleString('en-US')} entries)`,
  );
  console.log(`    one durable commit (INSERT)   ${describe(figures.commit)}`);
}

function printProvisioningAtScale(figures: ProvisioningAtScaleResult): void {
  console.log(
    `\nprovision() once ${figures.existingTenants.toLocaleString('en-US')} tenants exist (${figures.tenants} more, one after another; database ACL: ${figures.databaseAclEntries.toLocaleString('en-US')} entries)`,
  );
  console.log(`  provision()               ${describe(figures.service)}`);
  printSteps(figures.steps);
  console.log(`  lock-down check (no-op)   ${describe(figures.lockDownCheck)}`);
}

function printSteps(steps: readonly StepSegment[]): void {
  console.log('  where provision() spends its time (ms per tenant; each step since the previous one):');
  for (const segment of steps) {
    console.log(
      `    ${segment.step.padEnd(12)} mean ${fmt(segment.meanMs, 2).padStart(6)}  p50 ${fmt(segment.p50Ms, 2).padStart(6)}  ${STEP_CONTENTS[segment.step] ?? ''}`,
    );
  }
}

function printFleetMigration(figures: FleetMigrationBenchmarkResult): void {
  console.log(
    `\nOne new tenant migration (ADD COLUMN + CREATE INDEX) across ${figures.schemas.toLocaleString('en-US')} tenant schemas`,
  );
  console.log(
    `  setup, not measured: provisioned ${figures.toppedUp} more tenants in ${fmt(figures.setupMs / 1000)} s`,
  );
  const row = (label: string, totalMs: number, msPerSchema: number, ratios = '') =>
    console.log(
      `  ${label.padEnd(47)} ${fmt(totalMs / 1000, 2).padStart(6)} s  ${fmt(msPerSchema, 2).padStart(5)} ms/schema${ratios}`,
    );
  row('floor: raw SQL, 1 connection', figures.floor.totalMs, figures.floor.msPerSchema);
  row(
    `floor: raw SQL, ${figures.parallelFloor.connections} connections`,
    figures.parallelFloor.totalMs,
    figures.parallelFloor.msPerSchema,
  );
  for (const run of figures.runs) {
    row(
      `migrateFleet, ${run.label}, concurrency ${run.concurrency}`,
      run.totalMs,
      run.msPerSchema,
      `  ${run.ratio.toFixed(2)}× floor (${run.ratioAtEqualParallelism.toFixed(2)}× at equal parallelism)`,
    );
  }
  console.log('  target: a new migration within 3× of the 1-connection floor, bookkeeping included');
}

function printIdleRecovery(figures: IdleRecoveryResult): void {
  console.log(
    `\nOne recovery pass over ${figures.tenants.toLocaleString('en-US')} tenants with nothing to do vs one query per tenant (${figures.activeTenants.toLocaleString('en-US')} active; ${figures.pass.samples.length} rounds, interleaved, after a warm-up)`,
  );
  if (figures.toppedUp > 0) {
    console.log(
      `  setup, not measured: provisioned ${figures.toppedUp} more tenants in ${fmt(figures.setupMs / 1000)} s`,
    );
  }
  const row = (label: string, times: RoundTimes) =>
    console.log(
      `  ${label.padEnd(44)} median ${fmt(times.median, 1).padStart(7)} ms  (${fmt((1000 * times.median) / figures.activeTenants, 0).padStart(4)} µs/tenant)   min ${fmt(times.min, 1)}  max ${fmt(times.max, 1)} ms`,
    );
  row('RecoveryService.run()', figures.pass);
  row('floor: 1 query per tenant, 1 connection', figures.floor);
  row(`floor: same, ${figures.concurrency} connections`, figures.parallelFloor);
  console.log(
    `  pass / floor (medians)                       ${figures.ratio.toFixed(2)}×   (${figures.ratioAtEqualParallelism.toFixed(2)}× the ${figures.concurrency}-connection floor)`,
  );
  console.log(
    `  statements per pass: ${figures.pages} tenant pages (${figures.pageSize} per page) + ${figures.scanStatements} UNION ALL scans (≤ ${figures.scanBatchSize} tenants each), concurrency ${figures.concurrency}; the floor sends ${figures.activeTenants.toLocaleString('en-US')}`,
  );
}

function printRecoveryRepair(figures: RecoveryRepairResult): void {
  const executions = figures.tenants * figures.executionsPerTenant;
  console.log(
    `\nRecovery repairing ${executions} stuck executions across ${figures.tenants} tenants (pending, quiet for an hour, unknown to the orchestrator → started again; a ${figures.tasksPerExecution}-task workflow; the pass reads all ${figures.fleetTenants.toLocaleString('en-US')} tenants)`,
  );
  console.log(
    `  setup, not measured: provisioned ${figures.tenants} tenants in ${fmt(figures.setupMs / 1000)} s`,
  );
  console.log(
    `  idle pass over the same fleet: median ${fmt(figures.idlePass.median, 1)} ms (min ${fmt(figures.idlePass.min, 1)}, max ${fmt(figures.idlePass.max, 1)}; ${figures.idlePass.samples.length} passes)`,
  );
  figures.rounds.forEach((round, index) => {
    console.log(
      `  round ${index + 1}: examined ${round.examined}, started ${round.started}, ${round.startEvents} start events recorded, ${round.succeeded}/${round.executions} succeeded`,
    );
    console.log(
      `    recovery pass                               ${fmt(round.passMs, 1).padStart(7)} ms  (${fmt(round.passMs - figures.idlePass.median, 1)} ms above the idle pass)`,
    );
    console.log(
      `    until all ${round.executions} succeeded (drain)              ${fmt(round.untilSucceededMs, 1).padStart(7)} ms`,
    );
    console.log(
      `    pass, orchestrator that runs nothing        ${fmt(round.bookkeepingPassMs, 1).padStart(7)} ms  (${fmt(round.bookkeepingPassMs - figures.idlePass.median, 1)} ms above the idle pass)`,
    );
  });
  if (figures.rounds.length > 1) {
    const median = (pick: (round: RepairRound) => number) =>
      fmt(distribution(figures.rounds.map(pick)).p50, 1);
    console.log(
      `  median of ${figures.rounds.length} rounds: pass ${median((round) => round.passMs)} ms, until all succeeded ${median((round) => round.untilSucceededMs)} ms, pass with an orchestrator that runs nothing ${median((round) => round.bookkeepingPassMs)} ms`,
    );
  }
}

function printConnectionPath(title: string, figures: ConnectionPathResult, boundLabel: string): void {
  console.log(`  ${title}`);
  for (const sample of figures.samples) {
    console.log(
      `    after ${sample.served.toLocaleString('en-US').padStart(5)} tenants        ${String(sample.backends).padStart(3)} backends`,
    );
  }
  console.log(
    `    peak while serving            ${String(figures.peak).padStart(3)} backends (sampled every 10 ms)`,
  );
  console.log(`    bound                         ${String(figures.bound).padStart(3)} = ${boundLabel}`);
  console.log(`    elapsed                       ${fmt(figures.elapsedMs / 1000, 2)} s`);
}

function describe(figures: Distribution): string {
  return `p50 ${fmt(figures.p50, 2).padStart(6)} ms   p95 ${fmt(figures.p95, 2).padStart(6)} ms   mean ${fmt(figures.mean, 2).padStart(6)} ms`;
}
