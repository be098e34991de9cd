import { App, Tags, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { addTenantflowStacks } from '../tenantflow-app.js';

/**
 * The CDK entry point: the DataStack and the PlatformStack of one stage (`addTenantflowStacks`),
 * tagged, configured by context (`cdk deploy -c stage=prod`; the example workflows only with
 * `-c examples=true`). `npx cdk synth` needs no AWS credentials: stacks are environment-agnostic
 * unless the `account` and `region` context values are given. cdk-nag's AWS Solutions checks run on every
 * synth and fail it on any finding that is not acknowledged next to its resource.
 */
const app = new App();
const { config } = addTenantflowStacks(app);
// CDK takes DBProxyTargetGroup for taggable, but CloudFormation refuses Tags on it (cfn-lint E3002).
const untaggable = { excludeResourceTypes: ['AWS::RDS::DBProxyTargetGroup'] };
Tags.of(app).add('project', 'tenantflow', untaggable);
Tags.of(app).add('stage', config.stage, untaggable);

Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
app.synth();
