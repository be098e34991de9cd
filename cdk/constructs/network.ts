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
   * Availability zones to spread the subnet groups over (Aurora needs at least two).
   * @default 2
   */
  readonly maxAzs?: number;
  /**
   * Adds an endpoint for the RDS API, for code that changes the RDS Proxy's auth list (tenant
   * provisioning, in `proxy` tenant database access).
   * @default false
   */
  readonly rdsApiEndpoint?: boolean;
  /**
   * How the `lambdas` subnets reach beyond the VPC: `none`, or through NAT gateways (`nat-one`: one,
   * in the first AZ; `nat-per-az`: one in each AZ, so losing an AZ does not cut the others off). A
   * NAT mode adds a small `public` subnet group for the gateways; the `database` subnets stay
   * isolated in every mode.
   * @default 'none'
   */
  readonly egress?: NetworkEgress;
  /**
   * Gateway endpoints (free) routed from the `lambdas` subnets only.
   * @default []
   */
  readonly gatewayEndpoints?: readonly GatewayEndpointService[];
}

export type NetworkEgress = 'none' | 'nat-one' | 'nat-per-az';
export type GatewayEndpointService = 's3' | 'dynamodb';

const GATEWAY_SERVICES: Record<
  GatewayEndpointService,
  { id: string; service: ec2.GatewayVpcEndpointAwsService }
> = {
  s3: { id: 'S3Endpoint', service: ec2.GatewayVpcEndpointAwsService.S3 },
  dynamodb: { id: 'DynamoDbEndpoint', service: ec2.GatewayVpcEndpointAwsService.DYNAMODB },
};

/**
 * A VPC with isolated `database` subnets for Aurora and RDS Proxy, `lambdas` subnets for the
 * functions, and interface endpoints so that code in the `lambdas` subnets reaches Secrets Manager,
 * Step Functions and X-Ray without a NAT gateway. By default nothing has a route out of the VPC;
 * `egress` and `gatewayEndpoints` open the `lambdas` subnets, never the `database` ones. Every flow
 * is logged to CloudWatch Logs.
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
  /**
   * EventBridge Scheduler's API: the schedules API creates, updates and deletes tenants'
   * schedules, and offboarding deletes them (the schedules invoke their function from outside).
   */
  readonly schedulerEndpoint: ec2.InterfaceVpcEndpoint;
  /**
   * Where the functions' X-Ray daemon sends the segments a function records itself (SDK calls,
   * Powertools subsegments) with `PutTraceSegments`. Only the Lambda service's own segment is sent
   * from outside the VPC; AWS documents no such path for the daemon's, so they are given one here.
   */
  readonly xrayEndpoint: ec2.InterfaceVpcEndpoint;
  /** Only with `rdsApiEndpoint`. */
  readonly rdsEndpoint: ec2.InterfaceVpcEndpoint | undefined;
  readonly flowLogGroup: logs.LogGroup;
  readonly egress: NetworkEgress;
  readonly gatewayEndpoints: readonly ec2.GatewayVpcEndpoint[];

  constructor(scope: Construct, id: string, props: PrivateNetworkProps) {
    super(scope, id);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.DESTROY;

    this.flowLogGroup = new logs.LogGroup(this, 'FlowLogs', {
      logGroupName: `/tenantflow/${props.stage}/vpc-flow-logs`,
      retention: retentionDays(props.flowLogRetentionDays),
      removalPolicy,
    });

    this.egress = props.egress ?? 'none';
    const maxAzs = props.maxAzs ?? 2;
    const nat = this.egress !== 'none';

    this.vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr('10.40.0.0/16'),
      maxAzs,
      natGateways: this.egress === 'nat-per-az' ? maxAzs : nat ? 1 : 0,
      natGatewaySubnets: nat ? { subnetGroupName: 'public' } : undefined,
      // The database never needs the internet, whatever the mode. The `lambdas` group reaches AWS
      // APIs through the interface endpoints below, and the internet only through a NAT gateway.
      // Groups are given CIDRs in this order: `public` comes last so that switching modes leaves
      // the other two (and the cluster in them) where they are.
      subnetConfiguration: [
        { name: 'database', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 },
        {
          name: 'lambdas',
          subnetType: nat ? ec2.SubnetType.PRIVATE_WITH_EGRESS : ec2.SubnetType.PRIVATE_ISOLATED,
          cidrMask: 20,
        },
        // Only the NAT gateways live here; they have Elastic IPs of their own.
        ...(nat
          ? [{ name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 28, mapPublicIpOnLaunch: false }]
          : []),
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
    this.schedulerEndpoint = this.interfaceEndpoint(
      'SchedulerEndpoint',
      new ec2.InterfaceVpcEndpointAwsService('scheduler'),
    );
    // In every egress mode: with a NAT gateway, traces would otherwise pay its per-GB charge.
    this.xrayEndpoint = this.interfaceEndpoint('XRayEndpoint', ec2.InterfaceVpcEndpointAwsService.XRAY);
    this.rdsEndpoint = props.rdsApiEndpoint
      ? this.interfaceEndpoint('RdsEndpoint', ec2.InterfaceVpcEndpointAwsService.RDS)
      : undefined;

    this.gatewayEndpoints = (props.gatewayEndpoints ?? []).map((name) =>
      this.vpc.addGatewayEndpoint(GATEWAY_SERVICES[name].id, {
        service: GATEWAY_SERVICES[name].service,
        subnets: [this.lambdaSubnets],
      }),
    );
  }

  /**
   * Lets `client` call Secrets Manager, Step Functions, EventBridge Scheduler, X-Ray (and the RDS
   * API) through the endpoints (HTTPS).
   */
  allowEndpointAccessFrom(client: ec2.IConnectable, description: string): void {
    const endpoints = [
      this.secretsManagerEndpoint,
      this.stepFunctionsEndpoint,
      this.schedulerEndpoint,
      this.xrayEndpoint,
      this.rdsEndpoint,
    ];
    for (const endpoint of endpoints.filter((candidate) => candidate !== undefined)) {
      endpoint.connections.allowFrom(client, ec2.Port.tcp(443), description);
    }
  }

  /**
   * Lets `client` make HTTPS calls out of the VPC, when this network has a way out: through a NAT
   * gateway, or to a gateway endpoint. Otherwise it adds nothing: there is nowhere to go.
   *
   * The rule names any IPv4 address because neither way out has a fixed set of them: the NAT leads
   * to the internet, and a gateway endpoint's prefix list has a per-region id that an
   * environment-agnostic template cannot name. The route tables decide where such traffic can go:
   * without NAT, only to the gateway endpoints, since nothing in the VPC but the interface
   * endpoints listens on 443.
   */
  allowHttpsEgressFrom(client: ec2.IConnectable, description: string): void {
    if (this.egress !== 'none' || this.gatewayEndpoints.length > 0) {
      client.connections.allowTo(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), description);
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
