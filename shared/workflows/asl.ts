import { LAMBDA_SERVICE_ERRORS, NON_RETRYABLE_STATE_ERRORS } from './state-errors.js';
import type { RetryPolicy, TaskDefinition } from './task.js';
import type { WorkflowDefinition } from './workflow.js';

/** An Amazon States Language document (the subset tenantflow emits). */
export interface AslDefinition {
  readonly Comment?: string;
  readonly StartAt: string;
  /** How long an execution may run in all; unlimited (a year) when absent. */
  readonly TimeoutSeconds?: number;
  readonly States: Record<string, AslState>;
}

export type AslState = Readonly<Record<string, unknown>> & { readonly Type: string };

export interface AslTargets {
  /** ARN of the run-task Lambda (`functions/workflow/run-task.ts`). */
  readonly taskRunnerArn: string;
  /** ARN of the finalize Lambda (`functions/workflow/finalize.ts`). */
  readonly finalizeArn: string;
}

/** The platform's own states. Their names have spaces, so no task id can collide with them. */
export const PLATFORM_STATES = {
  finalize: 'Finalize execution',
  recordFailure: 'Record failure',
  failed: 'Execution failed',
} as const;

/** What a caught error is stored under in the state input, for the failure-recording state. */
const FAILURE_PATH = '$.failure';

/** Lambda's `Payload` is all the runner needs: ids only, the context stays in the tenant schema. */
const ID_PAYLOAD = { 'tenantId.$': '$.tenantId', 'executionId.$': '$.executionId' } as const;

/**
 * A task may keep running this long past its own timeout before the state gives up on it: the
 * runner enforces the timeout itself (rolling the task back and recording why), so Step Functions'
 * timeout is only the backstop for a runner that never answers.
 */
const STATE_TIMEOUT_GRACE_SECONDS = 30;

const LAMBDA_SERVICE_RETRY = {
  ErrorEquals: [...LAMBDA_SERVICE_ERRORS],
  IntervalSeconds: 1,
  MaxAttempts: 3,
  BackoffRate: 2,
} as const;

/**
 * Compiles a workflow to the Amazon States Language definition that both CDK deploys and the
 * local orchestrator runs:
 * - one Task state per task, named after the task, invoking the task runner with ids only;
 * - the tasks in waves ({@link WorkflowDefinition.waves}): a wave of one is a plain Task state,
 *   a wider wave is a Parallel state with a branch per task;
 * - each task's `Retry` from its policy, after a retrier that fails fast on errors a retry cannot
 *   fix and one for Lambda's own transient errors;
 * - a `Catch` that records the failure (finalize, `failed`) and ends in a Fail state;
 * - a final state that records success (finalize, `succeeded`).
 *
 * @example
 * ```ts
 * const asl = compileToAsl(workflow, { taskRunnerArn, finalizeArn });
 * new StateMachine(asl); // aws-local-stepfunctions, or DefinitionBody.fromString(JSON.stringify(asl))
 * ```
 */
export function compileToAsl(workflow: WorkflowDefinition, targets: AslTargets): AslDefinition {
  const states: Record<string, AslState> = {};
  const catchToFailure = [
    { ErrorEquals: ['States.ALL'], ResultPath: FAILURE_PATH, Next: PLATFORM_STATES.recordFailure },
  ];
  const waveNames = workflow.waves.map((wave, index) => waveStateName(wave, index));

  workflow.waves.forEach((wave, index) => {
    const next = waveNames[index + 1] ?? PLATFORM_STATES.finalize;
    const [onlyTask] = wave;
    if (wave.length === 1 && onlyTask !== undefined) {
      states[onlyTask] = {
        ...taskState(requireTask(workflow, onlyTask), targets),
        Catch: catchToFailure,
        Next: next,
      };
      return;
    }
    states[waveNames[index] ?? ''] = {
      Type: 'Parallel',
      Comment: `Independent tasks: ${wave.join(', ')}`,
      Branches: wave.map((taskId) => ({
        StartAt: taskId,
        States: { [taskId]: { ...taskState(requireTask(workflow, taskId), targets), End: true } },
      })),
      // Keep the ids as the state's output, not the array of branch outputs.
      ResultPath: null,
      Catch: catchToFailure,
      Next: next,
    };
  });

  states[PLATFORM_STATES.finalize] = {
    ...finalizeState(targets, { outcome: 'succeeded' }),
    Comment: 'Records the final status and context, and updates the tenant counters',
    End: true,
  };
  states[PLATFORM_STATES.recordFailure] = {
    ...finalizeState(targets, {
      outcome: 'failed',
      'error.$': `${FAILURE_PATH}.Error`,
      'cause.$': `${FAILURE_PATH}.Cause`,
    }),
    Comment: 'Records which task failed and why, and updates the tenant counters',
    Next: PLATFORM_STATES.failed,
  };
  states[PLATFORM_STATES.failed] = {
    Type: 'Fail',
    Error: 'WorkflowFailed',
    Cause: 'A task failed for good; the execution record names the task and its error',
  };

  return {
    Comment: workflow.description.length > 0 ? workflow.description : `tenantflow workflow ${workflow.name}`,
    StartAt: waveNames[0] ?? PLATFORM_STATES.finalize,
    States: states,
  };
}

function taskState(task: TaskDefinition, targets: AslTargets): AslState {
  return {
    Type: 'Task',
    Resource: 'arn:aws:states:::lambda:invoke',
    Parameters: { FunctionName: targets.taskRunnerArn, Payload: { ...ID_PAYLOAD, taskId: task.id } },
    ResultPath: null,
    TimeoutSeconds: task.timeoutSeconds + STATE_TIMEOUT_GRACE_SECONDS,
    Retry: [
      { ErrorEquals: [...NON_RETRYABLE_STATE_ERRORS], MaxAttempts: 0 },
      LAMBDA_SERVICE_RETRY,
      taskRetry(task.retry),
    ],
  };
}

function taskRetry(policy: RetryPolicy) {
  return {
    ErrorEquals: ['States.ALL'],
    IntervalSeconds: policy.intervalSeconds,
    // ASL counts retries; the policy counts tries, the first included.
    MaxAttempts: policy.attempts - 1,
    BackoffRate: policy.backoffRate,
    ...(policy.maxDelaySeconds === undefined ? {} : { MaxDelaySeconds: policy.maxDelaySeconds }),
  };
}

function finalizeState(targets: AslTargets, payload: Record<string, string>): AslState {
  return {
    Type: 'Task',
    Resource: 'arn:aws:states:::lambda:invoke',
    Parameters: { FunctionName: targets.finalizeArn, Payload: { ...ID_PAYLOAD, ...payload } },
    ResultPath: null,
    Retry: [
      { ErrorEquals: [...NON_RETRYABLE_STATE_ERRORS], MaxAttempts: 0 },
      LAMBDA_SERVICE_RETRY,
      { ErrorEquals: ['States.ALL'], IntervalSeconds: 1, MaxAttempts: 3, BackoffRate: 2 },
    ],
  };
}

/** A readable name for a wave's state: the task itself, or the tasks of a Parallel state. */
function waveStateName(wave: readonly string[], index: number): string {
  if (wave.length === 1) {
    return wave[0] ?? '';
  }
  const listed = `Parallel: ${wave.join(' + ')}`;
  // State names are capped at 80 characters.
  return listed.length <= 80 ? listed : `Parallel step ${index + 1} (${wave.length} tasks)`;
}

function requireTask(workflow: WorkflowDefinition, taskId: string): TaskDefinition {
  const task = workflow.task(taskId);
  if (task === undefined) {
    throw new Error(`Workflow '${workflow.name}' has no task '${taskId}'`);
  }
  return task;
}

/** Every Task state in a definition, branches included: what a local orchestrator must serve. */
export function taskStates(definition: {
  readonly States: Record<string, unknown>;
}): Array<{ name: string; state: Record<string, unknown> }> {
  const found: Array<{ name: string; state: Record<string, unknown> }> = [];
  for (const [name, raw] of Object.entries(definition.States)) {
    const state = raw as Record<string, unknown>;
    if (state.Type === 'Task') {
      found.push({ name, state });
    }
    for (const branch of (state.Branches as Array<{ States: Record<string, unknown> }> | undefined) ?? []) {
      found.push(...taskStates(branch));
    }
    const iterator = (state.ItemProcessor ?? state.Iterator) as
      | { States: Record<string, unknown> }
      | undefined;
    if (iterator !== undefined) {
      found.push(...taskStates(iterator));
    }
  }
  return found;
}
