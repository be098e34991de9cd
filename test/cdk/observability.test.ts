import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  PlatformObservability,
  PROXY_AUTH_LIST_ALARM_THRESHOLD,
} from '../../cdk/constructs/observability.js';
import { buildPlatform, type PlatformFixture, unacknowledgedNagFindings } from './platform-fixture.js';

let fixture: PlatformFixture;
let template: Template;

beforeAll(() => {
  fixture = buildPlatform({ skipBundling: true });
  template = Template.fromStack(fixture.stack);
});

type DashboardBody = { widgets: Array<{ properties: { title?: string; metrics?: unknown[][] } }> };

/** The dashboard's body as CloudWatch reads it: the Fn::Join of the template, each token as `<token>`. */
function dashboardBody(): DashboardBody {
  const dashboards = template.findResources('AWS::CloudWatch::Dashboard');
  const [dashboard] = Object.values(dashboards);
  const body = dashboard?.Properties?.DashboardBody as { 'Fn::Join': [string, unknown[]] } | string;
  const text =
    typeof body === 'string'
      ? body
      : body['Fn::Join'][1].map((part) => (typeof part === 'string' ? part : '<token>')).join('');
  return JSON.parse(text) as DashboardBody;
}

function widget(title: string) {
  const found = dashboardBody().widgets.find((candidate) => candidate.properties.title === title);
  if (found === undefined) {
    throw new Error(`no widget titled '${title}'`);
  }
  return found.properties;
}

/** The metric names of a widget (`[namespace, name, dim, value, ...]` rows), leaving out expressions. */
function metricNames(title: string): string[] {
  return (widget(title).metrics ?? [])
    .filter((row) => typeof row[0] === 'string' && row[0] !== '...')
    .map((row) => String(row[1]));
}

describe('PlatformObservability', () => {
  it('puts one dashboard per stage with the platform metrics by stage and service', () => {
    // Assert
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    template.hasResourceProperties('AWS::CloudWatch::Dashboard', { DashboardName: 'tenantflow-qa-platform' });
    expect(metricNames('Workflow executions')).toEqual([
      'ExecutionsStarted',
      'ExecutionsSucceeded',
      'ExecutionsFailed',
      'ExecutionsAborted',
    ]);
    expect(metricNames('Task duration (ms)')).toEqual(['TaskDuration', 'TaskDuration']);
    expect(JSON.stringify(widget('Task duration (ms)').metrics)).toMatch(/"stat":"p50".*"stat":"p99"/);
    expect(metricNames('Task errors')).toEqual(['TaskErrors', 'TaskErrors']);
    expect(metricNames('Provisioning duration (ms)')).toEqual(
      expect.arrayContaining(['ProvisioningStepDuration', 'ProvisioningDuration']),
    );
    expect(JSON.stringify(widget('Recovery actions by kind').metrics)).toContain(
      'MetricName=\\"RecoveryActions\\"',
    );
    expect(metricNames('Recovery actions by kind')).toEqual(['RecoveryAbandonments']);
    expect(metricNames('RDS Proxy auth list (secrets)')).toEqual(['ProxyAuthListSize']);
    const firstRow = widget('Workflow executions').metrics?.[0];
    expect(firstRow?.slice(0, 6)).toEqual([
      'tenantflow',
      'ExecutionsStarted',
      'service',
      'tenantflow',
      'stage',
      'qa',
    ]);
  });

  it('marks the RDS Proxy limit of 200 and the alarm threshold on the auth list graph', () => {
    // Act
    const annotations = (
      widget('RDS Proxy auth list (secrets)') as { annotations?: { horizontal?: unknown[] } }
    ).annotations?.horizontal;

    // Assert
    expect(annotations).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ value: 200 }),
        expect.objectContaining({ value: PROXY_AUTH_LIST_ALARM_THRESHOLD }),
      ]),
    );
  });

  it('graphs the Lambda errors and throttles of every function', () => {
    // Assert
    expect(metricNames('Lambda errors')).toHaveLength(11);
    expect(new Set(metricNames('Lambda errors'))).toEqual(new Set(['Errors']));
    expect(new Set(metricNames('Lambda throttles'))).toEqual(new Set(['Throttles']));
  });

  it('alarms on a failed execution, on a recovery abandonment and on an auth list above 180', () => {
    // Assert
    const totals = [
      { Name: 'service', Value: 'tenantflow' },
      { Name: 'stage', Value: 'qa' },
    ];
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'tenantflow-qa-executions-failed',
      Namespace: 'tenantflow',
      MetricName: 'ExecutionsFailed',
      Dimensions: totals,
      Statistic: 'Sum',
      Period: 300,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'tenantflow-qa-recovery-abandonments',
      MetricName: 'RecoveryAbandonments',
      Dimensions: totals,
      Statistic: 'Sum',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'tenantflow-qa-proxy-auth-list-high',
      MetricName: 'ProxyAuthListSize',
      Dimensions: totals,
      Statistic: 'Maximum',
      Threshold: 180,
      ComparisonOperator: 'GreaterThanThreshold',
    });
  });

  it('gives every function the metrics namespace and service it publishes under', () => {
    // Assert
    const functions = template.findResources('AWS::Lambda::Function', {
      Properties: { Layers: Match.anyValue() },
    });
    expect(Object.keys(functions).length).toBeGreaterThanOrEqual(11);
    for (const fn of Object.values(functions)) {
      expect(fn.Properties?.Environment?.Variables).toMatchObject({
        POWERTOOLS_METRICS_NAMESPACE: 'tenantflow',
        POWERTOOLS_SERVICE_NAME: 'tenantflow',
      });
      expect(fn.Properties?.TracingConfig).toEqual({ Mode: 'Active' });
    }
  });

  it('leaves no cdk-nag finding unacknowledged on the dashboard and alarms', () => {
    // Assert
    const findings = unacknowledgedNagFindings(fixture.stack.observability);
    expect(findings).toEqual([]);
  });

  it('sends alarm and OK notifications to the actions it is given', () => {
    // Prepare
    const stack = new Stack(new App(), 'Actions');
    const fn = lambda.Function.fromFunctionName(stack, 'Fn', 'tenantflow-qa-health');
    const topic = new sns.Topic(stack, 'Topic');

    // Act
    new PlatformObservability(stack, 'Observability', {
      stage: 'qa',
      functions: [fn],
      alarmActions: [new cloudwatchActions.SnsAction(topic)],
    });

    // Assert
    const alarms = Template.fromStack(stack).findResources('AWS::CloudWatch::Alarm');
    expect(Object.keys(alarms)).toHaveLength(3);
    for (const alarm of Object.values(alarms)) {
      expect(alarm.Properties?.AlarmActions).toEqual([{ Ref: expect.stringMatching(/^Topic/) }]);
      expect(alarm.Properties?.OKActions).toEqual([{ Ref: expect.stringMatching(/^Topic/) }]);
    }
    expect(cloudwatch.Stats.p(99)).toBe('p99');
  });
});
