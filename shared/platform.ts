import { resolve } from 'node:path';
import type { RDSClient } from '@aws-sdk/client-rds';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type pg from 'pg';
import type { TenantflowConfig } from './config/config.js';
import { getConfig } from './config/config.js';
import {
  databaseConnectionConfig,
  databaseConnectionUrl,
  databaseTls,
  missingAdminLoginError,
  resolveDatabaseCredentials,
} from './config/database-credentials.js';
import { connectionUser, createPlatformPool } from './db/connections.js';
import { PlatformLeases } from './db/platform-leases.js';
import { SQLSTATE, sqlState } from './db/sql.js';
import { TenantConnections } from './db/tenant-connections.js';
import type { AdminAuthOptions } from './http/admin-auth.middleware.js';
import {
  DatabaseAdmin,
  type DatabaseAdminOptions,
  type PlatformRoleSpec,
} from './provisioning/database-admin.js';
import { ProvisioningService, type StepHook } from './provisioning/provisioning-service.js';
import { DirectTenantLogins, type TenantLogins } from './provisioning/tenant-logins.js';
import { loadTenantMigrations } from './provisioning/tenant-migrations.js';
import { LocalSecretStore } from './secrets/local-secret-store.js';
import type { SecretStore } from './secrets/secret-store.js';
import { SecretsManagerSecretStore } from './secrets/secrets-manager-secret-store.js';
import { PgTenantRegistry } from './tenancy/pg-tenant-registry.js';
import { TenantAdminService } from './tenancy/tenant-admin-service.js';
import { TenantContextSwitch } from './tenancy/tenant-context.js';
import type { TenantRegistry } from './tenancy/tenant-registry.js';

/**
 * The services a tenantflow process runs on, wired once from configuration. Lambdas get one per
 * sandbox through {@link getPlatform}; the local server and the tests build their own with
 * {@link createPlatform}.
 */
export interface Platform {
  readonly config: TenantflowConfig;
  /** The platform role's pool: schema-qualified SQL only, no session state. */
  readonly pool: pg.Pool;
  readonly registry: TenantRegistry;
  readonly tenants: TenantContextSwitch;
  readonly secrets: SecretStore;
  /** Tenant-role connections for task code. */
  readonly tenantConnections: TenantConnections;
  readonly admin: DatabaseAdmin;
  readonly provisioning: ProvisioningService;
  /** What admits tenant roles' logins besides PostgreSQL (the RDS Proxy auth list in AWS). */
  readonly tenantLogins: TenantLogins;
  readonly tenantAdmin: TenantAdminService;
  readonly adminAuth: AdminAuthOptions;
  /**
   * AWS form: the platform secret's login, which the migrate function creates as a role when it
   * does not exist yet (the first deploy). Undefined with `DATABASE_URL`.
   */
  readonly platformLogin: PlatformRoleSpec | undefined;
  close(): Promise<void>;
}

export interface PlatformOverrides {
  readonly secrets?: SecretStore;
  /**
   * The Secrets Manager client for the platform secret (AWS form) and the tenant secrets.
   * @default new SecretsManagerClient({}), made only when one of them needs it
   */
  readonly secretsManagerClient?: SecretsManagerClient;
  /**
   * The RDS client for the proxy's auth list (`TENANTFLOW_DB_PROXY_NAME`).
   * @default new RDSClient({}), made only when that is configured
   */
  readonly rdsClient?: RDSClient;
  /** Failure injection for the resumability tests and the crash harness. */
  readonly afterProvisioningStep?: StepHook;
  /**
   * AWS form only: called when the database refuses a login read from a secret (SQLSTATE 28P01):
   * the platform secret's on the platform pool, or the admin secret's on an admin connection,
   * i.e. that secret was rotated after this platform read it. {@link cachedPlatform} uses it to build a new platform.
   */
  readonly onCredentialsRejected?: () => void;
}

/**
 * Wires the platform from a configuration.
 *
 * @example
 * ```ts
 * const platform = await createPlatform(loadConfig({ DATABASE_URL: url, TENANTFLOW_LOCAL: '1' }));
 * await platform.tenantAdmin.register({ tenantId: 'acme', name: 'Acme' });
 * await platform.close();
 * ```
 */
export async function createPlatform(
  config: TenantflowConfig,
  overrides: PlatformOverrides = {},
): Promise<Platform> {
  let secretsManager = overrides.secretsManagerClient;
  const secretsManagerClient = () => {
    secretsManager ??= new SecretsManagerClient({});
    return secretsManager;
  };
  // First, so that a missing or malformed platform secret fails before anything is opened.
  const database = await openPlatformDatabase(config, secretsManagerClient, overrides.onCredentialsRejected);
  const { pool } = database;
  const registry = new PgTenantRegistry(pool);
  const tenants = new TenantContextSwitch(registry);
  const secrets = overrides.secrets ?? createSecretStore(config, secretsManagerClient);
  const tenantConnections = new TenantConnections({
    secrets,
    // Tenant roles connect through the same proxy as the platform, so with the same TLS.
    ssl: databaseTls(config.database.ssl),
    // A Lambda sandbox serves one invocation at a time, so a few tenants' pools suffice; the local
    // server runs every tenant's tasks in one process (32 × 2 stays under PostgreSQL's default 100).
    maxTenants: config.local ? 32 : 8,
    ...(hasInvalidate(secrets)
      ? { invalidateSecret: (tenantId: string) => secrets.invalidate(tenantId) }
      : {}),
  });
  const adminOptions: DatabaseAdminOptions = {
    adminUrl: database.adminUrl,
    missingAdminLogin: missingAdminLoginError,
    catalog: pool,
    tenantMigrations: await loadTenantMigrations(),
    // The login the platform pool uses; when a URL does not name it, asked once (DDL only).
    platformRole: database.platformRole ?? (() => currentRole(pool)),
  };
  const admin =
    database.onCredentialsRejected === undefined
      ? new DatabaseAdmin(adminOptions)
      : new CredentialsReportingDatabaseAdmin(adminOptions, database.onCredentialsRejected);
  const tenantLogins = await createTenantLogins(config, pool, overrides.rdsClient);
  const provisioning = new ProvisioningService({
    registry,
    admin,
    secrets,
    logins: tenantLogins,
    endpoint: config.tenantEndpoint,
    onCredentialsChanged: (tenantId) => tenantConnections.forget(tenantId),
    leaseMs: config.provisioningLeaseSeconds * 1000,
    ...(overrides.afterProvisioningStep === undefined ? {} : { afterStep: overrides.afterProvisioningStep }),
  });
  return {
    config,
    pool,
    registry,
    tenants,
    secrets,
    tenantConnections,
    admin,
    provisioning,
    tenantLogins,
    tenantAdmin: new TenantAdminService(tenants, provisioning, registry),
    adminAuth: { adminToken: config.adminToken, trustIamIdentity: config.trustIamAdminIdentity },
    platformLogin: database.platformLogin,
    close: async () => {
      await tenantConnections.close();
      await pool.end();
    },
  };
}

interface PlatformDatabase {
  readonly pool: pg.Pool;
  /** Undefined in the AWS form when this function was given no admin secret. */
  readonly adminUrl: string | undefined;
  /** The platform role's name, when the configuration says it. */
  readonly platformRole: string | undefined;
  /** AWS form: the platform secret's login, so the migrate function can create the role. */
  readonly platformLogin: PlatformRoleSpec | undefined;
  readonly onCredentialsRejected: (() => void) | undefined;
}

/**
 * The platform pool and the admin connection string. With `DATABASE_URL` both come from the
 * configuration. In the AWS form the pool logs in with the platform secret, and DDL with the admin
 * secret (`adminSecretArn`, given only to the functions that provision, recover or migrate), both
 * read now, once per platform; without the admin secret, any admin connection fails with a
 * `ConfigurationError` naming TENANTFLOW_ADMIN_DATABASE_SECRET_ARN. A refused password on either
 * login reports `onCredentialsRejected`, so the next platform reads both secrets again.
 */
async function openPlatformDatabase(
  config: TenantflowConfig,
  secretsManagerClient: () => SecretsManagerClient,
  onCredentialsRejected: (() => void) | undefined,
): Promise<PlatformDatabase> {
  const { database } = config;
  if (database.kind === 'url') {
    return {
      pool: createPlatformPool({ connectionString: database.url, max: config.dbPoolMax }),
      adminUrl: database.adminUrl,
      platformRole: connectionUser(database.url),
      platformLogin: undefined,
      // Building the platform again would read the same URL: nothing to gain.
      onCredentialsRejected: undefined,
    };
  }
  const client = secretsManagerClient();
  const { adminSecretArn } = database;
  const [credentials, adminCredentials] = await Promise.all([
    resolveDatabaseCredentials({ client, secretArn: database.secretArn, login: 'platform' }),
    adminSecretArn === undefined
      ? undefined
      : resolveDatabaseCredentials({ client, secretArn: adminSecretArn, login: 'admin' }),
  ]);
  const target = { host: database.host, port: database.port, database: database.name, ssl: database.ssl };
  return {
    pool: createPlatformPool({
      connection: databaseConnectionConfig(target, credentials),
      max: config.dbPoolMax,
      ...(onCredentialsRejected === undefined
        ? {}
        : { onAuthenticationFailure: () => onCredentialsRejected() }),
    }),
    // DDL logs in as the admin role, through the same proxy. `DatabaseAdmin` takes a URL: it is
    // built, encoded, here. Its refusals reach `onCredentialsRejected` through createPlatform.
    adminUrl: adminCredentials === undefined ? undefined : databaseConnectionUrl(target, adminCredentials),
    platformRole: credentials.username,
    platformLogin: { name: credentials.username, password: credentials.password },
    onCredentialsRejected,
  };
}

async function currentRole(pool: pg.Pool): Promise<string> {
  const { rows } = await pool.query<{ role: string }>('SELECT current_user AS role');
  const role = rows[0]?.role;
  if (role === undefined) {
    throw new Error('The platform pool could not tell which role it logs in as');
  }
  return role;
}

/** A `DatabaseAdmin` whose connections report a refused password, as the platform pool does. */
class CredentialsReportingDatabaseAdmin extends DatabaseAdmin {
  readonly #onCredentialsRejected: () => void;

  constructor(options: DatabaseAdminOptions, onCredentialsRejected: () => void) {
    super(options);
    this.#onCredentialsRejected = onCredentialsRejected;
  }

  override async withConnection<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
    try {
      return await super.withConnection(work);
    } catch (error) {
      if (sqlState(error) === SQLSTATE.invalidPassword) {
        this.#onCredentialsRejected();
      }
      throw error;
    }
  }
}

/**
 * The RDS Proxy auth list when tenant roles log in through the proxy; otherwise nothing to keep.
 * The RDS client is loaded only then: it costs ~50 ms of cold start, and only the functions that
 * provision, deprovision or recover tenants are configured with a proxy name.
 */
async function createTenantLogins(
  config: TenantflowConfig,
  pool: pg.Pool,
  rdsClient: RDSClient | undefined,
): Promise<TenantLogins> {
  if (config.tenantLogins.kind === 'direct') {
    return new DirectTenantLogins();
  }
  const [{ RdsProxyTenantLogins }, { RDSClient }] = await Promise.all([
    import('./provisioning/rds-proxy-tenant-logins.js'),
    import('@aws-sdk/client-rds'),
  ]);
  return new RdsProxyTenantLogins({
    client: rdsClient ?? new RDSClient({}),
    proxyName: config.tenantLogins.proxyName,
    leases: new PlatformLeases(pool),
    stage: config.stage,
  });
}

function createSecretStore(config: TenantflowConfig, client: () => SecretsManagerClient): SecretStore {
  if (config.secrets.backend === 'local') {
    return new LocalSecretStore({ directory: resolve(config.secrets.directory) });
  }
  return new SecretsManagerSecretStore({ client: client(), stage: config.stage });
}

function hasInvalidate(store: SecretStore): store is SecretStore & { invalidate(tenantId: string): void } {
  return typeof (store as { invalidate?: unknown }).invalidate === 'function';
}

/**
 * Keeps the platform `build` makes, so a Lambda sandbox builds it once. A build that fails is not
 * kept. A platform whose database login was refused (`onCredentialsRejected`: the platform secret
 * was rotated after it was read) is dropped, so the next call builds one that reads the secrets
 * again; the dropped one is closed then, not at once, so the call that saw the refusal can finish
 * with the connections it holds.
 *
 * @example
 * ```ts
 * const platform = cachedPlatform((overrides) => createPlatform(loadConfig(env), overrides));
 * const { pool } = await platform();
 * ```
 */
export function cachedPlatform(
  build: (overrides: Pick<PlatformOverrides, 'onCredentialsRejected'>) => Promise<Platform>,
): () => Promise<Platform> {
  let current: Promise<Platform> | undefined;
  let retired: Promise<Platform> | undefined;
  return function currentPlatform(): Promise<Platform> {
    if (current !== undefined) {
      return current;
    }
    if (retired !== undefined) {
      void retired.then((platform) => platform.close()).catch(() => undefined);
      retired = undefined;
    }
    let building: Promise<Platform> | undefined;
    const onCredentialsRejected = function dropPlatformWithRotatedCredentials(): void {
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

const processPlatform = cachedPlatform((overrides) => createPlatform(getConfig(), overrides));

/**
 * The platform of this process (one per Lambda sandbox), built from the environment on first use
 * and again after the database refused a password read from the platform or admin secret (see {@link cachedPlatform}).
 */
export function getPlatform(): Promise<Platform> {
  return processPlatform();
}
