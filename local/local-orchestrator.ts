import './promise-with-resolvers.js';
import { randomUUID } from 'node:crypto';
import type { Context } from 'aws-lambda';
import {
  ExecutionAbortedError,
  ExecutionError,
  ExecutionTimeoutError,
  StateMachine,
} from 'aws-local-stepfunctions';
import { ConfigurationError } from '../shared/errors.js';
import { type AslDefinition, taskStates } from '../shared/workflows/asl.js';
import type {
  ExecutionDescription,
  ExecutionHandle,
  OrchestratedStatus,
  Orchestrator,
  RedriveOutcome,
  StartExecutionRequest,
  StartedExecution,
} from '../shared/workflows/orchestrator.js';

/** A Lambda handler as the local orchestrator invokes it. */
export type LocalLambda = (payload: unknown, context: Context) => Promise<unknown>;

export interface LocalOrchestratorOptions {
  /** The ASL of each workflow, exactly as `compileToAsl` gives it to CDK. */
  readonly definitions: Readonly<Record<string, AslDefinition>>;
  /** Lambda ARN → the in-process handler that Lambda runs. */
  readonly lambdas: Readonly<Record<string, LocalLambda>>;
  /** The timeout each local Lambda invocation reports in its context. Default 900 s. */
  readonly lambdaTimeoutMs?: number;
  /**
   * Retry waits in milliseconds instead of the definition's seconds (tests and benchmarks only;
   * the retry counts and their order are unchanged).
   */
  readonly retryIntervalMs?: number;
  readonly onExecutionSettled?: (execution: {
    workflow: string;
    executionId: string;
    status: OrchestratedStatus;
  }) => void;
}

interface LocalExecution {
  readonly workflow: string;
  readonly ref: string;
  readonly startedAt: Date;
  status: OrchestratedStatus;
  stoppedAt?: Date;
  error?: string;
  cause?: string;
  redriveCount: number;
  abort: () => void;
  settled: Promise<void>;
}

/**
 * The Orchestrator of `npm start`: it runs **the same ASL** that CDK deploys, in-process, with
 * `aws-local-stepfunctions`; each `lambda:invoke` Task state calls the local handler mapped to its
 * `FunctionName`, with a Lambda-shaped context, as Step Functions would call the Lambda.
 *
 * What it knows lives in memory: after the process restarts, it honestly answers `not_found` for
 * executions it never ran, and recovery takes it from there.
 *
 * @example
 * ```ts
 * const orchestrator = new LocalOrchestrator({
 *   definitions: { etl: compileToAsl(etl, LOCAL_TARGETS) },
 *   lambdas: { [LOCAL_TARGETS.taskRunnerArn]: runTask, [LOCAL_TARGETS.finalizeArn]: finalize },
 * });
 * await orchestrator.start({ workflow: 'etl', tenantId: 'acme', executionId });
 * ```
 */
export class LocalOrchestrator implements Orchestrator {
  readonly #options: LocalOrchestratorOptions;
  readonly #machines = new Map<string, { machine: StateMachine; taskStateNames: string[] }>();
  readonly #executions = new Map<string, LocalExecution>();

  constructor(options: LocalOrchestratorOptions) {
    this.#options = options;
    for (const [workflow, definition] of Object.entries(options.definitions)) {
      for (const { name, state } of taskStates(definition)) {
        const functionName = (state.Parameters as { FunctionName?: unknown } | undefined)?.FunctionName;
        if (typeof functionName !== 'string' || options.lambdas[functionName] === undefined) {
          throw new ConfigurationError(
            `Workflow '${workflow}', state '${name}': no local handler for Lambda ${String(functionName)}`,
          );
        }
      }
      this.#machines.set(workflow, {
        // Local ARNs are not real ones, and CDK-synthesized definitions use intrinsic paths.
        machine: new StateMachine(definition as never, {
          validationOptions: { checkArn: false, checkPaths: false },
        }),
        taskStateNames: taskStates(definition).map((task) => task.name),
      });
    }
  }

  async start(request: StartExecutionRequest): Promise<StartedExecution> {
    const key = executionKey(request);
    const existing = this.#executions.get(key);
    if (existing !== undefined) {
      return { ref: existing.ref, alreadyStarted: true };
    }
    const ref = `arn:aws:states:local:000000000000:execution:${request.workflow}:${request.executionId}`;
    const execution = this.#run(request, ref, { startedAt: new Date(), redriveCount: 0 });
    this.#executions.set(key, execution);
    return { ref, alreadyStarted: false };
  }

  async describe(handle: ExecutionHandle): Promise<ExecutionDescription> {
    const execution = this.#executions.get(executionKey(handle));
    if (execution === undefined) {
      return { status: 'not_found', redrivable: false };
    }
    return {
      status: execution.status,
      ref: execution.ref,
      startedAt: execution.startedAt,
      stoppedAt: execution.stoppedAt,
      error: execution.error,
      cause: execution.cause,
      redrivable: isRedrivable(execution.status),
      redriveCount: execution.redriveCount,
    };
  }

  async stop(handle: ExecutionHandle, reason: { error: string; cause: string }): Promise<void> {
    const execution = this.#executions.get(executionKey(handle));
    if (execution?.status !== 'running') {
      return;
    }
    execution.error = reason.error;
    execution.cause = reason.cause;
    execution.abort();
    await execution.settled;
  }

  /**
   * Runs a failed, timed-out or aborted execution again from the top. The task runner skips every
   * task already committed, so in effect it resumes at the task that failed, as a Step Functions
   * redrive does.
   */
  async redrive(handle: ExecutionHandle): Promise<RedriveOutcome> {
    const key = executionKey(handle);
    const previous = this.#executions.get(key);
    if (previous === undefined || !isRedrivable(previous.status)) {
      return {
        kind: 'not_redrivable',
        reason: previous === undefined ? 'Execution does not exist' : `Execution is ${previous.status}`,
      };
    }
    const tenantId = this.#tenantOf.get(key);
    if (tenantId === undefined) {
      return { kind: 'not_redrivable', reason: 'Execution input is unknown' };
    }
    this.#executions.set(
      key,
      this.#run({ ...handle, tenantId }, previous.ref, {
        startedAt: previous.startedAt,
        redriveCount: previous.redriveCount + 1,
      }),
    );
    return { kind: 'redriven', redrivenAt: new Date() };
  }

  /** Waits for every execution in flight, e.g. before the local server shuts down. */
  async drain(): Promise<void> {
    await Promise.all([...this.#executions.values()].map((execution) => execution.settled));
  }

  readonly #tenantOf = new Map<string, string>();

  #run(
    request: StartExecutionRequest,
    ref: string,
    history: { startedAt: Date; redriveCount: number },
  ): LocalExecution {
    const compiled = this.#machines.get(request.workflow);
    if (compiled === undefined) {
      throw new ConfigurationError(
        `No local state machine for workflow '${request.workflow}'. Known: ${[...this.#machines.keys()].join(', ')}`,
      );
    }
    this.#tenantOf.set(executionKey(request), request.tenantId);
    const handlers = Object.fromEntries(
      compiled.taskStateNames.map((name) => [name, (input: unknown) => this.#invokeLambda(input)]),
    );
    const retryIntervalOverrides =
      this.#options.retryIntervalMs === undefined
        ? undefined
        : Object.fromEntries(
            compiled.taskStateNames.map((name) => [name, this.#options.retryIntervalMs ?? 0]),
          );
    const run = compiled.machine.run(
      { tenantId: request.tenantId, executionId: request.executionId },
      {
        overrides: {
          taskResourceLocalHandlers: handlers as never,
          ...(retryIntervalOverrides === undefined ? {} : { retryIntervalOverrides }),
        },
        context: {
          Execution: { Id: ref, Name: request.executionId, StartTime: history.startedAt.toISOString() },
        } as never,
      },
    );
    const execution: LocalExecution = {
      workflow: request.workflow,
      ref,
      startedAt: history.startedAt,
      status: 'running',
      redriveCount: history.redriveCount,
      abort: run.abort,
      settled: Promise.resolve(),
    };
    execution.settled = run.result
      .then(
        () => {
          execution.status = 'succeeded';
        },
        (error: unknown) => {
          if (error instanceof ExecutionAbortedError) {
            execution.status = 'aborted';
          } else if (error instanceof ExecutionTimeoutError) {
            execution.status = 'timed_out';
          } else {
            execution.status = 'failed';
            const failure =
              error instanceof ExecutionError
                ? (error.cause as { name?: string; message?: string })
                : undefined;
            execution.error = failure?.name ?? (error instanceof Error ? error.name : 'Error');
            execution.cause = failure?.message ?? (error instanceof Error ? error.message : String(error));
          }
        },
      )
      .then(() => {
        execution.stoppedAt = new Date();
        this.#options.onExecutionSettled?.({
          workflow: request.workflow,
          executionId: request.executionId,
          status: execution.status,
        });
      });
    return execution;
  }

  /** What the `arn:aws:states:::lambda:invoke` integration does: call the function, wrap its result. */
  async #invokeLambda(input: unknown): Promise<{ Payload: unknown }> {
    const { FunctionName, Payload } = input as { FunctionName: string; Payload: unknown };
    const lambda = this.#options.lambdas[FunctionName];
    if (lambda === undefined) {
      throw new ConfigurationError(`No local handler for Lambda ${FunctionName}`);
    }
    // A JSON round trip, as the payload would cross the wire to Lambda and back.
    const result = await lambda(
      JSON.parse(JSON.stringify(Payload)),
      lambdaContext(FunctionName, this.#options.lambdaTimeoutMs ?? 900_000),
    );
    return { Payload: result === undefined ? null : JSON.parse(JSON.stringify(result)) };
  }
}

function executionKey(handle: ExecutionHandle): string {
  return `${handle.workflow}\u0000${handle.executionId}`;
}

function isRedrivable(status: OrchestratedStatus): boolean {
  return status === 'failed' || status === 'timed_out' || status === 'aborted';
}

function lambdaContext(functionArn: string, timeoutMs: number): Context {
  const deadline = Date.now() + timeoutMs;
  const functionName = functionArn.split(':').at(-1) ?? functionArn;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: functionArn,
    memoryLimitInMB: '1024',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}
