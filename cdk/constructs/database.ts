import { ArnFormat, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { retentionDays } from './log-retention.js';

/** The port RDS Proxy listens on for PostgreSQL; it cannot be changed. */
export const POSTGRES_PORT = 5432;

/**
 * Characters kept out of generated and rotated passwords: CDK's default for RDS secrets, which
 * `addRotationSingleUser` also hands the master secret's rotation. Given explicitly to the platform
 * secret's rotation so both logins' passwords keep the same alphabet after their first rotation.
 */
const PASSWORD_EXCLUDE_CHARACTERS = ' %+~`#$&*()|[]{}:;<>?!\'/@"\\';

/**
 * Server-wide settings of the cluster (its DB cluster parameter group), for every session:
 * - `rds.force_ssl`: connections that bypass the proxy (rotation, `direct` tenant roles) use TLS too.
 * - `temp_file_limit` (kB): one session's temporary files (sorts and hashes that spill) stop at
 *   5 GiB, so a tenant's query cannot fill the instance's local storage that every tenant shares.
 *   Only a superuser may set it per role or session, and the admin role is not one on Aurora, so
 *   this is the only place it can be set, and no tenant role can lift it.
 * - `idle_in_transaction_session_timeout` (ms): a session that opened a transaction and went quiet
 *   for 10 minutes is ended, releasing its locks and its snapshot. A default only: roles get their
 *   own (shorter) one, and any session may change it, so it catches forgotten transactions, not
 *   hostile ones (the task runner's timeout closes a tenant's connection).
 *
 * `statement_timeout` is deliberately not set here: it is set per role (and per privileged
 * transaction), because migrations and provisioning need longer than a request does.
 */
export const CLUSTER_PARAMETERS: Readonly<Record<string, string>> = {
  'rds.force_ssl': '1',
  temp_file_limit: String(5 * 1024 * 1024),
  idle_in_transaction_session_timeout: String(10 * 60 * 1000),
};

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
   * The database created in the cluster, and written into both secrets as `dbname`.
   * @default 'tenantflow'
   */
  readonly databaseName?: string;
  /**
   * The cluster's master user: the admin role (CREATEROLE, CREATEDB, not a superuser on Aurora),
   * whose credentials are the admin secret.
   * @default 'tenantflow_admin'
   */
  readonly masterUsername?: string;
  /**
   * The platform role's login name, in the platform secret. The role itself is created in the
   * database by the migrate function, with the admin login and this secret's password.
   * @default 'tenantflow_platform'
   */
  readonly platformUsername?: string;
  /**
   * Days between automatic rotations of the admin and the platform secrets.
   * @default 30
   */
  readonly rotationDays?: number;
  /**
   * The engine version. Keep its major in step with the embedded PostgreSQL the tests run on.
   * @default Aurora PostgreSQL 17.7
   */
  readonly engineVersion?: rds.AuroraPostgresEngineVersion;
  /**
   * The RDS Proxy's tags, and the only ones it gets: tags applied around it (`Tags.of(app)`) are
   * left off it, because any change to them would reset its auth list (see the proxy's comment).
   * Give values that never change for the stage.
   * @default no tags
   */
  readonly proxyTags?: Readonly<Record<string, string>>;
}

/**
 * Aurora PostgreSQL Serverless v2 behind an RDS Proxy that requires TLS, with two logins in Secrets
 * Manager, each rotated every 30 days by a single-user rotation Lambda inside the VPC (a role may
 * change its own password):
 * - the **admin** secret `tenantflow/<stage>/admin`: the cluster's master user, for DDL only
 *   (provisioning, deprovisioning, migrations);
 * - the **platform** secret `tenantflow/<stage>/platform`: the least-privileged role every request
 *   runs as (`tenantflow_platform`, created in the database by the migrate function).
 *
 * Both are on the proxy's auth list, and both are attached to the cluster, so their JSON carries
 * the cluster's host, port, engine and database like any RDS secret.
 *
 * Applications reach the database through the proxy: {@link PlatformDatabase.allowClientFrom}
 * opens the proxy's port to a caller. The cluster itself accepts the proxy and the rotation Lambda
 * only, unless {@link PlatformDatabase.allowDirectClientFrom} lets a caller in (tenant roles in
 * `direct` tenant database access).
 */
export class PlatformDatabase extends Construct {
  readonly cluster: rds.DatabaseCluster;
  readonly proxy: rds.DatabaseProxy;
  /**
   * The admin (master user) credentials, attached to the cluster (host, port, engine, dbname,
   * username, password). Only the functions that run DDL may read it.
   */
  readonly adminSecret: secretsmanager.ISecret;
  /** The platform role's credentials, attached to the cluster like the admin secret. Every function reads it. */
  readonly platformSecret: secretsmanager.ISecret;
  readonly databaseName: string;

  constructor(scope: Construct, id: string, props: PlatformDatabaseProps) {
    super(scope, id);
    this.databaseName = props.databaseName ?? 'tenantflow';
    const stage = props.stage;
    const removalPolicy = props.protectData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
    const clusterIdentifier = `tenantflow-${stage}`;

    const masterSecret = new rds.DatabaseSecret(this, 'AdminSecret', {
      secretName: `tenantflow/${stage}/admin`,
      username: props.masterUsername ?? 'tenantflow_admin',
      dbname: this.databaseName,
    });
    // A retained cluster without its master password can only be recovered by resetting it.
    masterSecret.applyRemovalPolicy(removalPolicy);
    const platformSecret = new rds.DatabaseSecret(this, 'PlatformSecret', {
      secretName: `tenantflow/${stage}/platform`,
      username: props.platformUsername ?? 'tenantflow_platform',
      dbname: this.databaseName,
      excludeCharacters: PASSWORD_EXCLUDE_CHARACTERS,
    });
    // Kept with the cluster it logs in to, like the admin secret.
    platformSecret.applyRemovalPolicy(removalPolicy);

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

    const engine = rds.DatabaseClusterEngine.auroraPostgres({
      version: props.engineVersion ?? rds.AuroraPostgresEngineVersion.VER_17_7,
    });
    const parameterGroup = new rds.ParameterGroup(this, 'ClusterParameters', {
      engine,
      description: `Aurora cluster ${clusterIdentifier}: TLS forced, temporary files and idle transactions bounded per session`,
      parameters: { ...CLUSTER_PARAMETERS },
    });

    this.cluster = new rds.DatabaseCluster(this, 'Cluster', {
      engine,
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
      parameterGroup,
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
    this.adminSecret = attachedSecret;
    // The same for the platform login, which the cluster does not know about: only the JSON gains
    // the cluster's endpoint, for the rotation Lambda and for operators.
    this.platformSecret = platformSecret.attach(this.cluster);

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
    // Both logins go through the proxy: the platform pools, and the admin's dedicated DDL
    // connections. Tenant entries added at run time copy these entries' settings. Every value here
    // is a constant: a change to any of them updates the proxy, which resets its auth list (below).
    const proxy = this.cluster.addProxy('Proxy', {
      dbProxyName: `${clusterIdentifier}-proxy`,
      secrets: [this.adminSecret, this.platformSecret],
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
    // CloudFormation's RDS Proxy handler sends the template's whole `Auth` list (the two secrets
    // above) with EVERY update of this resource, not only a change to `Auth`: a changed tag, idle
    // timeout, logging setting or security group also writes it over the live list, and drops
    // every tenant's entry (provisioning adds them at run time). So nothing that changes from one
    // deployment to the next may reach it: its properties are this construct's constants, its
    // security group is its own (the subnets are the database subnets, which no setting changes),
    // and its tags are pinned here to `proxyTags`, whatever `Tags.of(app)` or a later aspect adds.
    // The data stack's own (stack-level) tags reach it too, since CloudFormation propagates them,
    // so the app tags stacks with fixed values only. The updates that still happen are repaired by
    // recovery, on each deployment (`ProxyLoginReconciliation`) and every 5 minutes.
    const proxyResource = proxy.node.defaultChild as rds.CfnDBProxy;
    const proxyTags = Object.entries(props.proxyTags ?? {})
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([key, value]) => ({ Key: key, Value: value }));
    if (proxyTags.length === 0) {
      proxyResource.addPropertyDeletionOverride('Tags');
    } else {
      proxyResource.addPropertyOverride('Tags', proxyTags);
    }

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
    // The rotation Lambdas (from the Serverless Application Repository) need exactly two paths in
    // a VPC with no NAT: HTTPS to the Secrets Manager endpoint, and PostgreSQL to the cluster. Both
    // (admin and platform) need the same two, so they share one security group.
    const rotationSecurityGroup = new ec2.SecurityGroup(this, 'RotationSecurityGroup', {
      vpc: props.vpc,
      description:
        'Admin and platform secret rotation Lambdas: Secrets Manager endpoint and the Aurora cluster only',
      allowAllOutbound: false,
    });
    props.secretsManagerEndpoint.connections.allowFrom(
      rotationSecurityGroup,
      ec2.Port.tcp(443),
      'Secret rotation Lambdas to Secrets Manager',
    );
    const automaticallyAfter = Duration.days(props.rotationDays ?? 30);
    // addRotationSingleUser (and SecretRotation) also open the cluster's port to this security
    // group. No `endpoint`: the interface endpoint has private DNS, so the standard Secrets Manager
    // hostname already resolves to it inside the VPC.
    const adminRotation = this.cluster.addRotationSingleUser({
      automaticallyAfter,
      vpcSubnets: props.rotationSubnets,
      securityGroup: rotationSecurityGroup,
    });
    // Single-user as well: the platform role changes its own password (a role may ALTER ROLE
    // itself), so the platform's rotation never holds the admin login. The role is created by the
    // migrate function in the PlatformStack, after this stack: a rotation that starts before it
    // exists cannot log in and stays pending until Secrets Manager reattempts it.
    const platformRotation = new secretsmanager.SecretRotation(this, 'PlatformSecretRotation', {
      application: secretsmanager.SecretRotationApplication.POSTGRES_ROTATION_SINGLE_USER,
      secret: this.platformSecret,
      target: this.cluster,
      vpc: props.vpc,
      vpcSubnets: props.rotationSubnets,
      securityGroup: rotationSecurityGroup,
      automaticallyAfter,
      excludeCharacters: PASSWORD_EXCLUDE_CHARACTERS,
    });
    // The first rotation runs as soon as the schedule exists: by then the endpoint must be up
    // and the writer must accept connections (the secret attachment only waits for the cluster).
    const writer = this.cluster.node.tryFindChild('Writer');
    for (const rotation of [adminRotation, platformRotation]) {
      rotation.node.addDependency(props.secretsManagerEndpoint);
      if (writer !== undefined) {
        rotation.node.addDependency(writer);
      }
    }
  }
}
