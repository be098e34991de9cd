import { ArnFormat, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { retentionDays } from './network.js';

/** The port RDS Proxy listens on for PostgreSQL; it cannot be changed. */
export const POSTGRES_PORT = 5432;

export interface PlatformDatabaseProps {
  readonly vpc: ec2.IVpc;
  /** Where the cluster and RDS Proxy live. */
  readonly databaseSubnets: ec2.SubnetSelection;
  /** Where the secret rotation Lambda runs: subnets that reach the Secrets Manager endpoint. */
  readonly rotationSubnets: ec2.SubnetSelection;
  /** The Secrets Manager interface endpoint the rotation Lambda calls (the VPC has no NAT). */
  readonly secretsManagerEndpoint: ec2.IInterfaceVpcEndpoint;
  /** Part of the cluster identifier, the secret names and the log group. */
  readonly stage: string;
  /** Deletion protection on, and the cluster, its secret and logs retained when the stack goes. */
  readonly protectData: boolean;
  /** Aurora Serverless v2 capacity, in ACUs. */
  readonly minCapacity: number;
  readonly maxCapacity: number;
  readonly backupRetentionDays: number;
  readonly logRetentionDays: number;
  /**
   * Serverless v2 readers beside the writer. Each scales with the writer and stands ready to take
   * over from it (RDS Proxy follows the failover), so a writer or AZ failure costs a failover,
   * not the database. tenantflow sends no reads to them.
   * @default 0
   */
  readonly readers?: number;
  /**
   * The database created in the cluster, and written into the platform secret as `dbname`.
   * @default 'tenantflow'
   */
  readonly databaseName?: string;
  /**
   * The cluster's master user, whose credentials are the platform secret.
   * @default 'tenantflow_admin'
   */
  readonly masterUsername?: string;
  /**
   * Days between automatic rotations of the platform secret.
   * @default 30
   */
  readonly rotationDays?: number;
  /**
   * The engine version. Keep its major in step with the embedded PostgreSQL the tests run on.
   * @default Aurora PostgreSQL 17.7
   */
  readonly engineVersion?: rds.AuroraPostgresEngineVersion;
}

/**
 * Aurora PostgreSQL Serverless v2 behind an RDS Proxy that requires TLS, with the platform
 * (master) credentials in Secrets Manager under `tenantflow/<stage>/platform`, rotated by the
 * single-user rotation Lambda inside the VPC.
 *
 * Applications reach the database through the proxy: {@link PlatformDatabase.allowClientFrom}
 * opens the proxy's port to a caller. The cluster itself accepts the proxy and the rotation Lambda
 * only, unless {@link PlatformDatabase.allowDirectClientFrom} lets a caller in (tenant roles in
 * `direct` tenant database access).
 */
export class PlatformDatabase extends Construct {
  readonly cluster: rds.DatabaseCluster;
  readonly proxy: rds.DatabaseProxy;
  /** The platform/admin credentials, attached to the cluster (host, port, engine, dbname, username, password). */
  readonly secret: secretsmanager.ISecret;
  readonly databaseName: string;

  constructor(scope: Construct, id: string, props: PlatformDatabaseProps) {
    super(scope, id);
    this.databaseName = props.databaseName ?? 'tenantflow';
    const stage = props.stage;
    const removalPolicy = props.protectData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
    const clusterIdentifier = `tenantflow-${stage}`;

    const masterSecret = new rds.DatabaseSecret(this, 'PlatformSecret', {
      secretName: `tenantflow/${stage}/platform`,
      username: props.masterUsername ?? 'tenantflow_admin',
      dbname: this.databaseName,
    });
    // A retained cluster without its master password can only be recovered by resetting it.
    masterSecret.applyRemovalPolicy(removalPolicy);

    // Created here rather than through `cloudwatchLogsRetention`, which would add a LogRetention
    // custom-resource Lambda to the stack just to set the retention of a log group RDS creates.
    const postgresLogs = new logs.LogGroup(this, 'PostgresLogs', {
      logGroupName: `/aws/rds/cluster/${clusterIdentifier}/postgresql`,
      retention: retentionDays(props.logRetentionDays),
      removalPolicy,
    });

    const clusterSecurityGroup = new ec2.SecurityGroup(this, 'ClusterSecurityGroup', {
      vpc: props.vpc,
      description: `Aurora cluster ${clusterIdentifier}: PostgreSQL from RDS Proxy and the secret rotation Lambda only`,
      allowAllOutbound: false,
    });

    this.cluster = new rds.DatabaseCluster(this, 'Cluster', {
      engine: rds.DatabaseClusterEngine.auroraPostgres({
        version: props.engineVersion ?? rds.AuroraPostgresEngineVersion.VER_17_7,
      }),
      // A physical name also makes CloudFormation refuse a change that would replace the
      // cluster (and so start an empty database) instead of silently doing it.
      clusterIdentifier,
      credentials: rds.Credentials.fromSecret(masterSecret),
      defaultDatabaseName: this.databaseName,
      writer: rds.ClusterInstance.serverlessV2('Writer', {
        publiclyAccessible: false,
        autoMinorVersionUpgrade: true,
      }),
      // Readers in the first promotion tier scale with the writer, so one can take over at once.
      readers: Array.from({ length: props.readers ?? 0 }, (_, index) =>
        rds.ClusterInstance.serverlessV2(`Reader${index + 1}`, {
          publiclyAccessible: false,
          autoMinorVersionUpgrade: true,
          scaleWithWriter: true,
        }),
      ),
      serverlessV2MinCapacity: props.minCapacity,
      serverlessV2MaxCapacity: props.maxCapacity,
      vpc: props.vpc,
      vpcSubnets: props.databaseSubnets,
      securityGroups: [clusterSecurityGroup],
      port: POSTGRES_PORT,
      storageEncrypted: true,
      iamAuthentication: true,
      // Connections that bypass the proxy (migrations, rotation) must use TLS as well.
      parameters: { 'rds.force_ssl': '1' },
      cloudwatchLogsExports: ['postgresql'],
      backup: { retention: Duration.days(props.backupRetentionDays) },
      copyTagsToSnapshot: true,
      deletionProtection: props.protectData,
      removalPolicy,
    });
    // `secret` is the attachment: the stored JSON gains the cluster's host, port and engine.
    const attachedSecret = this.cluster.secret;
    if (attachedSecret === undefined) {
      throw new Error('The Aurora cluster has no attached secret');
    }
    this.secret = attachedSecret;

    const clusterResource = this.cluster.node.defaultChild as rds.CfnDBCluster;
    // Otherwise RDS may create the log group first, without retention, and the stack then fails.
    clusterResource.node.addDependency(postgresLogs);
    if (!props.protectData) {
      Validations.of(clusterResource).acknowledge({
        id: 'AwsSolutions-RDS10',
        reason:
          'Deletion protection is on for stages that keep data (protectData, e.g. prod); this stage is disposable and must be deletable with its stack.',
      });
    }

    this.proxy = this.createProxy(props, clusterIdentifier);
    this.addRotation(props);
  }

  /** Lets `client` open connections to the RDS Proxy (PostgreSQL over TLS). */
  allowClientFrom(client: ec2.IConnectable, description: string): void {
    // `allowDefaultPortFrom` throws for DatabaseProxy: its Connections carry no default port.
    this.proxy.connections.allowFrom(client, ec2.Port.tcp(POSTGRES_PORT), description);
  }

  /**
   * Lets `client` connect to the Aurora writer itself, bypassing the proxy: tenant roles in
   * `direct` tenant database access. The cluster insists on TLS (`rds.force_ssl`).
   */
  allowDirectClientFrom(client: ec2.IConnectable, description: string): void {
    this.cluster.connections.allowDefaultPortFrom(client, description);
  }

  private createProxy(props: PlatformDatabaseProps, clusterIdentifier: string): rds.DatabaseProxy {
    const proxySecurityGroup = new ec2.SecurityGroup(this, 'ProxySecurityGroup', {
      vpc: props.vpc,
      description: `RDS Proxy for ${clusterIdentifier}: PostgreSQL from the Lambdas, out to the cluster only`,
      allowAllOutbound: false,
    });
    const proxyRole = new iam.Role(this, 'ProxyRole', {
      assumedBy: new iam.ServicePrincipal('rds.amazonaws.com'),
      description: `RDS Proxy for ${clusterIdentifier}: reads the database credentials it logs in with`,
    });
    const proxy = this.cluster.addProxy('Proxy', {
      dbProxyName: `${clusterIdentifier}-proxy`,
      secrets: [this.secret],
      vpc: props.vpc,
      vpcSubnets: props.databaseSubnets,
      securityGroups: [proxySecurityGroup],
      role: proxyRole,
      requireTLS: true,
      iamAuth: false,
      clientPasswordAuthType: rds.ClientPasswordAuthType.POSTGRES_SCRAM_SHA_256,
      // Lambda pools close idle connections well before this (DESIGN: idle timeout below the proxy's).
      idleClientTimeout: Duration.minutes(30),
      debugLogging: false,
    });
    this.cluster.connections.allowDefaultPortFrom(proxy, 'RDS Proxy to the cluster');

    // Tenant roles log in through the same proxy with their own secrets, which provisioning adds
    // to the proxy's auth list at run time (DESIGN, isolation rule 6). The proxy can only use a
    // secret it can read, and the tenants are not known when this stack deploys.
    const tenantSecrets = Stack.of(this).formatArn({
      service: 'secretsmanager',
      resource: 'secret',
      resourceName: `tenantflow/${props.stage}/tenants/*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    const tenantSecretAccess = new iam.Policy(this, 'ProxyTenantSecretAccess', {
      roles: [proxyRole],
      statements: [
        new iam.PolicyStatement({
          actions: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
          resources: [tenantSecrets],
        }),
      ],
    });
    Validations.of(tenantSecretAccess).acknowledge({
      id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:tenantflow/${props.stage}/tenants/*]`,
      reason:
        "RDS Proxy must read each tenant's login secret, and tenants are provisioned at run time; the wildcard is bounded to this stage's tenant-secret prefix (tenantflow/<stage>/tenants/) and to read actions.",
    });
    return proxy;
  }

  private addRotation(props: PlatformDatabaseProps): void {
    // The rotation Lambda (from the Serverless Application Repository) needs exactly two paths in
    // a VPC with no NAT: HTTPS to the Secrets Manager endpoint, and PostgreSQL to the cluster.
    const rotationSecurityGroup = new ec2.SecurityGroup(this, 'RotationSecurityGroup', {
      vpc: props.vpc,
      description: 'Platform secret rotation Lambda: Secrets Manager endpoint and the Aurora cluster only',
      allowAllOutbound: false,
    });
    props.secretsManagerEndpoint.connections.allowFrom(
      rotationSecurityGroup,
      ec2.Port.tcp(443),
      'Platform secret rotation Lambda to Secrets Manager',
    );
    // addRotationSingleUser also opens the cluster's port to this security group. No `endpoint`:
    // the interface endpoint has private DNS, so the standard Secrets Manager hostname already
    // resolves to it inside the VPC.
    const rotation = this.cluster.addRotationSingleUser({
      automaticallyAfter: Duration.days(props.rotationDays ?? 30),
      vpcSubnets: props.rotationSubnets,
      securityGroup: rotationSecurityGroup,
    });
    // The first rotation runs as soon as the schedule exists: by then the endpoint must be up
    // and the writer must accept connections (the secret attachment only waits for the cluster).
    rotation.node.addDependency(props.secretsManagerEndpoint);
    const writer = this.cluster.node.tryFindChild('Writer');
    if (writer !== undefined) {
      rotation.node.addDependency(writer);
    }
  }
}
