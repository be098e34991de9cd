/**
 * `npm run smoke -- --api <url> [--region <r>]`: the smoke test to run after `cdk deploy` (admin
 * calls signed with SigV4 from your AWS credentials), or, with `--admin-token <token>`, against
 * `npm start`. Prints each step and a verdict; exits 0 only when every step passed.
 */
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { type ApiClient, bearerClient, sigV4Client } from './api-client.js';
import {
  type AdminAuth,
  parseSmokeArgs,
  SMOKE_USAGE,
  type SmokeOptions,
  SmokeUsageError,
} from './smoke-args.js';
import { runSmokeTest } from './smoke-test.js';

function adminClient(api: URL, auth: AdminAuth): ApiClient {
  if (auth.kind === 'bearer') {
    return bearerClient(api, auth.token, {
      refusalHint: "--admin-token must be the server's admin token (npm start prints it)",
    });
  }
  return sigV4Client(api, { region: auth.region, credentials: defaultProvider() });
}

async function main(argv: readonly string[]): Promise<number> {
  let options: SmokeOptions;
  try {
    const command = parseSmokeArgs(argv, process.env);
    if (command.kind === 'help') {
      console.log(SMOKE_USAGE);
      return 0;
    }
    options = command;
  } catch (error) {
    if (error instanceof SmokeUsageError) {
      console.error(`smoke: ${error.message}\n\n${SMOKE_USAGE}`);
      return 2;
    }
    throw error;
  }
  console.log(`Smoke test of ${options.api.href}`);
  const interrupt = new AbortController();
  process.once('SIGINT', () => {
    console.log('Interrupted: offboarding the throwaway tenants (Ctrl-C again to quit without it)');
    interrupt.abort();
    process.once('SIGINT', () => process.exit(130));
  });
  const report = await runSmokeTest({
    admin: adminClient(options.api, options.adminAuth),
    tenantClient: (apiKey) => bearerClient(options.api, apiKey),
    print: (line) => console.log(line),
    tenantTimeoutMs: options.tenantTimeoutMs,
    executionTimeoutMs: options.executionTimeoutMs,
    signal: interrupt.signal,
  });
  return report.passed ? 0 : 1;
}

process.exitCode = await main(process.argv.slice(2));
