import '../../../local/promise-with-resolvers.js';
import { createRequire } from 'node:module';
import { TenantInactiveError } from '@tenantflow/shared/kernel/errors';
import {
  type AslDefinition,
  type AslTargets,
  compileToAsl,
  PLATFORM_STATES,
  taskStates,
} from '@tenantflow/shared/workflows/asl';
import {
  LAMBDA_SERVICE_ERRORS,
  NON_RETRYABLE_STATE_ERRORS,
  TaskFailedError,
  toStateError,
} from '@tenantflow/shared/workflows/state-errors';
import { defineTask, type TaskOptions } from '@tenantflow/shared/workflows/task';
import { defineWorkflow, type WorkflowDefinition } from '@tenantflow/shared/workflows/workflow';
import { describe, expect, it } from 'vitest';
import {
  configurableWorkflow,
  reportPipelineWorkflow,
  tenantIsolationWorkflow,
} from '../../../examples/index.js';
import { workflows } from '../../../workflows/index.js';

// Imported only once the polyfill above is in place: the package needs `Promise.withResolvers`.
const { StateMachine, ExecutionError } = await import('aws-local-stepfunctions');

interface AslValidationResult {
  readonly isValid: boolean;
  readonly errors: ReadonlyArray<{ readonly 'Error code': string; readonly Message: string }>;
  errorsText(separator?: string): string;
}
// asl-validator is CommonJS without type declarations; this is the signature its README documents.
const validateAsl = createRequire(import.meta.url)('asl-validator') as (
  definition: unknown,
  options?: { checkPaths?: boolean; checkArn?: boolean },
) => AslValidationResult;

const TARGETS: AslTargets = {
  taskRunnerArn: 'arn:aws:lambda:eu-west-1:123456789012:function:tenantflow-run-task',
  finalizeArn: 'arn:aws:lambda:eu-west-1:123456789012:function:tenantflow-finalize',
};

type State = Record<string, unknown>;
interface Retrier {
  readonly ErrorEquals: readonly string[];
  readonly MaxAttempts?: number;
  readonly IntervalSeconds?: number;
  readonly BackoffRate?: number;
  readonly MaxDelaySeconds?: number;
}

const noop = () => {};
const task = (id: string, options: Partial<TaskOptions> = {}) => defineTask({ id, run: noop, ...options });

const linearWorkflow = defineWorkflow({
  name: 'linear',
  description: 'Three tasks, one after another',
  tasks: [
    task('extract', { retry: { attempts: 5, intervalSeconds: 2, backoffRate: 1.5, maxDelaySeconds: 20 } }),
    task('transform', { timeoutSeconds: 300 }),
    task('load', { retry: { attempts: 1 } }),
  ],
  dependsOn: { transform: ['extract'], load: ['transform'] },
});

const diamondWorkflow = defineWorkflow({
  name: 'diamond',
  tasks: [
    task('extract'),
    task('cleanse', { retry: { attempts: 2, maxDelaySeconds: 4 } }),
    task('enrich', { retry: { attempts: 7, backoffRate: 3 } }),
    task('load'),
  ],
  dependsOn: { cleanse: ['extract'], enrich: ['extract'], load: ['cleanse', 'enrich'] },
});

/** A wave too wide to be named after its tasks in 80 characters. */
const wideWorkflow = defineWorkflow({
  name: 'wide',
  tasks: ['a', 'b', 'c', 'd'].map((letter) => task(`${letter}_${'long_task_name_'.repeat(3)}`)),
});

const cases: Array<[string, WorkflowDefinition]> = [
  ['a linear workflow', linearWorkflow],
  ['a diamond workflow', diamondWorkflow],
  ['a wide fan-out with long task ids', wideWorkflow],
  ...workflows
    .list()
    .map((workflow): [string, WorkflowDefinition] => [`example '${workflow.name}'`, workflow]),
];

/** The states the execution passes through before Finalize, following `StartAt` and each `Next`. */
function mainPath(asl: AslDefinition): Array<{ name: string; state: State }> {
  const path: Array<{ name: string; state: State }> = [];
  let name: string | undefined = asl.StartAt;
  while (name !== undefined && name !== PLATFORM_STATES.finalize) {
    const state: State | undefined = asl.States[name];
    if (state === undefined || path.some((step) => step.name === name)) {
      throw new Error(`the main path breaks or loops at state '${name}'`);
    }
    path.push({ name, state });
    name = state.Next as string | undefined;
  }
  return path;
}

/** The task ids a main-path state runs: itself, or the first state of each Parallel branch. */
function tasksRunBy(step: { name: string; state: State }): string[] {
  if (step.state.Type === 'Task') {
    return [step.name];
  }
  return (step.state.Branches as Array<{ StartAt: string }>).map((branch) => branch.StartAt);
}

/** Every task the given task waits for, directly or not. */
function upstreamOf(workflow: WorkflowDefinition, taskId: string): Set<string> {
  const found = new Set<string>();
  const pending = [...(workflow.dependsOn[taskId] ?? [])];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    if (!found.has(next)) {
      found.add(next);
      pending.push(...(workflow.dependsOn[next] ?? []));
    }
  }
  return found;
}

function parameters(state: State): { FunctionName: string; Payload: Record<string, unknown> } {
  return state.Parameters as { FunctionName: string; Payload: Record<string, unknown> };
}

function runnerStates(asl: AslDefinition) {
  return taskStates(asl).filter(({ state }) => parameters(state).FunctionName === TARGETS.taskRunnerArn);
}

describe.each(cases)('compileToAsl on %s', (_, workflow) => {
  const asl = compileToAsl(workflow, TARGETS);

  it('produces a definition asl-validator accepts without a single error', () => {
    // The validator annotates the states it reads, so it gets a copy.
    const result = validateAsl(structuredClone(asl));

    expect(result.errorsText()).toBe('');
    expect(result.errors).toEqual([]);
    expect(result.isValid).toBe(true);
  });

  it('has one Task state per task, named after it, that sends the runner ids only', () => {
    const states = runnerStates(asl);

    expect(states.map(({ name }) => name).sort()).toEqual(workflow.tasks.map((t) => t.id).sort());
    for (const { name, state } of states) {
      expect(state.Resource).toBe('arn:aws:states:::lambda:invoke');
      expect(parameters(state).Payload).toEqual({
        'tenantId.$': '$.tenantId',
        'executionId.$': '$.executionId',
        taskId: name,
      });
      expect(state).toHaveProperty('ResultPath', null);
    }
  });

  it("gives each task state a timeout past the task's own, so the runner's timeout fires first", () => {
    for (const { name, state } of runnerStates(asl)) {
      const timeout = state.TimeoutSeconds as number;
      expect(timeout).toBeGreaterThan(workflow.task(name)?.timeoutSeconds ?? Number.POSITIVE_INFINITY);
      expect(Number.isInteger(timeout)).toBe(true);
    }
  });

  it("retries non-retryable errors never, Lambda's own errors always, then anything per the task's policy", () => {
    for (const { name, state } of runnerStates(asl)) {
      const policy = workflow.task(name)?.retry;
      const retry = state.Retry as Retrier[];

      expect(retry).toHaveLength(3);
      const [nonRetryable, lambdaService, taskPolicy] = retry;
      expect(nonRetryable).toEqual({ ErrorEquals: [...NON_RETRYABLE_STATE_ERRORS], MaxAttempts: 0 });
      expect(lambdaService?.ErrorEquals).toEqual([...LAMBDA_SERVICE_ERRORS]);
      expect(lambdaService?.MaxAttempts).toBeGreaterThan(0);
      expect(taskPolicy).toEqual({
        ErrorEquals: ['States.ALL'],
        MaxAttempts: (policy?.attempts ?? 0) - 1,
        IntervalSeconds: policy?.intervalSeconds,
        BackoffRate: policy?.backoffRate,
        ...(policy?.maxDelaySeconds === undefined ? {} : { MaxDelaySeconds: policy.maxDelaySeconds }),
      });
    }
  });

  it('runs every task after all it depends on, and side by side only with tasks independent of it', () => {
    const path = mainPath(asl);
    const stepOf = new Map(path.flatMap((step, index) => tasksRunBy(step).map((id) => [id, index] as const)));

    expect([...stepOf.keys()].sort()).toEqual(workflow.tasks.map((t) => t.id).sort());
    expect(path.flatMap(tasksRunBy)).toHaveLength(workflow.tasks.length);
    for (const { id } of workflow.tasks) {
      for (const upstream of upstreamOf(workflow, id)) {
        expect(stepOf.get(upstream), `'${upstream}' must run before '${id}'`).toBeLessThan(
          stepOf.get(id) ?? -1,
        );
      }
    }
    expect(path).toHaveLength(workflow.waves.length);
  });

  it('makes a Parallel state of independent tasks, one single-task branch each', () => {
    for (const step of mainPath(asl).filter(({ state }) => state.Type === 'Parallel')) {
      const branches = step.state.Branches as Array<{ StartAt: string; States: Record<string, State> }>;

      expect(branches.length).toBeGreaterThan(1);
      for (const branch of branches) {
        expect(Object.keys(branch.States)).toEqual([branch.StartAt]);
        expect(branch.States[branch.StartAt]).toMatchObject({ Type: 'Task', End: true });
        expect(branch.States[branch.StartAt]).not.toHaveProperty('Catch');
        const upstream = upstreamOf(workflow, branch.StartAt);
        for (const sibling of branches) {
          expect(upstream.has(sibling.StartAt), `'${branch.StartAt}' waits for '${sibling.StartAt}'`).toBe(
            false,
          );
        }
      }
      expect(step.state).toHaveProperty('ResultPath', null);
    }
  });

  it('has no Parallel state unless two tasks are independent', () => {
    const parallel = mainPath(asl).some(({ state }) => state.Type === 'Parallel');
    const someIndependentPair = workflow.tasks.some(({ id }) =>
      workflow.tasks.some(
        (other) =>
          other.id !== id &&
          !upstreamOf(workflow, id).has(other.id) &&
          !upstreamOf(workflow, other.id).has(id),
      ),
    );

    expect(parallel).toBe(someIndependentPair);
  });

  it('catches any error of a main-path state into the failure-recording state', () => {
    for (const { state } of mainPath(asl)) {
      expect(state.Catch).toEqual([
        { ErrorEquals: ['States.ALL'], ResultPath: '$.failure', Next: PLATFORM_STATES.recordFailure },
      ]);
    }
  });

  it('ends with the finalize state recording success', () => {
    const finalize = asl.States[PLATFORM_STATES.finalize] as State;
    const last = mainPath(asl).at(-1);

    expect(last?.state.Next).toBe(PLATFORM_STATES.finalize);
    expect(finalize).toMatchObject({ Type: 'Task', End: true, ResultPath: null });
    expect(finalize).not.toHaveProperty('Next');
    expect(parameters(finalize)).toEqual({
      FunctionName: TARGETS.finalizeArn,
      Payload: { 'tenantId.$': '$.tenantId', 'executionId.$': '$.executionId', outcome: 'succeeded' },
    });
  });

  it('records a failure with the caught error and cause, then fails the execution', () => {
    const recordFailure = asl.States[PLATFORM_STATES.recordFailure] as State;

    expect(recordFailure).toMatchObject({ Type: 'Task', Next: PLATFORM_STATES.failed, ResultPath: null });
    expect(parameters(recordFailure)).toEqual({
      FunctionName: TARGETS.finalizeArn,
      Payload: {
        'tenantId.$': '$.tenantId',
        'executionId.$': '$.executionId',
        outcome: 'failed',
        'error.$': '$.failure.Error',
        'cause.$': '$.failure.Cause',
      },
    });
    expect(asl.States[PLATFORM_STATES.failed]).toMatchObject({ Type: 'Fail' });
  });

  it('keeps every state name within 80 characters and apart from the platform states', () => {
    const names = [
      ...Object.keys(asl.States),
      ...taskStates(asl).map(({ name }) => name),
      ...mainPath(asl).map(({ name }) => name),
    ];

    for (const name of names) {
      expect(name.length).toBeLessThanOrEqual(80);
    }
    for (const { id } of workflow.tasks) {
      expect(Object.values(PLATFORM_STATES)).not.toContain(id);
    }
  });

  it('starts at the first step and describes the workflow in the Comment', () => {
    expect(asl.StartAt).toBe(mainPath(asl)[0]?.name);
    expect(asl.Comment).toContain(workflow.description.length > 0 ? workflow.description : workflow.name);
  });
});

describe('the workflow registry of this installation', () => {
  it('registers every example workflow', () => {
    const examples = [configurableWorkflow, reportPipelineWorkflow, tenantIsolationWorkflow];

    expect(workflows.list()).toEqual(expect.arrayContaining(examples));
    expect(workflows.list()).toHaveLength(examples.length);
  });
});

describe('toStateError', () => {
  it('names the error after its code, so Retry and Catch can match it', () => {
    const cause = new TenantInactiveError('acme');

    const stateError = toStateError(cause);

    expect(stateError.name).toBe('TENANT_INACTIVE');
    expect(stateError.message).toBe(cause.message);
    expect(stateError.cause).toBe(cause);
    expect(NON_RETRYABLE_STATE_ERRORS).toContain(stateError.name);
  });

  it('keeps any other error as it is, and wraps what is not an Error', () => {
    const plain = new TypeError('nope');

    expect(toStateError(plain)).toBe(plain);
    expect(toStateError('text')).toMatchObject({ name: 'Error', message: 'text' });
  });
});

describe('the compiled ASL, run by aws-local-stepfunctions', () => {
  const fanOut = defineWorkflow({
    name: 'fan_out',
    tasks: [
      task('start'),
      task('slow_branch'),
      task('flaky_branch', { retry: { attempts: 4 } }),
      task('quick_branch', { retry: { attempts: 1 } }),
      task('join'),
    ],
    dependsOn: {
      slow_branch: ['start'],
      flaky_branch: ['start'],
      quick_branch: ['start'],
      join: ['slow_branch', 'flaky_branch', 'quick_branch'],
    },
  });
  const asl = compileToAsl(fanOut, TARGETS);
  const input = { tenantId: 'acme', executionId: '0b9f1c1e-5a43-4c3e-9d55-3f1f2b8c7a10' };

  type Behaviour = (attempt: number) => Promise<void> | void;

  /**
   * Runs the machine with every Task state served in-process: the runner calls the task's
   * behaviour (succeeding by default), the finalize function is recorded.
   */
  async function run(behaviours: Record<string, Behaviour> = {}) {
    const events: string[] = [];
    const calls = new Map<string, number>();
    const finalized: Array<Record<string, unknown>> = [];
    const lambda = async (request: unknown) => {
      const { FunctionName, Payload } = request as { FunctionName: string; Payload: Record<string, unknown> };
      if (FunctionName === TARGETS.finalizeArn) {
        finalized.push(Payload);
        return { Payload: { recorded: true } };
      }
      expect(FunctionName).toBe(TARGETS.taskRunnerArn);
      expect(Payload).toMatchObject(input);
      const taskId = String(Payload.taskId);
      const attempt = (calls.get(taskId) ?? 0) + 1;
      calls.set(taskId, attempt);
      events.push(`start ${taskId}`);
      await (behaviours[taskId] ?? noop)(attempt);
      events.push(`end ${taskId}`);
      return { Payload: { taskId, attempt } };
    };
    const names = taskStates(asl).map(({ name }) => name);
    const machine = new StateMachine(asl as never, {
      validationOptions: { checkArn: true, checkPaths: true },
    });

    const execution = machine.run(input, {
      overrides: {
        taskResourceLocalHandlers: Object.fromEntries(names.map((name) => [name, lambda])) as never,
        retryIntervalOverrides: Object.fromEntries(names.map((name) => [name, 0])),
      },
    });
    const outcome = await execution.result.then(
      (output) => ({ ok: true as const, output }),
      (error: unknown) => ({ ok: false as const, error }),
    );
    return { outcome, events, calls, finalized };
  }

  const fail = (error: Error) => () => {
    throw toStateError(error);
  };

  it('serves every task state and both finalize states', () => {
    const names = taskStates(asl).map(({ name }) => name);

    expect(names).toEqual(
      expect.arrayContaining([
        ...fanOut.tasks.map((t) => t.id),
        PLATFORM_STATES.finalize,
        PLATFORM_STATES.recordFailure,
      ]),
    );
    expect(names).toHaveLength(fanOut.tasks.length + 2);
  });

  it('starts each task only after every task it depends on has ended', async () => {
    const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

    const { outcome, events } = await run({ slow_branch: () => sleep(30), start: () => sleep(5) });

    expect(outcome.ok).toBe(true);
    for (const { id } of fanOut.tasks) {
      expect(events.filter((event) => event === `start ${id}`)).toHaveLength(1);
      for (const dependency of fanOut.dependsOn[id] ?? []) {
        expect(
          events.indexOf(`end ${dependency}`),
          `'${id}' started before '${dependency}' ended`,
        ).toBeLessThan(events.indexOf(`start ${id}`));
      }
    }
  });

  it('finalizes a successful run once, as succeeded, with the execution ids', async () => {
    const { outcome, calls, finalized } = await run();

    expect(outcome).toEqual({ ok: true, output: input });
    expect([...calls.values()].every((count) => count === 1)).toBe(true);
    expect(calls.size).toBe(fanOut.tasks.length);
    expect(finalized).toEqual([{ ...input, outcome: 'succeeded' }]);
  });

  it('retries a failing task up to its policy, then records the failure and fails the execution', async () => {
    const attempts = fanOut.task('flaky_branch')?.retry.attempts;

    const { outcome, calls, finalized } = await run({
      flaky_branch: fail(new TaskFailedError('the enrichment service is down')),
    });

    expect(calls.get('flaky_branch')).toBe(attempts);
    expect(calls.has('join')).toBe(false);
    expect(finalized).toEqual([
      { ...input, outcome: 'failed', error: 'TASK_FAILED', cause: 'the enrichment service is down' },
    ]);
    expect(outcome.ok).toBe(false);
    const error = outcome.ok ? undefined : outcome.error;
    expect(error).toBeInstanceOf(ExecutionError);
    expect((error as Error).cause).toMatchObject({ name: 'WorkflowFailed' });
  });

  it('succeeds once a failing task recovers within its policy', async () => {
    const attempts = fanOut.task('flaky_branch')?.retry.attempts ?? 0;

    const { outcome, calls, finalized } = await run({
      flaky_branch: (attempt) => {
        if (attempt < attempts) {
          throw toStateError(new TaskFailedError(`attempt ${attempt} failed`));
        }
      },
    });

    expect(outcome.ok).toBe(true);
    expect(calls.get('flaky_branch')).toBe(attempts);
    expect(finalized).toEqual([{ ...input, outcome: 'succeeded' }]);
  });

  it('does not retry an error a retry cannot fix', async () => {
    const { outcome, calls, finalized } = await run({ flaky_branch: fail(new TenantInactiveError('acme')) });

    expect(calls.get('flaky_branch')).toBe(1);
    expect(calls.has('join')).toBe(false);
    expect(finalized).toEqual([
      expect.objectContaining({ ...input, outcome: 'failed', error: 'TENANT_INACTIVE' }),
    ]);
    expect(outcome.ok).toBe(false);
  });

  it("retries Lambda's own transient errors even for a task allowed a single attempt", async () => {
    expect(fanOut.task('quick_branch')?.retry.attempts).toBe(1);

    const { outcome, calls } = await run({
      quick_branch: (attempt) => {
        if (attempt === 1) {
          throw Object.assign(new Error('Rate exceeded'), { name: 'Lambda.TooManyRequestsException' });
        }
      },
    });

    expect(outcome.ok).toBe(true);
    expect(calls.get('quick_branch')).toBe(2);
  });

  it('fails a single-attempt task at its first ordinary error', async () => {
    const { outcome, calls, finalized } = await run({ quick_branch: fail(new Error('bad row')) });

    expect(outcome.ok).toBe(false);
    expect(calls.get('quick_branch')).toBe(1);
    expect(finalized).toEqual([{ ...input, outcome: 'failed', error: 'Error', cause: 'bad row' }]);
  });

  it('records a failure of the first task without running any other', async () => {
    const { outcome, calls, finalized } = await run({ start: fail(new TaskFailedError('no source')) });

    expect(outcome.ok).toBe(false);
    expect([...calls.keys()]).toEqual(['start']);
    expect(calls.get('start')).toBe(fanOut.task('start')?.retry.attempts);
    expect(finalized).toEqual([{ ...input, outcome: 'failed', error: 'TASK_FAILED', cause: 'no source' }]);
  });
});
