import type { AslDefinition } from '@tenantflow/shared/workflows/asl';
import { ArnFormat, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { retentionDays } from './log-retention.js';

/** Step Functions' limit on a state machine's name. */
const STATE_MACHINE_NAME_MAX_LENGTH = 80;

/**
 * `tenantflow-<stage>-<name>`: the name of a tenantflow state machine, as the console lists it and
 * as its log group (`/aws/vendedlogs/states/<that>`) and execution ARNs repeat it.
 *
 * @example
 * ```ts
 * stateMachineNameOf('prod', 'onboarding'); // 'tenantflow-prod-onboarding'
 * ```
 */
export function stateMachineNameOf(stage: string, name: string): string {
  return `tenantflow-${stage}-${name}`;
}

export interface StandardStateMachineProps {
  /** The full name (see {@link stateMachineNameOf}): at most 80 characters. */
  readonly stateMachineName: string;
  /** The Amazon States Language definition, deployed exactly as it is (tokens resolved by CloudFormation). */
  readonly definition: AslDefinition;
  /** The functions the definition's Task states invoke, and so the only ones the role may invoke. */
  readonly invokes: {
    /** The role policy statement's id (`InvokeWorkflowFunctions`). */
    readonly sid: string;
    readonly functions: readonly lambda.IFunction[];
  };
  readonly logRetentionDays: number;
  /** @default RemovalPolicy.DESTROY */
  readonly logRemovalPolicy?: RemovalPolicy;
}

/**
 * A Standard state machine as tenantflow deploys each of them (the workflows', the tenant
 * lifecycle's): its definition given as ASL JSON, the same the local orchestrator runs, with the
 * Lambda ARNs as deploy-time tokens.
 *
 * Logging goes to its own `/aws/vendedlogs/states/<name>` log group at level ALL, without
 * execution data (the payloads are ids only, but nothing is gained by logging them); X-Ray tracing
 * is on. The role may invoke the given functions, by their unqualified ARN as the definition names
 * them, and nothing else besides log delivery and tracing.
 *
 * Its children are `Logs` and `StateMachine`, directly under it: a subclass keeps the logical ids
 * (and so the deployed resources) of a state machine that was built without this base.
 *
 * @example
 * ```ts
 * const machine = new StandardStateMachine(this, 'Nightly', {
 *   stateMachineName: stateMachineNameOf('prod', 'nightly'), definition,
 *   invokes: { sid: 'InvokeNightlyFunction', functions: [nightly] }, logRetentionDays: 30,
 * });
 * machine.stateMachine.stateMachineArn;
 * ```
 */
export class StandardStateMachine extends Construct {
  readonly stateMachine: sfn.StateMachine;
  readonly stateMachineName: string;
  readonly logGroup: logs.LogGroup;
  /** `arn:…:states:<region>:<account>:execution:<state machine name>:*`: this machine's executions only. */
  readonly executionArnPattern: string;

  constructor(scope: Construct, id: string, props: StandardStateMachineProps) {
    super(scope, id);
    this.stateMachineName = props.stateMachineName;
    if (this.stateMachineName.length > STATE_MACHINE_NAME_MAX_LENGTH) {
      throw new Error(
        `State machine name '${this.stateMachineName}' is longer than Step Functions' ${STATE_MACHINE_NAME_MAX_LENGTH} characters: shorten the stage or the workflow name`,
      );
    }

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      // The /aws/vendedlogs/ prefix keeps CloudWatch Logs' resource policy from growing per group.
      logGroupName: `/aws/vendedlogs/states/${this.stateMachineName}`,
      retention: retentionDays(props.logRetentionDays),
      removalPolicy: props.logRemovalPolicy ?? RemovalPolicy.DESTROY,
    });

    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      stateMachineName: this.stateMachineName,
      stateMachineType: sfn.StateMachineType.STANDARD,
      comment: props.definition.Comment,
      definitionBody: sfn.DefinitionBody.fromString(JSON.stringify(props.definition)),
      logs: { destination: this.logGroup, level: sfn.LogLevel.ALL, includeExecutionData: false },
      tracingEnabled: true,
    });
    // Not grantInvoke: that also grants every version and alias (`<arn>:*`), which the definition
    // never invokes.
    this.stateMachine.addToRolePolicy(
      new iam.PolicyStatement({
        sid: props.invokes.sid,
        actions: ['lambda:InvokeFunction'],
        resources: props.invokes.functions.map((fn) => fn.functionArn),
      }),
    );
    Validations.of(this.stateMachine.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'Added by CDK for logging and tracing: the CloudWatch Logs vended-log delivery actions (logs:CreateLogDelivery, GetLogDelivery, UpdateLogDelivery, DeleteLogDelivery, ListLogDeliveries, PutResourcePolicy, DescribeResourcePolicies, DescribeLogGroups) and xray:PutTraceSegments/PutTelemetryRecords/GetSamplingRules/GetSamplingTargets support no resource-level permissions. The Lambda invocations name their functions.',
    });

    this.executionArnPattern = Stack.of(this).formatArn({
      service: 'states',
      resource: 'execution',
      resourceName: `${this.stateMachineName}:*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
  }
}
