import pg from 'pg';
import {
  describeMigrationTimeout,
  MIGRATIONS_TABLE,
  type Migration,
  type MigrationReport,
  migrationTransactionSql,
  type PendingMigrations,
} from '../db/migrations.js';
import { CONTROL_SCHEMA, type Queryable, qualified, quoteIdent, SQLSTATE, sqlState } from '../db/sql.js';
import type { TenantRegistry } from '../tenancy/tenant-registry.js';
import { BOOKKEEPING_TABLES, type DatabaseAdmin, tenantRoleName } from './database-admin.js';

export interface FleetMigrationOptions {
  /** Tenants migrated at once, each on its own dedicated admin connection. Default 8. */
  readonly concurrency?: number;
  /** Called after each tenant, whatever the outcome: drives a progress bar. */
  readonly onTenantDone?: (outcome: TenantMigrationOutcome, done: number, total: number) => void;
  /**
   * `statement_timeout` of each migration statement: `DatabaseAdmin`'s default for migrations.
   * @default 300_000 (5 min)
   */
  readonly migrationStatementTimeoutMs?: number;
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

/** What one read before the run tells about a tenant schema. */
export interface TenantMigrationState {
  /**
   * The schema and its tenant role exist and follow the current rules (the schema is the admin's,
   * the role owns nothing in the database, has no CREATE on it, is in the tenants group, may only
   * read the bookkeeping, which the platform role may read and write): what
   * `DatabaseAdmin.migrateTenant` checks, and repairs or refuses, before it migrates.
   */
  readonly ready: boolean;
  /** Each history table that exists in the schema: the checksum recorded for each applied version. */
  readonly history: ReadonlyMap<string, ReadonlyMap<number, string>>;
}

export interface FleetMigrationState {
  readonly tenants: ReadonlyMap<string, TenantMigrationState>;
  /** The admin session's `lock_timeout`, in ms: what the migration lock and the DDL wait at most. */
  readonly lockTimeoutMs: number;
}

const DEFAULT_MIGRATION_STATEMENT_TIMEOUT_MS = 300_000;

/** History tables read per query: every table a query reads stays locked (ACCESS SHARE) until it ends. */
const HISTORY_TABLES_PER_QUERY = 200;

/** Tenants whose state is read at once, while the workers migrate those read before. */
const READ_PAGE_SIZE = 100;

/** The platform's row locks (`shared/db/platform-locks.ts`), taken here as SQL text. */
const PLATFORM_LOCKS = qualified(CONTROL_SCHEMA, 'platform_locks');

/**
 * Brings every provisioned tenant schema up to date with the tenant migrations.
 *
 * - One read first, for the whole fleet: what each schema has applied (its history tables, a few
 *   queries of many schemas each) and whether it is ready (one catalog query). A schema with
 *   nothing to apply costs nothing more.
 * - A ready schema with something to apply gets it as one transaction in one round trip (see
 *   {@link migrationTransactionSql}): the same migration lock as provisioning's, the history rows,
 *   the migrations, a check of the bookkeeping's grants, COMMIT. The history table's grants are
 *   written only when the table is created.
 * - Every other schema (not ready, a changed migration, or a one-round-trip transaction that
 *   failed for any reason but a timeout) goes through `DatabaseAdmin.migrateTenant`, one statement
 *   at a time: it repairs the tenant's rights or refuses the schema, and names the migration that
 *   failed. A migration another run applied after the read is found there as applied.
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
  const record = (outcome: TenantMigrationOutcome) => {
    outcomes.push(outcome);
    options.onTenantDone?.(outcome, outcomes.length, total);
  };

  const sets = admin.tenantMigrationSets();
  const statementTimeoutMs = options.migrationStatementTimeoutMs ?? DEFAULT_MIGRATION_STATEMENT_TIMEOUT_MS;
  // The fleet is read a page at a time, by whichever worker finds nothing left to do, so the
  // other workers migrate the page before while it reads: the read costs the run little time.
  const pages: string[][] = [];
  for (let first = 0; first < total; first += READ_PAGE_SIZE) {
    pages.push(tenantIds.slice(first, first + READ_PAGE_SIZE));
  }
  const queue: { tenantId: string; plan: TenantPlan; lockTimeoutMs: number }[] = [];
  let reading: Promise<void> | undefined;
  const readPage = async (client: pg.Client, page: readonly string[]) => {
    const state = await readStateOrNothing(client, admin, page);
    for (const tenantId of page) {
      const plan = planTenant(sets, state?.tenants.get(tenantId));
      if (plan.kind === 'up-to-date') {
        const report = { schema: tenantId, applied: [], alreadyApplied: plan.alreadyApplied };
        record({ tenantId, ok: true, report });
      } else {
        queue.push({ tenantId, plan, lockTimeoutMs: state?.lockTimeoutMs ?? 0 });
      }
    }
    spawnWorkers();
  };
  /** The next tenant to migrate, reading the next page when none is left; undefined once all are done. */
  const nextTenant = async (client: pg.Client) => {
    for (;;) {
      const next = queue.shift();
      if (next !== undefined) {
        return next;
      }
      if (reading !== undefined) {
        await reading;
        continue;
      }
      const page = pages.shift();
      if (page === undefined) {
        return undefined;
      }
      reading = readPage(client, page).finally(() => {
        reading = undefined;
      });
      await reading;
    }
  };
  let workerFailure: { error: unknown } | undefined;
  const worker = () =>
    admin
      .withConnection(async (client: pg.Client) => {
        for (let next = await nextTenant(client); next !== undefined; next = await nextTenant(client)) {
          const context = { admin, lockTimeoutMs: next.lockTimeoutMs, statementTimeoutMs };
          record(
            next.plan.kind === 'apply'
              ? await applyInOneRoundTrip(context, client, next.tenantId, next.plan)
              : await migrateOneByOne(admin, client, next.tenantId),
          );
        }
      })
      .catch((error: unknown) => {
        // A worker that cannot connect: the others finish, then the run fails with its error.
        workerFailure ??= { error };
      });
  // One worker reads the first page; more start (each with a connection) only for work waiting.
  const workers: Promise<void>[] = [];
  function spawnWorkers() {
    while (workers.length < concurrency && workers.length < queue.length + 1) {
      workers.push(worker());
    }
  }
  if (total > 0) {
    workers.push(worker());
  }
  for (let waited = 0; waited < workers.length; waited += 1) {
    await workers[waited];
  }
  if (workerFailure !== undefined) {
    throw workerFailure.error;
  }

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

/**
 * The state of every schema in `tenantIds` that migrating them depends on, in a few queries for the
 * whole fleet: one of the catalogs, then the history tables that exist, many per query. What
 * `DatabaseAdmin.migrateTenant` reads (and checks) per schema, one schema at a time.
 *
 * @example
 * ```ts
 * const state = await admin.withConnection((client) => readFleetMigrationState(client, admin, ['acme']));
 * state.tenants.get('acme')?.history.get('schema_migrations'); // Map { 1 => 'e3b0…', … }
 * ```
 */
export async function readFleetMigrationState(
  client: Queryable,
  admin: DatabaseAdmin,
  tenantIds: readonly string[],
): Promise<FleetMigrationState> {
  const historyTables = admin.tenantMigrationSets().map((set) => set.historyTable);
  const { rows } = await client.query<{
    tenant: string;
    ready: boolean;
    histories: string[];
    lock_timeout_ms: string;
  }>(
    `SELECT t.id AS tenant,
            COALESCE(n.oid IS NOT NULL AND r.oid IS NOT NULL
              AND n.nspowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
              AND NOT EXISTS (SELECT 1 FROM pg_shdepend d
                               WHERE d.refclassid = 'pg_authid'::regclass AND d.refobjid = r.oid AND d.deptype = 'o'
                                 AND d.dbid = (SELECT oid FROM pg_database WHERE datname = current_database()))
              AND NOT has_schema_privilege(r.oid, n.oid, 'CREATE')
              AND has_schema_privilege(r.oid, n.oid, 'USAGE')
              AND has_schema_privilege($3::name, n.oid, 'USAGE')
              AND pg_has_role(r.oid, (SELECT oid FROM pg_roles WHERE rolname = $4), 'USAGE')
              AND NOT EXISTS (
                SELECT 1 FROM pg_class c
                 WHERE c.relnamespace = n.oid AND c.relname = ANY ($5::name[] || $6::name[])
                   AND (has_table_privilege(r.oid, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
                        OR NOT has_table_privilege(r.oid, c.oid, 'SELECT')
                        OR (c.relname = ANY ($5::name[])
                            AND NOT (has_table_privilege($3::name, c.oid, 'SELECT') AND has_table_privilege($3::name, c.oid, 'INSERT')
                                     AND has_table_privilege($3::name, c.oid, 'UPDATE') AND has_table_privilege($3::name, c.oid, 'DELETE'))))),
              false) AS ready,
            ARRAY(SELECT c.relname::text FROM pg_class c
                   WHERE c.relnamespace = n.oid AND c.relkind = 'r' AND c.relname = ANY ($6::name[])) AS histories,
            (SELECT setting FROM pg_settings WHERE name = 'lock_timeout') AS lock_timeout_ms
       FROM unnest($1::text[], $2::text[]) AS t(id, role)
       LEFT JOIN pg_namespace n ON n.nspname = t.id
       LEFT JOIN pg_roles r ON r.rolname = t.role`,
    [
      tenantIds,
      tenantIds.map(tenantRoleName),
      await admin.platformRoleName(),
      await admin.tenantGroupName(),
      [...BOOKKEEPING_TABLES],
      historyTables,
    ],
  );
  const histories = new Map<string, Map<string, Map<number, string>>>();
  const tables: { tenant: string; table: string }[] = [];
  for (const row of rows) {
    const tenantHistory = new Map<string, Map<number, string>>();
    for (const table of row.histories) {
      tenantHistory.set(table, new Map());
      tables.push({ tenant: row.tenant, table });
    }
    histories.set(row.tenant, tenantHistory);
  }
  for (let first = 0; first < tables.length; first += HISTORY_TABLES_PER_QUERY) {
    const chunk = tables.slice(first, first + HISTORY_TABLES_PER_QUERY);
    // The entry's index, a number, says which table a row is from: no name is spliced in as a value.
    const { rows: applied } = await client.query<{ entry: number; version: number; checksum: string }>(
      chunk
        .map(
          ({ tenant, table }, index) =>
            `SELECT ${first + index} AS entry, version, checksum FROM ${qualified(tenant, table)}`,
        )
        .join(' UNION ALL '),
    );
    for (const { entry, version, checksum } of applied) {
      const source = tables[entry];
      if (source !== undefined) {
        histories.get(source.tenant)?.get(source.table)?.set(version, checksum);
      }
    }
  }
  return {
    tenants: new Map(
      rows.map((row) => [row.tenant, { ready: row.ready, history: histories.get(row.tenant) ?? new Map() }]),
    ),
    lockTimeoutMs: Number(rows[0]?.lock_timeout_ms ?? 0),
  };
}

/**
 * The state of these tenants, or nothing when it cannot be read (the database went away, say):
 * they are then migrated one statement at a time, and each reports its own failure.
 */
async function readStateOrNothing(
  client: pg.Client,
  admin: DatabaseAdmin,
  tenantIds: readonly string[],
): Promise<FleetMigrationState | undefined> {
  try {
    return await readFleetMigrationState(client, admin, tenantIds);
  } catch {
    return undefined;
  }
}

type MigrationSet = ReturnType<DatabaseAdmin['tenantMigrationSets']>[number];

type TenantPlan =
  | { readonly kind: 'up-to-date'; readonly alreadyApplied: number }
  | {
      readonly kind: 'apply';
      readonly pending: readonly (PendingMigrations & { readonly set: string })[];
      readonly alreadyApplied: number;
    }
  | { readonly kind: 'one-by-one' };

/** What a tenant needs, from the state read before the run. */
function planTenant(sets: readonly MigrationSet[], state: TenantMigrationState | undefined): TenantPlan {
  if (state === undefined) {
    return { kind: 'one-by-one' };
  }
  const pending: (PendingMigrations & { set: string })[] = [];
  let alreadyApplied = 0;
  let changed = false;
  for (const set of sets) {
    const history = state.history.get(set.historyTable);
    const missing: Migration[] = [];
    for (const migration of set.migrations) {
      const checksum = history?.get(migration.version);
      if (checksum === undefined) {
        missing.push(migration);
      } else {
        alreadyApplied += 1;
        changed ||= checksum !== migration.checksum;
      }
    }
    if (missing.length > 0) {
      pending.push({
        set: set.name,
        historyTable: set.historyTable,
        createHistory: history === undefined,
        migrations: missing,
      });
    }
  }
  if (pending.length === 0) {
    // As migrateTenant: a schema with nothing to apply is up to date (a changed migration is refused
    // when there is something to apply after it).
    return { kind: 'up-to-date', alreadyApplied };
  }
  return state.ready && !changed ? { kind: 'apply', pending, alreadyApplied } : { kind: 'one-by-one' };
}

interface ApplyContext {
  readonly admin: DatabaseAdmin;
  readonly lockTimeoutMs: number;
  readonly statementTimeoutMs: number;
}

/**
 * A ready tenant's pending migrations as one transaction in one round trip. A timeout is reported
 * as such; any other failure (a migration that fails, a migration applied meanwhile by another run,
 * grants to renew) sends the tenant through {@link migrateOneByOne}, which says precisely what
 * failed, or finds it done.
 */
async function applyInOneRoundTrip(
  context: ApplyContext,
  client: pg.Client,
  tenantId: string,
  plan: Extract<TenantPlan, { kind: 'apply' }>,
): Promise<TenantMigrationOutcome> {
  const role = quoteIdent(tenantRoleName(tenantId));
  const historyTables = context.admin.tenantMigrationSets().map((set) => set.historyTable);
  try {
    const lockName = pg.escapeLiteral(`migrations:${tenantId}`);
    await client.query(
      migrationTransactionSql(tenantId, plan.pending, {
        statementTimeoutMs: context.statementTimeoutMs,
        quoteLiteral: pg.escapeLiteral,
        // lockPlatformResource's row lock, the one provisioning and migrateTenant take, in one
        // statement: ON CONFLICT DO UPDATE locks the existing row as FOR UPDATE does (it changes
        // the key, so the strongest row lock) even when its WHERE lets nothing be written.
        lock: [
          `INSERT INTO ${PLATFORM_LOCKS} AS held (name) VALUES (${lockName})
             ON CONFLICT (name) DO UPDATE SET name = excluded.name WHERE false`,
        ],
        // The tenant may read its history, never write it: default privileges gave it more.
        afterCreatingHistory: (table) => [
          `REVOKE ALL ON ${qualified(tenantId, table)} FROM ${role}`,
          `GRANT SELECT ON ${qualified(tenantId, table)} TO ${role}`,
        ],
        beforeCommit: [
          bookkeepingRightsCheck(
            tenantId,
            await context.admin.platformRoleName(),
            await context.admin.tenantGroupName(),
            historyTables,
          ),
        ],
      }),
    );
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    const code = sqlState(error);
    if (code === SQLSTATE.lockNotAvailable || code === SQLSTATE.queryCanceled) {
      const described = describeMigrationTimeout(error, tenantId, {
        lockTimeoutMs: context.lockTimeoutMs,
        statementTimeoutMs: context.statementTimeoutMs,
      });
      return { tenantId, ok: false, error: described instanceof Error ? described.message : String(error) };
    }
    return migrateOneByOne(context.admin, client, tenantId);
  }
  return {
    tenantId,
    ok: true,
    report: {
      schema: tenantId,
      applied: plan.pending.flatMap(({ set, historyTable, migrations }) =>
        migrations.map((migration) =>
          historyTable === MIGRATIONS_TABLE ? migration.name : `${set}/${migration.name}`,
        ),
      ),
      alreadyApplied: plan.alreadyApplied,
    },
  };
}

/**
 * A statement that fails the transaction when, after the migrations, a bookkeeping or history
 * table's grants are not the current rules (a migration created one, or changed its grants, its
 * owner or the roles the tenant is in): `migrateTenant` then grants them. The same test as the
 * fleet read's, by privilege rather than by ACL text, so whatever way a migration loosened them
 * shows. Plain SQL, not a `DO` block, which PL/pgSQL would compile and plan on every schema: it
 * fails by dividing by zero, as SQL has no RAISE. The schema and roles are resolved once, when the
 * statement is planned (`regnamespace`, `regrole`: a missing one fails it too), and a privilege
 * that cannot be told (NULL) counts as wrong. Values are quoted literals.
 */
function bookkeepingRightsCheck(
  tenantId: string,
  platformRole: string,
  tenantGroup: string,
  historyTables: readonly string[],
): string {
  const literal = pg.escapeLiteral;
  const group = `${literal(quoteIdent(tenantGroup))}::pg_catalog.regrole`;
  const schema = `${literal(quoteIdent(tenantId))}::pg_catalog.regnamespace`;
  const role = `${literal(quoteIdent(tenantRoleName(tenantId)))}::pg_catalog.regrole`;
  const platform = `${literal(quoteIdent(platformRole))}::pg_catalog.regrole`;
  const names = (tables: readonly string[]) => `ARRAY[${tables.map(literal).join(', ')}]::pg_catalog.name[]`;
  const platformMay = ['SELECT', 'INSERT', 'UPDATE', 'DELETE']
    .map((privilege) => `pg_catalog.has_table_privilege(${platform}, c.oid, '${privilege}')`)
    .join(' AND ');
  return `SELECT 1 / (NOT EXISTS (
    SELECT 1 FROM pg_catalog.pg_class c
     WHERE c.relnamespace = ${schema}
       AND c.relname = ANY (${names([...BOOKKEEPING_TABLES, ...historyTables])})
       AND (pg_catalog.has_table_privilege(${role}, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER') IS NOT FALSE
            OR pg_catalog.has_table_privilege(${role}, c.oid, 'SELECT') IS NOT TRUE
            OR (c.relname = ANY (${names(BOOKKEEPING_TABLES)}) AND (${platformMay}) IS NOT TRUE)))
    AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m
                     WHERE m.member = ${role} AND m.roleid <> ${group}))::integer
    AS bookkeeping_grants_are_current`;
}

async function migrateOneByOne(
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
