import { Logger } from '@aws-lambda-powertools/logger';
import { RecoveryJournal } from '@tenantflow/shared/recovery/recovery-journal';
import { App, Tags } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { deploymentConfig } from '../../cdk/deployment-config.js';
import { DataStack } from '../../cdk/stacks/data-stack.js';
import { addTenantflowStacks, stageTags, tagTenantflowApp } from '../../cdk/tenantflow-app.js';
import {
  buildPlatform,
  logicalIdIn,
  type PlatformFixture,
  unacknowledgedNagFindings,
} from './platform-fixture.js';

/**
 * CloudFormation's RDS Proxy handler writes the template's whole `Auth` list on every update of
 * the proxy resource, which drops the tenants' entries (added at run time). These suites prove,
 * offline, the three things the platform does about it: nothing that changes between deployments
 * reaches the proxy; every deployment has recovery reconcile the list right after the proxy; and
 * an entry found missing raises an alarm.
 */

type Json = Record<string, unknown>;
interface TemplateResource {
  readonly Type: string;
  readonly Properties: Json;
  readonly DependsOn?: string[];
}

/** The whole app of one stage, as `cdk/bin/app.ts` builds it, without bundling the functions. */
function deployedApp(context: Json = {}) {
  const app = new App({ context: { stage: 'qa', 'aws:cdk:bundling-stacks': [], ...context } });
  const stacks = addTenantflowStacks(app);
  tagTenantflowApp(app, stacks.config);
  return { app, ...stacks };
}

function onlyResource(template: Template, type: string): TemplateResource {
  const resources = Object.values(template.findResources(type)) as TemplateResource[];
  expect(resources, type).toHaveLength(1);
  return resources[0] as TemplateResource;
}

describe('the RDS Proxy: nothing that changes between deployments reaches it', () => {
  it("carries the stage's fixed tags and no other, even with another tag added app-wide", () => {
    // Prepare: a tag whose value would change on every deployment, added the wrong way.
    const { app, data } = deployedApp();
    Tags.of(app).add('deployedAt', new Date().toISOString());

    // Act
    const proxy = onlyResource(Template.fromStack(data), 'AWS::RDS::DBProxy');
    const cluster = onlyResource(Template.fromStack(data), 'AWS::RDS::DBCluster');

    // Assert: the proxy is pinned; everything else takes the app's tags as before.
    expect(proxy.Properties.Tags).toEqual([
      { Key: 'project', Value: 'tenantflow' },
      { Key: 'stage', Value: 'qa' },
    ]);
    expect(cluster.Properties.Tags).toEqual(
      expect.arrayContaining([{ Key: 'deployedAt', Value: expect.any(String) }]),
    );
  });

  it('tags both stacks with the fixed stage tags only (CloudFormation propagates stack tags to the proxy)', () => {
    // Prepare
    const { app, data, platform } = deployedApp();

    // Act
    const assembly = app.synth();

    // Assert
    expect(assembly.getStackByName(data.stackName).tags).toEqual(stageTags('qa'));
    expect(assembly.getStackByName(platform.stackName).tags).toEqual(stageTags('qa'));
    expect(stageTags('qa')).toEqual({ project: 'tenantflow', stage: 'qa' });
  });

  it('has the same properties whatever else the deployment is configured with', () => {
    // Prepare: every context value that may change for a live stage, but the stage itself.
    const variants: Json[] = [
      {},
      { protectData: true, databaseReaders: 2, backupRetentionDays: 35, logRetentionDays: 365 },
      { databaseMinCapacity: 2, databaseMaxCapacity: 16, tenantDatabaseAccess: 'direct' },
      { egress: 'nat-per-az', gatewayEndpoints: 's3,dynamodb', examples: true },
    ];

    // Act
    const proxies = variants.map((context) => {
      const app = new App({ context: { stage: 'qa', ...context } });
      const stack = new DataStack(app, 'Data', {
        config: deploymentConfig(app.node),
        proxyTags: stageTags('qa'),
      });
      return onlyResource(Template.fromStack(stack), 'AWS::RDS::DBProxy');
    });

    // Assert
    expect(proxies[0]?.Properties).toMatchObject({
      DBProxyName: 'tenantflow-qa-proxy',
      RequireTLS: true,
      IdleClientTimeout: 1800,
      DebugLogging: false,
    });
    for (const proxy of proxies.slice(1)) {
      expect(proxy).toEqual(proxies[0]);
    }
  });

  it('has no tags at all when the DataStack is given none, whatever is tagged around it', () => {
    // Prepare
    const app = new App({ context: { stage: 'qa' } });
    const stack = new DataStack(app, 'Data', { config: deploymentConfig(app.node) });
    Tags.of(app).add('owner', 'someone');

    // Act
    const proxy = onlyResource(Template.fromStack(stack), 'AWS::RDS::DBProxy');

    // Assert
    expect(proxy.Properties).not.toHaveProperty('Tags');
  });
});

describe('the reconcile after every deployment', () => {
  let fixture: PlatformFixture;
  let resources: Record<string, TemplateResource>;

  beforeAll(() => {
    fixture = buildPlatform({ skipBundling: true });
    resources = Template.fromStack(fixture.stack).toJSON().Resources as Record<string, TemplateResource>;
  });

  const logicalId = (construct: Parameters<typeof logicalIdIn>[1]) => logicalIdIn(fixture.stack, construct);
  const reconciliation = () => {
    const found = fixture.stack.proxyLogins;
    if (found === undefined) {
      throw new Error('No ProxyLoginReconciliation in proxy mode');
    }
    return found;
  };
  const trigger = () => resources[logicalId(reconciliation().trigger)] as TemplateResource;
  const recoveryId = () => logicalId(fixture.stack.functions.recovery);

  it("invokes the recovery function synchronously with no payload, through the stack's trigger provider, waiting longer than the function may run", () => {
    // Prepare
    const migrations = resources[logicalId(fixture.stack.migrations.trigger.node.findChild('Default'))];
    const recoveryTimeoutMs = (resources[recoveryId()]?.Properties.Timeout as number) * 1000;

    // Assert: the provider sends no payload, which the handler reads as "logins only".
    expect(trigger()).toMatchObject({
      Type: 'Custom::Trigger',
      Properties: {
        ServiceToken: migrations?.Properties.ServiceToken,
        HandlerArn: { 'Fn::GetAtt': [recoveryId(), 'Arn'] },
        InvocationType: 'RequestResponse',
        ExecuteOnHandlerChange: true,
      },
    });
    expect(Number(trigger().Properties.Timeout)).toBe(recoveryTimeoutMs + 30_000);
    expect(Number(trigger().Properties.Timeout)).toBeLessThan(15 * 60 * 1000);
    expect(Object.keys(trigger().Properties).sort()).toEqual([
      'DeploymentId',
      'ExecuteOnHandlerChange',
      'HandlerArn',
      'InvocationType',
      'ServiceToken',
      'Timeout',
    ]);
  });

  it("runs after the migrations, the recovery function's update and the proxy's stack", () => {
    // Prepare
    const migrationsTrigger = logicalId(fixture.stack.migrations.trigger.node.findChild('Default'));
    const dependencies = reconciliation().trigger.node.dependencies;

    // Assert: the function through HandlerArn; the migrations in the template; the proxy, which
    // lives in the data stack, as a dependency between the stacks.
    expect(trigger().DependsOn).toEqual(expect.arrayContaining([migrationsTrigger]));
    expect(resources[recoveryId()]?.DependsOn).toEqual(expect.arrayContaining([migrationsTrigger]));
    expect(dependencies).toContain(fixture.data.proxy);
    expect(fixture.stack.dependencies).toContain(fixture.data.stack);
  });

  it("lets the trigger provider's role invoke the recovery function through a permission of the function, not of the role", () => {
    // Prepare
    const handlerRole = resources[migrationsProviderHandler()]?.Properties.Role as
      | { 'Fn::GetAtt': [string, string] }
      | undefined;
    const providerRole = handlerRole?.['Fn::GetAtt'][0] ?? '<no provider role>';
    const permissions = Object.entries(resources).filter(
      ([, resource]) =>
        resource.Type === 'AWS::Lambda::Permission' &&
        JSON.stringify(resource.Properties.Principal).includes(providerRole),
    );

    // Assert: granting it on the role would make the role name the recovery function, which waits
    // for the migrations' trigger, which waits for the role: a cycle CloudFormation refuses.
    expect(permissions).toHaveLength(1);
    const [permissionId, permission] = permissions[0] as [string, TemplateResource];
    expect(permission.Properties).toEqual({
      Action: 'lambda:InvokeFunction',
      FunctionName: { 'Fn::GetAtt': [recoveryId(), 'Arn'] },
      Principal: { 'Fn::GetAtt': [providerRole, 'Arn'] },
    });
    expect(trigger().DependsOn).toContain(permissionId);
    expect(JSON.stringify(resources[providerRole]?.Properties)).not.toContain(recoveryId());
  });

  it('carries an id that changes with every synthesis, so that each deployment runs it', () => {
    // Act
    const again = Template.fromStack(buildPlatform({ skipBundling: true }).stack).toJSON()
      .Resources as Record<string, TemplateResource>;

    // Assert
    expect(trigger().Properties.DeploymentId).toEqual(expect.any(String));
    expect(again[logicalId(reconciliation().trigger)]?.Properties.DeploymentId).not.toBe(
      trigger().Properties.DeploymentId,
    );
  });

  it('is not there when tenant roles connect to the cluster directly (no tenant on the proxy)', () => {
    // Act
    const direct = buildPlatform({ skipBundling: true, context: { tenantDatabaseAccess: 'direct' } });
    const template = Template.fromStack(direct.stack);

    // Assert
    expect(direct.stack.proxyLogins).toBeUndefined();
    // The platform's alarms remain, but none about the proxy's auth list.
    const alarmNames = Object.values(template.findResources('AWS::CloudWatch::Alarm')).map(
      (alarm) => alarm.Properties?.AlarmName as string,
    );
    expect(alarmNames.filter((name) => /proxy/.test(name))).toEqual([]);
    template.resourceCountIs('AWS::Logs::MetricFilter', 0);
    // Only the migrations' trigger remains.
    template.resourceCountIs('Custom::Trigger', 1);
  });

  it('leaves cdk-nag with nothing unacknowledged', () => {
    expect(unacknowledgedNagFindings(fixture.stack)).toEqual([]);
  });

  /** The trigger provider's function (CDK's triggers module adds one per stack). */
  function migrationsProviderHandler(): string {
    const token = trigger().Properties.ServiceToken as { 'Fn::GetAtt': [string, string] };
    return token['Fn::GetAtt'][0];
  }
});

describe('the alarm on tenant logins found missing', () => {
  let fixture: PlatformFixture;
  let template: Template;

  beforeAll(() => {
    fixture = buildPlatform({ skipBundling: true });
    template = Template.fromStack(fixture.stack);
  });

  afterEach(() => {
    vi.restoreAllMocks();
  });

  /** A JSON log line as the recovery journal writes it, through Powertools, for one entry. */
  async function journalLine(finding: 'login_missing' | 'login_orphaned'): Promise<Json> {
    const lines: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    const journal = new RecoveryJournal('run-1', {
      store: { recordEvent: async () => {} },
      logger: new Logger({ serviceName: 'tenantflow-recovery', logLevel: 'INFO' }),
    });
    await journal.record({
      tenantId: 'acme',
      targetType: 'tenant',
      targetId: 'acme',
      finding,
      repair: { action: 'admit_login', outcome: 'done', detail: 'added back', progressed: true },
    });
    vi.restoreAllMocks();
    expect(lines).toHaveLength(1);
    return JSON.parse(lines[0] ?? '{}') as Json;
  }

  /**
   * CloudWatch Logs' JSON filter pattern for the conjunction of string equalities the metric
   * filter uses, evaluated on one log line: `{ ($.a = "x") && ($.b = "y") }`.
   */
  function matches(pattern: string, line: Json): boolean {
    const terms = [...pattern.matchAll(/\(\$\.(\w+) = "([^"]*)"\)/g)];
    expect(pattern.replace(/\(\$\.\w+ = "[^"]*"\)/g, 'T')).toBe('{ T && T }');
    return terms.every(([, field, value]) => line[field as string] === value);
  }

  it("counts the recovery journal's login_missing entries in the recovery function's log group, and no other", async () => {
    // Prepare
    const [filter] = Object.values(template.findResources('AWS::Logs::MetricFilter')) as TemplateResource[];
    const pattern = filter?.Properties.FilterPattern as string;

    // Act
    const missing = await journalLine('login_missing');
    const orphaned = await journalLine('login_orphaned');

    // Assert
    expect(filter?.Properties).toMatchObject({
      LogGroupName: { Ref: logicalIdIn(fixture.stack, fixture.stack.functions.recovery.logGroup) },
      MetricTransformations: [
        {
          MetricNamespace: 'tenantflow/qa',
          MetricName: 'ProxyLoginsMissing',
          MetricValue: '1',
          Unit: 'Count',
        },
      ],
    });
    expect(matches(pattern, missing)).toBe(true);
    expect(matches(pattern, orphaned)).toBe(false);
  });

  it('goes off on one in 5 minutes, and stays quiet without data', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'tenantflow-qa-proxy-logins-missing',
      AlarmDescription: Match.stringLikeRegexp('RDS Proxy auth list'),
      Namespace: 'tenantflow/qa',
      MetricName: 'ProxyLoginsMissing',
      Statistic: 'Sum',
      Period: 300,
      Threshold: 1,
      EvaluationPeriods: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
    });
  });
});
