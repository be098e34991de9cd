/**
 * `npm run teardown -- --stage <stage> [--region <region>] [--force-delete] [--yes] [--dry-run]`:
 * deletes what a deployed stage created at run time and `cdk destroy` therefore does not know
 * about: the tenant secrets `tenantflow/<stage>/tenants/*`. Run it before `cdk destroy` (see
 * docs/deploy.md, "Teardown"). The work is done by `deleteStageTenantSecrets`; this file reads the
 * command line and prints.
 */
import { parseArgs } from 'node:util';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import {
  deleteStageTenantSecrets,
  formatTeardownReport,
  UnconfirmedTeardownError,
} from './stage-teardown.js';

const USAGE = `Usage: npm run teardown -- --stage <stage> [--region <region>] [--force-delete] [--yes] [--dry-run]

Deletes the tenant secrets of a deployed stage (tenantflow/<stage>/tenants/*), which provisioning
created at run time and cdk destroy leaves behind. Then run: npx cdk destroy --all -c stage=<stage>

  --stage <stage>    the stage to tear down (required)
  --region <region>  its region (default: the AWS SDK's, from AWS_REGION or your profile)
  --force-delete     delete at once, without Secrets Manager's 30-day recovery window
  --yes              required for a stage named like production (prod, production, prd, live)
  --dry-run          list what would be deleted, delete nothing`;

function parseCommandLine() {
  try {
    const { values } = parseArgs({
      options: {
        stage: { type: 'string' },
        region: { type: 'string' },
        'force-delete': { type: 'boolean', default: false },
        yes: { type: 'boolean', default: false },
        'dry-run': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    });
    return values;
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
    process.exit(2);
  }
}

const args = parseCommandLine();
if (args.help) {
  console.log(USAGE);
  process.exit(0);
}
if (args.stage === undefined || args.stage.length === 0) {
  console.error(`--stage is required.\n\n${USAGE}`);
  process.exit(2);
}
const stage = args.stage;
const client = new SecretsManagerClient(args.region === undefined ? {} : { region: args.region });
try {
  const region = await client.config.region();
  const how = args['force-delete'] ? ', without a recovery window' : ', with the default recovery window';
  console.log(
    args['dry-run']
      ? `Listing the tenant secrets of stage '${stage}' in ${region}…`
      : `Deleting the tenant secrets of stage '${stage}' in ${region}${how}…`,
  );
  const report = await deleteStageTenantSecrets({
    client,
    stage,
    forceDelete: args['force-delete'],
    confirmed: args.yes,
    dryRun: args['dry-run'],
  });
  console.log(formatTeardownReport(report).join('\n'));
  const failed = report.outcomes.filter((outcome) => outcome.kind === 'failed').length;
  if (failed > 0) {
    console.error(`${failed} deletion(s) failed: fix the cause (permissions?) and run the command again.`);
    process.exitCode = 1;
  } else if (!args['dry-run']) {
    console.log(`Next: npx cdk destroy --all -c stage=${stage}`);
    console.log(
      'A stage deployed with protectData (the default for prod) keeps its cluster, its two database secrets and its log groups: see docs/deploy.md, "Teardown".',
    );
  }
} catch (error) {
  if (error instanceof UnconfirmedTeardownError) {
    console.error(`${error.message} Nothing was deleted. Try --dry-run first to see what would be.`);
    process.exitCode = 2;
  } else {
    throw error;
  }
} finally {
  client.destroy();
}
