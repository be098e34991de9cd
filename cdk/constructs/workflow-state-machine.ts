import { compileToAsl } from '@tenantflow/shared/workflows/asl';
import type { WorkflowDefinition } from '@tenantflow/shared/workflows/workflow';
import type { RemovalPolicy } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type { Construct } from 'constructs';
import { StandardStateMachine, stateMachineNameOf } from './standard-state-machine.js';

export interface WorkflowStateMachineProps {
  readonly workflow: WorkflowDefinition;
  readonly stage: string;
  /** The run-task Lambda every Task state invokes. */
  readonly taskRunner: lambda.IFunction;
  /** The finalize Lambda of the success and failure states. */
  readonly finalizer: lambda.IFunction;
  readonly logRetentionDays: number;
  /** @default RemovalPolicy.DESTROY */
  readonly logRemovalPolicy?: RemovalPolicy;
}

/**
 * One registered workflow as a Standard state machine, named `tenantflow-<stage>-<workflow>` for
 * the console. Its definition is exactly what `compileToAsl` emits (the same JSON the local
 * orchestrator runs), with the two Lambda ARNs as deploy-time tokens.
 *
 * Logged, traced and confined as every {@link StandardStateMachine}: its role may invoke the
 * run-task and finalize functions, by their unqualified ARN as the definition names them, and
 * nothing else besides log delivery and tracing.
 *
 * @example
 * ```ts
 * const machine = new WorkflowStateMachine(this, 'WorkflowNightlyEtl', {
 *   workflow: nightlyEtl, stage: 'prod', taskRunner: runTask, finalizer: finalize, logRetentionDays: 30,
 * });
 * machine.stateMachine.stateMachineArn;
 * ```
 */
export class WorkflowStateMachine extends StandardStateMachine {
  readonly workflowName: string;

  constructor(scope: Construct, id: string, props: WorkflowStateMachineProps) {
    super(scope, id, {
      stateMachineName: stateMachineNameOf(props.stage, props.workflow.name),
      definition: compileToAsl(props.workflow, {
        taskRunnerArn: props.taskRunner.functionArn,
        finalizeArn: props.finalizer.functionArn,
      }),
      invokes: { sid: 'InvokeWorkflowFunctions', functions: [props.taskRunner, props.finalizer] },
      logRetentionDays: props.logRetentionDays,
      logRemovalPolicy: props.logRemovalPolicy,
    });
    this.workflowName = props.workflow.name;
  }
}
