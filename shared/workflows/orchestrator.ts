/**
 * The Orchestrator port: what the platform needs from whatever runs a workflow's state machine.
 * Adapters: `StepFunctionsOrchestrator` (AWS Step Functions) and `LocalOrchestrator`
 * (`local/`, the same ASL run in-process by aws-local-stepfunctions).
 *
 * An execution is addressed by its workflow and its execution id. The execution id is also the
 * orchestrator's execution name, which is what makes a retried start idempotent and lets recovery
 * ask about an execution whose start call was lost before its reference was stored. Names are
 * unique per state machine, not per tenant, so execution ids must be globally unique (UUIDs).
 */
export interface ExecutionHandle {
  /** The registered workflow; one state machine per workflow. */
  readonly workflow: string;
  readonly executionId: string;
}

/** The ids a state machine execution carries as input: never the context itself (256 KB cap). */
export interface ExecutionInput {
  readonly tenantId: string;
  readonly executionId: string;
}

export interface StartExecutionRequest extends ExecutionHandle {
  readonly tenantId: string;
}

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
 * process that ran it is gone); recovery relies on that answer being honest.
 */
export type OrchestratedStatus =
  | 'running'
  | 'succeeded'
  | 'failed'
  | 'timed_out'
  | 'aborted'
  | 'pending_redrive'
  | 'not_found';

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
  /** Starts the workflow's state machine with `name = executionId`; a repeat is deduplicated. */
  start(request: StartExecutionRequest): Promise<StartedExecution>;
  describe(handle: ExecutionHandle): Promise<ExecutionDescription>;
  /** Stops a running execution; stopping one that already ended is not an error. */
  stop(handle: ExecutionHandle, reason: { error: string; cause: string }): Promise<void>;
  /** Restarts a failed, timed-out or aborted execution from its failed state. */
  redrive(handle: ExecutionHandle): Promise<RedriveOutcome>;
}
