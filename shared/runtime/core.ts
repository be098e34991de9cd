import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type pg from 'pg';
import { getConfig, type TenantflowConfig } from '../config/config.js';
import {
  type DatabaseTarget,
  databaseConnectionConfig,
  resolveDatabaseCredentials,
} from '../config/database-credentials.js';
import { connectionUser, createPlatformPool } from '../db/connections.js';
import { createLogger } from '../logging/logger.js';
import type { PlatformMetrics } from '../logging/metrics.js';
import { createEmfMetrics, type EmfMetricSink } from '../logging/powertools-metrics.js';
import { traced } from '../logging/tracer.js';
import type { PlatformRoleSpec } from '../provisioning/database-admin.js';
import { PgTenantRegistry } from '../tenancy/pg-tenant-registry.js';
import type { TenantRegistry } from '../tenancy/tenant-registry.js';

/**
 * What every tenantflow process needs, whatever it does: the configuration, the platform role's
 * pool and the tenant registry over it. Each capability (auth, task running, executions,
 * provisioning, recovery) is built on a core by its own factory in this folder, so a Lambda builds
 * only what its handler uses, and the local server builds them all on one core.
 */
export interface PlatformCore {
  readonly config: TenantflowConfig;
  /** The platform role's pool: schema-qualified SQL only, no session state. */
  readonly pool: pg.Pool;
  readonly registry: TenantRegistry;
  /** The platform role's name when the configuration says it (the URL's user, or the secret's). */
  readonly platformRole: string | undefined;
  /**
   * AWS form: the platform secret's login, which the migrate function creates as a role when it
   * does not exist yet (the first deploy). Undefined with `DATABASE_URL`.
   */
  readonly platformLogin: PlatformRoleSpec | undefined;
  /** Where the AWS form connects, for the capabilities that log in with another secret (the admin's). */
  readonly databaseTarget: DatabaseTarget | undefined;
  /** What the services record (`shared/logging/metrics.ts`), published as EMF by {@link metricSink}. */
  readonly metrics: PlatformMetrics;
  /**
   * The EMF buffer behind {@link metrics}: a Lambda publishes it after each invocation
   * (`coreHandler`); the local server every {@link LOCAL_METRICS_FLUSH_MS} and when it stops.
   */
  readonly metricSink: EmfMetricSink;
  /** The Secrets Manager client of this process, made on first use. */
  secretsManager(): SecretsManagerClient;
  /**
   * Reports that the database refused a password read from a secret (SQLSTATE 28P01): the core
   * is then dropped by {@link cachedCore}, so the next invocation reads the secrets again.
   */
  reportCredentialsRejected(): void;
  /** Registers what a capability opened (tenant pools), closed with the core. */
  closeWith(close: () => Promise<void>): void;
  close(): Promise<void>;
}

export interface PlatformCoreOptions {
  /**
   * The Secrets Manager client for the platform secret (AWS form) and the tenant secrets.
   * @default new SecretsManagerClient({}), made only when something needs it
   */
  readonly secretsManagerClient?: SecretsManagerClient | undefined;
  /** Called when the database refuses a login read from a secret (AWS form only). */
  readonly onCredentialsRejected?: (() => void) | undefined;
  /** @default EMF for the configuration's stage, with `POWERTOOLS_METRICS_NAMESPACE` and `POWERTOOLS_SERVICE_NAME` */
  readonly metrics?: { readonly metrics: PlatformMetrics; readonly sink: EmfMetricSink } | undefined;
}

/**
 * How often the local server publishes its metrics: one EMF line per subject every 10 s at most,
 * rather than one per request, beside the server's own log lines.
 */
export const LOCAL_METRICS_FLUSH_MS = 10_000;

/**
 * Opens the core of a configuration. With `DATABASE_URL` the pool logs in with that URL; in the
 * AWS form it reads the platform secret first, so a missing or malformed secret fails before
 * anything is opened.
 *
 * @example
 * ```ts
 * const core = await createPlatformCore(loadConfig({ DATABASE_URL: url, TENANTFLOW_LOCAL: '1' }));
 * const tenant = await core.registry.get('acme');
 * await core.close();
 * ```
 */
export async function createPlatformCore(
  config: TenantflowConfig,
  options: PlatformCoreOptions = {},
): Promise<PlatformCore> {
  let client = options.secretsManagerClient;
  const secretsManager = () => {
    client ??= traced(new SecretsManagerClient({}));
    return client;
  };
  const { database } = config;
  const onCredentialsRejected = database.kind === 'url' ? undefined : options.onCredentialsRejected;
  let pool: pg.Pool;
  let platformRole: string | undefined;
  let platformLogin: PlatformRoleSpec | undefined;
  let databaseTarget: DatabaseTarget | undefined;
  if (database.kind === 'url') {
    pool = createPlatformPool({ connectionString: database.url, max: config.dbPoolMax });
    platformRole = connectionUser(database.url);
  } else {
    const credentials = await resolveDatabaseCredentials({
      client: secretsManager(),
      secretArn: database.secretArn,
      login: 'platform',
    });
    databaseTarget = { host: database.host, port: database.port, database: database.name, ssl: database.ssl };
    pool = createPlatformPool({
      connection: databaseConnectionConfig(databaseTarget, credentials),
      max: config.dbPoolMax,
      ...(onCredentialsRejected === undefined
        ? {}
        : { onAuthenticationFailure: () => onCredentialsRejected() }),
    });
    platformRole = credentials.username;
    platformLogin = { name: credentials.username, password: credentials.password };
  }
  const closers: Array<() => Promise<void>> = [];
  const emf = options.metrics ?? createEmfMetrics({ stage: config.stage, logger: createLogger('metrics') });
  if (config.local) {
    const publish = setInterval(() => emf.sink.flush(), LOCAL_METRICS_FLUSH_MS);
    publish.unref();
    closers.push(async () => {
      clearInterval(publish);
      emf.sink.flush();
    });
  }
  return {
    config,
    pool,
    registry: new PgTenantRegistry(pool),
    platformRole,
    platformLogin,
    databaseTarget,
    metrics: emf.metrics,
    metricSink: emf.sink,
    secretsManager,
    // With a URL, building again would read the same URL: nothing to gain.
    reportCredentialsRejected: () => onCredentialsRejected?.(),
    closeWith: (close) => {
      closers.push(close);
    },
    close: async () => {
      for (const close of closers.splice(0).reverse()) {
        await close();
      }
      await pool.end();
    },
  };
}

/**
 * Keeps the core `build` makes, so a Lambda sandbox builds it once. A build that fails is not
 * kept. A core whose database login was refused (the platform or admin secret was rotated after
 * it was read) is dropped, so the next call builds one that reads the secrets again; the dropped
 * one is closed then, not at once, so the call that saw the refusal can finish with the
 * connections it holds.
 *
 * @example
 * ```ts
 * const currentCore = cachedCore((options) => createPlatformCore(loadConfig(env), options));
 * const { pool } = await currentCore();
 * ```
 */
export function cachedCore(
  build: (options: Pick<PlatformCoreOptions, 'onCredentialsRejected'>) => Promise<PlatformCore>,
): () => Promise<PlatformCore> {
  let current: Promise<PlatformCore> | undefined;
  let retired: Promise<PlatformCore> | undefined;
  return function currentCore(): Promise<PlatformCore> {
    if (current !== undefined) {
      return current;
    }
    if (retired !== undefined) {
      void retired.then((core) => core.close()).catch(() => undefined);
      retired = undefined;
    }
    let building: Promise<PlatformCore> | undefined;
    const onCredentialsRejected = function dropCoreWithRotatedCredentials(): void {
      if (building !== undefined && current === building) {
        current = undefined;
        retired = building;
      }
    };
    building = build({ onCredentialsRejected }).catch((error: unknown) => {
      if (current === building) {
        current = undefined;
      }
      throw error;
    });
    current = building;
    return building;
  };
}

/**
 * The core of this process (one per Lambda sandbox), built from the environment on first use and
 * again after the database refused a password read from a secret (see {@link cachedCore}).
 */
export const processCore: () => Promise<PlatformCore> = cachedCore((options) =>
  createPlatformCore(getConfig(), options),
);
