import { App, Tags, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { deploymentConfig } from '../deployment-config.js';
import { DataStack } from '../stacks/data-stack.js';
import { PlatformStack } from '../stacks/platform-stack.js';

/**
 * The CDK entry point: the DataStack (network, database, proxy, admin and platform secrets) and the
 * PlatformStack (layer, functions, API, one state machine per workflow, the recovery schedule) of
 * one stage. `npx cdk synth` needs no AWS credentials: stacks are environment-agnostic unless the
 * `account` and `region` context values are given. cdk-nag's AWS Solutions checks run on every
 * synth and fail it on any finding that is not acknowledged next to its resource.
 */
const app = new App();
const config = deploymentConfig(app.node);
const env =
  config.account !== undefined && config.region !== undefined
    ? { account: config.account, region: config.region }
    : undefined;

const data = new DataStack(app, `tenantflow-${config.stage}-data`, {
  config,
  description: `tenantflow ${config.stage}: network, Aurora PostgreSQL, RDS Proxy and the database secrets`,
  ...(env === undefined ? {} : { env }),
});
new PlatformStack(app, `tenantflow-${config.stage}-platform`, {
  config,
  data,
  description: `tenantflow ${config.stage}: functions, REST API, workflows and the recovery schedule`,
  ...(env === undefined ? {} : { env }),
});
// CDK takes DBProxyTargetGroup for taggable, but CloudFormation refuses Tags on it (cfn-lint E3002).
const untaggable = { excludeResourceTypes: ['AWS::RDS::DBProxyTargetGroup'] };
Tags.of(app).add('project', 'tenantflow', untaggable);
Tags.of(app).add('stage', config.stage, untaggable);

Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
app.synth();
