import type { Failpoints } from '../kernel/failpoints.js';
import { assertValidTenantId } from '../kernel/tenant-id.js';
import type { Logger } from '../logging/logger.js';
import { NO_METRICS, type PlatformMetrics } from '../logging/metrics.js';
import type { ExecutionStore, FinalOutcome } from './execution-store.js';

export interface FinalizeCommand {
  readonly tenantId: string;
  readonly executionId: string;
  readonly outcome: FinalOutcome;
  /** The error name and cause the state machine caught, for a failed execution. */
  readonly error?: string | undefined;
  readonly cause?: string | undefined;
}

/**
 * Ends an execution: records its final status and counts it in the tenant's counters, exactly
 * once however often it is called (the state may be retried, and recovery finalizes too). A failed
 * execution's error names the task that failed and why.
 *
 * @example
 * ```ts
 * await new ExecutionFinalizer(store, logger).finalize({ tenantId, executionId, outcome: 'succeeded' });
 * ```
 */
export class ExecutionFinalizer {
  constructor(
    private readonly store: Pick<ExecutionStore, 'finalize' | 'lastFailedTask'>,
    private readonly logger: Logger,
    private readonly options: {
      /** Crash injection for the recovery tests; never set in production. */
      readonly failpoints?: Failpoints | undefined;
      /** Counts the executions ended, by outcome, once each. @default NO_METRICS */
      readonly metrics?: Pick<PlatformMetrics, 'executionEnded'> | undefined;
    } = {},
  ) {}

  async finalize(command: FinalizeCommand): Promise<{ finalized: boolean }> {
    const { tenantId, executionId, outcome } = command;
    assertValidTenantId(tenantId);
    await this.options.failpoints?.reach('before-finalize', { tenantId: command.tenantId });
    let error: string | null = null;
    if (outcome === 'failed') {
      const failedTask = await this.store.lastFailedTask(tenantId, executionId);
      error =
        failedTask === undefined
          ? `${command.error ?? 'Failed'}: ${causeMessage(command.cause)}`
          : `Task '${failedTask.taskId}' failed after ${failedTask.attempt} attempt(s): ${failedTask.error ?? causeMessage(command.cause)}`;
    } else if (outcome === 'aborted') {
      error = command.cause ?? 'Aborted';
    }
    const finalized = await this.store.finalize(tenantId, executionId, outcome, error);
    this.logger.info('execution finalized', { tenantId, executionId, outcome, finalized });
    if (finalized) (this.options.metrics ?? NO_METRICS).executionEnded({ tenantId, executionId, outcome });
    return { finalized };
  }
}

/**
 * Lambda reports a function error's cause as JSON (`{"errorType","errorMessage",...}`); the local
 * orchestrator gives the plain message. Either way, the message.
 */
function causeMessage(cause: string | undefined): string {
  if (cause === undefined || cause.length === 0) {
    return 'no cause reported';
  }
  try {
    const parsed = JSON.parse(cause) as { errorMessage?: unknown };
    if (typeof parsed.errorMessage === 'string') {
      return parsed.errorMessage;
    }
  } catch {
    // not JSON: the plain message
  }
  return cause;
}
