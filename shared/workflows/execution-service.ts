import { randomUUID } from 'node:crypto';
import {
  ConfigurationError,
  ExecutionNotFoundError,
  ForeignExecutionError,
  PayloadTooLargeError,
  TenantInactiveError,
  TenantNotFoundError,
  ValidationError,
} from '../kernel/errors.js';
import type { Failpoints } from '../kernel/failpoints.js';
import { assertValidTenantId } from '../kernel/tenant-id.js';
import type { Logger } from '../logging/logger.js';
import { NO_METRICS, type PlatformMetrics } from '../logging/metrics.js';
import { effectiveLimits } from '../tenancy/tenant-config.js';
import { assertTenantActive, type TenantInfo, type TenantRegistry } from '../tenancy/tenant-registry.js';
import { ExecutionNotRedrivableError, ExecutionStateConflictError } from './execution-control-errors.js';
import type {
  CancelledBy,
  ExecutionRecord,
  ExecutionStatus,
  ExecutionStore,
  ExecutionSummary,
  TaskRunRecord,
  TenantMetrics,
} from './execution-store.js';
import { executionIdSchema } from './invocations.js';
import type { Orchestrator } from './orchestrator.js';
import type { JsonValue } from './task.js';
import { parseWorkflowInput } from './workflow.js';
import type { WorkflowRegistry } from './workflow-registry.js';

export interface ExecutionServiceDependencies {
  readonly registry: Pick<TenantRegistry, 'get'>;
  readonly workflows: WorkflowRegistry;
  readonly store: ExecutionStore;
  readonly orchestrator: Orchestrator;
  readonly logger: Logger;
  /** Crash injection for the recovery tests; never set in production. */
  readonly failpoints?: Failpoints | undefined;
  /** Counts the executions started. @default NO_METRICS */
  readonly metrics?: Pick<PlatformMetrics, 'executionStarted'> | undefined;
}

export interface StartExecutionCommand {
  readonly workflow: string;
  readonly input: JsonValue;
}

/** A task as the API shows it: tasks that have not run yet are listed as `pending`. */
export type TaskView = Omit<TaskRunRecord, 'status' | 'startedAt' | 'heartbeatAt'> & {
  readonly status: TaskRunRecord['status'] | 'pending';
  readonly startedAt: Date | null;
  readonly heartbeatAt: Date | null;
};

export type ExecutionView = Omit<ExecutionRecord, 'tasks' | 'orchestratorRef'> & {
  readonly tenantId: string;
  readonly tasks: readonly TaskView[];
};

/**
 * Starts and reads workflow executions for one tenant at a time. The execution row is
 * the source of truth: it is written before the orchestrator is asked to start, so a start that is
 * lost on the way is still on record (`pending`) for recovery to start again.
 *
 * @example
 * ```ts
 * const { executionId } = await executions.start('acme', { workflow: 'nightly_etl', input: {} });
 * const view = await executions.get('acme', executionId);
 * ```
 */
export class ExecutionService {
  constructor(private readonly deps: ExecutionServiceDependencies) {}

  /**
   * Checks the tenant (registered, active), the workflow (registered), the input (within
   * `limits.maxInputBytes`, then accepted by the workflow's input schema: a 400 otherwise) and the
   * tenant's concurrency (`limits.maxConcurrentExecutions`), records the execution, with the input
   * as the schema parsed it, and starts it. Nothing is recorded for an input that is refused.
   *
   * `options.executionId` is a caller-chosen id (a schedule's firing derives it from the schedule
   * and the time it was due): when an execution with that id is already recorded, it is answered
   * as it stands and nothing is started again, so a repeated call starts at most one execution.
   */
  async start(
    tenantId: string,
    command: StartExecutionCommand,
    options: { readonly executionId?: string | undefined } = {},
  ): Promise<{ executionId: string; status: ExecutionStatus }> {
    const tenant = await this.#activeTenant(tenantId);
    const workflow = this.deps.workflows.require(command.workflow);
    const limits = effectiveLimits(tenant.config);
    const inputBytes = Buffer.byteLength(JSON.stringify(command.input));
    if (inputBytes > limits.maxInputBytes) {
      throw new PayloadTooLargeError(
        `The input is ${inputBytes} bytes as JSON; tenant '${tenantId}' allows at most ${limits.maxInputBytes} (limits.maxInputBytes)`,
      );
    }
    // After the size check, so the schema never parses more than the tenant allows.
    const input = parseWorkflowInput(workflow, command.input);
    if (options.executionId !== undefined && !executionIdSchema.safeParse(options.executionId).success) {
      throw new ValidationError('Invalid execution id', [`executionId: must be a UUID`]);
    }
    const executionId = options.executionId ?? randomUUID();
    const recorded = await this.deps.store.insertWithinLimit(
      tenantId,
      { executionId, workflow: workflow.name, input },
      limits.maxConcurrentExecutions,
      { ifAbsent: options.executionId !== undefined },
    );
    if (!recorded.inserted) {
      // Started (or left pending for recovery) by the call that recorded it.
      return { executionId, status: recorded.status };
    }
    await this.deps.failpoints?.reach('after-insert', { tenantId });
    try {
      const started = await this.deps.orchestrator.start({ workflow: workflow.name, tenantId, executionId });
      await this.deps.store.markStarted(tenantId, executionId, started.ref);
      (this.deps.metrics ?? NO_METRICS).executionStarted({ tenantId, executionId, workflow: workflow.name });
      return { executionId, status: 'running' };
    } catch (error) {
      if (error instanceof ConfigurationError) {
        // No state machine for this workflow: retrying will not help, so say so now.
        await this.deps.store.finalize(tenantId, executionId, 'failed', `Not started: ${error.message}`);
        throw error;
      }
      // Accepted and on record: recovery starts it (same name, so never twice).
      this.deps.logger.error('start failed; the execution stays pending for recovery', {
        tenantId,
        executionId,
        error,
      });
      return { executionId, status: 'pending' };
    }
  }

  async get(tenantId: string, executionId: string): Promise<ExecutionView> {
    await this.#knownTenant(tenantId);
    const record = await this.deps.store.get(tenantId, executionId);
    if (record === undefined) {
      throw new ExecutionNotFoundError(tenantId, executionId);
    }
    const { orchestratorRef: _internal, tasks, ...execution } = record;
    const ran = new Map(tasks.map((task) => [task.taskId, task]));
    const declared = this.deps.workflows.get(record.workflow)?.tasks.map((task) => task.id) ?? [];
    const views: TaskView[] = [
      ...declared.map(
        (taskId) =>
          ran.get(taskId) ?? {
            taskId,
            status: 'pending' as const,
            attempt: 0,
            error: null,
            startedAt: null,
            finishedAt: null,
            heartbeatAt: null,
          },
      ),
      // Runs of tasks this deployment no longer declares are still shown, never hidden.
      ...tasks.filter((task) => !declared.includes(task.taskId)),
    ];
    return { tenantId, ...execution, tasks: views };
  }

  async list(
    tenantId: string,
    options: { status?: ExecutionStatus | undefined; limit: number; nextToken?: string | undefined },
  ): Promise<{ executions: ExecutionSummary[]; nextToken: string | undefined }> {
    await this.#knownTenant(tenantId);
    const after = options.nextToken === undefined ? undefined : decodeToken(options.nextToken);
    if (after !== undefined && !(await this.deps.store.exists(tenantId, after))) {
      throw new ExecutionNotFoundError(tenantId, after);
    }
    const page = await this.deps.store.list(tenantId, {
      status: options.status,
      limit: options.limit,
      after,
    });
    return {
      executions: page.executions,
      nextToken: page.next === undefined ? undefined : encodeToken(page.next),
    };
  }

  async metrics(
    tenantId: string,
  ): Promise<
    TenantMetrics & { tenantId: string; averageDurationMs: number | null; pending: number; running: number }
  > {
    await this.#knownTenant(tenantId);
    const metrics = await this.deps.store.metrics(tenantId);
    return {
      tenantId,
      ...metrics,
      averageDurationMs:
        metrics.executionsFinished === 0
          ? null
          : Math.round(metrics.totalDurationMs / metrics.executionsFinished),
    };
  }

  /**
   * Cancels a pending or running execution. The cancel is recorded first (the row becomes `aborted`
   * with `cancelledBy` and `cancelledAt`, and is counted), then the orchestrator is asked to stop
   * it. From the record on, no task can commit, finalize cannot overwrite it and recovery leaves it
   * alone; a stop that is lost (a crash, a failed call) is finished by a repeated cancel or by
   * recovery. A repeated cancel answers as the first did (`alreadyCancelled: true`).
   *
   * Allowed for an active or an inactive tenant (stopping work is never refused); refused with a
   * 423 while the tenant is being onboarded or offboarded, a 404 for an unknown execution, and a
   * 409 naming the status for an execution that already ended otherwise.
   */
  async cancel(
    tenantId: string,
    executionId: string,
    cancelledBy: CancelledBy,
  ): Promise<{
    executionId: string;
    status: 'aborted';
    cancelledAt: Date;
    cancelledBy: CancelledBy;
    alreadyCancelled: boolean;
  }> {
    await this.#knownTenant(tenantId);
    const recorded = await this.deps.store.cancel(tenantId, executionId, cancelledBy);
    if (recorded.kind === 'not_found') {
      throw new ExecutionNotFoundError(tenantId, executionId);
    }
    if (recorded.kind === 'ended') {
      throw new ExecutionStateConflictError(
        executionId,
        recorded.status,
        `Execution '${executionId}' is already ${recorded.status}; only a pending or running execution can be cancelled`,
      );
    }
    if (recorded.kind === 'cancelled' || !recorded.stopConfirmed) {
      await this.stopCancelled(tenantId, executionId, recorded.workflow);
    }
    return {
      executionId,
      status: 'aborted',
      cancelledAt: recorded.cancelledAt,
      cancelledBy: recorded.cancelledBy,
      alreadyCancelled: recorded.kind === 'already_cancelled',
    };
  }

  /**
   * Asks the orchestrator to stop a cancelled execution and records that it did. Never throws: a
   * failure is logged and the stop stays unconfirmed, for a repeated cancel or recovery to finish.
   * The cancel itself is already on record, so nothing the orchestrator still runs can commit.
   * Returns whether the stop is confirmed.
   */
  async stopCancelled(tenantId: string, executionId: string, workflow: string): Promise<boolean> {
    try {
      await this.deps.orchestrator.stop(
        { workflow, tenantId, executionId },
        { error: 'Cancelled', cause: `Execution '${executionId}' was cancelled through the API` },
      );
    } catch (error) {
      if (!(error instanceof ForeignExecutionError)) {
        this.deps.logger.error(
          'stopping a cancelled execution failed; a repeated cancel or recovery stops it',
          {
            tenantId,
            executionId,
            error,
          },
        );
        return false;
      }
      // The execution by that name is not this one: nothing of this execution runs to be stopped.
    }
    await this.deps.store.markCancelStopped(tenantId, executionId);
    return true;
  }

  /**
   * Reruns a failed execution: the orchestrator redrives it from its failed task, and the tasks it
   * already committed are skipped (the task runner finds them done). The tenant must be active and
   * have a slot under `limits.maxConcurrentExecutions` (429 otherwise), as for a start. The row goes
   * back to `running` (with `rerunCount` and `lastRerunAt`) before the redrive is asked for, so a
   * redrive lost on the way is finished by recovery; a redrive the orchestrator refuses puts it back
   * to `failed` and answers 409 with the orchestrator's reason.
   *
   * Only `failed` executions are rerun: a pending, running or succeeded one, and an aborted one
   * (cancelled by a client, or stopped in the orchestrator), get a 409 naming the status.
   */
  async rerun(
    tenantId: string,
    executionId: string,
  ): Promise<{ executionId: string; status: 'running'; rerunCount: number }> {
    const tenant = await this.#activeTenant(tenantId);
    const limits = effectiveLimits(tenant.config);
    const admission = await this.deps.store.beginRerun(tenantId, executionId, limits.maxConcurrentExecutions);
    if (admission.kind === 'not_found') {
      throw new ExecutionNotFoundError(tenantId, executionId);
    }
    if (admission.kind === 'not_failed') {
      throw new ExecutionStateConflictError(
        executionId,
        admission.status,
        admission.cancelled
          ? `Execution '${executionId}' is aborted: it was cancelled, and a cancelled execution is not rerun; start a new one`
          : `Execution '${executionId}' is ${admission.status}; only a failed execution can be rerun`,
      );
    }
    const handle = { workflow: admission.workflow, tenantId, executionId };
    let refusal: Error | undefined;
    try {
      const outcome = await this.deps.orchestrator.redrive(handle);
      if (outcome.kind === 'not_redrivable') {
        refusal = new ExecutionNotRedrivableError(executionId, outcome.reason);
      }
    } catch (error) {
      if (error instanceof ForeignExecutionError) {
        refusal = error;
      } else if (error instanceof ConfigurationError) {
        refusal = new ExecutionNotRedrivableError(executionId, error.message);
      } else {
        // On record as running: recovery finds its orchestrator execution failed and redrives it.
        this.deps.logger.error('redrive failed; the rerun is left to recovery', {
          tenantId,
          executionId,
          error,
        });
      }
    }
    if (refusal !== undefined) {
      await this.deps.store.undoRerun(tenantId, executionId, admission);
      throw refusal;
    }
    return { executionId, status: 'running', rerunCount: admission.rerunCount };
  }

  /**
   * A tenant whose executions may be read: active or inactive. While it is being onboarded or
   * offboarded its schema may not exist (yet, or any more), so its reads are refused with the 423
   * its work gets, never attempted.
   */
  async #knownTenant(tenantId: string): Promise<TenantInfo> {
    assertValidTenantId(tenantId);
    const tenant = await this.deps.registry.get(tenantId);
    if (tenant === undefined) {
      throw new TenantNotFoundError(tenantId);
    }
    if (tenant.status === 'provisioning' || tenant.status === 'deprovisioning') {
      throw new TenantInactiveError(tenant.tenantId, tenant.status);
    }
    return tenant;
  }

  async #activeTenant(tenantId: string): Promise<TenantInfo> {
    const tenant = await this.#knownTenant(tenantId);
    assertTenantActive(tenant);
    return tenant;
  }
}

/** Page tokens are opaque to clients, so paging can change without breaking them. */
function encodeToken(executionId: string): string {
  return Buffer.from(JSON.stringify({ after: executionId })).toString('base64url');
}

function decodeToken(token: string): string {
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { after?: unknown };
    // Only an execution id this API could have put there: anything else (a NUL, say) would reach
    // PostgreSQL and come back as a 500, or be echoed in a 404's message.
    if (executionIdSchema.safeParse(parsed.after).success) {
      return parsed.after as string;
    }
  } catch {
    // fall through
  }
  throw new InvalidPageTokenError();
}

class InvalidPageTokenError extends ValidationError {
  constructor() {
    super('Invalid request', ['query.nextToken: is not a token this API returned']);
  }
}
