import './promise-with-resolvers.js';
import { randomUUID } from 'node:crypto';
import { ConfigurationError, ForeignExecutionError } from '@tenantflow/shared/kernel/errors';
import { type AslDefinition, taskStates } from '@tenantflow/shared/workflows/asl';
import { executionNameFor } from '@tenantflow/shared/workflows/execution-name';
import type {
  ExecutionDescription,
  ExecutionHandle,
  OrchestratedStatus,
  Orchestrator,
  RedriveOutcome,
  StartExecutionRequest,
  StartedExecution,
} from '@tenantflow/shared/workflows/orchestrator';
import type { Context } from 'aws-lambda';
import {
  ExecutionAbortedError,
  ExecutionError,
  ExecutionTimeoutError,
  StateMachine,
} from 'aws-local-stepfunctions';
import { createLambdaContext } from './lambda-context.js';
import {
  type ExecutionJournal,
  FileExecutionJournal,
  type JournalEntry,
  type JournaledStatus,
} from './orchestrator-journal.js';

export { ExecutionJournalError } from './orchestrator-journal.js';

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
  /**
   * Every Wait state's wait in milliseconds instead of the definition's (tests only: the proxy
   * poll of the lifecycle state machines).
   */
  readonly waitMs?: number;
  readonly onExecutionSettled?: (execution: {
    workflow: string;
    executionId: string;
    status: OrchestratedStatus;
  }) => void;
  /**
   * Where executions are journaled, one file each: `<journalDirectory>/<workflow>/<executionId>.json`.
   * With a journal, an execution that was in flight when the local process died is described as
   * lost (and redrivable) after a restart, instead of `not_found`.
   *
   * @default undefined: executions live in memory only, and are forgotten when the process exits
   */
  readonly journalDirectory?: string;
  /**
   * Told when a settled execution's final status could not be journaled. The execution then stays
   * described from memory while this process lives. Must not throw: nothing awaits it.
   *
   * @default ignore the failure
   */
  readonly onJournalError?: (error: unknown) => void;
}

/** The error a lost execution is described with: its process exited while it was running. */
export const LOCAL_PROCESS_EXITED = 'Local.ProcessExited';

interface LocalExecution {
  readonly workflow: string;
  /** The tenant it was started for: only that tenant's handle may see it or act on it. */
  readonly tenantId: string;
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

interface RunHistory {
  readonly startedAt: Date;
  readonly redriveCount: number;
}

interface CompiledWorkflow {
  readonly machine: StateMachine;
  readonly taskStateNames: string[];
  readonly waitStateNames: string[];
}

/** How a run ended, before it is recorded. */
interface RunOutcome {
  readonly status: Exclude<JournaledStatus, 'running'>;
  readonly error?: string | undefined;
  readonly cause?: string | undefined;
}

/**
 * The orchestrator instances alive in this process. A journal entry names the process and the
 * instance that runs it: within this process the pid cannot tell a live instance from one that
 * "crashed" (`simulateCrash`) or from a previous process that had the same pid. It describes the
 * process, not an invocation, hence module scope.
 */
const liveInstanceIds = new Set<string>();

/**
 * The Orchestrator of `npm start`: it runs **the same ASL** that CDK deploys, in-process, with
 * `aws-local-stepfunctions`; each `lambda:invoke` Task state calls the local handler mapped to its
 * `FunctionName`, with a Lambda-shaped context, as Step Functions would call the Lambda.
 *
 * Without `journalDirectory`, what it knows lives in memory: after the process restarts, it answers
 * `not_found` for executions it never ran, and recovery starts them again.
 *
 * As in Step Functions, names are one namespace per workflow shared by every tenant, so each call
 * checks the tenant the execution was started for (in memory, or in its journal entry) against the
 * handle's: another tenant's execution is `foreign` to `describe`, and `start`, `stop` and `redrive`
 * refuse it with a `ForeignExecutionError`.
 *
 * With `journalDirectory`, each execution is journaled before its run begins and again when it
 * settles, and leaves memory once its final status is on disk. After a crash, an execution whose
 * entry still says `running` while the process (or orchestrator instance) that owned it is gone is
 * described as `failed` with {@link LOCAL_PROCESS_EXITED} and is redrivable: the redrive runs the
 * ASL from the top, and the task runner skips the tasks already committed, so it resumes after the
 * last completed task. Owner liveness is the pid, so an unrelated process that reused a dead
 * owner's pid keeps its executions `running` until that process exits too. One orchestrator at a
 * time should own a journal directory (the local platform's home lock ensures it).
 *
 * @example
 * ```ts
 * const orchestrator = new LocalOrchestrator({
 *   definitions: { etl: compileToAsl(etl, LOCAL_TARGETS) },
 *   lambdas: { [LOCAL_TARGETS.taskRunnerArn]: runTask, [LOCAL_TARGETS.finalizeArn]: finalize },
 *   journalDirectory: join(home, 'executions'),
 * });
 * await orchestrator.start({ workflow: 'etl', tenantId: 'acme', executionId });
 * ```
 */
export class LocalOrchestrator implements Orchestrator {
  readonly #options: LocalOrchestratorOptions;
  readonly #machines = new Map<string, CompiledWorkflow>();
  readonly #executions = new Map<string, LocalExecution>();
  readonly #instanceId = randomUUID();
  readonly #journal: ExecutionJournal | undefined;
  /**
   * The start or redrive under way for each execution. With a journal there are awaits between
   * "is this name free?" and "run it", so two calls for one name must take turns or both would run.
   */
  readonly #claims = new Map<string, Promise<unknown>>();
  #crashed = false;

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
        waitStateNames: Object.entries(definition.States)
          .filter(([, state]) => state.Type === 'Wait')
          .map(([name]) => name),
      });
    }
    this.#journal =
      options.journalDirectory === undefined ? undefined : new FileExecutionJournal(options.journalDirectory);
    liveInstanceIds.add(this.#instanceId);
  }

  async start(request: StartExecutionRequest): Promise<StartedExecution> {
    this.#refuseIfCrashed();
    const key = executionKey(request);
    return this.#oneAtATime(key, async () => {
      const existing = this.#executions.get(key);
      if (existing !== undefined) {
        assertOwnedBy(existing.tenantId, request);
        return { ref: existing.ref, alreadyStarted: true };
      }
      const compiled = this.#compiled(request.workflow);
      // Step Functions never reuses a name, even one whose execution ended long ago.
      const journaled = await this.#journal?.read(request);
      if (journaled !== undefined) {
        assertOwnedBy(journaled.tenantId, request);
        return { ref: journaled.ref, alreadyStarted: true };
      }
      // Named as Step Functions names it; memory and the journal stay keyed by the execution id,
      // which entries written before names carried the tenant id are found by too.
      const ref = `arn:aws:states:local:000000000000:execution:${request.workflow}:${executionNameFor(request)}`;
      await this.#launch(compiled, request, ref, { startedAt: new Date(), redriveCount: 0 });
      return { ref, alreadyStarted: false };
    });
  }

  async describe(handle: ExecutionHandle): Promise<ExecutionDescription> {
    this.#refuseIfCrashed();
    const execution = this.#executions.get(executionKey(handle));
    if (execution !== undefined) {
      if (execution.tenantId !== handle.tenantId) {
        return foreign();
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
    const entry = await this.#journal?.read(handle);
    if (entry === undefined) {
      return { status: 'not_found', redrivable: false };
    }
    return entry.tenantId === handle.tenantId ? describeJournaled(entry) : foreign();
  }

  async stop(handle: ExecutionHandle, reason: { error: string; cause: string }): Promise<void> {
    this.#refuseIfCrashed();
    const execution = this.#executions.get(executionKey(handle));
    if (execution === undefined) {
      // Nothing runs it here; still, someone else's name is refused, as Step Functions refuses it.
      const entry = await this.#journal?.read(handle);
      if (entry !== undefined) {
        assertOwnedBy(entry.tenantId, handle);
      }
      return;
    }
    assertOwnedBy(execution.tenantId, handle);
    if (execution.status !== 'running') {
      return;
    }
    execution.error = reason.error;
    execution.cause = reason.cause;
    execution.abort();
    await execution.settled;
  }

  /**
   * Runs a failed, timed-out, aborted or lost execution again from the top. The task runner skips
   * every task already committed, so in effect it resumes at the task that failed, as a Step
   * Functions redrive does.
   */
  async redrive(handle: ExecutionHandle): Promise<RedriveOutcome> {
    this.#refuseIfCrashed();
    const key = executionKey(handle);
    return this.#oneAtATime(key, async (): Promise<RedriveOutcome> => {
      const previous = this.#executions.get(key);
      if (previous !== undefined) {
        assertOwnedBy(previous.tenantId, handle);
        if (!isRedrivable(previous.status)) {
          return { kind: 'not_redrivable', reason: `Execution is ${previous.status}` };
        }
        await this.#launch(
          this.#compiled(handle.workflow),
          { ...handle, tenantId: previous.tenantId },
          previous.ref,
          { startedAt: previous.startedAt, redriveCount: previous.redriveCount + 1 },
        );
        return { kind: 'redriven', redrivenAt: new Date() };
      }
      const entry = await this.#journal?.read(handle);
      if (entry === undefined) {
        return { kind: 'not_redrivable', reason: 'Execution does not exist' };
      }
      assertOwnedBy(entry.tenantId, handle);
      const refusal = whyNotRedrivable(entry);
      if (refusal !== undefined) {
        return { kind: 'not_redrivable', reason: refusal };
      }
      await this.#launch(
        this.#compiled(handle.workflow),
        { ...handle, tenantId: entry.tenantId },
        entry.ref,
        { startedAt: entry.startedAt, redriveCount: entry.redriveCount + 1 },
      );
      return { kind: 'redriven', redrivenAt: new Date() };
    });
  }

  /**
   * Waits for every execution in flight, and for its final journal entry, e.g. before the local
   * server shuts down.
   */
  async drain(): Promise<void> {
    this.#refuseIfCrashed();
    // A start under way has not put its run in memory yet; the claims themselves never reject.
    await Promise.all(this.#claims.values());
    await Promise.all([...this.#executions.values()].map((execution) => execution.settled));
  }

  /**
   * Test seam: what a crash of the local process leaves behind, for tests that cannot kill their
   * own process. The instance stops counting as alive, its runs are aborted without a word more to
   * the journal or to `onExecutionSettled` (a dead process writes nothing), and every later call
   * throws. Lambda handlers already running cannot be interrupted in-process and finish on their
   * own, but the state machines take no further step.
   */
  simulateCrash(): void {
    this.#crashed = true;
    liveInstanceIds.delete(this.#instanceId);
    for (const execution of this.#executions.values()) {
      execution.abort();
    }
  }

  #refuseIfCrashed(): void {
    if (this.#crashed) {
      throw new Error('This LocalOrchestrator has crashed (simulateCrash); use a new instance');
    }
  }

  async #oneAtATime<T>(key: string, work: () => Promise<T>): Promise<T> {
    const current = (this.#claims.get(key) ?? Promise.resolve()).then(work);
    const claim = current.catch(() => undefined);
    this.#claims.set(key, claim);
    try {
      return await current;
    } finally {
      if (this.#claims.get(key) === claim) {
        this.#claims.delete(key);
      }
    }
  }

  #compiled(workflow: string): CompiledWorkflow {
    const compiled = this.#machines.get(workflow);
    if (compiled === undefined) {
      throw new ConfigurationError(
        `No local state machine for workflow '${workflow}'. Known: ${[...this.#machines.keys()].join(', ')}`,
      );
    }
    return compiled;
  }

  /**
   * Journals the execution as running, then runs it. The entry comes first so that a crash at any
   * moment of the run leaves a trace recovery can find; when it cannot be written, nothing runs.
   */
  async #launch(
    compiled: CompiledWorkflow,
    request: StartExecutionRequest,
    ref: string,
    history: RunHistory,
  ): Promise<void> {
    await this.#journal?.write(this.#entry(request, ref, history, { status: 'running' }));
    this.#refuseIfCrashed();
    this.#executions.set(executionKey(request), this.#run(compiled, request, ref, history));
  }

  #entry(
    request: StartExecutionRequest,
    ref: string,
    history: RunHistory,
    state: {
      status: JournaledStatus;
      stoppedAt?: Date | undefined;
      error?: string | undefined;
      cause?: string | undefined;
    },
  ): JournalEntry {
    return {
      workflow: request.workflow,
      executionId: request.executionId,
      tenantId: request.tenantId,
      ref,
      status: state.status,
      startedAt: history.startedAt,
      stoppedAt: state.stoppedAt,
      error: state.error,
      cause: state.cause,
      redriveCount: history.redriveCount,
      owner: { pid: process.pid, instanceId: this.#instanceId },
    };
  }

  #run(
    compiled: CompiledWorkflow,
    request: StartExecutionRequest,
    ref: string,
    history: RunHistory,
  ): LocalExecution {
    const handlers = Object.fromEntries(
      compiled.taskStateNames.map((name) => [name, (input: unknown) => this.#invokeLambda(input)]),
    );
    const retryIntervalOverrides =
      this.#options.retryIntervalMs === undefined
        ? undefined
        : Object.fromEntries(
            compiled.taskStateNames.map((name) => [name, this.#options.retryIntervalMs ?? 0]),
          );
    const { waitMs } = this.#options;
    const run = compiled.machine.run(
      { tenantId: request.tenantId, executionId: request.executionId },
      {
        overrides: {
          taskResourceLocalHandlers: handlers as never,
          ...(retryIntervalOverrides === undefined ? {} : { retryIntervalOverrides }),
          ...(waitMs === undefined
            ? {}
            : {
                waitTimeOverrides: Object.fromEntries(compiled.waitStateNames.map((name) => [name, waitMs])),
              }),
        },
        context: {
          Execution: { Id: ref, Name: executionNameFor(request), StartTime: history.startedAt.toISOString() },
        } as never,
      },
    );
    const execution: LocalExecution = {
      workflow: request.workflow,
      tenantId: request.tenantId,
      ref,
      startedAt: history.startedAt,
      status: 'running',
      redriveCount: history.redriveCount,
      abort: run.abort,
      settled: Promise.resolve(),
    };
    execution.settled = run.result
      .then((): RunOutcome => ({ status: 'succeeded' }), outcomeOfFailure)
      .then((outcome) => this.#settle(request, ref, history, execution, outcome));
    return execution;
  }

  /**
   * Records how a run ended: in the journal first, then in memory. Until the journal has the final
   * status the execution still reads as running, so a redrive cannot start before the old run's
   * last write lands and be overwritten by it.
   */
  async #settle(
    request: StartExecutionRequest,
    ref: string,
    history: RunHistory,
    execution: LocalExecution,
    outcome: RunOutcome,
  ): Promise<void> {
    if (this.#crashed) {
      return;
    }
    const final = {
      status: outcome.status,
      stoppedAt: new Date(),
      // An abort keeps the reason `stop` gave it.
      error: outcome.error ?? (outcome.status === 'aborted' ? execution.error : undefined),
      cause: outcome.cause ?? (outcome.status === 'aborted' ? execution.cause : undefined),
    };
    const journaled = await this.#journalFinal(request, ref, history, final);
    if (this.#crashed) {
      return;
    }
    execution.status = final.status;
    execution.stoppedAt = final.stoppedAt;
    execution.error = final.error;
    execution.cause = final.cause;
    const key = executionKey(request);
    // Once on disk the journal answers for it, so memory stays bounded over a long `npm start`.
    if (journaled && this.#executions.get(key) === execution) {
      this.#executions.delete(key);
    }
    this.#options.onExecutionSettled?.({
      workflow: request.workflow,
      executionId: request.executionId,
      status: final.status,
    });
  }

  /** Whether the final entry is on disk. A failure is reported, not thrown: no caller awaits it. */
  async #journalFinal(
    request: StartExecutionRequest,
    ref: string,
    history: RunHistory,
    final: {
      status: JournaledStatus;
      stoppedAt: Date;
      error?: string | undefined;
      cause?: string | undefined;
    },
  ): Promise<boolean> {
    if (this.#journal === undefined) {
      return false;
    }
    try {
      await this.#journal.write(this.#entry(request, ref, history, final));
      return true;
    } catch (error) {
      this.#options.onJournalError?.(error);
      return false;
    }
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
      createLambdaContext({ functionName: FunctionName, timeoutMs: this.#options.lambdaTimeoutMs }),
    );
    return { Payload: result === undefined ? null : JSON.parse(JSON.stringify(result)) };
  }
}

function describeJournaled(entry: JournalEntry): ExecutionDescription {
  const known = {
    ref: entry.ref,
    startedAt: entry.startedAt,
    redriveCount: entry.redriveCount,
  };
  if (entry.status !== 'running') {
    return {
      ...known,
      status: entry.status,
      stoppedAt: entry.stoppedAt,
      error: entry.error,
      cause: entry.cause,
      redrivable: isRedrivable(entry.status),
    };
  }
  if (isAlive(entry.owner)) {
    return { ...known, status: 'running', redrivable: false };
  }
  return {
    ...known,
    status: 'failed',
    error: LOCAL_PROCESS_EXITED,
    cause: `The local process that ran this execution (pid ${entry.owner.pid}) exited before it finished; a redrive resumes it after its last committed task`,
    redrivable: true,
  };
}

function whyNotRedrivable(entry: JournalEntry): string | undefined {
  if (entry.status === 'succeeded') {
    return 'Execution already succeeded; there is nothing to redrive';
  }
  if (entry.status !== 'running' || !isAlive(entry.owner)) {
    return undefined;
  }
  return entry.owner.pid === process.pid
    ? 'Execution is still running in another LocalOrchestrator of this process'
    : `Execution is still running in process ${entry.owner.pid}; redrive it once that process has exited`;
}

/** Whether the orchestrator that journaled an entry may still be running it. */
function isAlive(owner: JournalEntry['owner']): boolean {
  if (owner.pid === process.pid) {
    return liveInstanceIds.has(owner.instanceId);
  }
  try {
    // Signal 0 checks that the process exists without touching it.
    process.kill(owner.pid, 0);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ESRCH') {
      return false;
    }
    if (code === 'EPERM') {
      // It exists, it just belongs to someone else.
      return true;
    }
    throw error;
  }
}

function outcomeOfFailure(error: unknown): RunOutcome {
  if (error instanceof ExecutionAbortedError) {
    return { status: 'aborted' };
  }
  if (error instanceof ExecutionTimeoutError) {
    return { status: 'timed_out' };
  }
  const failure =
    error instanceof ExecutionError ? (error.cause as { name?: string; message?: string }) : undefined;
  return {
    status: 'failed',
    error: failure?.name ?? (error instanceof Error ? error.name : 'Error'),
    cause: failure?.message ?? (error instanceof Error ? error.message : String(error)),
  };
}

/** What `describe` answers for another tenant's execution: that it is not the handle's, and nothing more. */
function foreign(): ExecutionDescription {
  return { status: 'foreign', redrivable: false };
}

/** Refuses an execution started for another tenant than the handle's. */
function assertOwnedBy(tenantId: string, handle: ExecutionHandle): void {
  if (tenantId !== handle.tenantId) {
    throw new ForeignExecutionError(handle.tenantId, handle.executionId);
  }
}

/** Executions are keyed by name, as in Step Functions: the tenant is checked, not part of the key. */
function executionKey(handle: ExecutionHandle): string {
  return `${handle.workflow}\u0000${handle.executionId}`;
}

function isRedrivable(status: OrchestratedStatus): boolean {
  return status === 'failed' || status === 'timed_out' || status === 'aborted';
}
