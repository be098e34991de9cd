/**
 * What the database benchmarks share: one PostgreSQL for the whole run, a database of their own on
 * it with production's roles (a non-superuser admin for DDL, a platform role for everything else),
 * a platform wired the way `npm start` wires it, and small statistics helpers.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@tenantflow/shared/config/config';
import { quoteIdent } from '@tenantflow/shared/db/sql';
import type { Orchestrator } from '@tenantflow/shared/workflows/orchestrator';
import type { TaskContext } from '@tenantflow/shared/workflows/task';
import type { WorkflowRegistry } from '@tenantflow/shared/workflows/workflow-registry';
import pg from 'pg';
import { type RunningPostgres, startEmbeddedPostgres } from '../local/embedded-postgres.js';
import { type LocalPlatform, startLocalPlatform } from '../local/local-platform.js';
import { LOCAL_ADMIN_ROLE, prepareLocalDatabase } from '../local/local-roles.js';
import {
  createPlatformServices,
  type LocalAdapters,
  type PlatformServices,
} from '../local/platform-services.js';

/** How many tenants and schemas each benchmark uses; `BENCH_QUICK=1` scales them down for a smoke run. */
export interface BenchScale {
  readonly quick: boolean;
  /** Tenants provisioned one after another, and floor tenants created the same way. */
  readonly provisionedTenants: number;
  /** Tenant schemas a fleet migration runs across, and tenants the connection benchmark serves. */
  readonly fleetTenants: number;
  /** Tenants provisioned one after another once the fleet is there. */
  readonly tenantsAtScale: number;
}

export function benchScale(env: NodeJS.ProcessEnv = process.env): BenchScale {
  const quick = env.BENCH_QUICK === '1';
  return quick
    ? { quick, provisionedTenants: 20, fleetTenants: 100, tenantsAtScale: 5 }
    : { quick, provisionedTenants: 200, fleetTenants: 1_000, tenantsAtScale: 20 };
}

export interface BenchDatabase {
  /**
   * The admin role's connection string on the benchmarks' own database: NOSUPERUSER, CREATEROLE,
   * CREATEDB, owner of the database, as Aurora's master user is. DDL, the floors' DDL, and looking
   * at what the platform did (pg_stat_activity: it is a member of the platform and tenant roles).
   */
  readonly adminUrl: string;
  /** The platform role's connection string on it: what the platform pool logs in as. */
  readonly platformUrl: string;
  /** The platform role's name, unique to the run (roles are cluster-wide). */
  readonly platformRole: string;
  /** Where the server came from and who logs in as what, for the report header. */
  readonly description: string;
  /**
   * Appended to every tenant id, because roles are cluster-wide: on a shared server (DATABASE_URL)
   * the run must neither collide with nor drop anyone else's roles.
   */
  readonly suffix: string;
  close(): Promise<void>;
}

/**
 * A database of the benchmarks' own, prepared as `npm start` prepares one (`prepareLocalDatabase`):
 * on an embedded PostgreSQL started here (durable commits: the floors are measured with fsync on)
 * unless DATABASE_URL names a server.
 *
 * DATABASE_URL may log in as a superuser (it then only creates the database and `tenantflow_admin`,
 * and cleans up; the run refuses a server where `tenantflow_admin` already exists, rather than
 * take over someone else's admin), or as a non-superuser with CREATEROLE and CREATEDB, which is
 * then the admin. The platform role is `tf_bench_platform_<suffix>`. Everything the run created
 * (the database, the tenant roles, the platform role, and the admin role if it created it) is
 * dropped at the end.
 */
export async function openBenchDatabase(env: NodeJS.ProcessEnv = process.env): Promise<BenchDatabase> {
  const external = env.DATABASE_URL;
  let serverUrl: string;
  let description: string;
  let stopServer: () => Promise<void> = async () => {};
  if (external !== undefined && external.length > 0) {
    serverUrl = external;
    description = 'PostgreSQL from DATABASE_URL';
  } else {
    // Under /tmp and world-readable: as root the server runs as the `postgres` OS user.
    const root = await mkdtemp(join(tmpdir(), 'tenantflow-bench-pg-'));
    await chmod(root, 0o755);
    let postgres: RunningPostgres;
    try {
      postgres = await startEmbeddedPostgres({
        dataDir: join(root, 'data'),
        password: randomBytes(18).toString('base64url'),
        persistent: false,
      });
    } catch (error) {
      await rm(root, { recursive: true, force: true });
      throw error;
    }
    serverUrl = postgres.url('postgres');
    description = `embedded PostgreSQL on 127.0.0.1:${postgres.port}`;
    stopServer = async () => {
      await postgres.stop();
      await rm(root, { recursive: true, force: true });
    };
  }

  const suffix = randomBytes(3).toString('hex');
  const name = `tenantflow_bench_${suffix}`;
  const platformRole = `tf_bench_platform_${suffix}`;
  // Roles this run created, dropped (after the database) by the login that created them.
  const createdRoles = [platformRole, `${platformRole}_tenants`];
  let cleanUp = async () => {};
  try {
    const bootstrap = await withClient(serverUrl, async (client) => {
      const { rows } = await client.query<{ superuser: boolean; admin_exists: boolean }>(
        `SELECT rolsuper AS superuser, EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AS admin_exists
           FROM pg_roles WHERE rolname = current_user`,
        [LOCAL_ADMIN_ROLE],
      );
      const me = rows[0];
      if (me?.superuser === true && me.admin_exists) {
        throw new Error(
          `DATABASE_URL's server already has a '${LOCAL_ADMIN_ROLE}' role: the benchmarks would reset its password and drop it. Use a throwaway server, or a DATABASE_URL that logs in as a non-superuser with CREATEROLE and CREATEDB.`,
        );
      }
      await client.query(`CREATE DATABASE ${quoteIdent(name)}`);
      return { superuser: me?.superuser === true };
    });
    const url = new URL(serverUrl);
    url.pathname = `/${name}`;
    // Cleaning up is the bootstrap login's: the superuser, or the admin itself when it is no superuser.
    cleanUp = () =>
      withClient(serverUrl, async (client) => {
        await client.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
        await dropRolesWithSuffix(client, suffix);
        for (const role of createdRoles) {
          await client.query(`DROP ROLE IF EXISTS ${quoteIdent(role)}`);
        }
      });
    if (bootstrap.superuser) {
      createdRoles.push(LOCAL_ADMIN_ROLE);
    }
    const logins = await withPlatformRoleName(platformRole, () =>
      prepareLocalDatabase(url.toString(), {
        admin: randomBytes(18).toString('base64url'),
        platform: randomBytes(18).toString('base64url'),
      }),
    );
    // Printed with the figures: the floors are only comparable with commits that reach the disk.
    const settings = await withClient(logins.adminUrl, async (client) => {
      const { rows } = await client.query<{ name: string; setting: string }>(
        `SELECT name, setting FROM pg_settings
          WHERE name IN ('server_version', 'fsync', 'synchronous_commit', 'wal_sync_method') ORDER BY name`,
      );
      return rows.map((row) => `${row.name}=${row.setting}`).join(', ');
    });
    const adminRole = decodeURIComponent(new URL(logins.adminUrl).username);
    return {
      adminUrl: logins.adminUrl,
      platformUrl: logins.platformUrl,
      platformRole,
      description: `${description}: ${settings}; platform pool as ${platformRole}, DDL as ${adminRole} (no superuser)`,
      suffix,
      close: async () => {
        try {
          await cleanUp();
        } finally {
          await stopServer();
        }
      },
    };
  } catch (error) {
    try {
      await cleanUp();
    } finally {
      await stopServer();
    }
    throw error;
  }
}

/**
 * Runs `work` with `TENANTFLOW_PLATFORM_ROLE` set to `role`: `prepareLocalDatabase` (here and in
 * `startLocalPlatform`) names the platform role from it, and the run's must not be anyone else's.
 */
async function withPlatformRoleName<T>(role: string, work: () => Promise<T>): Promise<T> {
  const previous = process.env.TENANTFLOW_PLATFORM_ROLE;
  process.env.TENANTFLOW_PLATFORM_ROLE = role;
  try {
    return await work();
  } finally {
    if (previous === undefined) {
      delete process.env.TENANTFLOW_PLATFORM_ROLE;
    } else {
      process.env.TENANTFLOW_PLATFORM_ROLE = previous;
    }
  }
}

/** Drops the tenant roles (`<id>_<suffix>_user`) one run created, once their database is gone. */
async function dropRolesWithSuffix(client: pg.Client, suffix: string): Promise<void> {
  const { rows } = await client.query<{ rolname: string }>(
    `SELECT rolname FROM pg_roles WHERE rolname LIKE '%\\_' || $1 || '\\_user'`,
    [suffix],
  );
  for (const { rolname } of rows) {
    await client.query(`DROP ROLE IF EXISTS ${quoteIdent(rolname)}`);
  }
}

export interface BenchPlatform {
  readonly platform: PlatformServices;
  close(): Promise<void>;
}

/**
 * The platform as `npm start` wires it (local mode, LocalSecretStore), with its secrets in a
 * temporary directory: its pool logs in as the platform role, its DDL as the admin. Each secret
 * write is fsynced, like the real local store's.
 */
export async function createBenchPlatform(
  database: Pick<BenchDatabase, 'platformUrl' | 'adminUrl'>,
  overrides: LocalAdapters = {},
): Promise<BenchPlatform> {
  const secretsDir = await mkdtemp(join(tmpdir(), 'tenantflow-bench-secrets-'));
  const platform = await createPlatformServices(
    loadConfig({
      TENANTFLOW_LOCAL: '1',
      DATABASE_URL: database.platformUrl,
      TENANTFLOW_ADMIN_DATABASE_URL: database.adminUrl,
      TENANTFLOW_SECRETS: 'local',
      TENANTFLOW_SECRETS_DIR: secretsDir,
    }),
    overrides,
  );
  return {
    platform,
    close: async () => {
      await platform.close();
      await rm(secretsDir, { recursive: true, force: true });
    },
  };
}

/** Runs `work` on a new connection named `tenantflow-bench`, so the connection counts never include it. */
export async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: 'tenantflow-bench' });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** `kind0042_<suffix>`: a valid tenant id, unique to this run, sortable by index. */
export function benchTenantId(kind: string, index: number, suffix: string): string {
  return `${kind}${String(index).padStart(4, '0')}_${suffix}`;
}

export { forEachConcurrently } from '@tenantflow/shared/util/concurrency';

export interface Distribution {
  readonly count: number;
  readonly p50: number;
  readonly p95: number;
  readonly mean: number;
  readonly total: number;
}

/** p50/p95 by the nearest-rank method: always a value that was actually measured. */
export function distribution(samples: readonly number[]): Distribution {
  if (samples.length === 0) {
    throw new Error('no samples to summarise');
  }
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = (p: number) => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] as number;
  const total = sorted.reduce((sum, value) => sum + value, 0);
  return { count: sorted.length, p50: rank(50), p95: rank(95), mean: total / sorted.length, total };
}

/** Milliseconds `work` took, with its result. */
export async function timed<T>(work: () => Promise<T>): Promise<{ ms: number; result: T }> {
  const start = performance.now();
  const result = await work();
  return { ms: performance.now() - start, result };
}

/** `1,234.5` style: figures in the report read the same whatever the locale. */
export function fmt(value: number, digits = 1): string {
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** How much each workflow benchmark runs; `BENCH_QUICK=1` scales it down for a smoke run. */
export interface WorkflowBenchScale {
  readonly quick: boolean;
  /** Executions of the 10-task workflow timed on each path, after the warm-up. */
  readonly overheadExecutions: number;
  /** Tenants whose executions run at once in the throughput benchmark. */
  readonly throughputTenants: number;
  /** Executions started at once per tenant (at most the default `maxConcurrentExecutions`, 25). */
  readonly executionsPerTenant: number;
  /** Rounds of `tenants × executionsPerTenant` executions, after a warm-up round. */
  readonly throughputRounds: number;
  /** Fresh `node` processes that import each handler bundle. */
  readonly bundleImports: number;
}

export function workflowBenchScale(env: NodeJS.ProcessEnv = process.env): WorkflowBenchScale {
  const quick = env.BENCH_QUICK === '1';
  return quick
    ? {
        quick,
        overheadExecutions: 5,
        throughputTenants: 4,
        executionsPerTenant: 5,
        throughputRounds: 1,
        bundleImports: 5,
      }
    : {
        quick,
        overheadExecutions: 30,
        throughputTenants: 20,
        executionsPerTenant: 10,
        throughputRounds: 3,
        bundleImports: 15,
      };
}

export interface BenchLocalPlatform {
  readonly local: LocalPlatform;
  close(): Promise<void>;
}

/**
 * The platform as `npm start` runs workflows: `startLocalPlatform`, so the LocalOrchestrator runs
 * the ASL `compileToAsl` gives CDK and invokes the in-process run-task and finalize handlers. On
 * the benchmarks' database, with `workflows`, and its home (generated secrets, tenant secrets) in a
 * temporary directory. Given the admin's URL, it uses that login for DDL and logs its pool in as
 * the run's platform role (with a password of its own). Its HTTP server listens on a free port;
 * the benchmarks do not use it. Retry waits are 0 ms, so a retry shows up in the counts rather
 * than as a one-second stall.
 */
export async function startBenchLocalPlatform(
  database: Pick<BenchDatabase, 'adminUrl' | 'platformRole'>,
  workflows: WorkflowRegistry,
): Promise<BenchLocalPlatform> {
  const home = await mkdtemp(join(tmpdir(), 'tenantflow-bench-local-'));
  let local: LocalPlatform;
  try {
    local = await withPlatformRoleName(database.platformRole, () =>
      startLocalPlatform({ home, port: 0, databaseUrl: database.adminUrl, workflows, retryIntervalMs: 0 }),
    );
  } catch (error) {
    await rm(home, { recursive: true, force: true });
    throw error;
  }
  return {
    local,
    close: async () => {
      try {
        await local.stop();
      } finally {
        await rm(home, { recursive: true, force: true });
      }
    },
  };
}

/**
 * The body of every task of the workflow benchmarks: a little real work on the tenant's own
 * connection (one INSERT into the tenant schema's `example_results`, the examples' table in
 * examples/tables.ts, which the workflow benchmarks register) and one `ctx.set`. The row's
 * `workflow` column takes the task id too, because the table allows one row per execution and
 * workflow.
 */
export async function recordBenchResult(ctx: TaskContext): Promise<void> {
  const { rows } = await ctx.db.query<{ id: string }>(
    `INSERT INTO example_results (execution_id, workflow, tenant_id, payload)
     VALUES ($1, $2, $3, $4) RETURNING id`,
    [
      ctx.executionId,
      `${ctx.workflow}/${ctx.taskId}`,
      ctx.tenant.id,
      JSON.stringify({ attempt: ctx.attempt }),
    ],
  );
  ctx.set(ctx.taskId, Number(rows[0]?.id));
}

/**
 * Runs `work` while `sample` is called every `intervalMs`, one call at a time, and returns the
 * work's result with every sample taken. A failing sample is reported after the work, not as an
 * unhandled rejection while it runs.
 */
export async function sampleWhile<T, S>(
  sample: () => Promise<S>,
  intervalMs: number,
  work: () => Promise<T>,
): Promise<{ result: T; samples: S[] }> {
  const samples: S[] = [];
  let running = true;
  const poll = async () => {
    while (running) {
      samples.push(await sample());
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  };
  const polling = poll().then(
    () => undefined,
    (error: unknown) => error,
  );
  let result: T;
  try {
    result = await work();
  } finally {
    running = false;
  }
  const pollFailure = await polling;
  if (pollFailure !== undefined) {
    throw new Error('sampling failed', { cause: pollFailure });
  }
  return { result, samples };
}

/**
 * Counts what a piece of work asks of PostgreSQL, across every pool of this process: round trips
 * (calls of `pg.Client.query`, each one network exchange, parameterized or not) and write
 * transactions (transaction ids PostgreSQL assigned meanwhile, read from the server: a read-only
 * transaction takes none, so they are the commits that write). Work on other connections to the
 * same server in the meantime would be counted too, so measure one thing at a time.
 */
export async function countDatabaseWork<T>(
  adminUrl: string,
  work: () => Promise<T>,
): Promise<{ result: T; roundTrips: number; writeTransactions: number }> {
  const nextXid = () =>
    withClient(adminUrl, async (client) => {
      const { rows } = await client.query<{ next: string }>(
        'SELECT pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot())::text AS next',
      );
      return BigInt(rows[0]?.next ?? '0');
    });
  const prototype = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const original = prototype.query;
  let roundTrips = 0;
  const before = await nextXid();
  prototype.query = function countedQuery(this: unknown, ...args: unknown[]) {
    roundTrips += 1;
    return original.apply(this, args);
  };
  let result: T;
  try {
    result = await work();
  } finally {
    prototype.query = original;
  }
  const after = await nextXid();
  return { result, roundTrips, writeTransactions: Number(after - before) };
}

/**
 * An orchestrator that accepts every start and runs nothing: for the benchmarks that measure the
 * bookkeeping alone, or invoke the handlers themselves.
 */
export const acceptOnlyOrchestrator: Orchestrator = {
  start: async (request) => ({ ref: `bench:${request.executionId}`, alreadyStarted: false }),
  describe: async () => ({ status: 'not_found', redrivable: false }),
  stop: async () => {},
  redrive: async () => ({ kind: 'not_redrivable', reason: 'benchmark orchestrator' }),
};
