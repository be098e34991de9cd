/**
 * The Orchestrator port: what the platform needs from whatever runs a workflow's state machine.
 * Adapters: `StepFunctionsOrchestrator` (AWS Step Functions) and `LocalOrchestrator`
 * (`local/`, the same ASL run in-process by aws-local-stepfunctions).
 *
 * An execution is addressed by its workflow, its tenant and its execution id. From those two ids
 * comes the orchestrator's execution name (`executionNameFor` in `execution-name.ts`:
 * `<tenantId>-<executionId>`), which is what makes a retried start idempotent and lets recovery ask
 * about an execution whose start call was lost before its reference was stored. Names are unique
 * per state machine, not per tenant, so execution ids must be globally unique (UUIDs), and a name
 * alone proves nothing: an `executions` row a tenant could have written may name another
 * tenant's execution. So every adapter checks that the execution by that name was started with this
 * handle's tenant and execution id as its input ({@link ExecutionInput}) before it tells anything
 * about it or acts on it: `describe` answers `foreign`, and `start`, `stop` and `redrive` throw a
 * `ForeignExecutionError`.
 */
export interface ExecutionHandle {
  /** The registered workflow; one state machine per workflow. */
  readonly workflow: string;
  /** The tenant the execution must belong to: the one whose schema holds its row. */
  readonly tenantId: string;
  readonly executionId: string;
}

/** The ids a state machine execution carries as input: never the context itself (256 KB cap). */
export interface ExecutionInput {
  readonly tenantId: string;
  readonly executionId: string;
}

/** A start names the same three things as any other call. */
export type StartExecutionRequest = ExecutionHandle;

export interface StartedExecution {
  /** Orchestrator reference (the execution ARN in AWS), stored on the execution row. */
  readonly ref: string;
  /**
   * True when the orchestrator reported the name as taken, so this start was a no-op. Step
   * Functions answers a repeat of a still-running start with success instead, so a repeat may also
   * report false; `ref` is the same either way.
   */
  readonly alreadyStarted: boolean;
}

/**
 * What the orchestrator says happened. `not_found` means it never started (or, locally, that the
 * process that ran it is gone); recovery relies on that answer being honest. `foreign` means an
 * execution by that name exists but its input is not this handle's tenant and execution id: it is
 * someone else's, and nothing more is told about it (no ref, dates, error or cause).
 */
export type OrchestratedStatus =
  | 'running'
  | 'succeeded'
  | 'failed'
  | 'timed_out'
  | 'aborted'
  | 'pending_redrive'
  | 'not_found'
  | 'foreign';

export interface ExecutionDescription {
  readonly status: OrchestratedStatus;
  readonly ref?: string | undefined;
  readonly startedAt?: Date | undefined;
  readonly stoppedAt?: Date | undefined;
  /** The error name and cause of a failed execution, as the orchestrator reports them. */
  readonly error?: string | undefined;
  readonly cause?: string | undefined;
  /** Whether a failed, timed-out or aborted execution can still be redriven. */
  readonly redrivable: boolean;
  readonly redriveCount?: number | undefined;
}

export type RedriveOutcome =
  | { readonly kind: 'redriven'; readonly redrivenAt: Date }
  | { readonly kind: 'not_redrivable'; readonly reason: string };

export interface Orchestrator {
  /**
   * Starts the workflow's state machine with the name `executionNameFor` gives; a repeat is
   * deduplicated. Throws
   * a `ForeignExecutionError` when the name is taken by an execution with other input.
   */
  start(request: StartExecutionRequest): Promise<StartedExecution>;
  /** What happened to the execution; `foreign` when the execution by that name is not the handle's. */
  describe(handle: ExecutionHandle): Promise<ExecutionDescription>;
  /**
   * Stops a running execution; stopping one that already ended, or never existed, is not an error.
   * Throws a `ForeignExecutionError`, and stops nothing, when the execution is not the handle's.
   */
  stop(handle: ExecutionHandle, reason: { error: string; cause: string }): Promise<void>;
  /**
   * Restarts a failed, timed-out or aborted execution from its failed state. Throws a
   * `ForeignExecutionError`, and redrives nothing, when the execution is not the handle's.
   */
  redrive(handle: ExecutionHandle): Promise<RedriveOutcome>;
}

/**
 * Whether an execution's input, as the orchestrator reports it, is the one the platform starts this
 * handle's execution with. Anything else (another tenant or execution id, a missing or malformed
 * input) is not the handle's: the check fails closed.
 *
 * @example
 * ```ts
 * carriesHandle('{"tenantId":"acme","executionId":"e1"}', { workflow: 'etl', tenantId: 'acme', executionId: 'e1' }); // true
 * ```
 */
export function carriesHandle(input: string | undefined, handle: ExecutionHandle): boolean {
  if (input === undefined) {
    return false;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(input);
  } catch {
    return false;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return false;
  }
  const carried = parsed as Partial<Record<keyof ExecutionInput, unknown>>;
  return carried.tenantId === handle.tenantId && carried.executionId === handle.executionId;
}
