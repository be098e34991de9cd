import { ConfigurationError } from '../kernel/errors.js';
import { z } from '../kernel/zod.js';

/** A Secrets Manager secret ARN, as CDK passes a secret's `secretArn`. */
function secretArnSchema() {
  return z
    .string()
    .regex(/^arn:aws[a-z-]*:secretsmanager:[^:]+:\d{12}:secret:.+$/, 'must be a Secrets Manager secret ARN')
    .optional();
}

/** A JSON object of name → state machine ARN, as CDK sets it. */
function stateMachineArnMap(keys: string) {
  const message = `must be a JSON object of ${keys} to state machine ARN`;
  return z
    .string()
    .transform((text, ctx) => {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message });
        return z.NEVER;
      }
    })
    .pipe(
      z.record(
        z.string(),
        z
          .string()
          .regex(/^arn:aws[a-z-]*:states:[^:]+:\d{12}:stateMachine:[^:]+$/, 'must be a state machine ARN'),
        { message },
      ),
    );
}

/**
 * How long the authorizer trusts a key it has found: short enough that a replaced key stops working
 * soon after, long enough that a client's burst of requests costs one registry read.
 */
export const DEFAULT_AUTHORIZER_CACHE_SECONDS = 5;
export const DEFAULT_TASK_TENANT_CACHE_SECONDS = 5;

/**
 * Every environment variable tenantflow reads, validated once. Lambdas get them from CDK; the
 * local platform (`npm start`) fills them in before the first read.
 */
const environmentSchema = z.object({
  TENANTFLOW_LOCAL: z.enum(['0', '1'], { message: "must be '0' or '1'" }).default('0'),
  TENANTFLOW_STAGE: z
    .string()
    .regex(
      /^[a-z][a-z0-9-]{0,31}$/,
      'must be 1-32 lowercase letters, digits or dashes, starting with a letter',
    )
    .optional(),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// connection string')
    .optional(),
  TENANTFLOW_DATABASE_HOST: z.string().min(1, 'must be a host name (the RDS Proxy endpoint)').optional(),
  TENANTFLOW_DATABASE_PORT: z.coerce
    .number({ message: 'must be a port number (1-65535)' })
    .int('must be a port number (1-65535)')
    .min(1, 'must be a port number (1-65535)')
    .max(65_535, 'must be a port number (1-65535)')
    .optional(),
  TENANTFLOW_DATABASE_NAME: z
    .string()
    .regex(
      /^[A-Za-z][A-Za-z0-9_]{0,62}$/,
      'must be 1-63 letters, digits or underscores, starting with a letter',
    )
    .optional(),
  TENANTFLOW_DATABASE_SECRET_ARN: secretArnSchema(),
  TENANTFLOW_ADMIN_DATABASE_SECRET_ARN: secretArnSchema(),
  TENANTFLOW_DATABASE_SSL: z
    .enum(['require', 'disable'], { message: "must be 'require' or 'disable'" })
    .optional(),
  TENANTFLOW_ADMIN_TOKEN: z
    .string()
    .min(24, 'must be at least 24 characters')
    // What an `Authorization: Bearer` credential may hold (RFC 6750's b64token), or it could never be sent.
    .regex(/^[A-Za-z0-9\-._~+/]+=*$/, 'must use only letters, digits and - . _ ~ + / (then = padding)')
    .optional(),
  TENANTFLOW_DB_POOL_MAX: z.coerce.number().int().min(1).max(100).optional(),
  TENANTFLOW_AUTHORIZER_CACHE_SECONDS: z.coerce.number().int().min(0).max(300).optional(),
  TENANTFLOW_TASK_TENANT_CACHE_SECONDS: z.coerce.number().int().min(0).max(60).optional(),
  TENANTFLOW_ADMIN_DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// connection string')
    .optional(),
  TENANTFLOW_TENANT_DB_HOST: z.string().min(1).optional(),
  TENANTFLOW_TENANT_DB_PORT: z.coerce.number().int().min(1).max(65535).optional(),
  TENANTFLOW_DB_PROXY_NAME: z
    .string()
    .regex(
      /^[A-Za-z][A-Za-z0-9-]{0,62}$/,
      'must be an RDS Proxy name (1-63 letters, digits or hyphens, starting with a letter)',
    )
    .optional(),
  TENANTFLOW_SECRETS: z
    .enum(['local', 'secrets-manager'], { message: "must be 'local' or 'secrets-manager'" })
    .optional(),
  TENANTFLOW_SECRETS_DIR: z.string().min(1).optional(),
  TENANTFLOW_STATE_MACHINE_ARNS: stateMachineArnMap('workflow name').optional(),
  TENANTFLOW_LIFECYCLE_STATE_MACHINE_ARNS: stateMachineArnMap("'onboarding' and 'offboarding'").optional(),
  TENANTFLOW_RECOVERY_STALE_SECONDS: z.coerce.number().int().min(0).max(86_400).optional(),
  TENANTFLOW_RECOVERY_HEARTBEAT_STALE_SECONDS: z.coerce.number().int().min(1).max(86_400).optional(),
  TENANTFLOW_RECOVERY_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(100).optional(),
  TENANTFLOW_RECOVERY_CONCURRENCY: z.coerce.number().int().min(1).max(64).optional(),
  TENANTFLOW_RECOVERY_INTERVAL_SECONDS: z.coerce.number().int().min(0).max(86_400).optional(),
  TENANTFLOW_RECOVERY_RETENTION_DAYS: z.coerce.number().int().min(1).max(3650).optional(),
  TENANTFLOW_PROVISIONING_LEASE_SECONDS: z.coerce.number().int().min(1).max(3600).optional(),
  TENANTFLOW_FAILPOINTS: z.string().optional(),
  TENANTFLOW_SCHEDULE_GROUP: z
    .string()
    .regex(
      /^[0-9a-zA-Z\-_.]{1,64}$/,
      'must be an EventBridge Scheduler schedule group name (1-64 letters, digits, -, _ or .)',
    )
    .optional(),
  TENANTFLOW_SCHEDULE_TARGET_ARN: z
    .string()
    .regex(/^arn:aws[a-z-]*:lambda:[^:]+:\d{12}:function:[A-Za-z0-9_-]+$/, 'must be a Lambda function ARN')
    .optional(),
  TENANTFLOW_SCHEDULER_ROLE_ARN: z
    .string()
    .regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/.+$/, 'must be an IAM role ARN')
    .optional(),
  TENANTFLOW_SCHEDULE_DEAD_LETTER_ARN: z
    .string()
    .regex(/^arn:aws[a-z-]*:sqs:[^:]+:\d{12}:[A-Za-z0-9_-]+$/, 'must be an SQS queue ARN')
    .optional(),
});

/**
 * Where a tenant's schedules fire in AWS (`shared/runtime/schedule-trigger.ts`). Only the functions
 * that create or delete EventBridge Scheduler schedules are given the ARNs; locally a timer fires
 * them and none is needed.
 */
export interface SchedulesConfig {
  /** `TENANTFLOW_SCHEDULE_GROUP`, else `tenantflow-<stage>`: the stage's schedule group. */
  readonly groupName: string;
  /** `TENANTFLOW_SCHEDULE_TARGET_ARN`: the schedule-firing function every schedule invokes. */
  readonly targetArn: string | undefined;
  /** `TENANTFLOW_SCHEDULER_ROLE_ARN`: the role EventBridge Scheduler invokes it with. */
  readonly roleArn: string | undefined;
  /** `TENANTFLOW_SCHEDULE_DEAD_LETTER_ARN`: the queue of firings Scheduler could not deliver. */
  readonly deadLetterArn: string | undefined;
}

/** How the recovery job decides what is stuck and how hard it tries; see `shared/recovery/`. */
export interface RecoveryConfig {
  /** An in-flight execution with no progress (row change or task heartbeat) for this long is examined. */
  readonly staleAfterSeconds: number;
  /** A running task whose heartbeat is older than this is taken for dead (the runner beats every 10 s). */
  readonly heartbeatStaleAfterSeconds: number;
  /** How many times recovery restarts an execution before it abandons it. */
  readonly maxAttempts: number;
  /** Tenants scanned, and items repaired, at once. */
  readonly concurrency: number;
  /** Local only: seconds between the local server's recovery passes; 0 turns the timer off. */
  readonly intervalSeconds: number;
  /** Recovery events and runs older than this are deleted at the end of a pass. */
  readonly retentionDays: number;
}

/**
 * TLS on connections to PostgreSQL. `require` is TLS with the server certificate and host name
 * verified against Node's default CA store (which trusts RDS Proxy's ACM certificate).
 */
export type DatabaseSsl = 'require' | 'disable';

/** How the platform reaches PostgreSQL, and where its login comes from. */
export type DatabaseConfig =
  | {
      /** `DATABASE_URL`: local, tests, or any server given by URL, credentials in the URL. */
      readonly kind: 'url';
      /** The platform role's connection string, with `sslmode` added when `TENANTFLOW_DATABASE_SSL` asked for it. */
      readonly url: string;
      /** `TENANTFLOW_ADMIN_DATABASE_URL`, else `url`. */
      readonly adminUrl: string;
      readonly ssl: DatabaseSsl;
    }
  | {
      /**
       * AWS: the RDS Proxy endpoint, and the secrets from which the usernames and passwords are
       * read at runtime (`shared/config/database-credentials.ts`), never from the environment.
       */
      readonly kind: 'secret';
      readonly host: string;
      readonly port: number;
      readonly name: string;
      /** `TENANTFLOW_DATABASE_SECRET_ARN`: the platform role's login, for the pool every request uses. */
      readonly secretArn: string;
      /**
       * `TENANTFLOW_ADMIN_DATABASE_SECRET_ARN`: the admin role's login (the cluster's master user),
       * for DDL on dedicated connections. Only the functions that provision, recover or migrate are
       * given it; without it, an admin connection fails with a `ConfigurationError` naming it.
       */
      readonly adminSecretArn?: string;
      readonly ssl: DatabaseSsl;
    };

export interface TenantflowConfig {
  /** True under `npm start`: local adapters, bearer admin token. */
  readonly local: boolean;
  readonly stage: string;
  readonly database: DatabaseConfig;
  /**
   * The platform role's connection string with `DATABASE_URL`; `undefined` in the AWS form, whose
   * password exists only at runtime (see {@link DatabaseConfig}).
   */
  readonly databaseUrl: string | undefined;
  /** Bearer token accepted on admin routes. Locally always set; in AWS optional (IAM is the default). */
  readonly adminToken: string | undefined;
  /**
   * Seconds the authorizer trusts an API key it found without reading the registry again: the
   * bound on how long a replaced key keeps working (`TENANTFLOW_AUTHORIZER_CACHE_SECONDS`, 0–300).
   */
  readonly authorizerCacheSeconds: number;
  /**
   * Seconds the task runner trusts a tenant it found active before reading the registry again
   * (`TENANTFLOW_TASK_TENANT_CACHE_SECONDS`, 0–60): how long after a deactivation a task may still
   * start. Its work never commits: the completion checks the registry again.
   */
  readonly taskTenantCacheSeconds: number;
  /**
   * Whether an IAM caller identity on the event is proof of an admin. Only in AWS, where API
   * Gateway sets it after verifying SigV4 on IAM-authorised routes; never locally.
   */
  readonly trustIamAdminIdentity: boolean;
  readonly dbPoolMax: number;
  /**
   * Admin role connection for DDL (provisioning, migrations): dedicated connections only.
   * `undefined` in the AWS form, where the admin login is read from `database.adminSecretArn`.
   */
  readonly adminDatabaseUrl: string | undefined;
  /**
   * Where tenant roles connect (written into their secrets): the RDS Proxy endpoint in AWS. Tenant
   * connections use TLS as `database.ssl` says.
   */
  readonly tenantEndpoint: { readonly host: string; readonly port: number; readonly database: string };
  readonly secrets: { readonly backend: 'local' | 'secrets-manager'; readonly directory: string };
  /**
   * What admits tenant roles' logins besides PostgreSQL: `rds-proxy` when they connect through RDS
   * Proxy (`TENANTFLOW_DB_PROXY_NAME`; provisioning adds each tenant's secret to the proxy's auth
   * list), `direct` when they connect to PostgreSQL itself (locally, or `direct` mode in AWS).
   */
  readonly tenantLogins:
    | { readonly kind: 'direct' }
    | { readonly kind: 'rds-proxy'; readonly proxyName: string };
  /** Workflow name → its Step Functions state machine ARN (set by CDK; empty locally). */
  readonly stateMachineArns: Readonly<Record<string, string>>;
  /**
   * `onboarding` and `offboarding` → the tenant lifecycle's state machine ARNs (set by CDK on the
   * functions that start or resume them; empty locally, where the local orchestrator runs them).
   */
  readonly lifecycleStateMachineArns: Readonly<Record<string, string>>;
  readonly recovery: RecoveryConfig;
  /** How long a provisioning run's claim on a tenant lasts before recovery may take over. */
  readonly provisioningLeaseSeconds: number;
  /**
   * Local only, for the crash tests: where the local server kills itself (`local/failpoints.ts`).
   * Refused outside the local platform.
   */
  readonly failpoints: string | undefined;
  readonly schedules: SchedulesConfig;
}

/**
 * Parses `env` into a {@link TenantflowConfig}. Throws a `ConfigurationError` that names every
 * missing or invalid variable, so a misconfigured function fails at its first invocation with a
 * message that says what to fix.
 *
 * The database is given in one of two forms: `DATABASE_URL` (locally), or, in AWS,
 * `TENANTFLOW_DATABASE_HOST` (the RDS Proxy endpoint), `TENANTFLOW_DATABASE_PORT` (5432),
 * `TENANTFLOW_DATABASE_NAME` (`tenantflow`), `TENANTFLOW_DATABASE_SECRET_ARN` (the platform login)
 * and, for the functions that run DDL only, `TENANTFLOW_ADMIN_DATABASE_SECRET_ARN` (the admin
 * login), with TLS (`TENANTFLOW_DATABASE_SSL`, `require` by default in that form).
 *
 * @example
 * ```ts
 * const config = loadConfig({ DATABASE_URL: 'postgres://localhost/tenantflow', TENANTFLOW_LOCAL: '1' });
 * const aws = loadConfig({
 *   TENANTFLOW_DATABASE_HOST: 'tenantflow.proxy-abc.eu-west-1.rds.amazonaws.com',
 *   TENANTFLOW_DATABASE_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:tenantflow/prod/platform-AbCdEf',
 *   TENANTFLOW_ADMIN_DATABASE_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:tenantflow/prod/admin-GhIjKl',
 * });
 * ```
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): TenantflowConfig {
  const parsed = environmentSchema.safeParse(env);
  const problems = [
    ...databaseFormProblems(env),
    ...(parsed.success ? [] : parsed.error.issues.map((issue) => `${issue.path.join('.')} ${issue.message}`)),
  ];
  if (!parsed.success || problems.length > 0) {
    throw new ConfigurationError(`Invalid tenantflow configuration: ${problems.join('; ')}`);
  }
  const values = parsed.data;
  const local = values.TENANTFLOW_LOCAL === '1';
  const database = databaseConfig(values);
  const secretsBackend = values.TENANTFLOW_SECRETS ?? (local ? 'local' : 'secrets-manager');
  if (secretsBackend === 'local' && !local) {
    throw new ConfigurationError(
      'Invalid tenantflow configuration: TENANTFLOW_SECRETS=local is for the local platform only (TENANTFLOW_LOCAL=1); Lambdas must use secrets-manager',
    );
  }
  if (values.TENANTFLOW_FAILPOINTS !== undefined && values.TENANTFLOW_FAILPOINTS !== '' && !local) {
    throw new ConfigurationError(
      'Invalid tenantflow configuration: TENANTFLOW_FAILPOINTS makes the process exit on purpose and is for the local platform only (TENANTFLOW_LOCAL=1)',
    );
  }
  const stage = values.TENANTFLOW_STAGE ?? (local ? 'local' : 'dev');
  return {
    local,
    stage,
    database,
    databaseUrl: database.kind === 'url' ? database.url : undefined,
    adminToken: values.TENANTFLOW_ADMIN_TOKEN,
    authorizerCacheSeconds: values.TENANTFLOW_AUTHORIZER_CACHE_SECONDS ?? DEFAULT_AUTHORIZER_CACHE_SECONDS,
    taskTenantCacheSeconds: values.TENANTFLOW_TASK_TENANT_CACHE_SECONDS ?? DEFAULT_TASK_TENANT_CACHE_SECONDS,
    trustIamAdminIdentity: !local,
    // One invocation at a time per Lambda sandbox needs one or two connections; the local server more.
    dbPoolMax: values.TENANTFLOW_DB_POOL_MAX ?? (local ? 10 : 2),
    adminDatabaseUrl: database.kind === 'url' ? database.adminUrl : undefined,
    tenantEndpoint: tenantEndpoint(database, values),
    secrets: { backend: secretsBackend, directory: values.TENANTFLOW_SECRETS_DIR ?? '.tenantflow/secrets' },
    tenantLogins:
      values.TENANTFLOW_DB_PROXY_NAME === undefined
        ? { kind: 'direct' }
        : { kind: 'rds-proxy', proxyName: values.TENANTFLOW_DB_PROXY_NAME },
    stateMachineArns: values.TENANTFLOW_STATE_MACHINE_ARNS ?? {},
    lifecycleStateMachineArns: values.TENANTFLOW_LIFECYCLE_STATE_MACHINE_ARNS ?? {},
    recovery: {
      staleAfterSeconds: values.TENANTFLOW_RECOVERY_STALE_SECONDS ?? 300,
      heartbeatStaleAfterSeconds: values.TENANTFLOW_RECOVERY_HEARTBEAT_STALE_SECONDS ?? 60,
      maxAttempts: values.TENANTFLOW_RECOVERY_MAX_ATTEMPTS ?? 3,
      concurrency: values.TENANTFLOW_RECOVERY_CONCURRENCY ?? 4,
      intervalSeconds: values.TENANTFLOW_RECOVERY_INTERVAL_SECONDS ?? 60,
      retentionDays: values.TENANTFLOW_RECOVERY_RETENTION_DAYS ?? 30,
    },
    provisioningLeaseSeconds: values.TENANTFLOW_PROVISIONING_LEASE_SECONDS ?? 120,
    failpoints: values.TENANTFLOW_FAILPOINTS === '' ? undefined : values.TENANTFLOW_FAILPOINTS,
    schedules: {
      groupName: values.TENANTFLOW_SCHEDULE_GROUP ?? `tenantflow-${stage}`,
      targetArn: values.TENANTFLOW_SCHEDULE_TARGET_ARN,
      roleArn: values.TENANTFLOW_SCHEDULER_ROLE_ARN,
      deadLetterArn: values.TENANTFLOW_SCHEDULE_DEAD_LETTER_ARN,
    },
  };
}

type EnvironmentValues = z.output<typeof environmentSchema>;

/** The variables that choose the AWS form; `TENANTFLOW_DATABASE_SSL` belongs to both forms. */
const AWS_DATABASE_VARIABLES = [
  'TENANTFLOW_DATABASE_HOST',
  'TENANTFLOW_DATABASE_PORT',
  'TENANTFLOW_DATABASE_NAME',
  'TENANTFLOW_DATABASE_SECRET_ARN',
] as const;

const DATABASE_FORMS =
  'set either DATABASE_URL (a postgres:// connection string, e.g. locally) or TENANTFLOW_DATABASE_HOST and TENANTFLOW_DATABASE_SECRET_ARN (the RDS Proxy endpoint and the platform secret, in AWS)';

/** Exactly one way to reach the database; checked on the raw environment so it joins the other problems. */
function databaseFormProblems(env: NodeJS.ProcessEnv): string[] {
  const urlGiven = env.DATABASE_URL !== undefined;
  const awsGiven = AWS_DATABASE_VARIABLES.filter((name) => env[name] !== undefined);
  if (urlGiven && awsGiven.length > 0) {
    return [`DATABASE_URL and ${awsGiven.join(', ')} are both set: ${DATABASE_FORMS}, not both`];
  }
  if (!urlGiven && awsGiven.length === 0) {
    return [`no database is configured: ${DATABASE_FORMS}`];
  }
  if (urlGiven) {
    return env.TENANTFLOW_ADMIN_DATABASE_SECRET_ARN === undefined
      ? []
      : [
          'TENANTFLOW_ADMIN_DATABASE_SECRET_ARN belongs to the AWS form and cannot be combined with DATABASE_URL: give the admin role as TENANTFLOW_ADMIN_DATABASE_URL instead',
        ];
  }
  const problems = (['TENANTFLOW_DATABASE_HOST', 'TENANTFLOW_DATABASE_SECRET_ARN'] as const)
    .filter((name) => env[name] === undefined)
    .map((name) => `${name} is required with ${awsGiven.join(', ')} (the AWS form; or ${DATABASE_FORMS})`);
  if (env.TENANTFLOW_ADMIN_DATABASE_URL !== undefined) {
    problems.push(
      'TENANTFLOW_ADMIN_DATABASE_URL cannot be combined with the AWS form: the admin login is read from TENANTFLOW_ADMIN_DATABASE_SECRET_ARN',
    );
  }
  return problems;
}

function databaseConfig(values: EnvironmentValues): DatabaseConfig {
  const { DATABASE_URL: url, TENANTFLOW_DATABASE_SSL: ssl } = values;
  if (url === undefined) {
    const {
      TENANTFLOW_DATABASE_HOST: host,
      TENANTFLOW_DATABASE_SECRET_ARN: secretArn,
      TENANTFLOW_ADMIN_DATABASE_SECRET_ARN: adminSecretArn,
    } = values;
    if (host === undefined || secretArn === undefined) {
      // Already reported by databaseFormProblems; kept so the types need no assertion.
      throw new ConfigurationError(`Invalid tenantflow configuration: ${DATABASE_FORMS}`);
    }
    return {
      kind: 'secret',
      host,
      port: values.TENANTFLOW_DATABASE_PORT ?? 5432,
      name: values.TENANTFLOW_DATABASE_NAME ?? 'tenantflow',
      secretArn,
      ...(adminSecretArn === undefined ? {} : { adminSecretArn }),
      // RDS Proxy requires TLS; `disable` is for a plain PostgreSQL (the integration tests).
      ssl: ssl ?? 'require',
    };
  }
  const adminUrl = values.TENANTFLOW_ADMIN_DATABASE_URL;
  return {
    kind: 'url',
    url: withSslMode(url, 'DATABASE_URL', ssl),
    adminUrl:
      adminUrl === undefined
        ? withSslMode(url, 'DATABASE_URL', ssl)
        : withSslMode(adminUrl, 'TENANTFLOW_ADMIN_DATABASE_URL', ssl),
    ssl: ssl ?? urlSsl(url, 'DATABASE_URL') ?? 'disable',
  };
}

/**
 * Parses a connection string. `new URL`'s own error carries the input, password included, so it
 * is replaced by one that names only the variable.
 */
function parseConnectionUrl(url: string, name: string): URL {
  try {
    return new URL(url);
  } catch {
    throw new ConfigurationError(`Invalid tenantflow configuration: ${name} is not a valid URL`);
  }
}

/** What a connection string says about TLS, read as `pg-connection-string` does; `undefined` if nothing. */
function urlSsl(url: string, name: string): DatabaseSsl | undefined {
  const parameters = parseConnectionUrl(url, name).searchParams;
  const sslmode = parameters.get('sslmode');
  const ssl = parameters.get('ssl');
  if (sslmode !== null) {
    return sslmode === 'disable' ? 'disable' : 'require';
  }
  if (ssl !== null) {
    return ssl === '0' ? 'disable' : 'require';
  }
  return undefined;
}

/**
 * Writes an explicit `TENANTFLOW_DATABASE_SSL` into a connection string that says nothing about
 * TLS, so every consumer of the URL (the pool, `DatabaseAdmin`, migrations) gets the same TLS;
 * a URL that says the opposite is refused rather than silently overridden.
 */
function withSslMode(url: string, name: string, ssl: DatabaseSsl | undefined): string {
  const said = urlSsl(url, name);
  if (ssl === undefined || said === ssl) {
    return url;
  }
  if (said !== undefined) {
    throw new ConfigurationError(
      `Invalid tenantflow configuration: TENANTFLOW_DATABASE_SSL=${ssl} contradicts the sslmode/ssl of ${name}`,
    );
  }
  // verify-full: TLS with the certificate and host name verified (see databaseConnectionUrl).
  return `${url}${url.includes('?') ? '&' : '?'}sslmode=${ssl === 'require' ? 'verify-full' : 'disable'}`;
}

function tenantEndpoint(
  database: DatabaseConfig,
  values: EnvironmentValues,
): TenantflowConfig['tenantEndpoint'] {
  if (database.kind === 'secret') {
    return {
      host: values.TENANTFLOW_TENANT_DB_HOST ?? database.host,
      port: values.TENANTFLOW_TENANT_DB_PORT ?? database.port,
      database: database.name,
    };
  }
  const platformUrl = parseConnectionUrl(database.url, 'DATABASE_URL');
  return {
    host: values.TENANTFLOW_TENANT_DB_HOST ?? platformUrl.hostname,
    port: values.TENANTFLOW_TENANT_DB_PORT ?? (platformUrl.port === '' ? 5432 : Number(platformUrl.port)),
    database: decodeURIComponent(platformUrl.pathname.replace(/^\//, '')) || 'postgres',
  };
}

let cached: TenantflowConfig | undefined;

/** The process-wide configuration, read from `process.env` on first use and then kept. */
export function getConfig(): TenantflowConfig {
  cached ??= loadConfig(process.env);
  return cached;
}
