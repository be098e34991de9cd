import { quoteIdent } from '@tenantflow/shared/db/sql';
import autocannon from 'autocannon';
import type { LocalPlatform } from '../local/local-platform.js';
import { benchTenantId, type Distribution, distribution, withClient } from './support.js';
import { fanOutWorkflow } from './workflow-throughput.bench.js';

/** How hard and how long the load benchmark pushes; `BENCH_QUICK=1` shortens it. */
export interface LoadBenchScale {
  readonly tenants: number;
  readonly readConnections: number;
  readonly startConnections: number;
  readonly seconds: number;
}

export function loadBenchScale(env: NodeJS.ProcessEnv = process.env): LoadBenchScale {
  return env.BENCH_QUICK === '1'
    ? { tenants: 4, readConnections: 50, startConnections: 20, seconds: 3 }
    : { tenants: 10, readConnections: 50, startConnections: 20, seconds: 15 };
}

export interface LoadPhase {
  readonly requests: number;
  readonly perSecond: number;
  readonly latencyMs: { readonly p50: number; readonly p99: number; readonly max: number };
  /** Answers by status class and the errors autocannon saw (refused, reset, timed out). */
  readonly statuses: Readonly<Record<string, number>>;
  readonly serverErrors: number;
  readonly transportErrors: number;
}

export interface LoadBenchmarkResult {
  readonly tenants: number;
  readonly reads: LoadPhase;
  readonly starts: LoadPhase & { readonly accepted: number; readonly refusedOverLimit: number };
  /** Every accepted execution, checked in PostgreSQL once the orchestrator had drained. */
  readonly check: {
    readonly accepted: number;
    readonly succeeded: number;
    /** Accepted but not terminal, or whose tasks did not all commit. */
    readonly lost: number;
    /** A task result committed more than once, or a row in another tenant's schema. */
    readonly duplicated: number;
    readonly wrongTenant: number;
    readonly drainMs: number;
    readonly executionLatency: Distribution;
  };
}

/**
 * The local server under load on loopback, with a real load generator (autocannon): status reads
 * of one execution per tenant at `readConnections` concurrent clients, then starts of a 5-task
 * fan-out workflow at `startConnections` across the tenants, each for `seconds`. Then every
 * execution the API accepted (202) is checked in PostgreSQL, once the local orchestrator has
 * drained: terminal and succeeded, in the schema of the tenant that started it, each task's result
 * row committed exactly once.
 *
 * `fanOutWorkflow` must be in the local platform's workflow registry.
 */
export async function benchmarkLoad(
  local: LocalPlatform,
  adminUrl: string,
  suffix: string,
  scale: LoadBenchScale,
): Promise<LoadBenchmarkResult> {
  const { platform } = local;
  const tenants: { id: string; key: string; seedExecution: string }[] = [];
  for (let index = 0; index < scale.tenants; index += 1) {
    const tenantId = benchTenantId('load', index, suffix);
    const { apiKey } = await platform.tenantAdmin.register({
      tenantId,
      name: tenantId,
      // The backlog a 15 s burst leaves must be accepted, not refused: the figure is the platform's.
      config: { settings: {}, features: {}, limits: { maxConcurrentExecutions: 2_000 } },
    });
    tenants.push({ id: tenantId, key: apiKey, seedExecution: '' });
  }
  await platform.lifecycleOrchestrator.drain();
  for (const tenant of tenants) {
    const started = await local.executions.start(tenant.id, { workflow: fanOutWorkflow.name, input: {} });
    tenant.seedExecution = started.executionId;
  }
  await local.orchestrator.drain();

  let next = 0;
  const pick = () => tenants[next++ % tenants.length] as (typeof tenants)[number];

  const reads = await run({
    url: local.url,
    connections: scale.readConnections,
    duration: scale.seconds,
    requests: [
      {
        method: 'GET',
        setupRequest: (request) => {
          const tenant = pick();
          return {
            ...request,
            path: `/tenants/${tenant.id}/executions/${tenant.seedExecution}`,
            headers: { authorization: `Bearer ${tenant.key}` },
          };
        },
      },
    ],
  });

  const accepted = new Map<string, string>();
  const startedAt = new Map<string, number>();
  const body = JSON.stringify({ workflow: fanOutWorkflow.name, input: {} });
  const starts = await run({
    url: local.url,
    connections: scale.startConnections,
    duration: scale.seconds,
    requests: [
      {
        method: 'POST',
        setupRequest: (request, context) => {
          const tenant = pick();
          (context as { tenantId?: string }).tenantId = tenant.id;
          return {
            ...request,
            path: `/tenants/${tenant.id}/executions`,
            headers: { authorization: `Bearer ${tenant.key}`, 'content-type': 'application/json' },
            body,
          };
        },
        onResponse: (status, responseBody, context) => {
          if (status === 202) {
            const { executionId } = JSON.parse(responseBody) as { executionId: string };
            accepted.set(executionId, (context as { tenantId: string }).tenantId);
            startedAt.set(executionId, Date.now());
          }
        },
      },
    ],
  });

  const drainStart = performance.now();
  await local.orchestrator.drain();
  const drainMs = performance.now() - drainStart;
  const check = await checkAccepted(
    adminUrl,
    tenants.map((tenant) => tenant.id),
    accepted,
    startedAt,
  );
  return {
    tenants: tenants.length,
    reads,
    starts: {
      ...starts,
      accepted: accepted.size,
      refusedOverLimit: starts.statuses['429'] ?? 0,
    },
    check: { ...check, drainMs },
  };
}

async function run(options: autocannon.Options): Promise<LoadPhase> {
  const result = await autocannon({ ...options, timeout: 10 });
  const statuses: Record<string, number> = {
    '2xx': result['2xx'],
    '4xx': result['4xx'],
    '5xx': result['5xx'],
  };
  for (const [code, count] of Object.entries(result.statusCodeStats ?? {})) {
    statuses[code] = (count as { count: number }).count;
  }
  return {
    requests: result.requests.total,
    perSecond: result.requests.total / (result.duration || 1),
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max },
    statuses,
    serverErrors: result['5xx'],
    transportErrors: result.errors + result.timeouts,
  };
}

/**
 * Looks every accepted execution up in the schema of the tenant that started it: its status, and
 * how many result rows its tasks committed (one per task). An execution found nowhere, not
 * terminal, or short of rows is lost; rows beyond one per task, or a result row whose tenant is not
 * the schema's, count as duplicated and wrong-tenant.
 */
async function checkAccepted(
  adminUrl: string,
  tenantIds: readonly string[],
  accepted: ReadonlyMap<string, string>,
  startedAt: ReadonlyMap<string, number>,
): Promise<Omit<LoadBenchmarkResult['check'], 'drainMs'>> {
  const tasks = fanOutWorkflow.tasks.length;
  let succeeded = 0;
  let lost = 0;
  let duplicated = 0;
  let wrongTenant = 0;
  const latencies: number[] = [];
  await withClient(adminUrl, async (client) => {
    for (const tenantId of tenantIds) {
      const ids = [...accepted].filter(([, owner]) => owner === tenantId).map(([executionId]) => executionId);
      if (ids.length === 0) {
        continue;
      }
      const schema = quoteIdent(tenantId);
      const { rows } = await client.query<{
        execution_id: string;
        status: string;
        finished_ms: string | null;
        results: number;
        foreign_rows: number;
      }>(
        `SELECT e.id AS execution_id, e.status,
                (extract(epoch FROM e.finished_at) * 1000)::bigint::text AS finished_ms,
                (SELECT count(*)::int FROM ${schema}.example_results r WHERE r.execution_id = e.id) AS results,
                (SELECT count(*)::int FROM ${schema}.example_results r
                  WHERE r.execution_id = e.id AND r.tenant_id <> $2) AS foreign_rows
           FROM ${schema}.executions e WHERE e.id = ANY($1::text[])`,
        [ids, tenantId],
      );
      lost += ids.length - rows.length;
      for (const row of rows) {
        if (row.status === 'succeeded' && row.results === tasks) {
          succeeded += 1;
          const started = startedAt.get(row.execution_id);
          if (started !== undefined && row.finished_ms !== null) {
            latencies.push(Number(row.finished_ms) - started);
          }
        } else if (row.results < tasks || row.status !== 'succeeded') {
          lost += 1;
        }
        duplicated += Math.max(0, row.results - tasks);
        wrongTenant += row.foreign_rows;
      }
    }
  });
  return {
    accepted: accepted.size,
    succeeded,
    lost,
    duplicated,
    wrongTenant,
    executionLatency: distribution(latencies.length === 0 ? [0] : latencies),
  };
}
