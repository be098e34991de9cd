/**
 * `npm run bench`: runs every benchmark and prints the figures it measured. Nothing here asserts a
 * time: figures go into docs/benchmarks.md with the machine they were measured on.
 *
 * The database benchmarks share one PostgreSQL (embedded, durable commits, unless DATABASE_URL is
 * set) and run in order: provisioning leaves tenants that the fleet migration tops up to its fleet,
 * and the connection benchmark serves that fleet. `BENCH_QUICK=1` scales them down for a smoke run.
 */
import { cpus } from 'node:os';
import { benchmarkConnections, type ConnectionPathResult } from './connections.bench.js';
import { benchmarkFleetMigration, type FleetMigrationBenchmarkResult } from './fleet-migration.bench.js';
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
  benchScale,
  createBenchPlatform,
  type Distribution,
  fmt,
  openBenchDatabase,
  timed,
} from './support.js';
import { benchmarkTenantSwitch } from './tenant-switch.bench.js';

const cpu = cpus()[0]?.model ?? 'unknown CPU';
console.log(`tenantflow benchmarks — Node ${process.version}, ${cpus().length} × ${cpu}\n`);

const result = await benchmarkTenantSwitch();
console.log('TenantContextSwitch.switch() vs bare AsyncLocalStorage.run (async callback, awaited)');
console.log(`  iterations per round        ${result.iterations.toLocaleString('en-US')} (best of 5 rounds)`);
console.log(`  AsyncLocalStorage.run       ${result.baselineNsPerCall.toFixed(0)} ns/call`);
console.log(`  switch() (memory registry)  ${result.switchNsPerCall.toFixed(0)} ns/call`);
console.log(`  ratio                       ${result.ratio.toFixed(2)}× (target ≤ 2×)`);

const scale = benchScale();
const database = await openBenchDatabase();
console.log(`\n${database.description}${scale.quick ? ' — BENCH_QUICK=1, counts scaled down' : ''}`);
const stepTimer = new ProvisioningStepTimer();
const databaseRun = await timed(async () => {
  try {
    const bench = await createBenchPlatform(database.url, { afterProvisioningStep: stepTimer.hook });
    try {
      printProvisioning(
        await benchmarkProvisioning(
          bench.platform,
          database.url,
          database.suffix,
          stepTimer,
          scale.provisionedTenants,
        ),
      );
      printFleetMigration(
        await benchmarkFleetMigration(bench.platform, database.url, database.suffix, scale.fleetTenants),
      );
      printProvisioningAtScale(
        await benchmarkProvisioningAtScale(
          bench.platform,
          database.url,
          database.suffix,
          stepTimer,
          scale.tenantsAtScale,
        ),
      );
      const connections = await benchmarkConnections(bench.platform, database.url, scale.fleetTenants);
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
    } finally {
      await bench.close();
    }
  } finally {
    await database.close();
  }
});
console.log(`\nDatabase benchmarks took ${fmt(databaseRun.ms / 1000)} s`);

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
