import type { Logger } from '@tenantflow/shared/logging/logger';
import { type RecoveryOptions, RecoveryService, RecoveryStore } from '@tenantflow/shared/recovery';
import { ExecutionStore } from '@tenantflow/shared/workflows/execution-store';
import type {
  ExecutionDescription,
  ExecutionHandle,
  Orchestrator,
  RedriveOutcome,
  StartExecutionRequest,
  StartedExecution,
} from '@tenantflow/shared/workflows/orchestrator';
import type { WorkflowRegistry } from '@tenantflow/shared/workflows/workflow-registry';
import type pg from 'pg';
import type { TestPlatform } from './platform.js';

/** The thresholds the recovery suites start from; each test overrides what it is about. */
export const TEST_RECOVERY_OPTIONS: RecoveryOptions = {
  staleAfterSeconds: 60,
  heartbeatStaleAfterSeconds: 60,
  maxAttempts: 3,
  concurrency: 4,
  retentionDays: 30,
};

/**
 * A recovery service over a test platform, as the recovery handler wires it, with `orchestrator`
 * and `options` of the test's choosing. `pool` stands for another Lambda's platform pool.
 */
export function testRecovery(
  env: TestPlatform,
  setup: {
    readonly orchestrator: Orchestrator;
    readonly workflows: Pick<WorkflowRegistry, 'get'>;
    readonly logger: Logger;
    readonly options?: Partial<RecoveryOptions>;
    readonly pool?: pg.Pool;
  },
): RecoveryService {
  const pool = setup.pool ?? env.platform.pool;
  return new RecoveryService({
    store: new RecoveryStore(pool),
    executions: new ExecutionStore(pool),
    registry: env.platform.registry,
    orchestrator: setup.orchestrator,
    workflows: setup.workflows,
    lifecycle: env.platform.lifecycle,
    logger: setup.logger,
    options: { ...TEST_RECOVERY_OPTIONS, ...setup.options },
  });
}

/** An orchestrator in front of another, recording what recovery asked it to start, stop or redrive. */
export class CountingOrchestrator<Inner extends Orchestrator = Orchestrator> implements Orchestrator {
  readonly starts: string[] = [];
  readonly redrives: string[] = [];
  readonly stops: string[] = [];
  constructor(readonly inner: Inner) {}
  start(request: StartExecutionRequest): Promise<StartedExecution> {
    this.starts.push(request.executionId);
    return this.inner.start(request);
  }
  describe(handle: ExecutionHandle): Promise<ExecutionDescription> {
    return this.inner.describe(handle);
  }
  stop(handle: ExecutionHandle, reason: { error: string; cause: string }): Promise<void> {
    this.stops.push(handle.executionId);
    return this.inner.stop(handle, reason);
  }
  redrive(handle: ExecutionHandle): Promise<RedriveOutcome> {
    this.redrives.push(handle.executionId);
    return this.inner.redrive(handle);
  }
}
