import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import type { TenantFunction } from '../../cdk/constructs/tenant-function.js';
import { deploymentConfig } from '../../cdk/deployment-config.js';
import type { PlatformFunctions } from '../../cdk/stacks/platform-stack.js';
import { installedWorkflows } from '../../workflows/index.js';
import {
  buildPlatform,
  logicalIdIn,
  type PlatformFixture,
  TEST_PROXY_ARN,
  unacknowledgedNagFindings,
} from './platform-fixture.js';
import { flatten, type Json, statementsOfRole, type TemplateResource } from './template-policies.js';

/** Every function of the PlatformStack, the DatabaseMigrations' `migrate` included. */
type FunctionName = keyof PlatformFunctions | 'migrate';

/**
 * What each handler builds (`functions/**`: `coreHandler(...)`), as the grants it needs: an IAM
 * action and the kind of resource it is allowed on. A function that is given more, or less, fails
 * the table below.
 */
const CORE = [
  // Lambda's network interfaces in the VPC, and X-Ray: no resource-level permissions exist.
  'ec2:AssignPrivateIpAddresses on *',
  'ec2:CreateNetworkInterface on *',
  'ec2:DeleteNetworkInterface on *',
  'ec2:DescribeNetworkInterfaces on *',
  'ec2:DescribeSubnets on *',
  'ec2:UnassignPrivateIpAddresses on *',
  'xray:PutTelemetryRecords on *',
  'xray:PutTraceSegments on *',
  'logs:CreateLogStream on its log group',
  'logs:PutLogEvents on its log group',
  // The core's pool and registry log in as the platform role.
  'secretsmanager:GetSecretValue on platform secret',
];
const ADMIN_LOGIN = ['secretsmanager:GetSecretValue on admin secret'];
const TENANT_ACCESS = ['secretsmanager:GetSecretValue on tenant secrets'];
const PROVISIONING = [
  ...ADMIN_LOGIN,
  ...[
    'CreateSecret',
    'DeleteSecret',
    'DescribeSecret',
    'GetSecretValue',
    'PutSecretValue',
    'RestoreSecret',
    'TagResource',
  ].map((action) => `secretsmanager:${action} on tenant secrets`),
];
/** Reads and changes the proxy's auth list: the provisioning step and recovery. */
const PROXY_AUTH_LIST = ['rds:DescribeDBProxies on proxy', 'rds:ModifyDBProxy on proxy'];
/** Reads it only, to refuse a tenant when it is full: the tenants API. */
const PROXY_AUTH_LIST_READ = ['rds:DescribeDBProxies on proxy'];
const START_AND_DESCRIBE = [
  'states:StartExecution on workflow state machines',
  'states:DescribeExecution on workflow executions',
];
const REDRIVE = ['states:RedriveExecution on workflow executions'];
/** Cancel (the executions API) and stopping a run cancelled while recovery restarted it. */
const STOP = ['states:StopExecution on workflow executions'];
/** Onboarding and offboarding: their two state machines and their executions, always deployed. */
const LIFECYCLE_START_AND_DESCRIBE = [
  'states:StartExecution on lifecycle state machines',
  'states:DescribeExecution on lifecycle executions',
];
const LIFECYCLE_REDRIVE = ['states:RedriveExecution on lifecycle executions'];
/** The schedules API: the stage's EventBridge Scheduler schedules, and the role they invoke with. */
const MANAGE_SCHEDULES = [
  ...['CreateSchedule', 'DeleteSchedule', 'GetSchedule', 'UpdateSchedule'].map(
    (action) => `scheduler:${action} on tenant schedules`,
  ),
  'iam:PassRole on scheduler role',
];
/** Offboarding deletes a tenant's schedules, and nothing else of Scheduler. */
const DELETE_SCHEDULES = ['scheduler:DeleteSchedule on tenant schedules'];
/** The firing function's on-failure destination (Lambda's SqsDestination grant). */
const SEND_UNDELIVERED_FIRINGS = ['GetQueueAttributes', 'GetQueueUrl', 'SendMessage'].map(
  (action) => `sqs:${action} on schedule firings dead-letter queue`,
);

const CORE_ENV = [
  'NODE_OPTIONS',
  'POWERTOOLS_LOG_LEVEL',
  'POWERTOOLS_METRICS_NAMESPACE',
  'POWERTOOLS_SERVICE_NAME',
  'TENANTFLOW_STAGE',
  'TENANTFLOW_DATABASE_HOST',
  'TENANTFLOW_DATABASE_PORT',
  'TENANTFLOW_DATABASE_NAME',
  'TENANTFLOW_DATABASE_SSL',
  'TENANTFLOW_DATABASE_SECRET_ARN',
];
const SCHEDULES_ENV = [
  'TENANTFLOW_SCHEDULE_GROUP',
  'TENANTFLOW_SCHEDULE_TARGET_ARN',
  'TENANTFLOW_SCHEDULER_ROLE_ARN',
  'TENANTFLOW_SCHEDULE_DEAD_LETTER_ARN',
];
const PROVISIONING_ENV = [
  'TENANTFLOW_ADMIN_DATABASE_SECRET_ARN',
  'TENANTFLOW_SECRETS',
  'TENANTFLOW_TENANT_DB_HOST',
  'TENANTFLOW_TENANT_DB_PORT',
];

interface Installation {
  /** Tenant roles through the proxy (`tenantDatabaseAccess=proxy`), or to the writer (`direct`). */
  readonly proxy: boolean;
  /** At least one workflow installed, so at least one state machine. */
  readonly workflows: boolean;
}

/** The table: each function → exactly the grants and the environment variables its handler uses. */
function expectedFunctions(
  installation: Installation,
): Record<FunctionName, { readonly grants: readonly string[]; readonly env: readonly string[] }> {
  const { proxy, workflows } = installation;
  const proxyAuthList = proxy ? PROXY_AUTH_LIST : [];
  const proxyAuthListRead = proxy ? PROXY_AUTH_LIST_READ : [];
  const proxyName = proxy ? ['TENANTFLOW_DB_PROXY_NAME'] : [];
  return {
    authorizer: { grants: CORE, env: CORE_ENV },
    health: { grants: CORE, env: CORE_ENV },
    finalize: { grants: CORE, env: CORE_ENV },
    runTask: {
      grants: [...CORE, ...TENANT_ACCESS],
      env: [
        ...CORE_ENV,
        'TENANTFLOW_SECRETS',
        'TENANTFLOW_EXAMPLES',
        ...(proxy ? [] : ['NODE_EXTRA_CA_CERTS']),
      ],
    },
    executionsApi: {
      grants: [...CORE, ...(workflows ? [...START_AND_DESCRIBE, ...REDRIVE, ...STOP] : [])],
      env: [...CORE_ENV, 'TENANTFLOW_STATE_MACHINE_ARNS', 'TENANTFLOW_EXAMPLES'],
    },
    tenantsApi: {
      grants: [...CORE, ...PROVISIONING, ...proxyAuthListRead, ...LIFECYCLE_START_AND_DESCRIBE],
      env: [
        ...CORE_ENV,
        ...PROVISIONING_ENV,
        ...proxyName,
        'TENANTFLOW_LIFECYCLE_STATE_MACHINE_ARNS',
        'TENANTFLOW_EXAMPLES',
      ],
    },
    provisioningStep: {
      grants: [...CORE, ...PROVISIONING, ...proxyAuthList, ...DELETE_SCHEDULES],
      env: [...CORE_ENV, ...PROVISIONING_ENV, ...proxyName, ...SCHEDULES_ENV, 'TENANTFLOW_EXAMPLES'],
    },
    // No Step Functions: creating a schedule starts nothing; the firing function does.
    schedulesApi: {
      grants: [...CORE, ...MANAGE_SCHEDULES],
      env: [...CORE_ENV, ...SCHEDULES_ENV, 'TENANTFLOW_EXAMPLES'],
    },
    // No Scheduler permission: firing changes no schedule.
    scheduleFire: {
      grants: [...CORE, ...(workflows ? START_AND_DESCRIBE : []), ...SEND_UNDELIVERED_FIRINGS],
      env: [...CORE_ENV, 'TENANTFLOW_STATE_MACHINE_ARNS', 'TENANTFLOW_EXAMPLES'],
    },
    // No admin login and no tenant secrets: recovery redrives the lifecycle's executions instead
    // of running DDL, and only puts proxy logins back.
    recovery: {
      grants: [
        ...CORE,
        ...proxyAuthList,
        ...LIFECYCLE_START_AND_DESCRIBE,
        ...LIFECYCLE_REDRIVE,
        ...(workflows ? [...START_AND_DESCRIBE, ...REDRIVE, ...STOP] : []),
      ],
      env: [
        ...CORE_ENV,
        ...proxyName,
        'TENANTFLOW_STATE_MACHINE_ARNS',
        'TENANTFLOW_LIFECYCLE_STATE_MACHINE_ARNS',
        'TENANTFLOW_EXAMPLES',
      ],
    },
    migrate: {
      grants: [...CORE, ...ADMIN_LOGIN],
      env: [
        ...CORE_ENV,
        'TENANTFLOW_ADMIN_DATABASE_SECRET_ARN',
        'TENANTFLOW_MIGRATE_CONCURRENCY',
        'TENANTFLOW_EXAMPLES',
      ],
    },
  };
}

/** A synthesized platform (templates only, nothing bundled) and what the table reads from it. */
interface Synthesized {
  readonly fixture: PlatformFixture;
  readonly resources: Record<string, TemplateResource>;
  readonly outputs: Record<string, Json>;
  readonly functions: Record<FunctionName, TenantFunction>;
}

function synthesize(context: Readonly<Record<string, unknown>>): Synthesized {
  const fixture = buildPlatform({ skipBundling: true, context });
  const template = Template.fromStack(fixture.stack).toJSON() as {
    Resources: Record<string, TemplateResource>;
    Outputs?: Record<string, Json>;
  };
  return {
    fixture,
    resources: template.Resources,
    outputs: template.Outputs ?? {},
    functions: { ...fixture.stack.functions, migrate: fixture.stack.migrations.function },
  };
}

/**
 * What a function's role allows, as `<action> on <kind of resource>`, sorted. A resource of no
 * known kind is named as it is, so the table cannot match it.
 */
function grantsOf(synthesized: Synthesized, name: FunctionName): string[] {
  const { fixture } = synthesized;
  const fn = synthesized.functions[name];
  const logicalId = (construct: Parameters<typeof logicalIdIn>[1]) => logicalIdIn(fixture.stack, construct);
  const machines = [...fixture.stack.stateMachines.values()];
  const lifecycleMachines = Object.values(fixture.stack.lifecycle.machines);
  const executionsOf = (machine: { readonly stateMachineName: string }) =>
    `arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:${machine.stateMachineName}:*`;
  const kindOf = (resource: string): string => {
    if (resource === '*') {
      return '*';
    }
    if (resource === `<${logicalId(fn.logGroup)}.Arn>`) {
      return 'its log group';
    }
    if (/^<import:TestData:ExportsOutputRefPlatformSecret\w+>$/.test(resource)) {
      return 'platform secret';
    }
    if (/^<import:TestData:ExportsOutputRefAdminSecret\w+>$/.test(resource)) {
      return 'admin secret';
    }
    if (
      resource ===
      `arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:tenantflow/${fixture.config.stage}/tenants/*`
    ) {
      return 'tenant secrets';
    }
    if (resource === TEST_PROXY_ARN) {
      return 'proxy';
    }
    if (
      resource ===
      `arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:schedule/tenantflow-${fixture.config.stage}/*`
    ) {
      return 'tenant schedules';
    }
    if (resource === `<${logicalId(fixture.stack.schedules.schedulerRole)}.Arn>`) {
      return 'scheduler role';
    }
    if (resource === `<${logicalId(fixture.stack.schedules.deadLetterQueue)}.Arn>`) {
      return 'schedule firings dead-letter queue';
    }
    if (machines.some((machine) => resource === `<${logicalId(machine.stateMachine)}>`)) {
      return 'workflow state machines';
    }
    if (machines.some((machine) => resource === executionsOf(machine))) {
      return 'workflow executions';
    }
    if (lifecycleMachines.some((machine) => resource === `<${logicalId(machine.stateMachine)}>`)) {
      return 'lifecycle state machines';
    }
    if (lifecycleMachines.some((machine) => resource === executionsOf(machine))) {
      return 'lifecycle executions';
    }
    return resource;
  };
  const grants = statementsOfRole(synthesized.resources, logicalId(fn.executionRole)).flatMap((statement) => {
    expect(statement.Effect, `${name}: ${JSON.stringify(statement)}`).toBe('Allow');
    const actions = [statement.Action].flat() as string[];
    // The one condition of the table: the scheduler role may be passed to Scheduler only.
    expect(statement.Condition, `${name}: ${JSON.stringify(statement)}`).toEqual(
      actions.includes('iam:PassRole')
        ? { StringEquals: { 'iam:PassedToService': 'scheduler.amazonaws.com' } }
        : undefined,
    );
    const resources = ([statement.Resource].flat() as unknown[]).map(flatten).map(kindOf);
    return actions.flatMap((action) => resources.map((kind) => `${action} on ${kind}`));
  });
  return [...new Set(grants)].sort();
}

function environmentOf(synthesized: Synthesized, name: FunctionName): Record<string, unknown> {
  const resource = synthesized.resources[logicalIdIn(synthesized.fixture.stack, synthesized.functions[name])];
  return ((resource?.Properties.Environment as { Variables?: Json } | undefined)?.Variables ?? {}) as Record<
    string,
    unknown
  >;
}

const INSTALLATIONS = [
  { title: 'examples, tenant roles through the proxy', context: {}, proxy: true, workflows: true },
  {
    title: 'examples, tenant roles to the writer',
    context: { tenantDatabaseAccess: 'direct' },
    proxy: false,
    workflows: true,
  },
  { title: 'no workflow installed', context: { examples: false }, proxy: true, workflows: false },
] as const;

describe('each function is granted only what its handler builds', () => {
  const synthesized = new Map<string, Synthesized>();

  beforeAll(() => {
    for (const installation of INSTALLATIONS) {
      synthesized.set(installation.title, synthesize(installation.context));
    }
  });

  describe.each(INSTALLATIONS)('$title', (installation) => {
    const expected = expectedFunctions(installation);
    const names = Object.keys(expected) as FunctionName[];

    it('deploys the functions of the table, and no other', () => {
      const platform = synthesized.get(installation.title) as Synthesized;
      expect(Object.keys(platform.functions).sort()).toEqual([...names].sort());
    });

    it.each(names)('%s: exactly the IAM actions of the table, each on its kind of resource', (name) => {
      // Prepare
      const platform = synthesized.get(installation.title) as Synthesized;

      // Act
      const grants = grantsOf(platform, name);

      // Assert
      expect(grants).toEqual([...expected[name].grants].sort());
    });

    it.each(names)('%s: exactly the environment variables of the table', (name) => {
      // Prepare
      const platform = synthesized.get(installation.title) as Synthesized;

      // Act
      const variables = Object.keys(environmentOf(platform, name));

      // Assert
      expect(variables.sort()).toEqual([...expected[name].env].sort());
    });
  });
});

describe("examples: installing the example workflows is the deployment's choice (-c examples=true)", () => {
  let withExamples: Synthesized;
  let without: Synthesized;

  beforeAll(() => {
    withExamples = synthesize({ examples: true });
    without = synthesize({ examples: 'false' });
  });

  const stateMachineNames = (platform: Synthesized) =>
    Object.values(platform.resources)
      .filter((resource) => resource.Type === 'AWS::StepFunctions::StateMachine')
      .map((resource) => resource.Properties.StateMachineName)
      .sort();
  const examplesVariables = (platform: Synthesized) =>
    (Object.keys(platform.functions) as FunctionName[])
      .flatMap((name) => {
        const value = environmentOf(platform, name).TENANTFLOW_EXAMPLES;
        return value === undefined ? [] : [`${name}=${String(value)}`];
      })
      .sort();
  /**
   * The functions that load the workflows (run-task, executions, recovery, schedule firing, the
   * schedules API) or their tables (tenants API, provisioning step, migrate).
   */
  const LOADERS = [
    'executionsApi',
    'migrate',
    'provisioningStep',
    'recovery',
    'runTask',
    'scheduleFire',
    'schedulesApi',
    'tenantsApi',
  ];
  /** The tenant lifecycle's, deployed with or without workflows. */
  const LIFECYCLE_MACHINES = ['tenantflow-qa-offboarding', 'tenantflow-qa-onboarding'];

  it('is off by default: a production install gets no example', () => {
    expect(deploymentConfig(new App().node).examples).toBe(false);
    expect(deploymentConfig(new App({ context: { examples: 'true' } }).node).examples).toBe(true);
    expect(deploymentConfig(new App({ context: { examples: true } }).node).examples).toBe(true);
    expect(() => deploymentConfig(new App({ context: { examples: 'yes' } }).node)).toThrow(
      "CDK context 'examples' must be true or false (got 'yes')",
    );
  });

  it("with examples: one state machine per example workflow beside the lifecycle's, and the functions register the examples", () => {
    // Prepare
    const examples = installedWorkflows({ examples: true });

    // Assert
    expect(examples.names().length).toBeGreaterThan(0);
    expect(withExamples.fixture.stack.workflows.names()).toEqual(examples.names());
    expect(stateMachineNames(withExamples)).toEqual(
      [...examples.names().map((name) => `tenantflow-qa-${name}`), ...LIFECYCLE_MACHINES].sort(),
    );
    expect(examplesVariables(withExamples)).toEqual(LOADERS.map((name) => `${name}=on`));
    const arns = JSON.parse(
      flatten(environmentOf(withExamples, 'recovery').TENANTFLOW_STATE_MACHINE_ARNS),
    ) as Json;
    expect(Object.keys(arns).sort()).toEqual([...examples.names()].sort());
  });

  it("without: no workflow state machine, no workflow output, and the functions register none; the lifecycle's stay", () => {
    // Assert
    expect(without.fixture.stack.workflows.names()).toEqual(installedWorkflows({ examples: false }).names());
    expect(stateMachineNames(without)).toEqual(LIFECYCLE_MACHINES);
    expect(without.fixture.stack.stateMachines.size).toBe(0);
    expect(Object.keys(without.outputs).filter((id) => id.startsWith('StateMachineArn'))).toEqual([]);
    expect(Object.keys(without.outputs)).toEqual(
      expect.arrayContaining([
        'ApiUrl',
        'MigrateFunctionName',
        'LifecycleStateMachineArnOnboarding',
        'LifecycleStateMachineArnOffboarding',
      ]),
    );
    expect(examplesVariables(without)).toEqual(LOADERS.map((name) => `${name}=off`));
    for (const name of ['executionsApi', 'recovery', 'scheduleFire'] as const) {
      expect(environmentOf(without, name).TENANTFLOW_STATE_MACHINE_ARNS, name).toBe('{}');
    }
    // The API still has its executions routes: they list no workflow and start none.
    expect(
      Object.values(without.resources).filter((resource) => resource.Type === 'AWS::ApiGateway::Method')
        .length,
    ).toBe(
      Object.values(withExamples.resources).filter((resource) => resource.Type === 'AWS::ApiGateway::Method')
        .length,
    );
  });

  it('without: cdk-nag has nothing to say', () => {
    expect(unacknowledgedNagFindings(without.fixture.stack)).toEqual([]);
  });
});
