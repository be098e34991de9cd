import { ArnFormat, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { acknowledgeWildcardResource } from './nag.js';
import type { TenantFunction } from './tenant-function.js';

export interface TenantSchedulesProps {
  readonly stage: string;
  /**
   * The schedule-firing function (`functions/schedules/fire.ts`): every tenant schedule's target,
   * invoked by EventBridge Scheduler with `{ tenantId, scheduleId, scheduledTime }`.
   */
  readonly firing: TenantFunction;
}

/**
 * How long a firing is worth delivering late: Scheduler's retries of the invocation, and Lambda's
 * of the function, give up after this and put the firing on the dead-letter queue instead. Matches
 * the adapter's `DEFAULT_RETRY_POLICY`.
 */
const FIRING_MAX_AGE = Duration.hours(1);
/** The most SQS keeps a message: time for an operator to look at a firing that was not delivered. */
const DEAD_LETTER_RETENTION = Duration.days(14);

/**
 * Tenant schedules on EventBridge Scheduler (`shared/schedules/eventbridge-schedule-trigger.ts`):
 *
 * - the stage's schedule group `tenantflow-<stage>`, which holds one schedule per tenant schedule,
 *   created and deleted at run time by the schedules API. It is deleted with the stack, and its
 *   schedules with it: they invoke the firing function, deleted with the same stack, so kept
 *   alone they would only fail. The schedules' definitions live in the database (the DataStack);
 * - the role Scheduler invokes the firing function with: trusted by `scheduler.amazonaws.com` for
 *   this account's schedule group only (`aws:SourceAccount`, `aws:SourceArn`), allowed
 *   `lambda:InvokeFunction` on that function and `sqs:SendMessage` to the dead-letter queue;
 * - the dead-letter queue of firings that were not delivered: by Scheduler (the invocation failed
 *   for an hour: see the adapter's retry policy) or by Lambda (the function failed three times,
 *   Lambda's asynchronous retries, or the firing was older than an hour). Its messages carry the
 *   firing, which the function takes again as is: `fire` is idempotent per scheduled time.
 *
 * Functions are given what they call with {@link TenantSchedules.grantManageSchedules} (the schedules
 * API: create, update, get and delete, and pass the role to Scheduler) and
 * {@link TenantSchedules.grantDeleteSchedules} (offboarding: delete only). Both set the environment
 * `eventBridgeScheduleTrigger` reads.
 *
 * @example
 * ```ts
 * const schedules = new TenantSchedules(this, 'Schedules', { stage: 'prod', firing: functions.scheduleFire });
 * schedules.grantManageSchedules(functions.schedulesApi);
 * schedules.grantDeleteSchedules(functions.provisioningStep);
 * ```
 */
export class TenantSchedules extends Construct {
  readonly group: scheduler.ScheduleGroup;
  /** `tenantflow-<stage>`. */
  readonly groupName: string;
  readonly schedulerRole: iam.Role;
  readonly deadLetterQueue: sqs.Queue;
  readonly firing: TenantFunction;
  /** Every schedule of the group: `arn:…:scheduler:<region>:<account>:schedule/tenantflow-<stage>/*`. */
  readonly schedulesArnPattern: string;

  constructor(scope: Construct, id: string, props: TenantSchedulesProps) {
    super(scope, id);
    const stack = Stack.of(this);
    this.firing = props.firing;
    this.groupName = `tenantflow-${props.stage}`;
    this.group = new scheduler.ScheduleGroup(this, 'Group', {
      scheduleGroupName: this.groupName,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.schedulesArnPattern = stack.formatArn({
      service: 'scheduler',
      resource: 'schedule',
      resourceName: `${this.groupName}/*`,
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });

    this.deadLetterQueue = new sqs.Queue(this, 'FiringsDeadLetterQueue', {
      queueName: `tenantflow-${props.stage}-schedule-firings-dlq`,
      retentionPeriod: DEAD_LETTER_RETENTION,
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    Validations.of(this.deadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason:
        "This queue is itself a dead-letter queue: EventBridge Scheduler's (each schedule's DeadLetterConfig, set at run time) and the firing function's on-failure destination. cdk-nag recognises only SQS redrive policies as making a queue a DLQ.",
    });

    this.schedulerRole = new iam.Role(this, 'SchedulerRole', {
      description: `EventBridge Scheduler invokes tenantflow-${props.stage}'s schedule-firing function with this role`,
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: {
          // The confused-deputy guard Scheduler's documentation gives: only this account's group.
          StringEquals: { 'aws:SourceAccount': stack.account },
          ArnEquals: {
            'aws:SourceArn': stack.formatArn({
              service: 'scheduler',
              resource: 'schedule-group',
              resourceName: this.groupName,
              arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
            }),
          },
        },
      }),
      inlinePolicies: {
        InvokeScheduleFiring: new iam.PolicyDocument({
          statements: [
            new iam.PolicyStatement({
              sid: 'InvokeScheduleFiringFunction',
              actions: ['lambda:InvokeFunction'],
              resources: [props.firing.functionArn],
            }),
            new iam.PolicyStatement({
              sid: 'SendUndeliveredFirings',
              actions: ['sqs:SendMessage'],
              resources: [this.deadLetterQueue.queueArn],
            }),
          ],
        }),
      },
    });

    // Scheduler invokes Lambda asynchronously: the function's own failures are retried by Lambda,
    // twice, within the hour a firing is worth, then kept on the dead-letter queue.
    props.firing.configureAsyncInvoke({
      retryAttempts: 2,
      maxEventAge: FIRING_MAX_AGE,
      onFailure: new destinations.SqsDestination(this.deadLetterQueue),
    });
  }

  /**
   * What the schedules API builds (`eventBridgeScheduleTrigger`): the group, the firing function,
   * the role and the dead-letter queue in its environment; `scheduler:CreateSchedule`,
   * `UpdateSchedule`, `GetSchedule` and `DeleteSchedule` on the group's schedules only; and
   * `iam:PassRole` on the scheduler role only, to Scheduler only (a schedule names the role it
   * invokes with, which its creator must be allowed to pass).
   */
  grantManageSchedules(fn: TenantFunction): void {
    this.bindTrigger(fn);
    this.addSchedulesStatement(fn, 'ManageTenantSchedules', [
      'scheduler:CreateSchedule',
      'scheduler:UpdateSchedule',
      'scheduler:GetSchedule',
      'scheduler:DeleteSchedule',
    ]);
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'PassSchedulerRole',
        actions: ['iam:PassRole'],
        resources: [this.schedulerRole.roleArn],
        conditions: { StringEquals: { 'iam:PassedToService': 'scheduler.amazonaws.com' } },
      }),
    );
  }

  /**
   * What offboarding needs to remove a tenant's schedules: the same environment (so the trigger
   * builds), and `scheduler:DeleteSchedule` on the group's schedules only. Creating or updating
   * one from this function would be refused.
   */
  grantDeleteSchedules(fn: TenantFunction): void {
    this.bindTrigger(fn);
    this.addSchedulesStatement(fn, 'DeleteTenantSchedules', ['scheduler:DeleteSchedule']);
  }

  private bindTrigger(fn: TenantFunction): void {
    fn.addEnvironment('TENANTFLOW_SCHEDULE_GROUP', this.groupName);
    fn.addEnvironment('TENANTFLOW_SCHEDULE_TARGET_ARN', this.firing.functionArn);
    fn.addEnvironment('TENANTFLOW_SCHEDULER_ROLE_ARN', this.schedulerRole.roleArn);
    fn.addEnvironment('TENANTFLOW_SCHEDULE_DEAD_LETTER_ARN', this.deadLetterQueue.queueArn);
  }

  private addSchedulesStatement(fn: TenantFunction, sid: string, actions: readonly string[]): void {
    fn.addToRolePolicy(
      new iam.PolicyStatement({ sid, actions: [...actions], resources: [this.schedulesArnPattern] }),
    );
    acknowledgeWildcardResource(
      fn.executionRole,
      this.schedulesArnPattern,
      `One EventBridge Scheduler schedule per tenant schedule, created at run time in the stage's group ${this.groupName} under a name derived from the tenant and schedule ids: the group is the tightest resource that covers them, and no other group's schedule matches.`,
    );
  }
}
