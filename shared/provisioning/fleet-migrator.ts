import type pg from 'pg';
import type { MigrationReport } from '../db/migrations.js';
import type { TenantRegistry } from '../tenancy/tenant-registry.js';
import type { DatabaseAdmin } from './database-admin.js';

export interface FleetMigrationOptions {
  /** Tenants migrated at once, each on its own dedicated admin connection. Default 8. */
  readonly concurrency?: number;
  /** Called after each tenant, whatever the outcome: drives a progress bar. */
  readonly onTenantDone?: (outcome: TenantMigrationOutcome, done: number, total: number) => void;
}

export type TenantMigrationOutcome =
  | { readonly tenantId: string; readonly ok: true; readonly report: MigrationReport }
  | { readonly tenantId: string; readonly ok: false; readonly error: string };

export interface FleetMigrationSummary {
  readonly total: number;
  readonly migrated: number;
  readonly upToDate: number;
  readonly failed: readonly { tenantId: string; error: string }[];
  readonly durationMs: number;
}

/**
 * Brings every provisioned tenant schema up to date with the tenant migrations.
 *
 * - Bounded parallelism: `concurrency` workers, each with one dedicated admin connection reused
 *   across the tenants it handles, so connections do not grow with the number of tenants.
 * - Resumable: each tenant migrates in its own transaction, so a killed run leaves every schema
 *   either migrated or untouched, and the next run does only what is left.
 * - One failing tenant is reported and does not stop the others.
 *
 * Tenants being provisioned or deprovisioned are skipped: provisioning migrates its tenant itself,
 * and a schema being dropped must not be touched.
 *
 * @example
 * ```ts
 * const summary = await migrateFleet(registry, admin, { concurrency: 8 });
 * if (summary.failed.length > 0) process.exitCode = 1;
 * ```
 */
export async function migrateFleet(
  registry: Pick<TenantRegistry, 'list'>,
  admin: DatabaseAdmin,
  options: FleetMigrationOptions = {},
): Promise<FleetMigrationSummary> {
  const started = performance.now();
  const concurrency = Math.max(1, options.concurrency ?? 8);
  const tenantIds = (await registry.list())
    .filter((tenant) => tenant.status === 'active' || tenant.status === 'inactive')
    .map((tenant) => tenant.tenantId);
  const total = tenantIds.length;
  const outcomes: TenantMigrationOutcome[] = [];
  const queue = [...tenantIds];

  const worker = () =>
    admin.withConnection(async (client: pg.Client) => {
      for (let tenantId = queue.shift(); tenantId !== undefined; tenantId = queue.shift()) {
        const outcome = await migrateOne(admin, client, tenantId);
        outcomes.push(outcome);
        options.onTenantDone?.(outcome, outcomes.length, total);
      }
    });
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));

  const failed = outcomes.flatMap((outcome) =>
    outcome.ok ? [] : [{ tenantId: outcome.tenantId, error: outcome.error }],
  );
  const migrated = outcomes.filter((outcome) => outcome.ok && outcome.report.applied.length > 0).length;
  return {
    total,
    migrated,
    upToDate: outcomes.length - migrated - failed.length,
    failed,
    durationMs: performance.now() - started,
  };
}

async function migrateOne(
  admin: DatabaseAdmin,
  client: pg.Client,
  tenantId: string,
): Promise<TenantMigrationOutcome> {
  try {
    return { tenantId, ok: true, report: await admin.migrateTenant(client, tenantId) };
  } catch (error) {
    const cause = error instanceof Error && error.cause instanceof Error ? ` (${error.cause.message})` : '';
    return {
      tenantId,
      ok: false,
      error: `${error instanceof Error ? error.message : String(error)}${cause}`,
    };
  }
}
