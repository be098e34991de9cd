import { compileToAsl } from '@tenantflow/shared/workflows/asl';
import type { WorkflowDefinition } from '@tenantflow/shared/workflows/workflow';
import { ArnFormat, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { retentionDays } from './log-retention.js';

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
 * Logging goes to its own `/aws/vendedlogs/states/...` log group at level ALL, without execution
 * data (the payloads are ids only, but nothing is gained by logging them); X-Ray tracing is on. The
 * role may invoke the run-task and finalize functions, by their unqualified ARN as the definition
 * names them, and nothing else besides log delivery and tracing.
 *
 * @example
 * ```ts
 * const machine = new WorkflowStateMachine(this, 'Onboarding', {
 *   workflow: onboarding, stage: 'prod', taskRunner: runTask, finalizer: finalize, logRetentionDays: 30,
 * });
 * machine.stateMachine.stateMachineArn;
 * ```
 */
export class WorkflowStateMachine extends Construct {
  readonly stateMachine: sfn.StateMachine;
  readonly stateMachineName: string;
  readonly workflowName: string;
  readonly logGroup: logs.LogGroup;
  /** `arn:…:states:<region>:<account>:execution:<state machine name>:*`: this machine's executions only. */
  readonly executionArnPattern: string;

  constructor(scope: Construct, id: string, props: WorkflowStateMachineProps) {
    super(scope, id);
    this.workflowName = props.workflow.name;
    this.stateMachineName = `tenantflow-${props.stage}-${props.workflow.name}`;
    if (this.stateMachineName.length > 80) {
      throw new Error(
        `State machine name '${this.stateMachineName}' is longer than Step Functions' 80 characters: shorten the stage or the workflow name`,
      );
    }

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      // The /aws/vendedlogs/ prefix keeps CloudWatch Logs' resource policy from growing per group.
      logGroupName: `/aws/vendedlogs/states/${this.stateMachineName}`,
      retention: retentionDays(props.logRetentionDays),
      removalPolicy: props.logRemovalPolicy ?? RemovalPolicy.DESTROY,
    });

    const definition = compileToAsl(props.workflow, {
      taskRunnerArn: props.taskRunner.functionArn,
      finalizeArn: props.finalizer.functionArn,
    });
    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      stateMachineName: this.stateMachineName,
      stateMachineType: sfn.StateMachineType.STANDARD,
      comment: definition.Comment,
      definitionBody: sfn.DefinitionBody.fromString(JSON.stringify(definition)),
      logs: { destination: this.logGroup, level: sfn.LogLevel.ALL, includeExecutionData: false },
      tracingEnabled: true,
    });
    // Not grantInvoke: that also grants every version and alias (`<arn>:*`), which the definition
    // never invokes.
    this.stateMachine.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'InvokeWorkflowFunctions',
        actions: ['lambda:InvokeFunction'],
        resources: [props.taskRunner.functionArn, props.finalizer.functionArn],
      }),
    );
    Validations.of(this.stateMachine.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'Added by CDK for logging and tracing: the CloudWatch Logs vended-log delivery actions (logs:CreateLogDelivery, GetLogDelivery, UpdateLogDelivery, DeleteLogDelivery, ListLogDeliveries, PutResourcePolicy, DescribeResourcePolicies, DescribeLogGroups) and xray:PutTraceSegments/PutTelemetryRecords/GetSamplingRules/GetSamplingTargets support no resource-level permissions. The Lambda invocations name their two functions.',
    });

    this.executionArnPattern = Stack.of(this).formatArn({
      service: 'states',
      resource: 'execution',
      resourceName: `${this.stateMachineName}:*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
  }
}
