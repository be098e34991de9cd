import { DEFAULT_RETRY_POLICY } from '@tenantflow/shared/schedules/eventbridge-schedule-trigger';
import { Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  buildPlatform,
  logicalIdIn,
  type PlatformFixture,
  unacknowledgedNagFindings,
} from './platform-fixture.js';
import { flatten, type Json, statementsOfRole, type TemplateResource } from './template-policies.js';

/** One synthesis (templates only, nothing bundled) of stage `qa`. */
let fixture: PlatformFixture;
let resources: Record<string, TemplateResource & { DeletionPolicy?: string; UpdateReplacePolicy?: string }>;

beforeAll(() => {
  fixture = buildPlatform({ skipBundling: true });
  resources = Template.fromStack(fixture.stack).toJSON().Resources as typeof resources;
}, 120_000);

const logicalId = (construct: IConstruct) => logicalIdIn(fixture.stack, construct);

function resourceOf(construct: IConstruct): TemplateResource & { DeletionPolicy?: string } {
  const resource = resources[logicalId(construct)];
  if (resource === undefined) {
    throw new Error(`No resource for ${construct.node.path}`);
  }
  return resource;
}

const SCHEDULES_OF_STAGE =
  'arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:schedule/tenantflow-qa/*';

describe('TenantSchedules', () => {
  it('creates the schedule group tenantflow-<stage>, deleted with the stack (and its schedules with it)', () => {
    // Prepare
    const groups = Object.values(resources).filter(
      (resource) => resource.Type === 'AWS::Scheduler::ScheduleGroup',
    );

    // Assert
    expect(groups).toHaveLength(1);
    expect(groups[0]?.Properties).toEqual({ Name: 'tenantflow-qa' });
    expect(groups[0]?.DeletionPolicy).toBe('Delete');
    expect(fixture.stack.schedules.groupName).toBe('tenantflow-qa');
  });

  it("lets only Scheduler assume its role, for this account's group only", () => {
    // Prepare
    const role = resourceOf(fixture.stack.schedules.schedulerRole);

    // Assert
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    const trust = role.Properties.AssumeRolePolicyDocument as { Statement: Json[] };
    expect(trust.Statement).toHaveLength(1);
    const [statement] = trust.Statement;
    expect(statement).toMatchObject({
      Effect: 'Allow',
      Action: 'sts:AssumeRole',
      Principal: { Service: 'scheduler.amazonaws.com' },
    });
    const condition = statement?.Condition as { StringEquals: Json; ArnEquals: Json };
    expect(condition.StringEquals).toEqual({ 'aws:SourceAccount': { Ref: 'AWS::AccountId' } });
    expect(flatten(condition.ArnEquals['aws:SourceArn'])).toBe(
      'arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:schedule-group/tenantflow-qa',
    );
  });

  it('allows the role to invoke the firing function and to write to the dead-letter queue, nothing else', () => {
    // Act
    const statements = statementsOfRole(resources, logicalId(fixture.stack.schedules.schedulerRole));

    // Assert
    expect(
      statements.map((statement) => ({
        effect: statement.Effect,
        actions: [statement.Action].flat(),
        resources: [statement.Resource].flat().map(flatten),
        condition: statement.Condition,
      })),
    ).toEqual([
      {
        effect: 'Allow',
        actions: ['lambda:InvokeFunction'],
        resources: [`<${logicalId(fixture.stack.functions.scheduleFire)}.Arn>`],
        condition: undefined,
      },
      {
        effect: 'Allow',
        actions: ['sqs:SendMessage'],
        resources: [`<${logicalId(fixture.stack.schedules.deadLetterQueue)}.Arn>`],
        condition: undefined,
      },
    ]);
  });

  it('keeps undelivered firings 14 days in an encrypted queue that refuses plain HTTP', () => {
    // Prepare
    const queueId = logicalId(fixture.stack.schedules.deadLetterQueue);
    const policies = Object.values(resources).filter(
      (resource) =>
        resource.Type === 'AWS::SQS::QueuePolicy' &&
        JSON.stringify(resource.Properties.Queues).includes(queueId),
    );

    // Assert
    expect(resources[queueId]?.Properties).toMatchObject({
      QueueName: 'tenantflow-qa-schedule-firings-dlq',
      MessageRetentionPeriod: 14 * 24 * 3600,
      SqsManagedSseEnabled: true,
    });
    expect(policies).toHaveLength(1);
    expect(JSON.stringify(policies[0]?.Properties.PolicyDocument)).toContain('"aws:SecureTransport":"false"');
  });

  it("retries the firing function's failures twice within the hour Scheduler also retries, then dead-letters them", () => {
    // Prepare
    const fireId = logicalId(fixture.stack.functions.scheduleFire);
    const configs = Object.values(resources).filter(
      (resource) =>
        resource.Type === 'AWS::Lambda::EventInvokeConfig' &&
        JSON.stringify(resource.Properties.FunctionName).includes(fireId),
    );

    // Assert
    expect(configs).toHaveLength(1);
    expect(configs[0]?.Properties).toMatchObject({ MaximumRetryAttempts: 2, Qualifier: '$LATEST' });
    expect(configs[0]?.Properties.MaximumEventAgeInSeconds).toBe(
      DEFAULT_RETRY_POLICY.MaximumEventAgeInSeconds,
    );
    const destinationConfig = configs[0]?.Properties.DestinationConfig as
      | { OnFailure: { Destination: unknown } }
      | undefined;
    const destination = destinationConfig?.OnFailure.Destination;
    expect(flatten(destination)).toBe(`<${logicalId(fixture.stack.schedules.deadLetterQueue)}.Arn>`);
  });

  it('gives the schedules API and the provisioning step the group, the target, the role and the queue', () => {
    for (const fn of [fixture.stack.functions.schedulesApi, fixture.stack.functions.provisioningStep]) {
      // Act
      const variables = (resourceOf(fn).Properties.Environment as { Variables: Json }).Variables;

      // Assert
      expect(variables.TENANTFLOW_SCHEDULE_GROUP, fn.node.path).toBe('tenantflow-qa');
      expect(flatten(variables.TENANTFLOW_SCHEDULE_TARGET_ARN)).toBe(
        `<${logicalId(fixture.stack.functions.scheduleFire)}.Arn>`,
      );
      expect(flatten(variables.TENANTFLOW_SCHEDULER_ROLE_ARN)).toBe(
        `<${logicalId(fixture.stack.schedules.schedulerRole)}.Arn>`,
      );
      expect(flatten(variables.TENANTFLOW_SCHEDULE_DEAD_LETTER_ARN)).toBe(
        `<${logicalId(fixture.stack.schedules.deadLetterQueue)}.Arn>`,
      );
    }
  });

  it("lets the schedules API manage the group's schedules and pass the scheduler role, to Scheduler only", () => {
    // Act
    const statements = statementsOfRole(
      resources,
      logicalId(fixture.stack.functions.schedulesApi.executionRole),
    );
    const scheduler = statements.filter((statement) =>
      [statement.Action].flat().some((action) => String(action).startsWith('scheduler:')),
    );
    const passRole = statements.filter((statement) => [statement.Action].flat().includes('iam:PassRole'));

    // Assert
    expect(scheduler).toHaveLength(1);
    expect([scheduler[0]?.Action].flat().sort()).toEqual([
      'scheduler:CreateSchedule',
      'scheduler:DeleteSchedule',
      'scheduler:GetSchedule',
      'scheduler:UpdateSchedule',
    ]);
    expect([scheduler[0]?.Resource].flat().map(flatten)).toEqual([SCHEDULES_OF_STAGE]);
    expect(passRole).toEqual([
      {
        Sid: 'PassSchedulerRole',
        Effect: 'Allow',
        Action: 'iam:PassRole',
        Resource: { 'Fn::GetAtt': [logicalId(fixture.stack.schedules.schedulerRole), 'Arn'] },
        Condition: { StringEquals: { 'iam:PassedToService': 'scheduler.amazonaws.com' } },
      },
    ]);
  });

  it("lets the provisioning step delete the group's schedules, and do nothing else with Scheduler", () => {
    // Act
    const statements = statementsOfRole(
      resources,
      logicalId(fixture.stack.functions.provisioningStep.executionRole),
    ).filter((statement) =>
      [statement.Action].flat().some((action) => /^(scheduler|iam):/.test(String(action))),
    );

    // Assert
    expect(statements).toEqual([
      {
        Sid: 'DeleteTenantSchedules',
        Effect: 'Allow',
        Action: 'scheduler:DeleteSchedule',
        Resource: expect.anything(),
      },
    ]);
    expect(flatten(statements[0]?.Resource)).toBe(SCHEDULES_OF_STAGE);
  });

  it('routes the schedules API routes to the schedules function', () => {
    // Prepare
    const schedulesApi = `<${logicalId(fixture.stack.functions.schedulesApi)}.Arn>`;
    const routes = [...fixture.stack.api.methods.entries()].filter(([key]) => key.includes('/schedules'));

    // Assert
    expect(routes.length).toBeGreaterThan(0);
    for (const [key, method] of routes) {
      const integration = resourceOf(method).Properties.Integration as { Uri: unknown };
      expect(flatten(integration.Uri), key).toContain(schedulesApi);
    }
  });

  it('leaves cdk-nag nothing to say about its resources or the functions it grants to', () => {
    // Act
    const findings = unacknowledgedNagFindings(fixture.stack).filter((finding) =>
      finding.paths.some((path) => /Schedule|ProvisioningStep/.test(path)),
    );

    // Assert
    expect(findings).toEqual([]);
  });
});
