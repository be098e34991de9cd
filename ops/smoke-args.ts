import { parseArgs } from 'node:util';

export const SMOKE_USAGE = `Usage: npm run smoke -- --api <url> [options]

Proves a tenantflow API works end to end: health, onboarding two throwaway tenants, running every
deployed workflow, cross-tenant refusal, metrics, and offboarding (always attempted).

  --api <url>                  the API's base URL, stage included (the ApiUrl stack output),
                               or http://127.0.0.1:3000 for npm start
  --admin-token <token>        call the admin routes with this bearer token (npm start);
                               without it they are signed with SigV4 using your AWS credentials
  --region <region>            the region to sign for (SigV4 only); default: the one in an
                               execute-api URL, else AWS_REGION or AWS_DEFAULT_REGION
  --tenant-timeout <seconds>   how long a tenant may take to become active or be removed (300)
  --execution-timeout <secs>   how long each workflow execution may take to finish (300)
  -h, --help                   this text

Exit code: 0 when every step passed, 1 when one failed, 2 on a usage error.`;

export type AdminAuth =
  | { readonly kind: 'bearer'; readonly token: string }
  | { readonly kind: 'sigv4'; readonly region: string };

export interface SmokeOptions {
  readonly api: URL;
  readonly adminAuth: AdminAuth;
  readonly tenantTimeoutMs: number;
  readonly executionTimeoutMs: number;
}

export type SmokeCommand = { readonly kind: 'help' } | ({ readonly kind: 'run' } & SmokeOptions);

/** A command line the smoke test cannot run; the message says what to change. */
export class SmokeUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SmokeUsageError';
  }
}

const DEFAULT_TIMEOUT_SECONDS = 300;

/** `<api-id>.execute-api.<region>.amazonaws.com` (and `.amazonaws.com.cn`), the default endpoint's host. */
const EXECUTE_API_HOST = /^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$/;

/**
 * Reads the smoke test's command line (`argv` without node and the script). `env` supplies the
 * region for SigV4 when neither `--region` nor the URL names one.
 *
 * @example
 * parseSmokeArgs(['--api', 'http://127.0.0.1:3000', '--admin-token', token], process.env);
 */
export function parseSmokeArgs(argv: readonly string[], env: NodeJS.ProcessEnv): SmokeCommand {
  let values: ReturnType<typeof parseRaw>['values'];
  try {
    ({ values } = parseRaw(argv));
  } catch (error) {
    throw new SmokeUsageError(error instanceof Error ? error.message : String(error));
  }
  if (values.help === true) {
    return { kind: 'help' };
  }
  if (values.api === undefined) {
    throw new SmokeUsageError('--api <url> is required: the API base URL (the ApiUrl stack output)');
  }
  const api = parseApiUrl(values.api);
  const tenantTimeoutMs = parseSeconds('--tenant-timeout', values['tenant-timeout']);
  const executionTimeoutMs = parseSeconds('--execution-timeout', values['execution-timeout']);

  if (values['admin-token'] !== undefined) {
    if (values.region !== undefined) {
      throw new SmokeUsageError('--region applies to SigV4 only; it cannot be combined with --admin-token');
    }
    if (values['admin-token'].trim() === '') {
      throw new SmokeUsageError('--admin-token must not be empty');
    }
    return {
      kind: 'run',
      api,
      adminAuth: { kind: 'bearer', token: values['admin-token'] },
      tenantTimeoutMs,
      executionTimeoutMs,
    };
  }
  const region = signingRegion(api, values.region, env);
  if (region === undefined) {
    throw new SmokeUsageError(
      `cannot tell which region to sign for from ${api.host}: pass --region <region> (or set AWS_REGION), ` +
        'or --admin-token <token> for a server that takes a bearer admin token',
    );
  }
  if (!isAwsRegion(region)) {
    throw new SmokeUsageError(`--region must be an AWS region such as eu-west-1, not '${region}'`);
  }
  return { kind: 'run', api, adminAuth: { kind: 'sigv4', region }, tenantTimeoutMs, executionTimeoutMs };
}

function parseRaw(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      api: { type: 'string' },
      'admin-token': { type: 'string' },
      region: { type: 'string' },
      'tenant-timeout': { type: 'string' },
      'execution-timeout': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

function parseApiUrl(value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new SmokeUsageError(
      `--api must be an http(s) URL, such as https://abc123.execute-api.eu-west-1.amazonaws.com/dev, not '${value}'`,
    );
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new SmokeUsageError(`--api must be an http(s) URL, not ${url.protocol} ('${value}')`);
  }
  if (url.search !== '' || url.hash !== '') {
    throw new SmokeUsageError(`--api must be the API's base URL, without a query or fragment ('${value}')`);
  }
  return url;
}

function parseSeconds(flag: string, value: string | undefined): number {
  if (value === undefined) {
    return DEFAULT_TIMEOUT_SECONDS * 1000;
  }
  const seconds = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value.trim()) || !Number.isFinite(seconds) || seconds <= 0) {
    throw new SmokeUsageError(`${flag} must be a positive number of seconds, not '${value}'`);
  }
  return Math.round(seconds * 1000);
}

/**
 * The region to sign SigV4 requests to `api` for: `explicit` (a `--region` flag), else the one an
 * execute-api URL names, else AWS_REGION or AWS_DEFAULT_REGION; `undefined` when none says. Shared
 * by the smoke test and the `tenantflow` CLI.
 *
 * @example
 * signingRegion(new URL('https://abc123.execute-api.eu-west-1.amazonaws.com/dev'), undefined, {}); // 'eu-west-1'
 */
export function signingRegion(
  api: URL,
  explicit: string | undefined,
  env: NodeJS.ProcessEnv,
): string | undefined {
  return explicit ?? EXECUTE_API_HOST.exec(api.hostname)?.[1] ?? envRegion(env);
}

/** Whether `region` looks like an AWS region name (`eu-west-1`, `us-gov-west-1`). */
export function isAwsRegion(region: string): boolean {
  return /^[a-z]{2}(-[a-z]+)+-\d+$/.test(region);
}

/** AWS_REGION, else AWS_DEFAULT_REGION, ignoring empty values. */
function envRegion(env: NodeJS.ProcessEnv): string | undefined {
  const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  return region === undefined || region === '' ? undefined : region;
}
