import { randomUUID } from 'node:crypto';
import { CustomResource, CustomResourceProviderBase, Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as rds from 'aws-cdk-lib/aws-rds';
import type * as triggers from 'aws-cdk-lib/triggers';
import { Construct } from 'constructs';
import type { TenantFunction } from './tenant-function.js';

export interface ProxyLoginReconciliationProps {
  /** Part of the metric's namespace and of the alarm's name. */
  readonly stage: string;
  /**
   * The recovery function (`functions/recovery/recover.ts`), granted provisioning through the
   * proxy ({@link TenantFunction.grantProvisioning}): invoked with no event, as a CDK trigger
   * invokes it, it reconciles the tenant logins on the proxy's auth list and nothing else.
   */
  readonly recovery: TenantFunction;
  /** The proxy whose auth list is reconciled: the run comes after it is created or updated. */
  readonly proxy: rds.IDatabaseProxy;
  /**
   * A CDK trigger of the same stack (the migrations'): this run comes after it, through the
   * provider CDK's triggers module created for it (one per stack).
   */
  readonly after: triggers.Trigger;
  /**
   * A value that differs from one deployment to the next: the trigger's custom resource carries
   * it, so CloudFormation updates the resource, and so runs the reconcile, on every deployment of
   * the stack (not only when the recovery function changes). Tests pin it to compare templates.
   * @default a new random id each time the app is synthesized
   */
  readonly deploymentId?: string;
}

/** The trigger's provider function runs at most this long (CDK's CustomResourceProvider default). */
const PROVIDER_TIMEOUT = Duration.minutes(15);
/** The provider's wait for the function outlasts the function by this much. */
const INVOKE_GRACE = Duration.seconds(30);
/** Where `triggers.Trigger` keeps its stack's provider (`TriggerProvider.getOrCreateProvider`). */
const TRIGGER_PROVIDER_ID = 'AWSCDK.TriggerCustomResourceProviderCustomResourceProvider';

/** How the recovery journal logs each entry (`RecoveryJournal.record`): Powertools' JSON fields. */
const ACTED_MESSAGE = 'recovery acted';
const LOGIN_MISSING = 'login_missing';

/**
 * Keeps tenants able to log in through RDS Proxy across deployments. CloudFormation's RDS Proxy
 * handler writes the template's whole `Auth` list (the admin and platform secrets alone) on any
 * update of the proxy resource, whatever changed (a tag, a timeout, logging, a security group), and
 * so drops every tenant's entry, which provisioning adds at run time. `PlatformDatabase` keeps
 * such updates rare (nothing that changes from one deployment to the next reaches the proxy);
 * this construct repairs the ones that still happen, and says so:
 *
 * - a CDK trigger (a `Custom::Trigger` on the stack's triggers provider) invokes the recovery
 *   function on **every** deployment of its stack, after the proxy (in the DataStack, deployed
 *   first), the migrations and the recovery function's own update. With no event, as the provider
 *   invokes it, the function reconciles the auth list with the registry alone
 *   (`RecoveryService.reconcileLogins`), so tenants are back by the end of the deployment rather
 *   than at the next scheduled pass. It is synchronous: the deployment fails if the function itself
 *   fails; a list it cannot read or change (busy) is logged, and the next scheduled pass retries.
 * - a metric filter on the recovery function's log group counts the entries any run put back
 *   (`recovery acted` with `finding: login_missing`, from the deployment's run and from the
 *   scheduled passes alike), and an alarm goes off when there was one in 5 minutes: tenants were
 *   refused for a while, and something updated the proxy. The alarm has no action of its own:
 *   add one ({@link ProxyLoginReconciliation.alarm}`.addAlarmAction`) to be told.
 *
 * Not `triggers.Trigger` itself: that grants its provider's role the invocation, and the
 * provider's role would then name the recovery function, which waits for the migrations' trigger,
 * which waits for that provider: a dependency cycle. The recovery function grants the invocation
 * to the provider's role instead (a resource-based permission), and the `Custom::Trigger` is
 * created here, on the same provider and with its properties, but for the function itself rather
 * than a version of it (it is invoked after the function's update) and with a `DeploymentId`.
 *
 * @example
 * ```ts
 * functions.recovery.grantProvisioning(data.adminSecret);
 * const logins = new ProxyLoginReconciliation(this, 'ProxyLogins', {
 *   stage: 'prod', recovery: functions.recovery, proxy: data.proxy, after: migrations.trigger,
 * });
 * logins.alarm.addAlarmAction(new SnsAction(topic));
 * ```
 */
export class ProxyLoginReconciliation extends Construct {
  /** The `Custom::Trigger` resource: updated, and so run, on every deployment. */
  readonly trigger: CustomResource;
  /** Counts, in namespace `tenantflow/<stage>`, the tenant logins a run found missing and put back. */
  readonly loginsMissing: logs.MetricFilter;
  /** `tenantflow-<stage>-proxy-logins-missing`: at least one tenant login put back in 5 minutes. */
  readonly alarm: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: ProxyLoginReconciliationProps) {
    super(scope, id);
    const functionTimeout = props.recovery.timeout ?? Duration.seconds(3);
    const timeout = functionTimeout.plus(INVOKE_GRACE);
    if (timeout.toSeconds() > PROVIDER_TIMEOUT.toSeconds()) {
      throw new Error(
        `ProxyLoginReconciliation: the recovery function's timeout must leave ${INVOKE_GRACE.toHumanString()} inside the trigger provider's ${PROVIDER_TIMEOUT.toHumanString()} (got ${functionTimeout.toHumanString()})`,
      );
    }
    const provider = Stack.of(props.after).node.tryFindChild(TRIGGER_PROVIDER_ID);
    if (!(provider instanceof CustomResourceProviderBase)) {
      throw new Error(
        `ProxyLoginReconciliation: ${props.after.node.path} is not a CDK trigger of its stack (no ${TRIGGER_PROVIDER_ID})`,
      );
    }

    // The unqualified function: by the time this resource is updated, CloudFormation has finished
    // updating the function (the ARN below is its attribute), so `$LATEST` is the code just deployed.
    const permission = new lambda.CfnPermission(this, 'ProviderInvoke', {
      action: 'lambda:InvokeFunction',
      functionName: props.recovery.functionArn,
      principal: provider.roleArn,
    });
    this.trigger = new CustomResource(this, 'Trigger', {
      resourceType: 'Custom::Trigger',
      serviceToken: provider.serviceToken,
      properties: {
        HandlerArn: props.recovery.functionArn,
        InvocationType: 'RequestResponse',
        Timeout: String(timeout.toMilliseconds()),
        ExecuteOnHandlerChange: true,
        // The provider ignores it; CloudFormation sends an update when it changes, which the
        // provider turns into an invocation: so every deployment runs the reconcile.
        DeploymentId: props.deploymentId ?? randomUUID(),
      },
    });
    this.trigger.node.addDependency(permission, props.after, props.proxy);

    const logGroup = props.recovery.logGroup;
    this.loginsMissing = new logs.MetricFilter(this, 'LoginsMissing', {
      logGroup,
      filterPattern: logs.FilterPattern.all(
        logs.FilterPattern.stringValue('$.message', '=', ACTED_MESSAGE),
        logs.FilterPattern.stringValue('$.finding', '=', LOGIN_MISSING),
      ),
      metricNamespace: `tenantflow/${props.stage}`,
      metricName: 'ProxyLoginsMissing',
      metricValue: '1',
      unit: cloudwatch.Unit.COUNT,
    });
    this.alarm = new cloudwatch.Alarm(this, 'Alarm', {
      alarmName: `tenantflow-${props.stage}-proxy-logins-missing`,
      alarmDescription:
        "Recovery put tenant secrets back on the RDS Proxy auth list: those tenants' logins were refused until then. Something updated the proxy (a CloudFormation update of it writes the template's list) or changed its list by hand; see the 'recovery acted' entries with finding login_missing in the recovery function's logs and tenantflow.recovery_events.",
      metric: this.loginsMissing.metric({ statistic: cloudwatch.Stats.SUM, period: Duration.minutes(5) }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      // The filter writes a datapoint only when it matches: no data means nothing was missing.
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  }
}
