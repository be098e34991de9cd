import { randomUUID } from 'node:crypto';
import { qualified } from '@tenantflow/shared/db/sql';
import { createLogger } from '@tenantflow/shared/logging/logger';
import { ExecutionService } from '@tenantflow/shared/workflows/execution-service';
import { ExecutionStore } from '@tenantflow/shared/workflows/execution-store';
import type { WorkflowRegistry } from '@tenantflow/shared/workflows/workflow-registry';
import type { LocalPlatform } from '../local/local-platform.js';
import {
  acceptOnlyOrchestrator,
  benchTenantId,
  countDatabaseWork,
  type Distribution,
  distribution,
} from './support.js';
import { linearWorkflow } from './workflow-overhead.bench.js';

export interface StartBenchScale {
  readonly clients: number;
  readonly startsPerClient: number;
}

export function startBenchScale(env: NodeJS.ProcessEnv = process.env): StartBenchScale {
  return env.BENCH_QUICK === '1'
    ? { clients: 20, startsPerClient: 10 }
    : { clients: 20, startsPerClient: 50 };
}

export interface StartBenchmarkResult {
  readonly clients: number;
  readonly starts: number;
  /** `ExecutionService.start` with an orchestrator that only accepts. */
  readonly start: Distribution & { readonly p99: number };
  /** The floor: one INSERT of the execution row on the platform pool, then the same orchestrator call. */
  readonly floor: Distribution & { readonly p99: number };
  /** Per start, counted one start at a time. */
  readonly roundTrips: number;
  readonly writeTransactions: number;
  readonly floorRoundTrips: number;
}

/**
 * What a start costs the platform (`POST …/executions` past the HTTP layer): `ExecutionService.start`
 * (tenant checks, the concurrency limit, the execution row, the orchestrator call, the row marked
 * started) at `clients` concurrent callers, against its floor, a bare INSERT of the row and the
 * same orchestrator call, at the same concurrency. The orchestrator only accepts (it runs nothing),
 * so the figures are the bookkeeping's. Then the round trips and write transactions of one start,
 * counted on their own.
 *
 * `linearWorkflow` must be in `workflows`.
 */
export async function benchmarkStart(
  local: LocalPlatform,
  workflows: WorkflowRegistry,
  adminUrl: string,
  suffix: string,
  scale: StartBenchScale,
): Promise<StartBenchmarkResult> {
  const { platform } = local;
  const tenantId = benchTenantId('start', 0, suffix);
  await platform.tenantAdmin.register({
    tenantId,
    name: tenantId,
    // Every start stays `running` (nothing runs it): the limit must not be what is measured.
    config: { settings: {}, features: {}, limits: { maxConcurrentExecutions: 10_000 } },
  });
  await platform.lifecycleOrchestrator.drain();
  const service = new ExecutionService({
    registry: platform.registry,
    workflows,
    store: new ExecutionStore(platform.pool),
    orchestrator: acceptOnlyOrchestrator,
    logger: createLogger('bench-start'),
  });
  const executions = qualified(tenantId, 'executions');
  const start = () => service.start(tenantId, { workflow: linearWorkflow.name, input: {} });
  const floor = async () => {
    const executionId = randomUUID();
    await platform.pool.query(`INSERT INTO ${executions} (id, workflow, input) VALUES ($1, $2, $3)`, [
      executionId,
      linearWorkflow.name,
      '{}',
    ]);
    await acceptOnlyOrchestrator.start({ workflow: linearWorkflow.name, tenantId, executionId });
  };

  // Warm-up: pools opened, statements planned.
  for (let index = 0; index < 10; index += 1) {
    await start();
    await floor();
  }
  const floorTimes = await concurrently(scale, floor);
  const startTimes = await concurrently(scale, start);

  const counted = 20;
  const startWork = await countDatabaseWork(adminUrl, async () => {
    for (let index = 0; index < counted; index += 1) {
      await start();
    }
  });
  const floorWork = await countDatabaseWork(adminUrl, async () => {
    for (let index = 0; index < counted; index += 1) {
      await floor();
    }
  });
  return {
    clients: scale.clients,
    starts: scale.clients * scale.startsPerClient,
    start: withP99(startTimes),
    floor: withP99(floorTimes),
    roundTrips: startWork.roundTrips / counted,
    writeTransactions: startWork.writeTransactions / counted,
    floorRoundTrips: floorWork.roundTrips / counted,
  };
}

/** `clients` callers, each calling `work` `startsPerClient` times one after another; every call timed. */
async function concurrently(scale: StartBenchScale, work: () => Promise<unknown>): Promise<number[]> {
  const times: number[] = [];
  await Promise.all(
    Array.from({ length: scale.clients }, async () => {
      for (let index = 0; index < scale.startsPerClient; index += 1) {
        const began = performance.now();
        await work();
        times.push(performance.now() - began);
      }
    }),
  );
  return times;
}

function withP99(samples: readonly number[]): Distribution & { readonly p99: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const p99 = sorted[Math.max(0, Math.ceil(0.99 * sorted.length) - 1)] ?? Number.NaN;
  return { ...distribution(samples), p99 };
}
