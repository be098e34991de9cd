import { App, CfnElement, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { type DeploymentConfig, deploymentConfig } from '../../cdk/deployment-config.js';
import { type PlatformData, PlatformStack } from '../../cdk/stacks/platform-stack.js';

export const TEST_PROXY_ENDPOINT = 'tenantflow-qa.proxy-c0ffee.eu-west-1.rds.amazonaws.com';
export const TEST_CLUSTER_ENDPOINT = 'tenantflow-qa.cluster-c0ffee.eu-west-1.rds.amazonaws.com';
export const TEST_PROXY_ARN = 'arn:aws:rds:eu-west-1:123456789012:db-proxy:prx-0123456789abcdef0';

/**
 * What the DataStack hands the PlatformStack, built in a stack of the test's own (a real VPC with
 * isolated `lambdas` subnets, a security group, an imported proxy, the admin and platform
 * secrets), so these tests do not depend on the DataStack's code.
 */
export function buildTestData(app: App): PlatformData & { readonly stack: Stack } {
  const stack = new Stack(app, 'TestData');
  const vpc = new ec2.Vpc(stack, 'Vpc', {
    maxAzs: 2,
    natGateways: 0,
    subnetConfiguration: [
      { name: 'database', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 },
      { name: 'lambdas', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 20 },
    ],
  });
  const lambdaSecurityGroup = new ec2.SecurityGroup(stack, 'LambdaSecurityGroup', {
    vpc,
    description: 'test Lambdas',
    allowAllOutbound: false,
  });
  const proxy = rds.DatabaseProxy.fromDatabaseProxyAttributes(stack, 'Proxy', {
    dbProxyArn: TEST_PROXY_ARN,
    dbProxyName: 'tenantflow-qa',
    endpoint: TEST_PROXY_ENDPOINT,
    securityGroups: [],
  });
  const adminSecret = new secretsmanager.Secret(stack, 'AdminSecret', {
    secretName: 'tenantflow/qa/admin',
  });
  const platformSecret = new secretsmanager.Secret(stack, 'PlatformSecret', {
    secretName: 'tenantflow/qa/platform',
  });
  const cluster = rds.DatabaseCluster.fromDatabaseClusterAttributes(stack, 'Cluster', {
    clusterIdentifier: 'tenantflow-qa',
    clusterEndpointAddress: TEST_CLUSTER_ENDPOINT,
    port: 5432,
  });
  return {
    stack,
    vpc,
    lambdaSecurityGroup,
    proxy,
    adminSecret,
    platformSecret,
    databaseName: 'tenantflow',
    cluster,
  };
}

export interface PlatformFixture {
  readonly app: App;
  readonly config: DeploymentConfig;
  readonly data: ReturnType<typeof buildTestData>;
  readonly stack: PlatformStack;
}

/**
 * An App with the test data stack and a PlatformStack for stage `qa`, not yet synthesized, with
 * the example workflows installed (`examples: true`: the suites look at their state machines and
 * grants), unless `context` says otherwise. Give `outdir` to find the bundled assets there after
 * synthesis.
 */
export function buildPlatform(
  options: {
    readonly outdir?: string;
    /** More CDK context (`tenantDatabaseAccess`, or `examples: false`, say). */
    readonly context?: Readonly<Record<string, unknown>>;
    /** Skip esbuild and the layer build: for tests of the template alone. */
    readonly skipBundling?: boolean;
  } = {},
): PlatformFixture {
  const app = new App({
    context: {
      stage: 'qa',
      examples: true,
      ...options.context,
      ...(options.skipBundling ? { 'aws:cdk:bundling-stacks': [] } : {}),
    },
    ...(options.outdir === undefined ? {} : { outdir: options.outdir }),
  });
  const config = deploymentConfig(app.node);
  const data = buildTestData(app);
  const stack = new PlatformStack(app, 'TestPlatform', { config, data });
  return { app, config, data, stack };
}

export interface NagFinding {
  readonly rule: string;
  readonly severity: string;
  readonly paths: readonly string[];
  readonly description: string;
}

/**
 * cdk-nag 3's `AwsSolutionsChecks` over `scope`: every error and warning that is not acknowledged
 * with `Validations.of(x).acknowledge(...)` on the resource or one of its scopes. This is the very
 * report a `Validations.of(app).addPlugins(new AwsSolutionsChecks(app))` synth fails on.
 */
export function unacknowledgedNagFindings(scope: IConstruct): NagFinding[] {
  const report = new AwsSolutionsChecks().validateScope(scope);
  return report.violations.map((violation) => ({
    rule: violation.ruleName,
    severity: violation.severity ?? 'unknown',
    paths: violation.violatingResources.map(
      (resource) => resource.constructPath ?? resource.resourceLogicalId ?? '(unknown)',
    ),
    description: violation.description,
  }));
}

/** The logical id of `construct`'s own CloudFormation resource in `stack`. */
export function logicalIdIn(stack: Stack, construct: IConstruct): string {
  const element = construct.node.defaultChild;
  if (!CfnElement.isCfnElement(element)) {
    throw new Error(`${construct.node.path} has no CloudFormation resource of its own`);
  }
  return stack.getLogicalId(element);
}
