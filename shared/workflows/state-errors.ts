import { ConflictError, NotFoundError, TenantflowError } from '../kernel/errors.js';

/** The task names a task that its execution's workflow does not have. */
export class UnknownTaskError extends NotFoundError {
  override readonly code: string = 'UNKNOWN_TASK';
}

/** The execution already ended (or was aborted), so none of its tasks may run. */
export class ExecutionNotRunnableError extends ConflictError {
  override readonly code: string = 'EXECUTION_NOT_RUNNABLE';
}

/** The task body threw. Retried by the task's policy. */
export class TaskFailedError extends TenantflowError {
  readonly code: string = 'TASK_FAILED';
  readonly statusCode: number = 500;
}

/** The task body ran past its timeout; its transaction was rolled back. Retried by the task's policy. */
export class TaskTimedOutError extends TenantflowError {
  readonly code: string = 'TASK_TIMED_OUT';
  readonly statusCode: number = 500;
}

/**
 * Errors a retry cannot fix: the state machine fails at once instead of retrying. They are matched
 * by these names in the compiled `Retry`, so the names are the errors' stable `code`s, never class
 * names (which a minifier may rename).
 */
export const NON_RETRYABLE_STATE_ERRORS = [
  'TENANT_NOT_FOUND',
  'TENANT_INACTIVE',
  'EXECUTION_NOT_FOUND',
  'EXECUTION_NOT_RUNNABLE',
  'UNKNOWN_TASK',
  'VALIDATION_FAILED',
] as const;

/** Lambda's own transient failures, retried whatever the task's policy says (AWS's recommendation). */
export const LAMBDA_SERVICE_ERRORS = [
  'Lambda.ClientExecutionTimeoutException',
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
  'Lambda.TooManyRequestsException',
] as const;

/**
 * The error a Step Functions-invoked handler throws: its `name` is what `Retry` and `Catch` match
 * (Lambda reports it as the `errorType`), so a tenantflow error is named by its `code`.
 */
export function toStateError(error: unknown): Error {
  if (error instanceof TenantflowError) {
    const stateError = new Error(error.message, { cause: error });
    stateError.name = error.code;
    return stateError;
  }
  return error instanceof Error ? error : new Error(String(error));
}
