import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploymentConfig } from '../../cdk/deployment-config.js';
import { DataStack } from '../../cdk/stacks/data-stack.js';

/** One unacknowledged cdk-nag finding, as CDK's policy validation report lists it. */
interface NagFinding {
  readonly rule: string;
  readonly severity: string;
  readonly path: string;
}

interface ValidationReport {
  readonly pluginReports: ReadonlyArray<{
    readonly pluginName: string;
    readonly violations: ReadonlyArray<{
      readonly ruleName: string;
      readonly severity?: string;
      readonly violatingConstructs: ReadonlyArray<{ readonly constructPath: string }>;
    }>;
  }>;
}

interface Synthesized {
  readonly template: Template;
  readonly findings: readonly NagFinding[];
  /** What `app.synth()` threw: cdk-nag 3 fails synthesis with «ValidationFailed» on a finding. */
  readonly synthError: unknown;
}

/** A resource as `Template.findResources` returns it (its properties are untyped JSON). */
type TemplateResource = ReturnType<Template['findResources']>[string];

const outdirs: string[] = [];

/**
 * Synthesizes `build`'s app once with `AwsSolutionsChecks` registered the way `cdk/bin/app.ts`
 * does, and returns the stack's template with the AwsSolutions findings. cdk-nag 3 runs as a CDK
 * policy-validation plugin: findings land in `validation-report.json` in the cloud assembly (and
 * make `synth()` throw), while the templates are written before validation runs.
 */
function synthesizeWithNag(build: (app: App) => Stack, context: Record<string, unknown> = {}): Synthesized {
  const outdir = mkdtempSync(join(tmpdir(), 'tenantflow-cdk-'));
  outdirs.push(outdir);
  const app = new App({ outdir, context });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  const stack = build(app);
  let synthError: unknown;
  try {
    app.synth();
  } catch (error) {
    synthError = error;
  }
  // The report is written whether or not there are findings; a missing one means nag never ran.
  const report = JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8')) as ValidationReport;
  const findings = report.pluginReports
    .filter((plugin) => plugin.pluginName === 'AwsSolutions')
    .flatMap((plugin) => plugin.violations)
    .flatMap((violation) =>
      violation.violatingConstructs.map((construct) => ({
        rule: violation.ruleName,
        severity: violation.severity ?? 'error',
        path: construct.constructPath,
      })),
    );
  const template = Template.fromJSON(JSON.parse(readFileSync(join(outdir, stack.templateFile), 'utf8')));
  return { template, findings, synthError };
}

function dataStack(app: App): DataStack {
  return new DataStack(app, 'Data', { config: deploymentConfig(app.node) });
}

/** The `aws-cdk:subnet-name` tag of each subnet a list of `{ Ref }`s points at. */
function subnetGroupsOf(template: Template, subnetRefs: unknown): string[] {
  const subnets = template.findResources('AWS::EC2::Subnet');
  return (subnetRefs as Array<{ Ref: string }>).map((ref) => {
    const tags = (subnets[ref.Ref]?.Properties?.Tags ?? []) as Array<{ Key: string; Value: string }>;
    return tags.find((tag) => tag.Key === 'aws-cdk:subnet-name')?.Value ?? `<not a subnet: ${ref.Ref}>`;
  });
}

function onlyResource(template: Template, type: string): { logicalId: string; resource: TemplateResource } {
  const resources = Object.entries(template.findResources(type));
  expect(resources, type).toHaveLength(1);
  const [logicalId, resource] = resources[0] ?? ['', {}];
  return { logicalId, resource };
}

/** The logical ids of the secret named `name` and of its attachment to the cluster. */
function secretNamed(template: Template, name: string): { secret: string; attachment: string } {
  const secret = logicalIdOf(template, 'AWS::SecretsManager::Secret', { Name: name });
  const attachment = logicalIdOf(template, 'AWS::SecretsManager::SecretTargetAttachment', {
    SecretId: { Ref: secret },
  });
  return { secret, attachment };
}

/** The rotation application (SAR) whose Lambda rotates the secret attached as `attachment`. */
function rotationOf(
  template: Template,
  attachment: string,
): { logicalId: string; resource: TemplateResource } {
  const schedules = Object.values(
    template.findResources('AWS::SecretsManager::RotationSchedule', {
      Properties: { SecretId: { Ref: attachment } },
    }),
  );
  expect(schedules, `rotation schedules of ${attachment}`).toHaveLength(1);
  const lambdaArn = schedules[0]?.Properties.RotationLambdaARN as { 'Fn::GetAtt': [string, string] };
  expect(lambdaArn['Fn::GetAtt'][1]).toBe('Outputs.RotationLambdaARN');
  const logicalId = lambdaArn['Fn::GetAtt'][0];
  const resource = template.findResources('AWS::Serverless::Application')[logicalId];
  if (resource === undefined) {
    throw new Error(`No rotation application ${logicalId}`);
  }
  return { logicalId, resource };
}

function logicalIdOf(template: Template, type: string, props: Record<string, unknown>): string {
  const ids = Object.keys(template.findResources(type, { Properties: Match.objectLike(props) }));
  expect(ids, `${type} matching ${JSON.stringify(props)}`).toHaveLength(1);
  return ids[0] ?? '';
}

/** The logical ids of the subnets of one subnet group (`database`, `lambdas`, `public`). */
function subnetsOf(template: Template, group: string): string[] {
  return Object.entries(template.findResources('AWS::EC2::Subnet'))
    .filter(([, subnet]) =>
      (subnet.Properties.Tags as Array<{ Key: string; Value: string }>).some(
        (tag) => tag.Key === 'aws-cdk:subnet-name' && tag.Value === group,
      ),
    )
    .map(([logicalId]) => logicalId)
    .sort();
}

/** The route table each subnet of `group` uses, by subnet. */
function routeTablesOf(template: Template, group: string): Map<string, string> {
  const associations = Object.values(template.findResources('AWS::EC2::SubnetRouteTableAssociation'));
  return new Map(
    subnetsOf(template, group).map((subnet) => {
      const association = associations.find((candidate) => candidate.Properties.SubnetId.Ref === subnet);
      expect(association, `route table of ${subnet}`).toBeDefined();
      return [subnet, association?.Properties.RouteTableId.Ref as string];
    }),
  );
}

/** The routes out of the VPC (to anywhere, `0.0.0.0/0`) of a route table. */
function defaultRoutesOf(template: Template, routeTable: string): Array<Record<string, unknown>> {
  return Object.values(template.findResources('AWS::EC2::Route'))
    .map((route) => route.Properties as Record<string, unknown>)
    .filter(
      (route) =>
        (route.RouteTableId as { Ref: string }).Ref === routeTable &&
        route.DestinationCidrBlock === '0.0.0.0/0',
    );
}

/** `s3`, `dynamodb`, … for each gateway endpoint, with the route tables it is added to. */
function gatewayEndpointsOf(template: Template): Array<{ service: string; routeTables: string[] }> {
  return Object.values(
    template.findResources('AWS::EC2::VPCEndpoint', { Properties: { VpcEndpointType: 'Gateway' } }),
  )
    .map((endpoint) => ({
      service:
        (JSON.stringify(endpoint.Properties.ServiceName).match(/\.([a-z0-9-]+)"\]\]\}$/) ?? [])[1] ?? '',
      routeTables: (endpoint.Properties.RouteTableIds as Array<{ Ref: string }>).map((ref) => ref.Ref).sort(),
    }))
    .sort((a, b) => a.service.localeCompare(b.service));
}

/** The interface endpoints' services (`secretsmanager`, `states`, `xray`, `rds`), sorted. */
function interfaceServicesOf(template: Template): string[] {
  return Object.values(
    template.findResources('AWS::EC2::VPCEndpoint', { Properties: { VpcEndpointType: 'Interface' } }),
  )
    .map(
      (endpoint) =>
        (JSON.stringify(endpoint.Properties.ServiceName).match(/\.([a-z0-9-]+)"\]\]\}$/) ?? [])[1] ?? '',
    )
    .sort();
}

function lambdaSecurityGroupIn(template: Template): { logicalId: string; resource: TemplateResource } {
  const logicalId = logicalIdOf(template, 'AWS::EC2::SecurityGroup', {
    GroupDescription: Match.stringLikeRegexp('^tenantflow Lambdas'),
  });
  const resource = template.findResources('AWS::EC2::SecurityGroup')[logicalId];
  if (resource === undefined) {
    throw new Error(`No security group ${logicalId}`);
  }
  return { logicalId, resource };
}

/** The Lambdas' egress rules to address ranges (rules to other security groups are left out). */
function lambdaCidrEgressIn(template: Template): Array<Record<string, unknown>> {
  const { logicalId, resource } = lambdaSecurityGroupIn(template);
  const separate = Object.values(
    template.findResources('AWS::EC2::SecurityGroupEgress', {
      Properties: { GroupId: { 'Fn::GetAtt': [logicalId, 'GroupId'] } },
    }),
  ).map((egress) => egress.Properties as Record<string, unknown>);
  const inline = (resource.Properties.SecurityGroupEgress ?? []) as Array<Record<string, unknown>>;
  return [...inline, ...separate].filter((rule) => rule.CidrIp !== undefined || rule.CidrIpv6 !== undefined);
}

describe('DataStack', () => {
  let prod: Synthesized;
  let dev: Synthesized;
  /** Tenant roles straight to the cluster: past the proxy's 200-secret limit. */
  let direct: Synthesized;

  beforeAll(() => {
    prod = synthesizeWithNag(dataStack, {
      stage: 'prod',
      backupRetentionDays: 21,
      databaseMinCapacity: 1,
      databaseMaxCapacity: 8,
      logRetentionDays: 90,
    });
    dev = synthesizeWithNag(dataStack, { stage: 'dev' });
    direct = synthesizeWithNag(dataStack, { stage: 'big', tenantDatabaseAccess: 'direct' });
  });

  afterAll(() => {
    for (const outdir of outdirs) {
      rmSync(outdir, { recursive: true, force: true });
    }
  });

  describe('cdk-nag AwsSolutions', () => {
    it('reports no unacknowledged errors or warnings for a prod stage', () => {
      expect(prod.findings).toEqual([]);
      expect(prod.synthError).toBeUndefined();
    });

    it('reports no unacknowledged errors or warnings with direct tenant database access', () => {
      expect(direct.findings).toEqual([]);
      expect(direct.synthError).toBeUndefined();
    });

    it('reports no unacknowledged errors or warnings for a dev stage', () => {
      expect(dev.findings).toEqual([]);
      expect(dev.synthError).toBeUndefined();
    });

    it('would report an unacknowledged finding (the check above can fail)', () => {
      // Prepare: a security group open to the world, which AwsSolutions-EC23 flags.
      const open = synthesizeWithNag((app) => {
        const stack = new Stack(app, 'Open');
        const vpc = new ec2.Vpc(stack, 'Vpc', { natGateways: 0, maxAzs: 1, subnetConfiguration: [] });
        new ec2.SecurityGroup(stack, 'Open', { vpc, description: 'open' }).addIngressRule(
          ec2.Peer.anyIpv4(),
          ec2.Port.tcp(5432),
        );
        return stack;
      });

      expect(open.findings).toContainEqual({
        rule: 'AwsSolutions-EC23',
        severity: 'error',
        path: 'Open/Open/Resource',
      });
      expect(open.synthError).toBeDefined();
    });
  });

  describe('Aurora cluster', () => {
    it('is Aurora PostgreSQL Serverless v2 with the configured capacity', () => {
      prod.template.hasResourceProperties('AWS::RDS::DBCluster', {
        Engine: 'aurora-postgresql',
        EngineVersion: Match.stringLikeRegexp('^1[67]\\.'),
        ServerlessV2ScalingConfiguration: { MinCapacity: 1, MaxCapacity: 8 },
        DatabaseName: 'tenantflow',
      });
      const { resource: writer } = onlyResource(dev.template, 'AWS::RDS::DBInstance');
      expect(writer.Properties).toMatchObject({
        DBInstanceClass: 'db.serverless',
        PubliclyAccessible: false,
      });
    });

    it('keeps a reader ready to take over in stages that keep data, and none in disposable ones', () => {
      const instances = Object.values(prod.template.findResources('AWS::RDS::DBInstance'));
      expect(instances).toHaveLength(2);
      for (const instance of instances) {
        expect(instance.Properties).toMatchObject({
          DBInstanceClass: 'db.serverless',
          PubliclyAccessible: false,
        });
      }
      // Promotion tiers 0 and 1 scale with the writer, so the reader can take its load at once.
      expect(instances.map((instance) => instance.Properties.PromotionTier ?? 0).sort()).toEqual([0, 1]);
      expect(Object.keys(dev.template.findResources('AWS::RDS::DBInstance'))).toHaveLength(1);
      expect(() => deploymentConfig(new App({ context: { databaseReaders: 1.5 } }).node)).toThrow(
        "CDK context 'databaseReaders' must be a whole number from 0 to 15 (got '1.5')",
      );
    });

    it('encrypts storage, enables IAM database auth and keeps backups for the configured days', () => {
      prod.template.hasResourceProperties('AWS::RDS::DBCluster', {
        StorageEncrypted: true,
        EnableIAMDatabaseAuthentication: true,
        BackupRetentionPeriod: 21,
      });
      dev.template.hasResourceProperties('AWS::RDS::DBCluster', { BackupRetentionPeriod: 7 });
    });

    it('is deletion-protected and retained on stack deletion in prod', () => {
      prod.template.hasResource('AWS::RDS::DBCluster', {
        Properties: Match.objectLike({ DeletionProtection: true }),
        DeletionPolicy: Match.stringLikeRegexp('^(Retain|Snapshot)$'),
        UpdateReplacePolicy: Match.stringLikeRegexp('^(Retain|Snapshot)$'),
      });
      prod.template.hasResource('AWS::SecretsManager::Secret', { DeletionPolicy: 'Retain' });
    });

    it('is unprotected and deleted with the stack in dev', () => {
      dev.template.hasResource('AWS::RDS::DBCluster', {
        Properties: Match.objectLike({ DeletionProtection: false }),
        DeletionPolicy: 'Delete',
      });
      dev.template.hasResource('AWS::RDS::DBInstance', { DeletionPolicy: 'Delete' });
    });

    it('lives in the database subnets and forces TLS on direct connections', () => {
      const { resource: subnetGroup } = onlyResource(prod.template, 'AWS::RDS::DBSubnetGroup');
      expect(new Set(subnetGroupsOf(prod.template, subnetGroup.Properties.SubnetIds))).toEqual(
        new Set(['database']),
      );
      prod.template.hasResourceProperties('AWS::RDS::DBClusterParameterGroup', {
        Parameters: { 'rds.force_ssl': '1' },
      });
    });

    it('bounds what a non-superuser cannot bound per role, server-wide: temporary files and idle transactions', () => {
      // Prepare
      const parameterGroup = onlyResource(prod.template, 'AWS::RDS::DBClusterParameterGroup');
      const cluster = onlyResource(prod.template, 'AWS::RDS::DBCluster').resource;

      // Assert: 5 GiB in kB, 10 minutes in ms, in the cluster's own group for Aurora PostgreSQL 17.
      expect(cluster.Properties.DBClusterParameterGroupName).toEqual({ Ref: parameterGroup.logicalId });
      expect(parameterGroup.resource.Properties.Family).toBe('aurora-postgresql17');
      expect(parameterGroup.resource.Properties.Parameters).toEqual({
        'rds.force_ssl': '1',
        temp_file_limit: String(5 * 1024 * 1024),
        idle_in_transaction_session_timeout: String(10 * 60 * 1000),
      });
      // Per role (and per privileged transaction) instead: migrations need longer than requests.
      expect(parameterGroup.resource.Properties.Parameters).not.toHaveProperty('statement_timeout');
      dev.template.hasResourceProperties('AWS::RDS::DBClusterParameterGroup', {
        Parameters: { temp_file_limit: '5242880', idle_in_transaction_session_timeout: '600000' },
      });
    });
  });

  describe('RDS Proxy', () => {
    it('is the only client of the cluster, besides the rotation Lambdas', () => {
      const cluster = onlyResource(prod.template, 'AWS::RDS::DBCluster').resource;
      const proxySecurityGroup = onlyResource(prod.template, 'AWS::RDS::DBProxy').resource.Properties
        .VpcSecurityGroupIds[0];
      const rotationSecurityGroups = Object.values(
        prod.template.findResources('AWS::Serverless::Application'),
      ).map((application) => application.Properties.Parameters.vpcSecurityGroupIds);
      expect(rotationSecurityGroups).toHaveLength(2);
      // Both rotation Lambdas (admin and platform) share one security group.
      expect(rotationSecurityGroups[1]).toEqual(rotationSecurityGroups[0]);
      const rotationSecurityGroup = rotationSecurityGroups[0];

      const sources = Object.values(
        prod.template.findResources('AWS::EC2::SecurityGroupIngress', {
          Properties: { GroupId: cluster.Properties.VpcSecurityGroupIds[0] },
        }),
      ).map((ingress) => ingress.Properties.SourceSecurityGroupId);

      expect(sources).toHaveLength(2);
      expect(sources).toEqual(expect.arrayContaining([proxySecurityGroup, rotationSecurityGroup]));
      const clusterSecurityGroupId = cluster.Properties.VpcSecurityGroupIds[0]['Fn::GetAtt'][0] as string;
      expect(
        prod.template.findResources('AWS::EC2::SecurityGroup')[clusterSecurityGroupId]?.Properties,
      ).not.toHaveProperty('SecurityGroupIngress');
    });

    it('requires TLS and admits exactly the admin and the platform logins, alike', () => {
      // Prepare
      const admin = secretNamed(prod.template, 'tenantflow/prod/admin');
      const platform = secretNamed(prod.template, 'tenantflow/prod/platform');
      const entry = (attachment: string) => ({
        AuthScheme: 'SECRETS',
        SecretArn: { Ref: attachment },
        IAMAuth: 'DISABLED',
        ClientPasswordAuthType: 'POSTGRES_SCRAM_SHA_256',
      });

      // Assert: tenant entries added at run time copy these settings, whichever entry comes first.
      prod.template.hasResourceProperties('AWS::RDS::DBProxy', {
        EngineFamily: 'POSTGRESQL',
        RequireTLS: true,
        Auth: [entry(admin.attachment), entry(platform.attachment)],
      });
    });

    it("reads exactly the admin and platform secrets, plus this stage's tenant secrets", () => {
      // Prepare
      const admin = secretNamed(prod.template, 'tenantflow/prod/admin');
      const platform = secretNamed(prod.template, 'tenantflow/prod/platform');
      const proxy = onlyResource(prod.template, 'AWS::RDS::DBProxy').resource;
      const proxyRole = (proxy.Properties.RoleArn as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
      const statements = Object.values(prod.template.findResources('AWS::IAM::Policy'))
        .filter((policy) =>
          (policy.Properties.Roles as Array<{ Ref: string }>).some((role) => role.Ref === proxyRole),
        )
        .flatMap((policy) => policy.Properties.PolicyDocument.Statement as Array<Record<string, unknown>>);

      // Assert
      const resources = statements.map((statement) => JSON.stringify(statement.Resource));
      expect(resources).toHaveLength(3);
      expect(resources).toEqual(
        expect.arrayContaining([
          JSON.stringify({ Ref: admin.attachment }),
          JSON.stringify({ Ref: platform.attachment }),
          expect.stringContaining(':secret:tenantflow/prod/tenants/*'),
        ]),
      );
      for (const statement of statements) {
        expect(statement.Action).toEqual(['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret']);
      }
    });

    it("lets the Lambdas' security group in on 5432", () => {
      const proxySecurityGroup = onlyResource(prod.template, 'AWS::RDS::DBProxy').resource.Properties
        .VpcSecurityGroupIds[0];
      const lambdaSecurityGroup = logicalIdOf(prod.template, 'AWS::EC2::SecurityGroup', {
        GroupDescription: Match.stringLikeRegexp('^tenantflow Lambdas'),
      });

      prod.template.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
        GroupId: proxySecurityGroup,
        SourceSecurityGroupId: { 'Fn::GetAtt': [lambdaSecurityGroup, 'GroupId'] },
        IpProtocol: 'tcp',
        FromPort: 5432,
        ToPort: 5432,
      });
    });
  });

  describe('tenant database access', () => {
    const lambdaSecurityGroupOf = (synthesized: Synthesized) =>
      logicalIdOf(synthesized.template, 'AWS::EC2::SecurityGroup', {
        GroupDescription: Match.stringLikeRegexp('^tenantflow Lambdas'),
      });
    const clusterIngressFromLambdas = (synthesized: Synthesized) => {
      const cluster = onlyResource(synthesized.template, 'AWS::RDS::DBCluster').resource;
      return Object.values(
        synthesized.template.findResources('AWS::EC2::SecurityGroupIngress', {
          Properties: {
            GroupId: cluster.Properties.VpcSecurityGroupIds[0],
            SourceSecurityGroupId: { 'Fn::GetAtt': [lambdaSecurityGroupOf(synthesized), 'GroupId'] },
          },
        }),
      );
    };
    const rdsApiEndpoints = (synthesized: Synthesized) =>
      Object.values(synthesized.template.findResources('AWS::EC2::VPCEndpoint')).filter((endpoint) =>
        JSON.stringify(endpoint.Properties.ServiceName).includes('.rds"'),
      );

    it('proxy (default): the Lambdas reach the RDS API through an endpoint, to keep the auth list, and never the cluster', () => {
      expect(deploymentConfig(new App().node).tenantDatabaseAccess).toBe('proxy');
      expect(rdsApiEndpoints(prod)).toHaveLength(1);
      expect(clusterIngressFromLambdas(prod)).toEqual([]);
    });

    it('direct: the Lambdas reach the cluster on its port, and there is no RDS API endpoint to pay for', () => {
      const [ingress, ...more] = clusterIngressFromLambdas(direct);
      expect(more).toEqual([]);
      const clusterPort = {
        'Fn::GetAtt': [onlyResource(direct.template, 'AWS::RDS::DBCluster').logicalId, 'Endpoint.Port'],
      };
      expect(ingress?.Properties).toMatchObject({
        IpProtocol: 'tcp',
        FromPort: clusterPort,
        ToPort: clusterPort,
      });
      expect(rdsApiEndpoints(direct)).toEqual([]);
    });

    it('refuses a mode it does not know, naming the ones it does', () => {
      expect(() => deploymentConfig(new App({ context: { tenantDatabaseAccess: 'iam' } }).node)).toThrow(
        "CDK context 'tenantDatabaseAccess' must be 'proxy' or 'direct' (got 'iam')",
      );
    });
  });

  describe('database secrets', () => {
    it('keeps the master user in the admin secret, tenantflow/<stage>/admin, and nothing else logs in as it', () => {
      // Prepare
      const admin = secretNamed(prod.template, 'tenantflow/prod/admin');
      const cluster = onlyResource(prod.template, 'AWS::RDS::DBCluster').resource;

      // Assert
      prod.template.hasResourceProperties('AWS::SecretsManager::Secret', {
        Name: 'tenantflow/prod/admin',
        GenerateSecretString: Match.objectLike({
          SecretStringTemplate: JSON.stringify({ username: 'tenantflow_admin', dbname: 'tenantflow' }),
          GenerateStringKey: 'password',
        }),
      });
      for (const field of ['MasterUsername', 'MasterUserPassword']) {
        expect(JSON.stringify(cluster.Properties[field])).toContain(JSON.stringify({ Ref: admin.secret }));
      }
      dev.template.hasResourceProperties('AWS::SecretsManager::Secret', { Name: 'tenantflow/dev/admin' });
    });

    it('has a platform secret of its own, tenantflow/<stage>/platform, for tenantflow_platform, attached to the cluster', () => {
      // Prepare
      const platform = secretNamed(prod.template, 'tenantflow/prod/platform');
      const cluster = onlyResource(prod.template, 'AWS::RDS::DBCluster');

      // Assert: an RDS-style secret, whose JSON gains the cluster's host, port and engine.
      prod.template.hasResourceProperties('AWS::SecretsManager::Secret', {
        Name: 'tenantflow/prod/platform',
        GenerateSecretString: Match.objectLike({
          SecretStringTemplate: JSON.stringify({ username: 'tenantflow_platform', dbname: 'tenantflow' }),
          GenerateStringKey: 'password',
        }),
      });
      prod.template.hasResourceProperties('AWS::SecretsManager::SecretTargetAttachment', {
        SecretId: { Ref: platform.secret },
        TargetId: { Ref: cluster.logicalId },
        TargetType: 'AWS::RDS::DBCluster',
      });
      expect(JSON.stringify(cluster.resource.Properties)).not.toContain(platform.secret);
      dev.template.hasResourceProperties('AWS::SecretsManager::Secret', { Name: 'tenantflow/dev/platform' });
    });

    it('retains both secrets with a cluster that is kept, and deletes them with a disposable one', () => {
      for (const name of ['tenantflow/prod/admin', 'tenantflow/prod/platform']) {
        prod.template.hasResource('AWS::SecretsManager::Secret', {
          Properties: Match.objectLike({ Name: name }),
          DeletionPolicy: 'Retain',
          UpdateReplacePolicy: 'Retain',
        });
      }
      for (const name of ['tenantflow/dev/admin', 'tenantflow/dev/platform']) {
        dev.template.hasResource('AWS::SecretsManager::Secret', {
          Properties: Match.objectLike({ Name: name }),
          DeletionPolicy: 'Delete',
        });
      }
    });

    it.each([
      ['admin', 'tenantflow/prod/admin'],
      ['platform', 'tenantflow/prod/platform'],
    ])('rotates the %s secret every 30 days, single-user, with a Lambda in the Lambda subnets', (_, name) => {
      // Prepare
      const { attachment } = secretNamed(prod.template, name);
      const rotation = rotationOf(prod.template, attachment);
      const mapping = (rotation.resource.Properties.Location.ApplicationId as { 'Fn::FindInMap': [string] })[
        'Fn::FindInMap'
      ][0];
      const subnetRefs = rotation.resource.Properties.Parameters.vpcSubnetIds['Fn::Join'][1].filter(
        (part: unknown) => typeof part === 'object',
      );

      // Assert: the secret's own role changes its own password; no other login is involved.
      prod.template.hasResourceProperties('AWS::SecretsManager::RotationSchedule', {
        SecretId: { Ref: attachment },
        RotationRules: { ScheduleExpression: 'rate(30 days)' },
      });
      expect(prod.template.toJSON().Mappings[mapping].aws.applicationId).toMatch(
        /applications\/SecretsManagerRDSPostgreSQLRotationSingleUser$/,
      );
      expect(rotation.resource.Properties.Parameters).not.toHaveProperty('masterSecretArn');
      expect(new Set(subnetGroupsOf(prod.template, subnetRefs))).toEqual(new Set(['lambdas']));
    });

    it('starts each rotation only once the Secrets Manager endpoint and the writer are up', () => {
      // Prepare
      const endpoint = Object.entries(prod.template.findResources('AWS::EC2::VPCEndpoint')).find(([, e]) =>
        JSON.stringify(e.Properties.ServiceName).includes('.secretsmanager'),
      )?.[0];
      // The writer's construct id is `Writer`; the readers' are `Reader<n>`.
      const writer = Object.keys(prod.template.findResources('AWS::RDS::DBInstance')).find((id) =>
        id.includes('Writer'),
      );
      expect(writer).toBeDefined();
      expect(endpoint).toBeDefined();

      // Assert
      for (const name of ['tenantflow/prod/admin', 'tenantflow/prod/platform']) {
        const rotation = rotationOf(prod.template, secretNamed(prod.template, name).attachment);
        expect(rotation.resource.DependsOn, name).toEqual(expect.arrayContaining([endpoint, writer]));
      }
    });

    it('lets the rotation Lambdas reach the Secrets Manager endpoint and the cluster', () => {
      const [rotationSecurityGroup] = Object.values(
        prod.template.findResources('AWS::Serverless::Application'),
      ).map((application) => application.Properties.Parameters.vpcSecurityGroupIds);
      const secretsManagerEndpoint = Object.values(prod.template.findResources('AWS::EC2::VPCEndpoint')).find(
        (e) => JSON.stringify(e.Properties.ServiceName).includes('.secretsmanager'),
      );
      const cluster = onlyResource(prod.template, 'AWS::RDS::DBCluster');

      prod.template.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
        GroupId: secretsManagerEndpoint?.Properties.SecurityGroupIds[0],
        SourceSecurityGroupId: rotationSecurityGroup,
        FromPort: 443,
      });
      prod.template.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
        GroupId: cluster.resource.Properties.VpcSecurityGroupIds[0],
        SourceSecurityGroupId: rotationSecurityGroup,
        FromPort: { 'Fn::GetAtt': [cluster.logicalId, 'Endpoint.Port'] },
      });
    });
  });

  describe('network', () => {
    it('has no NAT gateway or internet gateway', () => {
      prod.template.resourceCountIs('AWS::EC2::NatGateway', 0);
      prod.template.resourceCountIs('AWS::EC2::InternetGateway', 0);
    });

    it('logs all VPC traffic to CloudWatch Logs for the configured days', () => {
      const { resource: flowLog } = onlyResource(prod.template, 'AWS::EC2::FlowLog');
      expect(flowLog.Properties).toMatchObject({
        ResourceType: 'VPC',
        TrafficType: 'ALL',
        LogDestinationType: 'cloud-watch-logs',
      });
      const logGroupId = flowLog.Properties.LogGroupName.Ref as string;
      expect(prod.template.findResources('AWS::Logs::LogGroup')[logGroupId]?.Properties).toMatchObject({
        RetentionInDays: 90,
      });
    });

    it('has Secrets Manager, Step Functions, EventBridge Scheduler and X-Ray interface endpoints in the Lambda subnets', () => {
      const endpoints = Object.values(prod.template.findResources('AWS::EC2::VPCEndpoint'));

      expect(interfaceServicesOf(prod.template)).toEqual([
        'rds',
        'scheduler',
        'secretsmanager',
        'states',
        'xray',
      ]);
      expect(interfaceServicesOf(direct.template)).toEqual(['scheduler', 'secretsmanager', 'states', 'xray']);
      for (const endpoint of endpoints) {
        expect(endpoint.Properties).toMatchObject({ VpcEndpointType: 'Interface', PrivateDnsEnabled: true });
        expect(new Set(subnetGroupsOf(prod.template, endpoint.Properties.SubnetIds))).toEqual(
          new Set(['lambdas']),
        );
      }
    });

    it('lets the Lambdas send their own trace segments: into the X-Ray endpoint on 443, like the other endpoints, and no one else', () => {
      // Prepare: the functions' SDK and Powertools subsegments go through the function's network
      // interface, which in the default network has no other way to X-Ray.
      const xray = Object.values(prod.template.findResources('AWS::EC2::VPCEndpoint')).find((endpoint) =>
        JSON.stringify(endpoint.Properties.ServiceName).endsWith('.xray"]]}'),
      );
      const xraySecurityGroup = xray?.Properties.SecurityGroupIds[0] as { 'Fn::GetAtt': [string, string] };
      const lambdas = lambdaSecurityGroupIn(prod.template).logicalId;

      // Act
      const ingress = Object.values(
        prod.template.findResources('AWS::EC2::SecurityGroupIngress', {
          Properties: { GroupId: xraySecurityGroup },
        }),
      ).map((rule) => rule.Properties);

      // Assert
      expect(ingress).toEqual([
        expect.objectContaining({
          SourceSecurityGroupId: { 'Fn::GetAtt': [lambdas, 'GroupId'] },
          IpProtocol: 'tcp',
          FromPort: 443,
          ToPort: 443,
        }),
      ]);
      expect(
        prod.template.findResources('AWS::EC2::SecurityGroup')[xraySecurityGroup['Fn::GetAtt'][0]]
          ?.Properties,
      ).not.toHaveProperty('SecurityGroupIngress');
    });
  });

  describe('egress', () => {
    /** Synthesized once per mode, besides the default (`dev`: `none`, no gateway endpoint). */
    let natOne: Synthesized;
    let natPerAz: Synthesized;
    let gatewayOnly: Synthesized;

    beforeAll(() => {
      // As `-c` gives them: text, comma-separated lists.
      natOne = synthesizeWithNag(dataStack, { stage: 'dev', egress: 'nat-one', gatewayEndpoints: 's3' });
      // As `cdk.json` gives them: JSON values.
      natPerAz = synthesizeWithNag(dataStack, {
        stage: 'prod',
        egress: 'nat-per-az',
        gatewayEndpoints: ['s3', 'dynamodb'],
      });
      gatewayOnly = synthesizeWithNag(dataStack, { stage: 'dev', gatewayEndpoints: 'dynamodb' });
    });

    const modes = () =>
      [
        ['none', dev],
        ['none with a DynamoDB gateway endpoint', gatewayOnly],
        ['nat-one with an S3 gateway endpoint', natOne],
        ['nat-per-az with S3 and DynamoDB gateway endpoints', natPerAz],
      ] as const;

    it('is none, with no gateway endpoint, unless asked for', () => {
      const config = deploymentConfig(new App().node);
      expect(config.egress).toBe('none');
      expect(config.gatewayEndpoints).toEqual([]);
      expect(deploymentConfig(new App({ context: { gatewayEndpoints: '' } }).node).gatewayEndpoints).toEqual(
        [],
      );
      expect(
        deploymentConfig(new App({ context: { gatewayEndpoints: ' dynamodb , s3' } }).node).gatewayEndpoints,
      ).toEqual(['dynamodb', 's3']);
    });

    it.each([
      [{ egress: 'nat' }, "CDK context 'egress' must be 'none', 'nat-one' or 'nat-per-az' (got 'nat')"],
      [{ egress: true }, "CDK context 'egress' must be 'none', 'nat-one' or 'nat-per-az' (got 'true')"],
      [
        { gatewayEndpoints: 's3,sqs' },
        "CDK context 'gatewayEndpoints' must list values among 's3' or 'dynamodb', each at most once, as a JSON array or comma-separated (got 's3,sqs')",
      ],
      [
        { gatewayEndpoints: ['s3', 's3'] },
        "CDK context 'gatewayEndpoints' must list values among 's3' or 'dynamodb', each at most once, as a JSON array or comma-separated (got '[\"s3\",\"s3\"]')",
      ],
      [
        { gatewayEndpoints: 3 },
        "CDK context 'gatewayEndpoints' must list values among 's3' or 'dynamodb', each at most once, as a JSON array or comma-separated (got '3')",
      ],
    ])('fails synthesis on %j, naming what it accepts', (context, message) => {
      expect(() => deploymentConfig(new App({ context }).node)).toThrow(message);
    });

    it('reports no unacknowledged cdk-nag errors or warnings in any mode', () => {
      for (const [mode, synthesized] of modes()) {
        expect(synthesized.findings, mode).toEqual([]);
        expect(synthesized.synthError, mode).toBeUndefined();
      }
    });

    it("none: no route out of the VPC, no NAT or internet gateway, and no address range in the Lambdas' egress rules", () => {
      for (const group of ['database', 'lambdas']) {
        for (const routeTable of routeTablesOf(dev.template, group).values()) {
          expect(defaultRoutesOf(dev.template, routeTable), group).toEqual([]);
        }
      }
      expect(subnetsOf(dev.template, 'public')).toEqual([]);
      dev.template.resourceCountIs('AWS::EC2::NatGateway', 0);
      dev.template.resourceCountIs('AWS::EC2::InternetGateway', 0);
      expect(gatewayEndpointsOf(dev.template)).toEqual([]);
      expect(lambdaCidrEgressIn(dev.template)).toEqual([]);
    });

    it('none with a gateway endpoint: routed from the Lambda subnets only, reached over HTTPS, and still no NAT', () => {
      const lambdaRouteTables = [...routeTablesOf(gatewayOnly.template, 'lambdas').values()].sort();

      expect(gatewayEndpointsOf(gatewayOnly.template)).toEqual([
        { service: 'dynamodb', routeTables: lambdaRouteTables },
      ]);
      for (const routeTable of [
        ...routeTablesOf(gatewayOnly.template, 'database').values(),
        ...lambdaRouteTables,
      ]) {
        expect(defaultRoutesOf(gatewayOnly.template, routeTable)).toEqual([]);
      }
      gatewayOnly.template.resourceCountIs('AWS::EC2::NatGateway', 0);
      gatewayOnly.template.resourceCountIs('AWS::EC2::InternetGateway', 0);
      expect(lambdaCidrEgressIn(gatewayOnly.template)).toEqual([
        expect.objectContaining({ CidrIp: '0.0.0.0/0', IpProtocol: 'tcp', FromPort: 443, ToPort: 443 }),
      ]);
      expect(lambdaSecurityGroupIn(gatewayOnly.template).resource.Properties.SecurityGroupEgress).toEqual([
        expect.objectContaining({ CidrIp: '0.0.0.0/0', FromPort: 443, ToPort: 443 }),
      ]);
    });

    it.each([
      ['nat-one', () => natOne, 1, ['s3']],
      ['nat-per-az', () => natPerAz, 2, ['dynamodb', 's3']],
    ] as const)(
      '%s: the Lambda subnets route 0.0.0.0/0 through the NAT gateways, and only HTTPS goes out',
      (_, of, natGateways, gateways) => {
        // Prepare
        const { template } = of();
        const nats = template.findResources('AWS::EC2::NatGateway');
        const publicSubnets = subnetsOf(template, 'public');
        const subnets = template.findResources('AWS::EC2::Subnet');
        const azOf = (subnet: string) => JSON.stringify(subnets[subnet]?.Properties.AvailabilityZone);
        const lambdaRouteTables = routeTablesOf(template, 'lambdas');

        // Assert: the gateways sit in the public subnets, which give no address to what starts there.
        expect(Object.keys(nats)).toHaveLength(natGateways);
        for (const nat of Object.values(nats)) {
          expect(publicSubnets).toContain(nat.Properties.SubnetId.Ref);
        }
        for (const subnet of publicSubnets) {
          expect(subnets[subnet]?.Properties.MapPublicIpOnLaunch).toBe(false);
        }
        template.resourceCountIs('AWS::EC2::InternetGateway', 1);
        // Each Lambda subnet leaves through a NAT gateway: with one per AZ, the one in its own AZ.
        for (const [subnet, routeTable] of lambdaRouteTables) {
          const [route, ...more] = defaultRoutesOf(template, routeTable);
          expect(more).toEqual([]);
          const nat = (route?.NatGatewayId as { Ref: string } | undefined)?.Ref ?? '';
          expect(Object.keys(nats)).toContain(nat);
          if (natGateways > 1) {
            expect(azOf(nats[nat]?.Properties.SubnetId.Ref)).toBe(azOf(subnet));
          }
        }
        // …and every gateway serves a Lambda subnet: with one per AZ, none is paid for and idle.
        const used = [...lambdaRouteTables.values()].map(
          (table) => (defaultRoutesOf(template, table)[0]?.NatGatewayId as { Ref: string } | undefined)?.Ref,
        );
        expect(new Set(used).size).toBe(natGateways);
        // The gateway endpoints are routed from the Lambda subnets only.
        expect(gatewayEndpointsOf(template)).toEqual(
          gateways.map((service) => ({ service, routeTables: [...lambdaRouteTables.values()].sort() })),
        );
        expect(lambdaCidrEgressIn(template)).toEqual([
          expect.objectContaining({ CidrIp: '0.0.0.0/0', IpProtocol: 'tcp', FromPort: 443, ToPort: 443 }),
        ]);
        // Written in the group itself: CloudFormation then drops its default allow-all egress rule.
        expect(lambdaSecurityGroupIn(template).resource.Properties.SecurityGroupEgress).toEqual([
          expect.objectContaining({ CidrIp: '0.0.0.0/0', FromPort: 443, ToPort: 443 }),
        ]);
      },
    );

    it('keeps the database subnets isolated in every mode: no route out, no gateway endpoint', () => {
      for (const [mode, { template }] of modes()) {
        const databaseRouteTables = [...routeTablesOf(template, 'database').values()];
        expect(databaseRouteTables, mode).toHaveLength(2);
        for (const routeTable of databaseRouteTables) {
          expect(defaultRoutesOf(template, routeTable), mode).toEqual([]);
          for (const endpoint of gatewayEndpointsOf(template)) {
            expect(endpoint.routeTables, mode).not.toContain(routeTable);
          }
        }
        const { resource: subnetGroup } = onlyResource(template, 'AWS::RDS::DBSubnetGroup');
        expect(new Set(subnetGroupsOf(template, subnetGroup.Properties.SubnetIds)), mode).toEqual(
          new Set(['database']),
        );
      }
    });

    it('keeps the same database and Lambda subnets (ids and address ranges) in every mode, so switching modes replaces neither', () => {
      const rangesOf = (template: Template) =>
        Object.fromEntries(
          [...subnetsOf(template, 'database'), ...subnetsOf(template, 'lambdas')].map((subnet) => [
            subnet,
            template.findResources('AWS::EC2::Subnet')[subnet]?.Properties.CidrBlock,
          ]),
        );
      const today = rangesOf(dev.template);

      expect(Object.keys(today)).toHaveLength(4);
      for (const [mode, { template }] of modes()) {
        expect(rangesOf(template), mode).toEqual(today);
      }
    });

    it('keeps the same interface endpoints, X-Ray included, in every mode', () => {
      for (const [mode, { template }] of modes()) {
        expect(interfaceServicesOf(template), mode).toEqual([
          'rds',
          'scheduler',
          'secretsmanager',
          'states',
          'xray',
        ]);
      }
    });
  });

  it('outputs the proxy endpoint, the admin and platform secret ARNs and the cluster endpoint', () => {
    prod.template.hasOutput('ProxyEndpoint', { Value: { 'Fn::GetAtt': [Match.anyValue(), 'Endpoint'] } });
    prod.template.hasOutput('AdminSecretArn', {
      Value: { Ref: secretNamed(prod.template, 'tenantflow/prod/admin').attachment },
    });
    prod.template.hasOutput('PlatformSecretArn', {
      Value: { Ref: secretNamed(prod.template, 'tenantflow/prod/platform').attachment },
    });
    prod.template.hasOutput('ClusterEndpoint', {
      Value: { 'Fn::GetAtt': [Match.anyValue(), 'Endpoint.Address'] },
    });
  });
});
