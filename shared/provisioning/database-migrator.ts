import { type ConnectionRetryOptions, isConnectionFailure, withConnectionRetry } from '../db/connections.js';
import { CONTROL_MIGRATIONS_DIR } from '../db/control-schema.js';
import { loadMigrations, type MigrationReport, migrateSchema } from '../db/migrations.js';
import { CONTROL_SCHEMA } from '../db/sql.js';
import { ConfigurationError, MigrationError } from '../kernel/errors.js';
import type { TenantInfo, TenantRegistry } from '../tenancy/tenant-registry.js';
import type { DatabaseAdmin, PlatformRoleSpec } from './database-admin.js';
import { migrateFleet, type TenantMigrationOutcome } from './fleet-migrator.js';

/** What {@link migrateDatabase} works on: a platform's admin connections and its tenant registry. */
export interface DatabaseMigrationTarget {
  /** Dedicated admin connections: the control schema's DDL, then every tenant schema's. */
  readonly admin: DatabaseAdmin;
  /** The tenants to migrate, read once the control schema (where it lives) is up to date. */
  readonly registry: Pick<TenantRegistry, 'list'>;
}

export interface MigrateDatabaseOptions {
  /** Tenants migrated at once, each worker on its own dedicated admin connection. Default 8. */
  readonly concurrency?: number;
  /**
   * Epoch milliseconds after which no new page of tenants is started (a Lambda's remaining time,
   * less a margin). Tenants not reached are reported in `tenants.notStarted`; a later run does them.
   */
  readonly deadline?: number | undefined;
  /**
   * Tenants per page; the deadline is checked between pages.
   * @default every tenant in one page without a deadline, 100 with one
   */
  readonly pageSize?: number;
  /** @default CONTROL_MIGRATIONS_DIR (`shared/migrations/control`, relative to the module) */
  readonly controlMigrationsDir?: string | undefined;
  /**
   * The platform role to create when it does not exist (AWS: its name and password from the
   * platform secret). Without it, the role must exist; its grants are renewed either way.
   */
  readonly platformRole?: PlatformRoleSpec | undefined;
  /**
   * Wait for the database when the first admin connection fails to connect (see
   * {@link PrepareControlSchemaOptions.connectionRetry}), never past `deadline` either.
   * @default one attempt
   */
  readonly connectionRetry?: ConnectionRetryOptions | undefined;
  /** Called once the control schema is up to date, before the first tenant. */
  readonly onControlSchemaMigrated?: (report: MigrationReport) => void;
  /** Called after each tenant, whatever the outcome, with the count over the whole run: drives a progress bar. */
  readonly onTenantDone?: (outcome: TenantMigrationOutcome, done: number, total: number) => void;
}

export interface DatabaseMigrationSummary {
  readonly control: {
    /** Names of the control migrations this run applied, in order. */
    readonly applied: readonly string[];
    readonly alreadyApplied: number;
  };
  readonly tenants: {
    /** Tenants to migrate: active and inactive ones (provisioning migrates its own tenant). */
    readonly total: number;
    readonly migrated: number;
    readonly upToDate: number;
    readonly failed: readonly { readonly tenantId: string; readonly error: string }[];
    /** Tenants the deadline came before; a new run starts with them (each tenant commits on its own). */
    readonly notStarted: readonly string[];
    readonly durationMs: number;
  };
  /** Every tenant was attempted (some may still have failed). */
  readonly complete: boolean;
  readonly durationMs: number;
}

const DEFAULT_CONCURRENCY = 8;
const DEFAULT_PAGE_SIZE_WITH_DEADLINE = 100;

/**
 * Brings the whole database up to date: the control schema first (the registry lives there), then
 * every tenant schema with {@link migrateFleet} (bounded concurrency, one transaction per tenant, a
 * failing tenant reported without stopping the others). What `npm run migrate` does locally and
 * the `migrate` Lambda does on every deployment.
 *
 * With a `deadline`, tenants go in pages (one `migrateFleet` run each, which takes no deadline of
 * its own), and a page is started only while the deadline is not reached and the slowest page so
 * far would still finish before it, so the caller gets its summary back in time. The first page
 * always runs, so successive runs always advance.
 *
 * @example
 * ```ts
 * const summary = await migrateDatabase(platform, { concurrency: 8, deadline: Date.now() + 600_000 });
 * assertDatabaseMigrated(summary); // throws a MigrationError naming failed or unreached tenants
 * ```
 */
export async function migrateDatabase(
  target: DatabaseMigrationTarget,
  options: MigrateDatabaseOptions = {},
): Promise<DatabaseMigrationSummary> {
  const started = performance.now();
  const control = await prepareControlSchema(target.admin, {
    controlMigrationsDir: options.controlMigrationsDir,
    platformRole: options.platformRole,
    connectionRetry:
      options.connectionRetry === undefined
        ? undefined
        : {
            ...options.connectionRetry,
            deadline: earliest(options.connectionRetry.deadline, options.deadline),
          },
  });
  options.onControlSchemaMigrated?.(control);

  const tenantsStarted = performance.now();
  // The statuses migrateFleet migrates, so that the total and the unreached tenants count only those.
  const tenants = (await target.registry.list()).filter(
    (tenant) => tenant.status === 'active' || tenant.status === 'inactive',
  );
  const total = tenants.length;
  const pageSize = Math.max(
    1,
    options.pageSize ?? (options.deadline === undefined ? total : DEFAULT_PAGE_SIZE_WITH_DEADLINE),
  );
  const failed: { tenantId: string; error: string }[] = [];
  let migrated = 0;
  let upToDate = 0;
  let next = 0;
  let slowestPageMs = 0;
  while (next < total) {
    if (next > 0 && options.deadline !== undefined && Date.now() + slowestPageMs >= options.deadline) {
      break;
    }
    const page: TenantInfo[] = tenants.slice(next, next + pageSize);
    const doneBefore = next;
    const pageStarted = performance.now();
    const summary = await migrateFleet({ list: async () => page }, target.admin, {
      concurrency: options.concurrency ?? DEFAULT_CONCURRENCY,
      onTenantDone: (outcome, done) => options.onTenantDone?.(outcome, doneBefore + done, total),
    });
    slowestPageMs = Math.max(slowestPageMs, performance.now() - pageStarted);
    migrated += summary.migrated;
    upToDate += summary.upToDate;
    failed.push(...summary.failed);
    next += page.length;
  }
  const notStarted = tenants.slice(next).map((tenant) => tenant.tenantId);
  return {
    control: { applied: control.applied, alreadyApplied: control.alreadyApplied },
    tenants: {
      total,
      migrated,
      upToDate,
      failed,
      notStarted,
      durationMs: performance.now() - tenantsStarted,
    },
    complete: notStarted.length === 0,
    durationMs: performance.now() - started,
  };
}

export interface PrepareControlSchemaOptions {
  /** @default CONTROL_MIGRATIONS_DIR */
  readonly controlMigrationsDir?: string | undefined;
  /** The platform role to create (or check) first; see {@link MigrateDatabaseOptions.platformRole}. */
  readonly platformRole?: PlatformRoleSpec | undefined;
  /**
   * Try the admin connection again while it fails to connect ({@link withConnectionRetry}: up to 5
   * minutes by default, with backoff). On a first deploy RDS Proxy reports its target ready before
   * the cluster accepts connections through it. Only the opening of the connection is retried:
   * once it is open, any error (a failed migration, a refused grant) is thrown as it is, and so is
   * an error that waiting cannot cure (a refused password).
   * @default one attempt
   */
  readonly connectionRetry?: ConnectionRetryOptions | undefined;
}

/**
 * Makes a database ready for the platform, as the admin role: migrates the control schema, creates
 * the platform role if asked to, renews the platform role's grants (on the control schema, and
 * ownership of the entry points tenant roles call), and locks the database down (no CREATE on
 * `public`, no temporary tables, CONNECT only where granted). Idempotent; what `npm start`, the
 * migrate function on every deploy and the test set-up run first.
 *
 * @example
 * ```ts
 * await prepareControlSchema(admin, { platformRole: { name: 'tenantflow_platform', password } });
 * ```
 */
export async function prepareControlSchema(
  admin: DatabaseAdmin,
  options: PrepareControlSchemaOptions = {},
): Promise<MigrationReport> {
  const migrations = await loadMigrations(options.controlMigrationsDir ?? CONTROL_MIGRATIONS_DIR);
  let connected = false;
  const prepare = () =>
    admin.withConnection(async (client) => {
      connected = true;
      const report = await migrateSchema(client, CONTROL_SCHEMA, migrations);
      // Locked down first: the grants that follow are then the only way in, and a check of what a
      // role may already do never counts what PUBLIC could do before.
      await admin.lockDown(client);
      if (options.platformRole !== undefined) {
        await admin.ensurePlatformRole(client, options.platformRole);
      }
      await admin.grantPlatformAccess(client);
      return report;
    });
  const retry = options.connectionRetry;
  if (retry === undefined) {
    return prepare();
  }
  const isRetryable = retry.isRetryable ?? isConnectionFailure;
  return withConnectionRetry(prepare, {
    ...retry,
    // A connection lost once the work began is not retried: the work is not repeated blindly.
    isRetryable: (error) => !connected && isRetryable(error),
  });
}

function earliest(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.min(a, b);
}

/** Tenants named in an error message at most; the summary (logged) has them all. */
const NAMED_TENANTS = 20;

/**
 * Throws a {@link MigrationError} when a run left work undone: tenants that failed (named, with
 * their error) or that the deadline came before. The message is all a deployment shows of a failed
 * run, so it says what failed and what to do.
 *
 * @example
 * ```ts
 * assertDatabaseMigrated(await migrateDatabase(platform));
 * ```
 */
export function assertDatabaseMigrated(summary: DatabaseMigrationSummary): void {
  const { failed, notStarted, total } = summary.tenants;
  if (failed.length === 0 && notStarted.length === 0) {
    return;
  }
  const problems: string[] = [];
  if (failed.length > 0) {
    const named = failed.slice(0, NAMED_TENANTS).map((tenant) => `${tenant.tenantId}: ${tenant.error}`);
    problems.push(
      `${failed.length} of ${total} tenant schema(s) failed to migrate (${named.join('; ')}${more(failed.length)})`,
    );
  }
  if (notStarted.length > 0) {
    const named = notStarted.slice(0, NAMED_TENANTS).join(', ');
    problems.push(
      `the run did not finish: ${notStarted.length} of ${total} tenant schema(s) were not started before the time ran out (${named}${more(notStarted.length)})`,
    );
  }
  throw new MigrationError(
    `Database migrations incomplete: ${problems.join('; ')}. Every other schema is migrated and each tenant commits on its own: fix what failed and run the migrations again.`,
  );
}

function more(count: number): string {
  return count > NAMED_TENANTS ? `, and ${count - NAMED_TENANTS} more` : '';
}

export interface MigrationSettings {
  readonly concurrency: number;
}

/**
 * The migration run's own settings, from the environment: `TENANTFLOW_MIGRATE_CONCURRENCY`, the
 * tenants migrated at once, 1 to 64 (default 8). Throws a `ConfigurationError` that names it.
 *
 * @example
 * ```ts
 * const { concurrency } = migrationSettings(process.env);
 * ```
 */
export function migrationSettings(env: NodeJS.ProcessEnv = process.env): MigrationSettings {
  const raw = env.TENANTFLOW_MIGRATE_CONCURRENCY;
  const concurrency = Number(raw ?? DEFAULT_CONCURRENCY);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
    throw new ConfigurationError(
      `TENANTFLOW_MIGRATE_CONCURRENCY must be an integer from 1 to 64 (got '${raw}')`,
    );
  }
  return { concurrency };
}
