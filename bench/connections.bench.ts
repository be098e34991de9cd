import { tenantTable } from '@tenantflow/shared/db/sql';
import type pg from 'pg';
import type { PlatformServices } from '../local/platform-services.js';
import { forEachConcurrently, timed, withClient } from './support.js';

/** Requests in flight on the platform path: more than the pool's max, so the pool is saturated. */
const PLATFORM_CONCURRENCY = 16;
/** Tenants served at once on the tenant-role path, each with two queries in flight. */
const TENANT_CONCURRENCY = 4;

/** How often the background sampler reads pg_stat_activity while tenants are served. */
const SAMPLE_INTERVAL_MS = 10;

/**
 * The platform pool's connections (createPlatformPool names them `tenantflow`), logged in as the
 * platform role (`$1`). The sampler's own connection is `tenantflow-bench`, so it never counts itself.
 */
const PLATFORM_BACKENDS = `SELECT count(*)::int AS n FROM pg_stat_activity
  WHERE backend_type = 'client backend' AND datname = current_database()
    AND usename = $1 AND application_name = 'tenantflow'`;

/** Tenant-role connections (TenantConnections names them all `tenantflow-task`). */
const TENANT_BACKENDS = `SELECT count(*)::int AS n FROM pg_stat_activity
  WHERE backend_type = 'client backend' AND datname = current_database()
    AND application_name = 'tenantflow-task'`;

export interface BackendCount {
  /** Tenants served so far. */
  readonly served: number;
  readonly backends: number;
}

export interface ConnectionPathResult {
  readonly bound: number;
  /** Backends open after each checkpoint's tenants were served. */
  readonly samples: readonly BackendCount[];
  /** The most seen by the background sampler at any moment of the run. */
  readonly peak: number;
  readonly elapsedMs: number;
}

export interface ConnectionsBenchmarkResult {
  readonly tenants: number;
  readonly platformPath: ConnectionPathResult;
  readonly tenantPath: ConnectionPathResult & {
    readonly poolsKept: number;
    readonly connectionsPerPool: number;
    readonly openPools: number;
  };
}

/**
 * Whether connections grow with the number of tenants served. Two paths:
 *
 * - the platform path: a registry `get`, a `switch()` into the tenant and a schema-qualified query
 *   on its `executions` table through the platform pool, for every tenant;
 * - the tenant-role path: `tenantConnections.tenantDb(id)` and two concurrent `SELECT 1`, so each
 *   tenant's pool opens both of its connections.
 *
 * Backends are counted in pg_stat_activity at 10 %, 50 % and 100 % of the tenants, and all along
 * by a background sampler, whose peak catches connections a checkpoint would miss. The sampler
 * logs in as the admin (`adminUrl`): a member of the platform and tenant roles, it sees their
 * sessions in full, where the platform role would see only its own.
 */
export async function benchmarkConnections(
  platform: PlatformServices,
  adminUrl: string,
  tenants: number,
): Promise<ConnectionsBenchmarkResult> {
  const tenantIds = (await platform.registry.list())
    .filter((tenant) => tenant.status === 'active')
    .map((tenant) => tenant.tenantId)
    .slice(0, tenants);
  if (tenantIds.length < tenants) {
    throw new Error(`the connection benchmark needs ${tenants} active tenants, found ${tenantIds.length}`);
  }
  const checkpoints = [...new Set([Math.round(tenants / 10), Math.round(tenants / 2), tenants])];
  const platformBackends: BackendQuery = {
    text: PLATFORM_BACKENDS,
    values: [await platform.admin.platformRoleName()],
  };
  const tenantBackends: BackendQuery = { text: TENANT_BACKENDS, values: [] };

  return withClient(adminUrl, async (sampler) => {
    const platformPath = await serveInChunks(sampler, platformBackends, tenantIds, checkpoints, (chunk) =>
      forEachConcurrently(chunk, PLATFORM_CONCURRENCY, (tenantId) =>
        servePlatformRequest(platform, tenantId),
      ),
    );
    const tenantPath = await serveInChunks(sampler, tenantBackends, tenantIds, checkpoints, (chunk) =>
      forEachConcurrently(chunk, TENANT_CONCURRENCY, async (tenantId) => {
        const db = await platform.tenantConnections.tenantDb(tenantId);
        await Promise.all([db.query('SELECT 1'), db.query('SELECT 1')]);
      }),
    );
    // Pools kept open at once × connections per pool bounds the tenant-role backends of a process.
    const { maxTenants, maxConnectionsPerTenant } = platform.tenantConnections.limits;
    return {
      tenants,
      platformPath: { ...platformPath, bound: platform.config.dbPoolMax },
      tenantPath: {
        ...tenantPath,
        bound: maxTenants * maxConnectionsPerTenant,
        poolsKept: maxTenants,
        connectionsPerPool: maxConnectionsPerTenant,
        openPools: platform.tenantConnections.openPools,
      },
    };
  });
}

/** What a platform function does for one tenant's request, minus the task itself. */
async function servePlatformRequest(platform: PlatformServices, tenantId: string): Promise<void> {
  const tenant = await platform.registry.get(tenantId);
  if (tenant?.status !== 'active') {
    throw new Error(`tenant ${tenantId} is not active`);
  }
  await platform.tenants.switch(tenantId, async () => {
    const current = platform.tenants.requireTenant();
    await platform.pool.query(`SELECT count(*) FROM ${tenantTable(current, 'executions')}`);
  });
}

/** A backend count and its parameters. */
interface BackendQuery {
  readonly text: string;
  readonly values: readonly unknown[];
}

/** Serves the tenants up to each checkpoint in turn, counting backends after each, with a sampler running. */
async function serveInChunks(
  sampler: pg.Client,
  countSql: BackendQuery,
  tenantIds: readonly string[],
  checkpoints: readonly number[],
  serve: (chunk: readonly string[]) => Promise<void>,
): Promise<Omit<ConnectionPathResult, 'bound'>> {
  const samples: BackendCount[] = [];
  const run = await timed(() =>
    whileSampling(sampler, countSql, async () => {
      let served = 0;
      for (const checkpoint of checkpoints) {
        await serve(tenantIds.slice(served, checkpoint));
        served = checkpoint;
        samples.push({ served, backends: await countBackends(sampler, countSql) });
      }
    }),
  );
  // A checkpoint may catch a moment the sampler missed: the peak covers both.
  const peak = Math.max(run.result, ...samples.map((sample) => sample.backends));
  return { samples, peak, elapsedMs: run.ms };
}

/**
 * Runs `work` while polling the backend count, and returns the highest count seen. The poller and
 * the checkpoints share one client: pg queues their queries, so they never overlap on it.
 */
async function whileSampling(
  sampler: pg.Client,
  countSql: BackendQuery,
  work: () => Promise<void>,
): Promise<number> {
  let peak = 0;
  let running = true;
  const poll = async () => {
    while (running) {
      peak = Math.max(peak, await countBackends(sampler, countSql));
      await new Promise((resolve) => setTimeout(resolve, SAMPLE_INTERVAL_MS));
    }
  };
  // Settled into a result at once, so a failing poll is reported after `work`, not as an
  // unhandled rejection while `work` is still running.
  const polling = poll().then(
    () => undefined,
    (error: unknown) => error,
  );
  try {
    await work();
  } finally {
    running = false;
  }
  const pollFailure = await polling;
  if (pollFailure !== undefined) {
    throw new Error('sampling pg_stat_activity failed', { cause: pollFailure });
  }
  return peak;
}

async function countBackends(client: pg.Client, countSql: BackendQuery): Promise<number> {
  const { rows } = await client.query<{ n: number }>(countSql.text, [...countSql.values]);
  return rows[0]?.n ?? 0;
}
