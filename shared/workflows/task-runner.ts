import { ExecutionNotFoundError } from '../kernel/errors.js';
import type { Failpoints } from '../kernel/failpoints.js';
import type { Logger } from '../logging/logger.js';
import { NO_METRICS, type PlatformMetrics } from '../logging/metrics.js';
import type { TenantConnections } from '../tenancy/tenant-connections.js';
import type { TenantContextSwitch } from '../tenancy/tenant-context.js';
import type { ExecutionStore } from './execution-store.js';
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
    // One round trip: the execution read and the attempt started, only for a workflow that declares
    // the task (so an unknown task leaves no run behind).
    const declaring = this.#deps.workflows
      .list()
      .filter((workflow) => workflow.task(taskId) !== undefined)
      .map((workflow) => workflow.name);
    const start = await store.claimTask(tenantId, executionId, taskId, declaring);
    if (start.kind === 'not_found') {
      throw new ExecutionNotFoundError(tenantId, executionId);
    }
    const { execution } = start;
    if (start.kind === 'not_runnable') {
      throw new ExecutionNotRunnableError(
        `Execution '${executionId}' is ${execution.status}; its tasks no longer run`,
      );
    }
    const task = this.#deps.workflows.get(execution.workflow)?.task(taskId);
    if (start.kind === 'unknown_task' || task === undefined) {
      throw new UnknownTaskError(
        `Workflow '${execution.workflow}' has no task '${taskId}' in this deployment`,
      );
    }
    if (start.kind === 'already_succeeded') {
      return { outcome: 'already_succeeded' };
    }
    const { attempt, token } = start;
    const attemptStarted = performance.now();
    const logger = this.#deps.logger.createChild({
      persistentKeys: { tenantId, workflow: execution.workflow, executionId, taskId, attempt },
    });
    // Aborted by the timeout, or by a heartbeat that finds the execution ended under the task (a
    // client cancelled it): either way the task's `signal` fires and its transaction rolls back.
    const timeout = new AbortController();
    const heartbeat = setInterval(() => {
      store
        .heartbeat(tenantId, executionId, taskId, attempt)
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
    }, this.#heartbeatIntervalMs);
    heartbeat.unref();
    const timer = setTimeout(
      () => timeout.abort(new TaskTimedOutError(`Task '${taskId}' timed out after ${task.timeoutSeconds} s`)),
      task.timeoutSeconds * 1000,
    );
    timer.unref();

    try {
      const db = await this.#deps.tenantConnections.tenantDb(tenantId);
      const committed = await db
        .transaction(
          async (client) => {
            const context = new ContextDraft(execution.context);
            await untilAborted(
              Promise.resolve(
                task.run({
                  taskId,
                  workflow: execution.workflow,
                  executionId,
                  attempt,
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
            const completion = await store.completeTask(
              client,
              tenantId,
              executionId,
              taskId,
              token,
              context.changes(),
            );
            if (completion === 'already_succeeded') {
              // Another attempt committed first: roll this one back so its effects never count twice.
              throw new AlreadyCommitted();
            }
            if (completion === 'execution_ended') {
              // Finalized (failed, aborted) while this task ran: its effects must not land after the end.
              throw new ExecutionNotRunnableError(
                `Execution '${executionId}' ended while task '${taskId}' ran`,
              );
            }
            if (completion !== 'completed') {
              // Not an attempt the platform started (or its run vanished): this one must not commit.
              throw new ExecutionNotRunnableError(
                `Task '${taskId}' attempt ${attempt} of execution '${executionId}' can no longer commit (${completion})`,
              );
            }
            await this.#deps.failpoints?.reach('before-commit', { tenantId, name: taskId });
            return true;
          },
          { signal: timeout.signal },
        )
        .catch((error: unknown) => {
          if (error instanceof AlreadyCommitted) {
            return false;
          }
          throw error;
        });
      if (!committed) {
        return { outcome: 'already_succeeded' };
      }
      await this.#deps.failpoints?.reach('after-commit', { tenantId, name: taskId });
      this.#recordRun(invocation, execution.workflow, attemptStarted, false);
      return { outcome: 'succeeded', attempt };
    } catch (error) {
      this.#recordRun(invocation, execution.workflow, attemptStarted, true);
      throw await this.#recordFailure(invocation, task, attempt, error, logger);
    } finally {
      clearInterval(heartbeat);
      clearTimeout(timer);
    }
  }

  async #recordFailure(
    invocation: TaskInvocation,
    task: TaskDefinition,
    attempt: number,
    error: unknown,
    logger: Logger,
  ): Promise<Error> {
    const message = (error instanceof Error ? error.message : String(error)).slice(0, MAX_ERROR_LENGTH);
    logger.error('task attempt failed', { error });
    await this.#deps.store
      .recordTaskFailure(invocation.tenantId, invocation.executionId, invocation.taskId, attempt, message)
      .catch((recordError: unknown) =>
        logger.error('could not record the failed attempt', { error: recordError }),
      );
    // Passed on by name: a timeout is retried by the task's policy, and an execution that ended
    // (cancelled) is not retried at all, where a TaskFailedError would be.
    if (error instanceof TaskTimedOutError || error instanceof ExecutionNotRunnableError) {
      return error;
    }
    return new TaskFailedError(
      `Task '${task.id}' failed on attempt ${attempt} of ${task.retry.attempts}: ${message}`,
      { cause: error },
    );
  }

  /** The attempt's duration and whether it failed, as the task metrics count them. */
  #recordRun(invocation: TaskInvocation, workflow: string, startedAt: number, failed: boolean): void {
    const durationMs = performance.now() - startedAt;
    (this.#deps.metrics ?? NO_METRICS).taskRan({ ...invocation, workflow, durationMs, failed });
  }
}

class AlreadyCommitted extends Error {}

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
