import { App } from 'aws-cdk-lib';

/**
 * The CDK entry point. It holds the App only: the DataStack and PlatformStack are added by the
 * deployment work, and until then `npx cdk synth` produces an empty cloud assembly.
 */
const app = new App();
app.synth();
