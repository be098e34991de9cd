import { ConflictError } from '../kernel/errors.js';

/**
 * The execution is not in a status that allows the operation: cancelling one that already ended,
 * rerunning one that did not fail. The message names the status it is in.
 */
export class ExecutionStateConflictError extends ConflictError {
  override readonly code: string = 'EXECUTION_STATE_CONFLICT';

  constructor(
    readonly executionId: string,
    /** The execution's status when it was refused. */
    readonly status: string,
    message: string,
  ) {
    super(message);
  }

  override details(): Record<string, unknown> {
    return { status: this.status };
  }
}

/**
 * The orchestrator refused to redrive a failed execution (past Step Functions' 14-day redrive
 * window, say); the message carries its reason. The execution stays `failed`.
 */
export class ExecutionNotRedrivableError extends ConflictError {
  override readonly code: string = 'EXECUTION_NOT_REDRIVABLE';

  constructor(
    readonly executionId: string,
    readonly reason: string,
  ) {
    super(
      `Execution '${executionId}' cannot be rerun: the orchestrator refused to redrive it (${reason}); it stays failed`,
    );
  }
}
