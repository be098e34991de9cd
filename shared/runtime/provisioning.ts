import type { RDSClient } from '@aws-sdk/client-rds';
import type pg from 'pg';
import {
  databaseConnectionUrl,
  missingAdminLoginError,
  resolveDatabaseCredentials,
} from '../config/database-credentials.js';
import type { TenantMigrationSet } from '../db/migrations.js';
import { PlatformLeases } from '../db/platform-leases.js';
import { SQLSTATE, sqlState } from '../db/sql.js';
import type { Failpoints } from '../kernel/failpoints.js';
import { traced } from '../logging/tracer.js';
import { DatabaseAdmin, type DatabaseAdminOptions } from '../provisioning/database-admin.js';
import { ProvisioningService, type TenantScheduleCleanup } from '../provisioning/provisioning-service.js';
import { DirectTenantLogins, type TenantLogins } from '../provisioning/tenant-logins.js';
import { loadTenantMigrations } from '../provisioning/tenant-migrations.js';
import type { SecretStore } from '../secrets/secret-store.js';
import type { PlatformCore } from './core.js';
import { createSecretStore } from './secret-store.js';

export interface ProvisioningOptions {
  /** @default the store the configuration names ({@link createSecretStore}) */
  readonly secrets?: SecretStore | undefined;
  /**
   * The RDS client for the proxy's auth list (`TENANTFLOW_DB_PROXY_NAME`).
   * @default new RDSClient({}), made only when that is configured
   */
  readonly rdsClient?: RDSClient | undefined;
  /** Told when a tenant's credentials change, so a process that also runs tasks drops its cached connections. */
  readonly onCredentialsChanged?: ((tenantId: string) => void | Promise<void>) | undefined;
  readonly failpoints?: Failpoints | undefined;
  /** The registered workflows' tables (`workflows.tenantMigrations()`), applied after the platform's. */
  readonly tenantMigrations?: readonly TenantMigrationSet[] | undefined;
  /** Deletes a tenant's schedules when it is offboarded (`createScheduleCleanup`); none by default. */
  readonly scheduleCleanup?: TenantScheduleCleanup | undefined;
}

export interface Provisioning {
  readonly admin: DatabaseAdmin;
  readonly provisioning: ProvisioningService;
  /** What admits tenant roles' logins besides PostgreSQL (the RDS Proxy auth list in AWS). */
  readonly tenantLogins: TenantLogins;
  readonly secrets: SecretStore;
}

/**
 * Onboarding and offboarding tenants: the admin login's dedicated connections, the tenant
 * secrets, the proxy's auth list and the provisioning service over them ({@link createLifecycle}
 * puts the state machines and the admin API's service on top). Only the functions that provision,
 * recover or migrate build this, and only they are given the admin secret.
 *
 * @example
 * ```ts
 * const { provisioning } = await createProvisioning(core);
 * const { tenant, apiKey } = await provisioning.provision({ tenantId: 'acme', name: 'Acme' }); // in-process
 * ```
 */
export async function createProvisioning(
  core: PlatformCore,
  options: ProvisioningOptions = {},
): Promise<Provisioning> {
  const { config } = core;
  const secrets = options.secrets ?? createSecretStore(core);
  const [admin, tenantLogins] = await Promise.all([
    createDatabaseAdmin(core, { tenantMigrations: options.tenantMigrations }),
    createTenantLogins(core, options.rdsClient),
  ]);
  const provisioning = new ProvisioningService({
    registry: core.registry,
    admin,
    secrets,
    logins: tenantLogins,
    endpoint: config.tenantEndpoint,
    leaseMs: config.provisioningLeaseSeconds * 1000,
    metrics: core.metrics,
    ...(options.onCredentialsChanged === undefined
      ? {}
      : { onCredentialsChanged: options.onCredentialsChanged }),
    ...(options.failpoints === undefined ? {} : { failpoints: options.failpoints }),
    ...(options.scheduleCleanup === undefined ? {} : { scheduleCleanup: options.scheduleCleanup }),
  });
  return {
    admin,
    provisioning,
    tenantLogins,
    secrets,
  };
}

/**
 * The admin role's dedicated connections (DDL), with the tenant migrations. With `DATABASE_URL`
 * the admin login is `TENANTFLOW_ADMIN_DATABASE_URL`; in the AWS form it is read now from the admin
 * secret, given only to the functions that run DDL. Without one, every admin connection fails with
 * a `ConfigurationError` naming the variable. A refused admin password reports
 * `reportCredentialsRejected`, so the next invocation reads the secrets again.
 */
export async function createDatabaseAdmin(
  core: PlatformCore,
  options: Pick<ProvisioningOptions, 'tenantMigrations'> = {},
): Promise<DatabaseAdmin> {
  const { database } = core.config;
  const [adminUrl, tenantMigrations] = await Promise.all([
    database.kind === 'url' ? database.adminUrl : awsAdminUrl(core),
    loadTenantMigrations(),
  ]);
  const adminOptions: DatabaseAdminOptions = {
    adminUrl,
    missingAdminLogin: missingAdminLoginError,
    catalog: core.pool,
    tenantMigrations,
    applicationMigrations: options.tenantMigrations ?? [],
    // The login the platform pool uses; when a URL does not name it, asked once (DDL only).
    platformRole: core.platformRole ?? (() => currentRole(core.pool)),
  };
  const admin =
    database.kind === 'url'
      ? new DatabaseAdmin(adminOptions)
      : new CredentialsReportingDatabaseAdmin(adminOptions, () => core.reportCredentialsRejected());
  // The admin keeps its last connection open for a moment, for the next provision: closed with the core.
  core.closeWith(() => admin.close());
  return admin;
}

async function awsAdminUrl(core: PlatformCore): Promise<string | undefined> {
  const { database } = core.config;
  if (
    database.kind !== 'secret' ||
    database.adminSecretArn === undefined ||
    core.databaseTarget === undefined
  ) {
    return undefined;
  }
  const credentials = await resolveDatabaseCredentials({
    client: core.secretsManager(),
    secretArn: database.adminSecretArn,
    login: 'admin',
  });
  // DDL logs in as the admin role through the same proxy; `DatabaseAdmin` takes a URL.
  return databaseConnectionUrl(core.databaseTarget, credentials);
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
export async function createTenantLogins(
  core: PlatformCore,
  rdsClient?: RDSClient | undefined,
): Promise<TenantLogins> {
  const { config } = core;
  if (config.tenantLogins.kind === 'direct') {
    return new DirectTenantLogins();
  }
  const [{ RdsProxyTenantLogins }, { RDSClient }] = await Promise.all([
    import('../provisioning/rds-proxy-tenant-logins.js'),
    import('@aws-sdk/client-rds'),
  ]);
  return new RdsProxyTenantLogins({
    client: rdsClient ?? traced(new RDSClient({})),
    proxyName: config.tenantLogins.proxyName,
    metrics: core.metrics,
    leases: new PlatformLeases(core.pool),
    stage: config.stage,
  });
}
