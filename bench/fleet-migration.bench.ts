import { checksumOf, type Migration } from '@tenantflow/shared/db/migrations';
import { qualified } from '@tenantflow/shared/db/sql';
import { DatabaseAdmin } from '@tenantflow/shared/provisioning/database-admin';
import { migrateFleet } from '@tenantflow/shared/provisioning/fleet-migrator';
import { loadTenantMigrations } from '@tenantflow/shared/provisioning/tenant-migrations';
import type { PlatformServices } from '../local/platform-services.js';
import { benchTenantId, forEachConcurrently, timed, withClient } from './support.js';

/** Tenants provisioned at once while topping the fleet up: setup only, never timed as a figure. */
const SETUP_CONCURRENCY = 4;

/** migrateFleet's default concurrency (what `npm run migrate` uses). */
const DEFAULT_CONCURRENCY = 8;

export interface FleetRun {
  readonly label: string;
  readonly concurrency: number;
  readonly totalMs: number;
  readonly msPerSchema: number;
  /** totalMs over the one-connection floor's: the target's definition. */
  readonly ratio: number;
  /** totalMs over the floor run with as many connections as this run used. */
  readonly ratioAtEqualParallelism: number;
}

export interface FleetMigrationBenchmarkResult {
  readonly schemas: number;
  /** Tenants provisioned to reach `schemas`, and how long that setup took (not a figure). */
  readonly toppedUp: number;
  readonly setupMs: number;
  /** The raw SQL over one connection: the floor the target is stated against. */
  readonly floor: { readonly totalMs: number; readonly msPerSchema: number };
  /** The raw SQL over as many connections as migrateFleet's default, to compare like with like. */
  readonly parallelFloor: {
    readonly connections: number;
    readonly totalMs: number;
    readonly msPerSchema: number;
  };
  readonly runs: readonly FleetRun[];
}

/**
 * One new migration (ADD COLUMN + CREATE INDEX on `executions`) across every tenant schema through
 * `migrateFleet`, against its floor: the same two statements, schema-qualified, sent to every
 * schema over one connection (one round trip and one commit per schema, as each schema is its own
 * transaction in migrateFleet too). Both log in as the non-superuser admin (`adminUrl`).
 *
 * Runs, in order: the floor on one connection (the target's definition) and on as many
 * connections as migrateFleet's default; migrateFleet applying a new migration at the default
 * concurrency and at concurrency 1 (one connection, like the floor); and migrateFleet with nothing
 * left to apply at both, which is its bookkeeping alone. The tables are empty, as a new tenant's
 * are: the figure is the cost per schema, not of rewriting data.
 */
export async function benchmarkFleetMigration(
  platform: PlatformServices,
  adminUrl: string,
  suffix: string,
  schemas: number,
): Promise<FleetMigrationBenchmarkResult> {
  const setup = await timed(() => topUpActiveTenants(platform, suffix, schemas));
  const tenantIds = (await platform.registry.list())
    .filter((tenant) => tenant.status === 'active')
    .map((tenant) => tenant.tenantId);

  const shipped = await loadTenantMigrations();
  const nextVersion = Math.max(0, ...shipped.map((migration) => migration.version)) + 1;
  const first = benchMigration(nextVersion, 'bench_priority');
  const second = benchMigration(nextVersion + 1, 'bench_region');

  // Every run adds a column and an index of its own to the same tables, so all do the same DDL,
  // and each opens new connections, whose catalog caches start cold.
  const floor = await timed(() => applyRawSql(adminUrl, tenantIds, 'bench_floor', 1));
  const parallelFloor = await timed(() =>
    applyRawSql(adminUrl, tenantIds, 'bench_floor_parallel', DEFAULT_CONCURRENCY),
  );
  // The platform's own: migrateTenant grants it the bookkeeping, as `npm run migrate` does.
  const platformRole = await platform.admin.platformRoleName();

  const runs: FleetRun[] = [];
  const runFleet = async (label: string, concurrency: number, migrations: readonly Migration[]) => {
    const admin = new DatabaseAdmin({ adminUrl, platformRole, tenantMigrations: migrations });
    const run = await timed(() => migrateFleet(platform.registry, admin, { concurrency }));
    const summary = run.result;
    if (summary.failed.length > 0 || summary.total !== tenantIds.length) {
      throw new Error(
        `fleet migration '${label}' migrated ${summary.migrated}/${summary.total} schemas: ${JSON.stringify(summary.failed.slice(0, 3))}`,
      );
    }
    runs.push({
      label,
      concurrency,
      totalMs: run.ms,
      msPerSchema: run.ms / tenantIds.length,
      ratio: run.ms / floor.ms,
      ratioAtEqualParallelism: run.ms / (concurrency === 1 ? floor.ms : parallelFloor.ms),
    });
    return summary;
  };

  const withFirst = [...shipped, first];
  const withBoth = [...withFirst, second];
  const applied = await runFleet('new migration', DEFAULT_CONCURRENCY, withFirst);
  const appliedSerially = await runFleet('new migration', 1, withBoth);
  const upToDate = await runFleet('nothing to apply', DEFAULT_CONCURRENCY, withBoth);
  const upToDateSerially = await runFleet('nothing to apply', 1, withBoth);
  if (applied.migrated !== tenantIds.length || appliedSerially.migrated !== tenantIds.length) {
    throw new Error('a fleet run left schemas unmigrated');
  }
  if (upToDate.upToDate !== tenantIds.length || upToDateSerially.upToDate !== tenantIds.length) {
    throw new Error('a rerun found migrations to apply');
  }

  return {
    schemas: tenantIds.length,
    toppedUp: setup.result,
    setupMs: setup.ms,
    floor: { totalMs: floor.ms, msPerSchema: floor.ms / tenantIds.length },
    parallelFloor: {
      connections: DEFAULT_CONCURRENCY,
      totalMs: parallelFloor.ms,
      msPerSchema: parallelFloor.ms / tenantIds.length,
    },
    runs,
  };
}

/**
 * The floor: `ADD COLUMN` and `CREATE INDEX`, schema-qualified, as one query per schema (one round
 * trip, one implicit transaction), with `connections` connections taking schemas from one queue.
 */
async function applyRawSql(
  adminUrl: string,
  tenantIds: readonly string[],
  column: string,
  connections: number,
): Promise<void> {
  const queue = [...tenantIds];
  const worker = () =>
    withClient(adminUrl, async (client) => {
      for (let tenantId = queue.shift(); tenantId !== undefined; tenantId = queue.shift()) {
        const table = qualified(tenantId, 'executions');
        await client.query(
          `ALTER TABLE ${table} ADD COLUMN ${column} integer;
           CREATE INDEX executions_${column}_idx ON ${table} (${column});`,
        );
      }
    });
  await Promise.all(Array.from({ length: connections }, worker));
}

/** A tenant migration as a file in `shared/migrations/tenant/` would load: unqualified names, real checksum. */
function benchMigration(version: number, column: string): Migration {
  const sql = `ALTER TABLE executions ADD COLUMN ${column} integer;
CREATE INDEX executions_${column}_idx ON executions (${column});
`;
  return {
    version,
    name: `${String(version).padStart(4, '0')}_${column}.sql`,
    sql,
    checksum: checksumOf(sql),
  };
}

/**
 * Provisions `fleet####` tenants through the real service until `count` are active, reusing any
 * already there (the provisioning benchmark's). Returns how many it provisioned.
 */
export async function topUpActiveTenants(
  platform: PlatformServices,
  suffix: string,
  count: number,
): Promise<number> {
  const active = (await platform.registry.list()).filter((tenant) => tenant.status === 'active').length;
  const missing = Math.max(0, count - active);
  const ids = Array.from({ length: missing }, (_, index) => benchTenantId('fleet', index, suffix));
  await forEachConcurrently(ids, SETUP_CONCURRENCY, async (tenantId) => {
    await platform.provisioning.provision({ tenantId, name: tenantId });
  });
  return missing;
}
