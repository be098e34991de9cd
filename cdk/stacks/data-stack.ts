import { CfnOutput, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as rds from 'aws-cdk-lib/aws-rds';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import { PlatformDatabase } from '../constructs/database.js';
import { PrivateNetwork } from '../constructs/network.js';
import type { DeploymentConfig } from '../deployment-config.js';

export interface DataStackProps extends StackProps {
  readonly config: DeploymentConfig;
  /**
   * The RDS Proxy's tags, its only ones (see `PlatformDatabaseProps.proxyTags`): values that never
   * change for the stage.
   * @default no tags
   */
  readonly proxyTags?: Readonly<Record<string, string>>;
}

/**
 * The stateful half of a deployment: a VPC (isolated unless the `egress` or `gatewayEndpoints`
 * settings open its `lambdas` subnets), Aurora PostgreSQL Serverless v2 behind RDS Proxy, and the
 * two database logins: the admin secret (the master user, for DDL) and the platform secret (the
 * least-privileged role requests run as). The PlatformStack puts its Lambdas in `vpc` (subnet group
 * `lambdas`) with `lambdaSecurityGroup`, which already reaches the proxy and the Secrets Manager,
 * Step Functions and X-Ray endpoints.
 */
export class DataStack extends Stack {
  readonly vpc: ec2.IVpc;
  /**
   * The Lambdas' security group: allowed into the proxy on 5432 and into the interface endpoints on
   * 443; with `tenantDatabaseAccess=direct`, also into the cluster on 5432; with a NAT `egress`
   * or `gatewayEndpoints`, out on 443 (see {@link PrivateNetwork.allowHttpsEgressFrom}).
   */
  readonly lambdaSecurityGroup: ec2.ISecurityGroup;
  /** RDS Proxy in front of the cluster; TLS required. */
  readonly proxy: rds.DatabaseProxy;
  /**
   * `tenantflow/<stage>/admin`: the cluster's master user (CREATEROLE, CREATEDB), for provisioning,
   * deprovisioning and migrations only. Rotated every 30 days.
   */
  readonly adminSecret: secretsmanager.ISecret;
  /**
   * `tenantflow/<stage>/platform`: the `tenantflow_platform` role every function runs its requests
   * as (no CREATEROLE, control schema and bookkeeping only). Rotated every 30 days.
   */
  readonly platformSecret: secretsmanager.ISecret;
  readonly databaseName: string;
  readonly cluster: rds.DatabaseCluster;

  constructor(scope: Construct, id: string, props: DataStackProps) {
    super(scope, id, props);
    const { config } = props;

    const network = new PrivateNetwork(this, 'Network', {
      stage: config.stage,
      flowLogRetentionDays: config.logRetentionDays,
      removalPolicy: config.protectData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
      rdsApiEndpoint: config.tenantDatabaseAccess === 'proxy',
      egress: config.egress,
      gatewayEndpoints: config.gatewayEndpoints,
    });
    this.vpc = network.vpc;

    const database = new PlatformDatabase(this, 'Database', {
      vpc: network.vpc,
      databaseSubnets: network.databaseSubnets,
      rotationSubnets: network.lambdaSubnets,
      secretsManagerEndpoint: network.secretsManagerEndpoint,
      stage: config.stage,
      protectData: config.protectData,
      minCapacity: config.databaseMinCapacity,
      maxCapacity: config.databaseMaxCapacity,
      readers: config.databaseReaders,
      backupRetentionDays: config.backupRetentionDays,
      logRetentionDays: config.logRetentionDays,
      proxyTags: props.proxyTags,
    });
    this.cluster = database.cluster;
    this.proxy = database.proxy;
    this.adminSecret = database.adminSecret;
    this.platformSecret = database.platformSecret;
    this.databaseName = database.databaseName;

    this.lambdaSecurityGroup = new ec2.SecurityGroup(this, 'LambdaSecurityGroup', {
      vpc: network.vpc,
      description: 'tenantflow Lambdas: RDS Proxy and the AWS interface endpoints only',
      allowAllOutbound: false,
    });
    database.allowClientFrom(this.lambdaSecurityGroup, 'tenantflow Lambdas to RDS Proxy');
    if (config.tenantDatabaseAccess === 'direct') {
      database.allowDirectClientFrom(
        this.lambdaSecurityGroup,
        'tenantflow Lambdas to Aurora (tenant roles, direct access)',
      );
    }
    network.allowEndpointAccessFrom(this.lambdaSecurityGroup, 'tenantflow Lambdas to AWS APIs');
    network.allowHttpsEgressFrom(this.lambdaSecurityGroup, 'tenantflow Lambdas to HTTPS beyond the VPC');

    new CfnOutput(this, 'ProxyEndpoint', {
      description: 'RDS Proxy endpoint: the database host the Lambdas connect to (TLS required)',
      value: this.proxy.endpoint,
    });
    new CfnOutput(this, 'AdminSecretArn', {
      description: 'Secrets Manager ARN of the admin (master user) credentials, for DDL only',
      value: this.adminSecret.secretArn,
    });
    new CfnOutput(this, 'PlatformSecretArn', {
      description: 'Secrets Manager ARN of the platform role credentials, used by every function',
      value: this.platformSecret.secretArn,
    });
    new CfnOutput(this, 'ClusterEndpoint', {
      description: 'Aurora writer endpoint, for migrations and administration from inside the VPC',
      value: this.cluster.clusterEndpoint.hostname,
    });
  }
}
