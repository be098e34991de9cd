import { ConfigurationError } from '../errors.js';
import { z } from '../validation/zod.js';

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
    .string({
      message:
        "is required: the platform role's PostgreSQL connection string (the RDS Proxy endpoint in AWS)",
    })
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// connection string'),
  TENANTFLOW_ADMIN_TOKEN: z.string().min(24, 'must be at least 24 characters').optional(),
  TENANTFLOW_DB_POOL_MAX: z.coerce.number().int().min(1).max(100).optional(),
  TENANTFLOW_ADMIN_DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// connection string')
    .optional(),
  TENANTFLOW_TENANT_DB_HOST: z.string().min(1).optional(),
  TENANTFLOW_TENANT_DB_PORT: z.coerce.number().int().min(1).max(65535).optional(),
  TENANTFLOW_SECRETS: z
    .enum(['local', 'secrets-manager'], { message: "must be 'local' or 'secrets-manager'" })
    .optional(),
  TENANTFLOW_SECRETS_DIR: z.string().min(1).optional(),
  TENANTFLOW_STATE_MACHINE_ARNS: z
    .string()
    .transform((text, ctx) => {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        ctx.addIssue({
          code: 'custom',
          message: 'must be a JSON object of workflow name to state machine ARN',
        });
        return z.NEVER;
      }
    })
    .pipe(
      z.record(
        z.string(),
        z
          .string()
          .regex(/^arn:aws[a-z-]*:states:[^:]+:\d{12}:stateMachine:[^:]+$/, 'must be a state machine ARN'),
        { message: 'must be a JSON object of workflow name to state machine ARN' },
      ),
    )
    .optional(),
  TENANTFLOW_RECOVERY_STALE_SECONDS: z.coerce.number().int().min(0).max(86_400).optional(),
  TENANTFLOW_RECOVERY_HEARTBEAT_STALE_SECONDS: z.coerce.number().int().min(1).max(86_400).optional(),
  TENANTFLOW_RECOVERY_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(100).optional(),
  TENANTFLOW_RECOVERY_CONCURRENCY: z.coerce.number().int().min(1).max(64).optional(),
  TENANTFLOW_RECOVERY_INTERVAL_SECONDS: z.coerce.number().int().min(0).max(86_400).optional(),
  TENANTFLOW_RECOVERY_RETENTION_DAYS: z.coerce.number().int().min(1).max(3650).optional(),
  TENANTFLOW_PROVISIONING_LEASE_SECONDS: z.coerce.number().int().min(1).max(3600).optional(),
  TENANTFLOW_FAILPOINTS: z.string().optional(),
});

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

export interface TenantflowConfig {
  /** True under `npm start`: local adapters, bearer admin token. */
  readonly local: boolean;
  readonly stage: string;
  readonly databaseUrl: string;
  /** Bearer token accepted on admin routes. Locally always set; in AWS optional (IAM is the default). */
  readonly adminToken: string | undefined;
  /**
   * Whether an IAM caller identity on the event is proof of an admin. Only in AWS, where API
   * Gateway sets it after verifying SigV4 on IAM-authorised routes; never locally.
   */
  readonly trustIamAdminIdentity: boolean;
  readonly dbPoolMax: number;
  /** Admin role connection for DDL (provisioning, migrations): dedicated connections only. */
  readonly adminDatabaseUrl: string;
  /** Where tenant roles connect (written into their secrets): the RDS Proxy endpoint in AWS. */
  readonly tenantEndpoint: { readonly host: string; readonly port: number; readonly database: string };
  readonly secrets: { readonly backend: 'local' | 'secrets-manager'; readonly directory: string };
  /** Workflow name → its Step Functions state machine ARN (set by CDK; empty locally). */
  readonly stateMachineArns: Readonly<Record<string, string>>;
  readonly recovery: RecoveryConfig;
  /** How long a provisioning run's claim on a tenant lasts before recovery may take over. */
  readonly provisioningLeaseSeconds: number;
  /**
   * Local only, for the crash tests: where the local server kills itself (`local/failpoints.ts`).
   * Refused outside the local platform.
   */
  readonly failpoints: string | undefined;
}

/**
 * Parses `env` into a {@link TenantflowConfig}. Throws a `ConfigurationError` that names every
 * missing or invalid variable, so a misconfigured function fails at its first invocation with a
 * message that says what to fix.
 *
 * @example
 * ```ts
 * const config = loadConfig({ DATABASE_URL: 'postgres://localhost/tenantflow', TENANTFLOW_LOCAL: '1' });
 * ```
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): TenantflowConfig {
  const parsed = environmentSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')} ${issue.message}`);
    throw new ConfigurationError(`Invalid tenantflow configuration: ${problems.join('; ')}`);
  }
  const values = parsed.data;
  const local = values.TENANTFLOW_LOCAL === '1';
  const platformUrl = new URL(values.DATABASE_URL);
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
  return {
    local,
    stage: values.TENANTFLOW_STAGE ?? (local ? 'local' : 'dev'),
    databaseUrl: values.DATABASE_URL,
    adminToken: values.TENANTFLOW_ADMIN_TOKEN,
    trustIamAdminIdentity: !local,
    // One invocation at a time per Lambda sandbox needs one or two connections; the local server more.
    dbPoolMax: values.TENANTFLOW_DB_POOL_MAX ?? (local ? 10 : 2),
    adminDatabaseUrl: values.TENANTFLOW_ADMIN_DATABASE_URL ?? values.DATABASE_URL,
    tenantEndpoint: {
      host: values.TENANTFLOW_TENANT_DB_HOST ?? platformUrl.hostname,
      port: values.TENANTFLOW_TENANT_DB_PORT ?? (platformUrl.port === '' ? 5432 : Number(platformUrl.port)),
      database: decodeURIComponent(platformUrl.pathname.replace(/^\//, '')) || 'postgres',
    },
    secrets: { backend: secretsBackend, directory: values.TENANTFLOW_SECRETS_DIR ?? '.tenantflow/secrets' },
    stateMachineArns: values.TENANTFLOW_STATE_MACHINE_ARNS ?? {},
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
  };
}

let cached: TenantflowConfig | undefined;

/** The process-wide configuration, read from `process.env` on first use and then kept. */
export function getConfig(): TenantflowConfig {
  cached ??= loadConfig(process.env);
  return cached;
}
