import {
  DescribeExecutionCommand,
  type DescribeExecutionCommandOutput,
  type ExecutionStatus,
  RedriveExecutionCommand,
  type SFNClient,
  StartExecutionCommand,
  StopExecutionCommand,
} from '@aws-sdk/client-sfn';
import { ConfigurationError, ForeignExecutionError } from '../kernel/errors.js';
import { executionNameFor, legacyExecutionNameFor } from './execution-name.js';
import {
  carriesHandle,
  type ExecutionDescription,
  type ExecutionHandle,
  type ExecutionInput,
  type OrchestratedStatus,
  type Orchestrator,
  type RedriveOutcome,
  type StartExecutionRequest,
  type StartedExecution,
} from './orchestrator.js';

/** `arn:<partition>:states:<region>:<account>:stateMachine:<name>`, unqualified (no version or alias). */
const STATE_MACHINE_ARN_PATTERN = /^(arn:[^:]+:states:[^:]+:[^:]+):stateMachine:([^:]+)$/;

/**
 * The ARN Step Functions gives the execution of a Standard state machine named `executionName`
 * (see {@link executionNameFor}):
 * `arn:<partition>:states:<region>:<account>:execution:<stateMachineName>:<executionName>`.
 *
 * Deriving it (rather than storing what `StartExecution` returned) is what lets recovery ask about
 * an execution whose start response was lost. The ARN names the execution only: whose it is comes
 * from its input, which the orchestrator checks before acting on it. Express executions have other
 * ARNs and cannot be described, so they are not supported. Throws a `ConfigurationError` for
 * anything but an unqualified state machine ARN.
 *
 * @example
 * ```ts
 * executionArnFor('arn:aws:states:eu-west-1:123456789012:stateMachine:onboarding', 'acme-exec_42');
 * // 'arn:aws:states:eu-west-1:123456789012:execution:onboarding:acme-exec_42'
 * ```
 */
export function executionArnFor(stateMachineArn: string, executionName: string): string {
  const match = STATE_MACHINE_ARN_PATTERN.exec(stateMachineArn);
  if (match === null) {
    throw new ConfigurationError(
      `'${stateMachineArn}' is not an unqualified state machine ARN (arn:<partition>:states:<region>:<account>:stateMachine:<name>)`,
    );
  }
  const [, accountPrefix, stateMachineName] = match;
  return `${accountPrefix}:execution:${stateMachineName}:${executionName}`;
}

/**
 * Step Functions statuses and what the port calls them. Typed over the SDK's `ExecutionStatus`, so
 * an SDK upgrade that adds a status fails the type check here instead of being mapped by guesswork.
 */
const ORCHESTRATED_STATUS_OF: Readonly<Record<ExecutionStatus, OrchestratedStatus>> = {
  RUNNING: 'running',
  SUCCEEDED: 'succeeded',
  FAILED: 'failed',
  TIMED_OUT: 'timed_out',
  ABORTED: 'aborted',
  PENDING_REDRIVE: 'pending_redrive',
};

/** Statuses after which stopping has nothing left to do. */
const ENDED_STATUSES: ReadonlySet<OrchestratedStatus> = new Set([
  'succeeded',
  'failed',
  'timed_out',
  'aborted',
  'not_found',
]);

export interface StepFunctionsOrchestratorProps {
  /** The Step Functions client, built once at module scope by the caller. */
  readonly client: SFNClient;
  /** Workflow name → ARN of its Standard state machine (one state machine per workflow). */
  readonly stateMachineArns: Readonly<Record<string, string>>;
}

/**
 * {@link Orchestrator} over AWS Step Functions (Standard workflows). Each execution is started with
 * the name {@link executionNameFor} gives (`<tenantId>-<executionId>`) and input
 * `{ tenantId, executionId }` only: the context stays in the tenant schema, because state payloads
 * are capped at 256 KB. Every other call addresses the execution by the ARN {@link executionArnFor}
 * derives, so nothing needs the ARN `start` returned. Executions started before names carried the
 * tenant id were named by the bare execution id: when no execution has the current name, the
 * legacy name is looked up too, so they are still described, stopped and redriven, and recovery
 * never starts a duplicate of one.
 *
 * An execution's name is not proof of whose it is: every call first reads the execution's input
 * (`DescribeExecution`) and goes on only if it is `{ tenantId, executionId }` of the handle, so an
 * `executions` row that names another tenant's execution never gets that execution described,
 * stopped or redriven. Input is immutable, so the check cannot go stale before the call it guards.
 *
 * AWS errors are matched by their SDK v3 exception `name`, never by message.
 *
 * Needs `states:StartExecution` on the state machines and `states:DescribeExecution,
 * StopExecution, RedriveExecution` on their executions.
 *
 * @example
 * ```ts
 * const client = new SFNClient({});
 * const orchestrator = new StepFunctionsOrchestrator({
 *   client,
 *   stateMachineArns: { onboarding: 'arn:aws:states:eu-west-1:123456789012:stateMachine:onboarding' },
 * });
 * const { ref } = await orchestrator.start({ workflow: 'onboarding', tenantId: 'acme', executionId });
 * const { status } = await orchestrator.describe({ workflow: 'onboarding', tenantId: 'acme', executionId });
 * ```
 */
export class StepFunctionsOrchestrator implements Orchestrator {
  private readonly client: SFNClient;
  private readonly stateMachineArns: ReadonlyMap<string, string>;

  constructor(props: StepFunctionsOrchestratorProps) {
    this.client = props.client;
    const entries = Object.entries(props.stateMachineArns);
    // A malformed ARN would otherwise surface only when recovery derives an execution ARN from it.
    for (const [workflow, arn] of entries) {
      if (!STATE_MACHINE_ARN_PATTERN.test(arn)) {
        throw new ConfigurationError(
          `The state machine ARN configured for workflow '${workflow}' is not an unqualified state machine ARN: '${arn}'`,
        );
      }
    }
    this.stateMachineArns = new Map(entries);
  }

  /**
   * Starts the workflow's state machine. A start repeated after the execution ended is reported as
   * `alreadyStarted: true` with the existing execution's ARN.
   *
   * A start repeated while the first execution is still RUNNING is reported as
   * `alreadyStarted: false`: AWS documents that such a call "succeeds and returns the same response
   * as the original request", so there is nothing to tell it apart by. The ARN is the same, and no
   * second execution is created.
   *
   * Throws a `ForeignExecutionError` (a `ConflictError`) when the execution id is already the name of
   * an execution with other input (another tenant's), rather than handing out a reference to someone
   * else's execution.
   */
  async start(request: StartExecutionRequest): Promise<StartedExecution> {
    const stateMachineArn = this.stateMachineArnOf(request.workflow);
    // Key order is fixed, so a retried start sends the same input string, which AWS's
    // idempotency compares.
    const input: ExecutionInput = { tenantId: request.tenantId, executionId: request.executionId };
    const name = executionNameFor(request);
    try {
      const started = await this.client.send(
        new StartExecutionCommand({ stateMachineArn, name, input: JSON.stringify(input) }),
      );
      return { ref: started.executionArn ?? executionArnFor(stateMachineArn, name), alreadyStarted: false };
    } catch (error) {
      if (!isAwsError(error, 'ExecutionAlreadyExists')) {
        throw error;
      }
      const ref = executionArnFor(stateMachineArn, name);
      // AWS also answers ExecutionAlreadyExists when the name is taken by an execution with
      // different input: with names shared by every tenant, it must be checked to be this one.
      const existing = await this.client.send(new DescribeExecutionCommand({ executionArn: ref }));
      if (!carriesHandle(existing.input, request)) {
        // The other tenant's id stays out of the message: a ConflictError is shown to the client.
        throw new ForeignExecutionError(
          request.tenantId,
          request.executionId,
          `Execution name '${name}' of workflow '${request.workflow}' is already taken by an execution with other input`,
          { cause: error },
        );
      }
      return { ref, alreadyStarted: true };
    }
  }

  /**
   * What Step Functions says of the execution, or `foreign` (with nothing else) when the execution
   * by that name was not started with this handle's tenant and execution id.
   */
  async describe(handle: ExecutionHandle): Promise<ExecutionDescription> {
    const found = await this.find(handle);
    if (found === undefined) {
      return { status: 'not_found', redrivable: false };
    }
    const { executionArn, described } = found;
    if (!carriesHandle(described.input, handle)) {
      // Checked before the status is mapped: nothing of someone else's execution is passed on.
      return { status: 'foreign', redrivable: false };
    }
    return {
      status: orchestratedStatusOf(described.status, executionArn),
      // The ARN by which it was found: acting on it reaches a legacy-named execution too.
      ref: executionArn,
      startedAt: described.startDate,
      stoppedAt: described.stopDate,
      error: described.error,
      cause: described.cause,
      // REDRIVABLE_BY_MAP_RUN is a child of a Distributed Map: only its Map Run can redrive it, and
      // RedriveExecution on it is refused. A missing status (moto never sends one) is not redrivable.
      redrivable: described.redriveStatus === 'REDRIVABLE',
      redriveCount: described.redriveCount,
    };
  }

  /**
   * Stops the execution once it is known to be the handle's: a `ForeignExecutionError` otherwise,
   * and nothing is stopped. Not an error when the execution does not exist (`ExecutionDoesNotExist`)
   * or has already ended: AWS does not document what stopping an ended execution answers (moto
   * answers success), so any other failure is checked against the execution's status and ignored
   * when the execution is no longer running. Otherwise the failure propagates.
   */
  async stop(handle: ExecutionHandle, reason: { error: string; cause: string }): Promise<void> {
    const { seen, executionArn } = await this.describeOwn(handle);
    if (ENDED_STATUSES.has(seen.status) || executionArn === undefined) {
      return;
    }
    try {
      await this.client.send(
        new StopExecutionCommand({ executionArn, error: reason.error, cause: reason.cause }),
      );
    } catch (error) {
      if (isAwsError(error, 'ExecutionDoesNotExist') || (await this.hasEnded(handle))) {
        return;
      }
      throw error;
    }
  }

  /**
   * Redrives a failed, timed-out or aborted execution from where it stopped, once it is known to be
   * the handle's: a `ForeignExecutionError` otherwise, and nothing is redriven. An execution that does
   * not exist is `not_redrivable`, as is one AWS refuses (`ExecutionNotRedrivable`, with AWS's
   * reason); other errors propagate.
   */
  async redrive(handle: ExecutionHandle): Promise<RedriveOutcome> {
    const { executionArn } = await this.describeOwn(handle);
    if (executionArn === undefined) {
      return { kind: 'not_redrivable', reason: 'Execution does not exist' };
    }
    try {
      const redriven = await this.client.send(new RedriveExecutionCommand({ executionArn }));
      // redriveDate is required by the API; the local clock only covers a non-conforming endpoint,
      // because the redrive itself did happen and must not be reported as a failure.
      return { kind: 'redriven', redrivenAt: redriven.redriveDate ?? new Date() };
    } catch (error) {
      if (isAwsError(error, 'ExecutionNotRedrivable')) {
        return { kind: 'not_redrivable', reason: error.message };
      }
      throw error;
    }
  }

  private stateMachineArnOf(workflow: string): string {
    const arn = this.stateMachineArns.get(workflow);
    if (arn === undefined) {
      const known = [...this.stateMachineArns.keys()];
      throw new ConfigurationError(
        `No state machine ARN is configured for workflow '${workflow}'. Configured workflows: ${known.length > 0 ? known.join(', ') : '(none)'}`,
      );
    }
    return arn;
  }

  /**
   * The execution by its current name ({@link executionNameFor}), else by its legacy name (the bare
   * execution id, from before names carried the tenant id); `undefined` when neither exists. Whose
   * it is, is still for the caller to check against its input.
   */
  private async find(
    handle: ExecutionHandle,
  ): Promise<{ executionArn: string; described: DescribeExecutionCommandOutput } | undefined> {
    const stateMachineArn = this.stateMachineArnOf(handle.workflow);
    for (const name of [executionNameFor(handle), legacyExecutionNameFor(handle)]) {
      const executionArn = executionArnFor(stateMachineArn, name);
      try {
        return {
          executionArn,
          described: await this.client.send(new DescribeExecutionCommand({ executionArn })),
        };
      } catch (error) {
        if (!isAwsError(error, 'ExecutionDoesNotExist')) {
          throw error;
        }
      }
    }
    return undefined;
  }

  /**
   * {@link describe}, refusing with a `ForeignExecutionError` an execution that is not the handle's.
   * `executionArn` is the ARN of the execution found, by whichever name; absent for `not_found`.
   */
  private async describeOwn(
    handle: ExecutionHandle,
  ): Promise<{ seen: ExecutionDescription; executionArn: string | undefined }> {
    const seen = await this.describe(handle);
    if (seen.status === 'foreign') {
      throw new ForeignExecutionError(handle.tenantId, handle.executionId);
    }
    return { seen, executionArn: seen.ref };
  }

  /** Whether the execution has ended; `false` when that cannot be found out either. */
  private async hasEnded(handle: ExecutionHandle): Promise<boolean> {
    try {
      return ENDED_STATUSES.has((await this.describe(handle)).status);
    } catch {
      // The caller rethrows the stop error, which says more than this one.
      return false;
    }
  }
}

function orchestratedStatusOf(status: string | undefined, executionArn: string): OrchestratedStatus {
  if (status !== undefined && Object.hasOwn(ORCHESTRATED_STATUS_OF, status)) {
    return ORCHESTRATED_STATUS_OF[status as ExecutionStatus];
  }
  // Guessing would hand recovery a wrong answer to act on; failing makes the gap visible.
  throw new Error(
    `Step Functions reported status ${JSON.stringify(status)} for ${executionArn}, which tenantflow does not know how to map`,
  );
}

function isAwsError(error: unknown, name: string): error is Error {
  return error instanceof Error && error.name === name;
}
