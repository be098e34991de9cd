import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { addTenantflowStacks, tagTenantflowApp } from '../tenantflow-app.js';

/**
 * The CDK entry point: the DataStack and the PlatformStack of one stage (`addTenantflowStacks`),
 * tagged with fixed values (`tagTenantflowApp`), configured by context (`cdk deploy -c stage=prod`; the example workflows only with
 * `-c examples=true`). `npx cdk synth` needs no AWS credentials: stacks are environment-agnostic
 * unless the `account` and `region` context values are given. cdk-nag's AWS Solutions checks run on every
 * synth and fail it on any finding that is not acknowledged next to its resource.
 */
const app = new App();
const { config } = addTenantflowStacks(app);
// Fixed tags only: the RDS Proxy resets its auth list on any update, a tag change included.
tagTenantflowApp(app, config);

Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
app.synth();
