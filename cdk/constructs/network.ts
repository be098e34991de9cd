import { RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { retentionDays } from './log-retention.js';

export interface PrivateNetworkProps {
  /** Part of the flow log group's name. */
  readonly stage: string;
  /** Days the VPC flow logs are kept. */
  readonly flowLogRetentionDays: number;
  /**
   * What happens to the flow log group when the stack is deleted.
   * @default RemovalPolicy.DESTROY
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Availability zones to spread both subnet groups over (Aurora needs at least two).
   * @default 2
   */
  readonly maxAzs?: number;
  /**
   * Adds an endpoint for the RDS API, for code that changes the RDS Proxy's auth list (tenant
   * provisioning, in `proxy` tenant database access).
   * @default false
   */
  readonly rdsApiEndpoint?: boolean;
}

/**
 * A VPC with no route to the internet: isolated `database` subnets for Aurora and RDS Proxy,
 * isolated `lambdas` subnets for the functions, and interface endpoints so that code in the
 * `lambdas` subnets reaches Secrets Manager and Step Functions without a NAT gateway. Every flow is
 * logged to CloudWatch Logs.
 *
 * The endpoints are closed by default (no VPC-wide ingress rule): each client is let in by
 * {@link PrivateNetwork.allowEndpointAccessFrom}, so the security groups document who talks to AWS.
 */
export class PrivateNetwork extends Construct {
  readonly vpc: ec2.Vpc;
  readonly databaseSubnets: ec2.SubnetSelection = { subnetGroupName: 'database' };
  readonly lambdaSubnets: ec2.SubnetSelection = { subnetGroupName: 'lambdas' };
  readonly secretsManagerEndpoint: ec2.InterfaceVpcEndpoint;
  readonly stepFunctionsEndpoint: ec2.InterfaceVpcEndpoint;
  /** Only with `rdsApiEndpoint`. */
  readonly rdsEndpoint: ec2.InterfaceVpcEndpoint | undefined;
  readonly flowLogGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: PrivateNetworkProps) {
    super(scope, id);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.DESTROY;

    this.flowLogGroup = new logs.LogGroup(this, 'FlowLogs', {
      logGroupName: `/tenantflow/${props.stage}/vpc-flow-logs`,
      retention: retentionDays(props.flowLogRetentionDays),
      removalPolicy,
    });

    this.vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr('10.40.0.0/16'),
      maxAzs: props.maxAzs ?? 2,
      natGateways: 0,
      // Both groups are isolated: nothing here needs the internet, and AWS APIs are reached
      // through the interface endpoints below.
      subnetConfiguration: [
        { name: 'database', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 },
        { name: 'lambdas', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 20 },
      ],
      flowLogs: {
        all: {
          destination: ec2.FlowLogDestination.toCloudWatchLogs(this.flowLogGroup),
          trafficType: ec2.FlowLogTrafficType.ALL,
        },
      },
    });

    this.secretsManagerEndpoint = this.interfaceEndpoint(
      'SecretsManagerEndpoint',
      ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    );
    this.stepFunctionsEndpoint = this.interfaceEndpoint(
      'StepFunctionsEndpoint',
      ec2.InterfaceVpcEndpointAwsService.STEP_FUNCTIONS,
    );
    this.rdsEndpoint = props.rdsApiEndpoint
      ? this.interfaceEndpoint('RdsEndpoint', ec2.InterfaceVpcEndpointAwsService.RDS)
      : undefined;
  }

  /** Lets `client` call Secrets Manager, Step Functions (and the RDS API) through the endpoints (HTTPS). */
  allowEndpointAccessFrom(client: ec2.IConnectable, description: string): void {
    const endpoints = [this.secretsManagerEndpoint, this.stepFunctionsEndpoint, this.rdsEndpoint];
    for (const endpoint of endpoints.filter((candidate) => candidate !== undefined)) {
      endpoint.connections.allowFrom(client, ec2.Port.tcp(443), description);
    }
  }

  private interfaceEndpoint(
    id: string,
    service: ec2.InterfaceVpcEndpointAwsService,
  ): ec2.InterfaceVpcEndpoint {
    const securityGroup = new ec2.SecurityGroup(this, `${id}SecurityGroup`, {
      vpc: this.vpc,
      description: `${id}: HTTPS from the security groups allowed in explicitly`,
      allowAllOutbound: false,
    });
    return this.vpc.addInterfaceEndpoint(id, {
      service,
      subnets: this.lambdaSubnets,
      securityGroups: [securityGroup],
      privateDnsEnabled: true,
      open: false,
    });
  }
}
