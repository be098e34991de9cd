import { SQLSTATE, sqlState } from '../db/sql.js';
import { ExecutionNotFoundError, TenantInactiveError } from '../kernel/errors.js';
import type { Failpoints } from '../kernel/failpoints.js';
import type { Logger } from '../logging/logger.js';
import { NO_METRICS, type PlatformMetrics } from '../logging/metrics.js';
import type { TenantConnections } from '../tenancy/tenant-connections.js';
import type { TenantContextSwitch } from '../tenancy/tenant-context.js';
import { type ExecutionForTask, ExecutionStore, type TaskClaim } from './execution-store.js';
import {
  ExecutionNotRunnableError,
  TaskFailedError,
  TaskTimedOutError,
  UnknownTaskError,
} from './state-errors.js';
import type { JsonValue, TaskContext, TaskDefinition } from './task.js';
import type { WorkflowRegistry } from './workflow-registry.js';

/** What Step Functions sends the run-task Lambda: ids only. */
export interface TaskInvocation {
  readonly tenantId: string;
  readonly executionId: string;
  readonly taskId: string;
}

export type TaskRunOutcome =
  | { readonly outcome: 'succeeded'; readonly attempt: number }
  /** The task had already been committed: a retried invocation, so nothing ran. */
  | { readonly outcome: 'already_succeeded' };

export interface TaskRunnerDependencies {
  readonly tenants: TenantContextSwitch;
  readonly workflows: WorkflowRegistry;
  readonly store: ExecutionStore;
  readonly tenantConnections: Pick<TenantConnections, 'tenantDb'>;
  readonly logger: Logger;
  /** How often a running task proves it is alive. Default 10 s. */
  readonly heartbeatIntervalMs?: number;
  /** Crash injection for the recovery tests; never set in production. */
  readonly failpoints?: Failpoints | undefined;
  /** Times each attempt and counts the failed ones. @default NO_METRICS */
  readonly metrics?: Pick<PlatformMetrics, 'taskRan'> | undefined;
}

/** When a running attempt first reports itself (then every heartbeat interval). */
const FIRST_HEARTBEAT_MS = 500;

/** Task errors are stored and returned to clients; keep a runaway message from bloating both. */
const MAX_ERROR_LENGTH = 2000;

/**
 * Runs one task of one execution, as the run-task Lambda does for each Task state:
 * 1. inside `switch(tenantId)`, so an unknown or inactive tenant runs nothing (fail closed);
 * 2. skipping a task already committed for this execution (a retried invocation);
 * 3. in **one transaction on the tenant-role connection**: the task body's own writes, its context
 *    changes and its completion commit together or not at all;
 * 4. under the task's timeout, after which the transaction is abandoned and rolled back;
 * 5. heartbeating while it runs, and recording a failed attempt with its error.
 *
 * @example
 * ```ts
 * const runner = new TaskRunner({ tenants, workflows, store, tenantConnections, logger });
 * await runner.run({ tenantId: 'acme', executionId, taskId: 'extract' });
 * ```
 */
export class TaskRunner {
  readonly #deps: TaskRunnerDependencies;
  readonly #heartbeatIntervalMs: number;

  constructor(deps: TaskRunnerDependencies) {
    this.#deps = deps;
    this.#heartbeatIntervalMs = deps.heartbeatIntervalMs ?? 10_000;
  }

  run(invocation: TaskInvocation): Promise<TaskRunOutcome> {
    return this.#deps.tenants.switch(invocation.tenantId, (tenant) =>
      this.#runInTenant(invocation, {
        id: tenant.tenantId,
        name: tenant.name,
        metadata: tenant.metadata,
        config: tenant.config,
      }),
    );
  }

  async #runInTenant(invocation: TaskInvocation, tenant: TaskContext['tenant']): Promise<TaskRunOutcome> {
    const { store } = this.#deps;
    const { tenantId, executionId, taskId } = invocation;
    // The claim only for a workflow that declares the task, so an unknown task leaves no run behind.
    const declaring = this.#deps.workflows
      .list()
      .filter((workflow) => workflow.task(taskId) !== undefined)
      .map((workflow) => workflow.name);
    const claim = await store.taskClaim(tenantId, executionId, taskId, declaring);
    const db = await this.#deps.tenantConnections.tenantDb(tenantId);
    // Aborted by the timeout, or by a heartbeat that finds the execution ended under the task (a
    // client cancelled it): either way the task's `signal` fires and its transaction rolls back.
    const timeout = new AbortController();
    let running: RunningAttempt | undefined;
    try {
      // One transaction on the tenant-role connection, in two round trips besides the task's own
      // queries: BEGIN with the claim, then the completion with COMMIT. The claim, the task's
      // writes, its context changes and its completion commit together or not at all.
      await db.transaction(
        async (client, opened) => {
          const attempt = this.#startedAttempt(
            store.readTaskClaim(opened, declaring, claim.token),
            invocation,
          );
          running = this.#watch(invocation, attempt, timeout);
          const { task, execution, logger } = running;
          const context = new ContextDraft(execution.context);
          await untilAborted(
            Promise.resolve(
              task.run({
                taskId,
                workflow: execution.workflow,
                executionId,
                attempt: attempt.attempt,
                input: execution.input,
                tenant,
                db: client,
                logger,
                signal: timeout.signal,
                get: (key) => context.get(key) as never,
                set: (key, value) => context.set(key, value),
              }),
            ),
            timeout.signal,
          );
          await this.#deps.failpoints?.reach('after-body', { tenantId, name: taskId });
          await this.#deps.failpoints?.reach('before-commit', { tenantId, name: taskId });
          return context.changes();
        },
        {
          signal: timeout.signal,
          withBegin: claim.statement,
          withCommit: (changes) => store.taskCompletion(tenantId, executionId, taskId, claim.token, changes),
        },
      );
    } catch (error) {
      if (error instanceof ClaimRefused) {
        if (error.outcome !== undefined) {
          return error.outcome;
        }
        throw error.cause;
      }
      if (running === undefined) {
        if (sqlState(error) === SQLSTATE.lockNotAvailable) {
          // Another attempt of this task holds its row (claim_task's lock_timeout): retried by the
          // task's policy, by when that attempt has committed or rolled back.
          throw new TaskFailedError(
            `Task '${taskId}' of execution '${executionId}' is still running in another attempt; this one did not start`,
            { cause: error },
          );
        }
        // The claim itself failed (a lost connection, a refused proof): no attempt to record.
        throw error;
      }
      const refusal = ExecutionStore.completionRefusal(error);
      if (refusal === 'already_succeeded') {
        // Another attempt committed first: this one rolled back, so its effects never count twice.
        running.stop();
        return { outcome: 'already_succeeded' };
      }
      this.#recordRun(invocation, running, true);
      throw await this.#recordFailure(
        invocation,
        running,
        completionError(invocation, running, refusal, error),
      );
    } finally {
      running?.stop();
    }
    const committed = running as RunningAttempt | undefined;
    if (committed === undefined) {
      throw new Error('unreachable: a committed task transaction ran its attempt');
    }
    await this.#deps.failpoints?.reach('after-commit', { tenantId, name: taskId });
    this.#recordRun(invocation, committed, false);
    return { outcome: 'succeeded', attempt: committed.attempt };
  }

  /** The attempt the claim started, or a {@link ClaimRefused} that rolls the transaction back. */
  #startedAttempt(claim: TaskClaim, invocation: TaskInvocation): StartedClaim {
    const { executionId, taskId } = invocation;
    if (claim.kind === 'not_found') {
      throw new ClaimRefused(new ExecutionNotFoundError(invocation.tenantId, executionId));
    }
    const { execution } = claim;
    if (claim.kind === 'not_runnable') {
      throw new ClaimRefused(
        new ExecutionNotRunnableError(
          `Execution '${executionId}' is ${execution.status}; its tasks no longer run`,
        ),
      );
    }
    const task = this.#deps.workflows.get(execution.workflow)?.task(taskId);
    if (claim.kind === 'unknown_task' || task === undefined) {
      throw new ClaimRefused(
        new UnknownTaskError(`Workflow '${execution.workflow}' has no task '${taskId}' in this deployment`),
      );
    }
    if (claim.kind === 'already_succeeded') {
      throw new ClaimRefused(undefined, { outcome: { outcome: 'already_succeeded' } });
    }
    return { execution, task, attempt: claim.attempt };
  }

  /** Starts the attempt's timeout and heartbeat; `stop()` ends both. */
  #watch(invocation: TaskInvocation, claim: StartedClaim, timeout: AbortController): RunningAttempt {
    const { tenantId, executionId, taskId } = invocation;
    const { execution, task, attempt } = claim;
    const startedAt = new Date();
    const startedMs = performance.now();
    const logger = this.#deps.logger.createChild({
      persistentKeys: { tenantId, workflow: execution.workflow, executionId, taskId, attempt },
    });
    const beat = () => {
      this.#deps.store
        .heartbeat(tenantId, executionId, { taskId, attempt, startedAt })
        .then((inFlight) => {
          if (!inFlight && !timeout.signal.aborted) {
            timeout.abort(
              new ExecutionNotRunnableError(
                `Execution '${executionId}' ended (cancelled) while task '${taskId}' ran; its work is rolled back`,
              ),
            );
          }
        })
        .catch((error: unknown) => {
          logger.warn('heartbeat failed', { error });
        });
    };
    // The first beat comes early, so a task that runs for more than a moment shows as running; a
    // short task ends before it and costs no write besides its own commit.
    let heartbeat: NodeJS.Timeout | undefined;
    const firstBeat = setTimeout(
      () => {
        beat();
        heartbeat = setInterval(beat, this.#heartbeatIntervalMs);
        heartbeat.unref();
      },
      Math.min(FIRST_HEARTBEAT_MS, this.#heartbeatIntervalMs),
    );
    firstBeat.unref();
    const timer = setTimeout(
      () => timeout.abort(new TaskTimedOutError(`Task '${taskId}' timed out after ${task.timeoutSeconds} s`)),
      task.timeoutSeconds * 1000,
    );
    timer.unref();
    return {
      ...claim,
      logger,
      startedAt,
      startedMs,
      stop: () => {
        clearTimeout(firstBeat);
        clearInterval(heartbeat);
        clearTimeout(timer);
      },
    };
  }

  async #recordFailure(invocation: TaskInvocation, running: RunningAttempt, error: unknown): Promise<Error> {
    const { task, attempt, logger, startedAt } = running;
    const message = (error instanceof Error ? error.message : String(error)).slice(0, MAX_ERROR_LENGTH);
    logger.error('task attempt failed', { error });
    await this.#deps.store
      .recordTaskFailure(
        invocation.tenantId,
        invocation.executionId,
        invocation.taskId,
        attempt,
        message,
        startedAt,
      )
      .catch((recordError: unknown) =>
        logger.error('could not record the failed attempt', { error: recordError }),
      );
    // Passed on by name: a timeout is retried by the task's policy, and an execution that ended
    // (cancelled) is not retried at all, where a TaskFailedError would be.
    if (
      error instanceof TaskTimedOutError ||
      error instanceof ExecutionNotRunnableError ||
      error instanceof TenantInactiveError
    ) {
      return error;
    }
    return new TaskFailedError(
      `Task '${task.id}' failed on attempt ${attempt} of ${task.retry.attempts}: ${message}`,
      { cause: error },
    );
  }

  /** The attempt's duration and whether it failed, as the task metrics count them. */
  #recordRun(invocation: TaskInvocation, running: RunningAttempt, failed: boolean): void {
    const durationMs = performance.now() - running.startedMs;
    (this.#deps.metrics ?? NO_METRICS).taskRan({
      ...invocation,
      workflow: running.execution.workflow,
      durationMs,
      failed,
    });
  }
}

/** What the claim started: the execution as the task sees it, the task, the attempt's number. */
interface StartedClaim {
  readonly execution: ExecutionForTask;
  readonly task: TaskDefinition;
  readonly attempt: number;
}

interface RunningAttempt extends StartedClaim {
  readonly logger: Logger;
  readonly startedAt: Date;
  readonly startedMs: number;
  /** Ends the attempt's heartbeat and timeout. */
  readonly stop: () => void;
}

/**
 * The claim started no attempt: thrown inside the transaction so it rolls back (it wrote nothing),
 * then answered with `outcome`, or by throwing `cause`. Nothing is recorded as failed.
 */
class ClaimRefused extends Error {
  readonly outcome: TaskRunOutcome | undefined;

  constructor(cause: Error | undefined, options: { outcome?: TaskRunOutcome } = {}) {
    super(cause?.message ?? 'claim refused', { cause });
    this.outcome = options.outcome;
  }
}

/** The error of an attempt whose completion failed: why `finish_task` refused it, or the error itself. */
function completionError(
  invocation: TaskInvocation,
  running: RunningAttempt,
  refusal: ReturnType<typeof ExecutionStore.completionRefusal>,
  error: unknown,
): unknown {
  const { tenantId, executionId, taskId } = invocation;
  if (refusal === 'tenant_inactive') {
    // Deactivated while the task ran: fail closed, nothing of it lands.
    return new TenantInactiveError(tenantId);
  }
  if (refusal === 'execution_ended') {
    // Finalized (failed, aborted) while this task ran: its effects must not land after the end.
    return new ExecutionNotRunnableError(`Execution '${executionId}' ended while task '${taskId}' ran`);
  }
  if (refusal !== undefined) {
    // Not an attempt the platform started (or its run vanished): this one must not commit.
    return new ExecutionNotRunnableError(
      `Task '${taskId}' attempt ${running.attempt} of execution '${executionId}' can no longer commit (${refusal})`,
    );
  }
  return error;
}

/** The workflow context as one task sees and changes it; only its changes are written back. */
class ContextDraft {
  readonly #base: Record<string, JsonValue>;
  readonly #set = new Map<string, JsonValue>();
  readonly #unset = new Set<string>();

  constructor(base: Record<string, JsonValue>) {
    this.#base = base;
  }

  get(key: string): JsonValue | undefined {
    if (this.#unset.has(key)) {
      return undefined;
    }
    const value = this.#set.has(key) ? this.#set.get(key) : this.#base[key];
    return value === undefined ? undefined : structuredClone(value);
  }

  set(key: string, value: unknown): void {
    if (typeof key !== 'string' || key.length === 0) {
      throw new TypeError('A context key must be a non-empty string');
    }
    if (value === undefined) {
      this.#set.delete(key);
      this.#unset.add(key);
      return;
    }
    let copy: JsonValue;
    try {
      // A JSON round trip both copies the value and proves it can be stored as jsonb.
      copy = JSON.parse(JSON.stringify(value)) as JsonValue;
    } catch (cause) {
      throw new TypeError(`The context value for '${key}' must be JSON`, { cause });
    }
    this.#unset.delete(key);
    this.#set.set(key, copy);
  }

  changes() {
    return { set: Object.fromEntries(this.#set), unset: [...this.#unset] };
  }
}

/** Settles with `work`, or rejects with the signal's reason as soon as it aborts. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
