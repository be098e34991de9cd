import { type PlatformMetricName, PROXY_AUTH_LIST_LIMIT } from '@tenantflow/shared/logging/metrics';
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { METRICS_NAMESPACE, METRICS_SERVICE } from './tenant-function.js';

export interface PlatformObservabilityProps {
  /** The `stage` dimension of the metrics, and part of the dashboard's and alarms' names. */
  readonly stage: string;
  /** The functions whose Lambda errors and throttles the dashboard shows. */
  readonly functions: readonly lambda.IFunction[];
  /**
   * What the alarms do when they go off (and come back), e.g. `new SnsAction(topic)`.
   * @default none: the alarms change state on the dashboard and in the console only
   */
  readonly alarmActions?: readonly cloudwatch.IAlarmAction[];
  /**
   * Whether tenants log in through the RDS Proxy, whose auth list is then graphed and alarmed on.
   * @default true
   */
  readonly proxyAuthList?: boolean;
  /** @default 'tenantflow' (what `TenantFunction` sets as `POWERTOOLS_METRICS_NAMESPACE`) */
  readonly namespace?: string;
  /** @default 'tenantflow' (what `TenantFunction` sets as `POWERTOOLS_SERVICE_NAME`) */
  readonly service?: string;
}

/** Above this many secrets on the RDS Proxy's auth list, the alarm warns: 20 tenants before its limit. */
export const PROXY_AUTH_LIST_ALARM_THRESHOLD = 180;

/** The period of the dashboard's graphs and of the alarms. */
const PERIOD = Duration.minutes(5);

/**
 * What an operator watches of a stage: the platform's metrics (EMF, recorded by the functions'
 * `PlatformMetrics`, see docs/observability.md) on a dashboard `tenantflow-<stage>`, with the
 * functions' Lambda errors and throttles, and three alarms:
 *
 * - `tenantflow-<stage>-executions-failed`: at least one workflow execution failed in 5 minutes;
 * - `tenantflow-<stage>-recovery-abandonments`: recovery gave up on an execution or a stuck tenant
 *   (its attempt cap, `TENANTFLOW_RECOVERY_MAX_ATTEMPTS`): someone must look at it;
 * - `tenantflow-<stage>-proxy-auth-list-high`: the RDS Proxy's auth list holds more than
 *   {@link PROXY_AUTH_LIST_ALARM_THRESHOLD} secrets, of its limit of 200: onboarding will soon be
 *   refused.
 *
 * Every graph and alarm reads the metrics by stage and service alone, the totals each function
 * publishes beside its per-workflow or per-action figures; a tenant is never a dimension (its id is
 * a property of the EMF record, found with Logs Insights). No data means nothing happened, so the
 * alarms treat missing data as not breaching. EMF needs no IAM permission: it is a log line.
 *
 * @example
 * ```ts
 * const observability = new PlatformObservability(this, 'Observability', { stage: 'prod', functions });
 * observability.alarms.executionsFailed.addAlarmAction(new SnsAction(topic));
 * ```
 */
export class PlatformObservability extends Construct {
  readonly dashboard: cloudwatch.Dashboard;
  readonly alarms: {
    readonly executionsFailed: cloudwatch.Alarm;
    readonly recoveryAbandonments: cloudwatch.Alarm;
    /** None when tenants do not log in through the proxy (`proxyAuthList: false`). */
    readonly proxyAuthListHigh: cloudwatch.Alarm | undefined;
  };
  readonly #namespace: string;
  readonly #dimensions: Readonly<Record<string, string>>;

  constructor(scope: Construct, id: string, props: PlatformObservabilityProps) {
    super(scope, id);
    this.#namespace = props.namespace ?? METRICS_NAMESPACE;
    this.#dimensions = { service: props.service ?? METRICS_SERVICE, stage: props.stage };
    const proxyAuthList = props.proxyAuthList ?? true;
    const name = (suffix: string) => `tenantflow-${props.stage}-${suffix}`;

    const alarm = (
      alarmId: string,
      options: Omit<cloudwatch.AlarmProps, 'evaluationPeriods' | 'treatMissingData'>,
    ) => {
      const created = new cloudwatch.Alarm(this, alarmId, {
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        ...options,
      });
      for (const action of props.alarmActions ?? []) {
        created.addAlarmAction(action);
        created.addOkAction(action);
      }
      return created;
    };
    this.alarms = {
      executionsFailed: alarm('ExecutionsFailedAlarm', {
        alarmName: name('executions-failed'),
        alarmDescription:
          'At least one workflow execution failed in 5 minutes. Its error names the task and why: GET /tenants/{tenantId}/executions?status=failed, or the EMF records of ExecutionsFailed in Logs Insights (docs/observability.md) for the tenant and execution ids.',
        metric: this.metric('ExecutionsFailed', cloudwatch.Stats.SUM),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      }),
      recoveryAbandonments: alarm('RecoveryAbandonmentsAlarm', {
        alarmName: name('recovery-abandonments'),
        alarmDescription:
          "Recovery gave up on an execution (finalized it as failed) or on a tenant stuck in provisioning or deprovisioning, after TENANTFLOW_RECOVERY_MAX_ATTEMPTS tries: it will not try again. See GET /recovery-events and the recovery function's 'recovery gave up' and 'recovery acted' (action abandon) lines.",
        metric: this.metric('RecoveryAbandonments', cloudwatch.Stats.SUM),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      }),
      proxyAuthListHigh: !proxyAuthList
        ? undefined
        : alarm('ProxyAuthListHighAlarm', {
            alarmName: name('proxy-auth-list-high'),
            alarmDescription: `The RDS Proxy's auth list holds more than ${PROXY_AUTH_LIST_ALARM_THRESHOLD} secrets, of its limit of ${PROXY_AUTH_LIST_LIMIT} (one per tenant, plus the admin's and the platform's): onboarding is refused once it is full. Offboard unused tenants, or plan another proxy or tenantDatabaseAccess=direct (docs/deploy.md).`,
            metric: this.metric('ProxyAuthListSize', cloudwatch.Stats.MAXIMUM),
            threshold: PROXY_AUTH_LIST_ALARM_THRESHOLD,
            comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
          }),
    };

    const graph = (
      title: string,
      left: cloudwatch.IMetric[],
      extra: Partial<cloudwatch.GraphWidgetProps> = {},
    ) => new cloudwatch.GraphWidget({ title, left, width: 12, height: 6, period: PERIOD, ...extra });
    const recoveryByAction = new cloudwatch.MathExpression({
      label: '',
      expression: `SEARCH('{${this.#namespace},action,service,stage} MetricName="RecoveryActions" service="${this.#dimensions.service}" stage="${props.stage}"', 'Sum', ${PERIOD.toSeconds()})`,
      usingMetrics: {},
      period: PERIOD,
    });
    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: name('platform'),
      defaultInterval: Duration.hours(3),
      widgets: [
        [
          graph(
            'Workflow executions',
            (
              ['ExecutionsStarted', 'ExecutionsSucceeded', 'ExecutionsFailed', 'ExecutionsAborted'] as const
            ).map((metricName) => this.metric(metricName, cloudwatch.Stats.SUM)),
          ),
          graph('Task duration (ms)', [
            this.metric('TaskDuration', cloudwatch.Stats.p(50), 'p50'),
            this.metric('TaskDuration', cloudwatch.Stats.p(99), 'p99'),
          ]),
        ],
        [
          graph('Task errors', [
            this.metric('TaskErrors', cloudwatch.Stats.SUM, 'failed attempts'),
            this.metric('TaskErrors', cloudwatch.Stats.SAMPLE_COUNT, 'attempts'),
          ]),
          graph('Provisioning duration (ms)', [
            this.metric('ProvisioningStepDuration', cloudwatch.Stats.p(50), 'step p50'),
            this.metric('ProvisioningStepDuration', cloudwatch.Stats.MAXIMUM, 'step max'),
            this.metric('ProvisioningDuration', cloudwatch.Stats.p(50), 'onboarding p50'),
            this.metric('ProvisioningDuration', cloudwatch.Stats.MAXIMUM, 'onboarding max'),
          ]),
        ],
        [
          graph('Recovery actions by kind', [recoveryByAction], {
            right: [this.metric('RecoveryAbandonments', cloudwatch.Stats.SUM, 'abandonments')],
          }),
          ...(!proxyAuthList
            ? []
            : [
                graph(
                  'RDS Proxy auth list (secrets)',
                  [this.metric('ProxyAuthListSize', cloudwatch.Stats.MAXIMUM, 'entries')],
                  {
                    leftYAxis: { min: 0, max: PROXY_AUTH_LIST_LIMIT + 10, showUnits: false },
                    leftAnnotations: [
                      {
                        value: PROXY_AUTH_LIST_LIMIT,
                        label: `RDS Proxy limit (${PROXY_AUTH_LIST_LIMIT})`,
                        color: '#d62728',
                      },
                      {
                        value: PROXY_AUTH_LIST_ALARM_THRESHOLD,
                        label: `alarm (> ${PROXY_AUTH_LIST_ALARM_THRESHOLD})`,
                        color: '#ff7f0e',
                      },
                    ],
                  },
                ),
              ]),
        ],
        [
          graph(
            'Lambda errors',
            props.functions.map((fn) => fn.metricErrors({ period: PERIOD, statistic: cloudwatch.Stats.SUM })),
          ),
          graph(
            'Lambda throttles',
            props.functions.map((fn) =>
              fn.metricThrottles({ period: PERIOD, statistic: cloudwatch.Stats.SUM }),
            ),
          ),
        ],
      ],
    });
    // The app's stage tags reach every taggable resource, and CDK takes a dashboard for one, but
    // cfn-lint's resource schema refuses Tags on AWS::CloudWatch::Dashboard (E3002): the dashboard
    // goes untagged, its name says its stage.
    (this.dashboard.node.defaultChild as cloudwatch.CfnDashboard).addPropertyDeletionOverride('Tags');
  }

  /** A platform metric by stage and service (the totals), with `statistic` over 5 minutes. */
  metric(metricName: PlatformMetricName, statistic: string, label?: string): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: this.#namespace,
      metricName,
      dimensionsMap: { ...this.#dimensions },
      statistic,
      period: PERIOD,
      ...(label === undefined ? {} : { label }),
    });
  }
}
