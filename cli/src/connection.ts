import { join } from 'node:path';
import {
  type ApiClient,
  type AwsCredentialsProvider,
  bearerClient,
  type Fetch,
  sigV4Client,
} from '../../ops/api-client.js';
import { isAwsRegion, signingRegion } from '../../ops/smoke-args.js';
import { CliUsageError } from './exit-codes.js';

export const DEFAULT_API = 'http://127.0.0.1:3000';

/** How the admin routes are called: a bearer token (and where it came from), or SigV4. */
export type AdminAuth =
  | { readonly kind: 'bearer'; readonly token: string; readonly source: string }
  | { readonly kind: 'sigv4'; readonly region: string };

/** The global options that choose the API and the credentials. */
export interface ConnectionOptions {
  readonly api?: string | undefined;
  readonly stage?: string | undefined;
  readonly region?: string | undefined;
  readonly adminToken?: string | undefined;
}

/** The outputs of a CloudFormation stack by key (DescribeStacks), or `undefined` if there is none. */
export type StackOutputs = (
  stackName: string,
  region: string | undefined,
) => Promise<Readonly<Record<string, string>> | undefined>;

/** The CloudFormation stack whose `ApiUrl` output is a stage's API (see cdk/). */
export function platformStackName(stage: string): string {
  return `tenantflow-${stage}-platform`;
}

/**
 * The API's base URL: `--api`, else the `ApiUrl` output of `tenantflow-<stage>-platform` for
 * `--stage`, else http://127.0.0.1:3000 (npm start).
 */
export async function resolveApiUrl(options: ConnectionOptions, stackOutputs: StackOutputs): Promise<URL> {
  if (options.api !== undefined && options.stage !== undefined) {
    throw new CliUsageError('--api and --stage both name the API: give one of them');
  }
  if (options.stage !== undefined) {
    if (!/^[A-Za-z0-9-]+$/.test(options.stage)) {
      throw new CliUsageError(`--stage must be a stage name such as dev or prod, not '${options.stage}'`);
    }
    const stackName = platformStackName(options.stage);
    const outputs = await stackOutputs(stackName, options.region);
    if (outputs === undefined) {
      throw new CliUsageError(
        `no CloudFormation stack ${stackName}: is stage '${options.stage}' deployed here?`,
      );
    }
    const url = outputs.ApiUrl;
    if (url === undefined) {
      throw new CliUsageError(`stack ${stackName} has no ApiUrl output`);
    }
    return parseApiUrl(url, `the ApiUrl output of ${stackName}`);
  }
  return parseApiUrl(options.api ?? DEFAULT_API, '--api');
}

function parseApiUrl(value: string, what: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new CliUsageError(`${what} must be an http(s) URL, not '${value}'`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new CliUsageError(`${what} must be an http(s) URL, not '${value}'`);
  }
  return url;
}

/** Whether `api` is served on this machine (npm start), where admin calls take a bearer token. */
export function isLocalApi(api: URL): boolean {
  return ['127.0.0.1', 'localhost', '[::1]'].includes(api.hostname);
}

/** Where `npm start` keeps its generated admin token (`local/local-state.ts`). */
export function localSecretsFile(env: NodeJS.ProcessEnv): string {
  return join(env.TENANTFLOW_HOME || '.tenantflow', 'local-secrets.json');
}

/**
 * Chooses how to call the admin routes. `--admin-token` always wins. Against a local API: then
 * TENANTFLOW_ADMIN_TOKEN, then the `adminToken` that `npm start` saved. Anywhere else: SigV4 with
 * the caller's AWS credentials, for the region of `--region`, the execute-api URL or AWS_REGION.
 */
export async function selectAdminAuth(
  api: URL,
  options: ConnectionOptions,
  env: NodeJS.ProcessEnv,
  readFile: (path: string) => Promise<string>,
): Promise<AdminAuth> {
  if (options.adminToken !== undefined) {
    if (options.adminToken.trim() === '') {
      throw new CliUsageError('--admin-token must not be empty');
    }
    return { kind: 'bearer', token: options.adminToken, source: '--admin-token' };
  }
  if (isLocalApi(api)) {
    if (env.TENANTFLOW_ADMIN_TOKEN) {
      return { kind: 'bearer', token: env.TENANTFLOW_ADMIN_TOKEN, source: 'TENANTFLOW_ADMIN_TOKEN' };
    }
    const file = localSecretsFile(env);
    const token = await readLocalAdminToken(file, readFile);
    if (token === undefined) {
      throw new CliUsageError(
        `no admin token for ${api.origin}: pass --admin-token <token>, set TENANTFLOW_ADMIN_TOKEN, ` +
          `or run npm start here first (it saves one in ${file})`,
      );
    }
    return { kind: 'bearer', token, source: file };
  }
  const region = signingRegion(api, options.region, env);
  if (region === undefined) {
    throw new CliUsageError(
      `cannot tell which region to sign for from ${api.host}: pass --region <region> (or set AWS_REGION)`,
    );
  }
  if (!isAwsRegion(region)) {
    throw new CliUsageError(`--region must be an AWS region such as eu-west-1, not '${region}'`);
  }
  return { kind: 'sigv4', region };
}

async function readLocalAdminToken(
  file: string,
  readFile: (path: string) => Promise<string>,
): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      return undefined;
    }
    throw new CliUsageError(`cannot read ${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
  try {
    const token = (JSON.parse(text) as { adminToken?: unknown }).adminToken;
    return typeof token === 'string' && token !== '' ? token : undefined;
  } catch {
    throw new CliUsageError(`${file} is not valid JSON`);
  }
}

export interface ClientOptions {
  readonly fetch?: Fetch | undefined;
  readonly credentials: AwsCredentialsProvider;
}

/** The client for the admin routes. */
export function adminClient(api: URL, auth: AdminAuth, options: ClientOptions): ApiClient {
  if (auth.kind === 'bearer') {
    return bearerClient(api, auth.token, { fetch: options.fetch ?? fetch });
  }
  return sigV4Client(api, {
    region: auth.region,
    credentials: options.credentials,
    ...(options.fetch === undefined ? {} : { fetch: options.fetch }),
  });
}

/**
 * The bearer token for a tenant route: `--key`, else TENANTFLOW_TENANT_KEY, else (the authorizer
 * takes it too) the admin token, when there is one: locally, or given with --admin-token.
 */
export async function selectTenantToken(
  api: URL,
  key: string | undefined,
  options: ConnectionOptions,
  env: NodeJS.ProcessEnv,
  readFile: (path: string) => Promise<string>,
): Promise<string> {
  const tenantKey = key ?? (env.TENANTFLOW_TENANT_KEY || undefined);
  if (tenantKey !== undefined) {
    if (tenantKey.trim() === '') {
      throw new CliUsageError('--key must not be empty');
    }
    return tenantKey;
  }
  if (options.adminToken !== undefined || isLocalApi(api)) {
    const admin = await selectAdminAuth(api, options, env, readFile);
    if (admin.kind === 'bearer') {
      return admin.token;
    }
  }
  throw new CliUsageError(
    "tenant routes need the tenant's API key: pass --key <key> or set TENANTFLOW_TENANT_KEY",
  );
}
