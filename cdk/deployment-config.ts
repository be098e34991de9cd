import type { Node } from 'constructs';

/**
 * What a deployment can be told through CDK context (`cdk.json`, or `-c key=value`). Every value has
 * a documented default, and `npx cdk synth` needs no AWS credentials: stacks are environment-agnostic
 * unless `account` and `region` are given.
 */
export interface DeploymentConfig {
  /** `dev`, `staging`, `prod`, …: part of every name, secret path and log group. */
  readonly stage: string;
  /** Production-like stages keep data: deletion protection on, resources retained on stack delete. */
  readonly protectData: boolean;
  readonly account?: string | undefined;
  readonly region?: string | undefined;
  /** Aurora Serverless v2 capacity, in ACUs. */
  readonly databaseMinCapacity: number;
  readonly databaseMaxCapacity: number;
  /** Aurora readers standing by for failover: 1 for stages that keep data, else 0. */
  readonly databaseReaders: number;
  /** Days automated backups are kept. */
  readonly backupRetentionDays: number;
  /** Days Lambda, API and state machine logs are kept. */
  readonly logRetentionDays: number;
  /** Requests per second, and burst, the API stage accepts before throttling (429). */
  readonly apiRateLimit: number;
  readonly apiBurstLimit: number;
  /**
   * How tenant roles reach PostgreSQL. `proxy` (default): through RDS Proxy, which provisioning
   * keeps admitting each tenant's secret; the proxy holds at most 200 secrets, two of them the
   * admin and the platform secrets, so at most 198 tenants. `direct`: straight to the Aurora
   * writer, over TLS verified against the RDS CA bundle of the Lambda runtime; no tenant limit, but
   * each warm run-task Lambda holds its own connections.
   */
  readonly tenantDatabaseAccess: TenantDatabaseAccess;
  /**
   * Whether the installation includes the example workflows of `examples/`: their state machines,
   * and their table in every tenant schema. Off unless asked for (`-c examples=true`), so a
   * production install gets neither. The functions that load the workflows or their tables are
   * told the same (`TENANTFLOW_EXAMPLES`), so what they register matches what is deployed.
   * @default false
   */
  readonly examples: boolean;
  /**
   * How the functions' subnets reach beyond the VPC. `none` (default): they don't; the database and
   * the interface endpoints are all a function can reach. `nat-one`: through one NAT gateway, to
   * the internet (if its AZ fails, so does egress from the other). `nat-per-az`: through a NAT
   * gateway in each AZ. The database subnets stay isolated in every mode.
   * @default 'none'
   */
  readonly egress: Egress;
  /**
   * Free gateway endpoints routed from the functions' subnets, for AWS services a task calls
   * without a NAT gateway (or, with one, without paying it per GB).
   * @default []
   */
  readonly gatewayEndpoints: readonly GatewayEndpoint[];
}

export type TenantDatabaseAccess = 'proxy' | 'direct';
const TENANT_DATABASE_ACCESS: readonly TenantDatabaseAccess[] = ['proxy', 'direct'];

export type Egress = 'none' | 'nat-one' | 'nat-per-az';
const EGRESS: readonly Egress[] = ['none', 'nat-one', 'nat-per-az'];

export type GatewayEndpoint = 's3' | 'dynamodb';
const GATEWAY_ENDPOINTS: readonly GatewayEndpoint[] = ['s3', 'dynamodb'];

/** `'a' or 'b'`, `'a', 'b' or 'c'`: the values an error message offers. */
function alternatives(values: readonly string[]): string {
  const quoted = values.map((value) => `'${value}'`);
  return quoted.length < 2 ? quoted.join('') : `${quoted.slice(0, -1).join(', ')} or ${quoted.at(-1)}`;
}

/** One of `allowed`, as text from `cdk.json` or `-c key=value`; anything else is refused, naming them. */
function choiceContext<T extends string>(node: Node, key: string, allowed: readonly T[], fallback: T): T {
  const raw = node.tryGetContext(key) as unknown;
  if (raw === undefined) {
    return fallback;
  }
  if (typeof raw !== 'string' || !allowed.includes(raw as T)) {
    throw new Error(`CDK context '${key}' must be ${alternatives(allowed)} (got '${String(raw)}')`);
  }
  return raw as T;
}

/**
 * A set of `allowed` values: a JSON array in `cdk.json`, or comma-separated text from
 * `-c key=a,b` (empty text for none). Unknown or repeated values are refused, naming the known ones.
 */
function listContext<T extends string>(node: Node, key: string, allowed: readonly T[]): T[] {
  const raw = node.tryGetContext(key) as unknown;
  if (raw === undefined) {
    return [];
  }
  const refuse = (): never => {
    throw new Error(
      `CDK context '${key}' must list values among ${alternatives(allowed)}, each at most once, as a JSON array or comma-separated (got '${Array.isArray(raw) ? JSON.stringify(raw) : String(raw)}')`,
    );
  };
  const items: unknown[] =
    typeof raw === 'string'
      ? raw
          .split(',')
          .map((item) => item.trim())
          .filter((item) => item !== '')
      : Array.isArray(raw)
        ? raw
        : refuse();
  const values = items.map((item) =>
    typeof item === 'string' && allowed.includes(item as T) ? (item as T) : refuse(),
  );
  if (new Set(values).size !== values.length) {
    refuse();
  }
  return values;
}

const STAGE = /^[a-z][a-z0-9-]{0,31}$/;

function numberContext(
  node: Node,
  key: string,
  fallback: number,
  min: number,
  max: number,
  options: { readonly integer?: boolean } = {},
): number {
  const raw = node.tryGetContext(key) as unknown;
  if (raw === undefined) {
    return fallback;
  }
  const value = typeof raw === 'number' ? raw : Number(raw);
  if (
    !Number.isFinite(value) ||
    value < min ||
    value > max ||
    (options.integer && !Number.isInteger(value))
  ) {
    throw new Error(
      `CDK context '${key}' must be ${options.integer ? 'a whole number' : 'a number'} from ${min} to ${max} (got '${String(raw)}')`,
    );
  }
  return value;
}

/** `true`/`false`, as JSON from `cdk.json` or as text from `-c key=value`; anything else is refused. */
function booleanContext(node: Node, key: string, fallback: boolean): boolean {
  const raw = node.tryGetContext(key) as unknown;
  if (raw === undefined) {
    return fallback;
  }
  if (raw === true || raw === 'true') {
    return true;
  }
  if (raw === false || raw === 'false') {
    return false;
  }
  throw new Error(`CDK context '${key}' must be true or false (got '${String(raw)}')`);
}

export function deploymentConfig(node: Node): DeploymentConfig {
  const stage = String(node.tryGetContext('stage') ?? 'dev');
  if (!STAGE.test(stage)) {
    throw new Error(
      `CDK context 'stage' must be 1-32 lowercase letters, digits or dashes, starting with a letter (got '${stage}')`,
    );
  }
  const protect = node.tryGetContext('protectData') as unknown;
  const protectData = protect === undefined ? stage === 'prod' : protect === true || protect === 'true';
  const access = String(node.tryGetContext('tenantDatabaseAccess') ?? 'proxy');
  if (!TENANT_DATABASE_ACCESS.includes(access as TenantDatabaseAccess)) {
    throw new Error(
      `CDK context 'tenantDatabaseAccess' must be ${TENANT_DATABASE_ACCESS.map((mode) => `'${mode}'`).join(' or ')} (got '${access}')`,
    );
  }
  return {
    stage,
    protectData,
    account: (node.tryGetContext('account') as string | undefined) ?? undefined,
    region: (node.tryGetContext('region') as string | undefined) ?? undefined,
    databaseMinCapacity: numberContext(node, 'databaseMinCapacity', 0.5, 0, 256),
    databaseMaxCapacity: numberContext(node, 'databaseMaxCapacity', 4, 1, 256),
    databaseReaders: numberContext(node, 'databaseReaders', protectData ? 1 : 0, 0, 15, { integer: true }),
    backupRetentionDays: numberContext(node, 'backupRetentionDays', 7, 1, 35),
    logRetentionDays: numberContext(node, 'logRetentionDays', 30, 1, 3653),
    apiRateLimit: numberContext(node, 'apiRateLimit', 50, 1, 10_000),
    apiBurstLimit: numberContext(node, 'apiBurstLimit', 100, 1, 5_000),
    tenantDatabaseAccess: access as TenantDatabaseAccess,
    examples: booleanContext(node, 'examples', false),
    egress: choiceContext(node, 'egress', EGRESS, 'none'),
    gatewayEndpoints: listContext(node, 'gatewayEndpoints', GATEWAY_ENDPOINTS),
  };
}
