import { resolve } from 'node:path';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type pg from 'pg';
import type { TenantflowConfig } from './config/config.js';
import { getConfig } from './config/config.js';
import { createPlatformPool } from './db/connections.js';
import { TenantConnections } from './db/tenant-connections.js';
import type { AdminAuthOptions } from './http/admin-auth.middleware.js';
import { DatabaseAdmin } from './provisioning/database-admin.js';
import { ProvisioningService, type StepHook } from './provisioning/provisioning-service.js';
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
  readonly tenantAdmin: TenantAdminService;
  readonly adminAuth: AdminAuthOptions;
  close(): Promise<void>;
}

export interface PlatformOverrides {
  readonly secrets?: SecretStore;
  /** Failure injection for the resumability tests and the crash harness. */
  readonly afterProvisioningStep?: StepHook;
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
  const pool = createPlatformPool({ connectionString: config.databaseUrl, max: config.dbPoolMax });
  const registry = new PgTenantRegistry(pool);
  const tenants = new TenantContextSwitch(registry);
  const secrets = overrides.secrets ?? createSecretStore(config);
  const tenantConnections = new TenantConnections({
    secrets,
    // A Lambda sandbox serves one invocation at a time, so a few tenants' pools suffice; the local
    // server runs every tenant's tasks in one process (32 × 2 stays under PostgreSQL's default 100).
    maxTenants: config.local ? 32 : 8,
    ...(hasInvalidate(secrets)
      ? { invalidateSecret: (tenantId: string) => secrets.invalidate(tenantId) }
      : {}),
  });
  const admin = new DatabaseAdmin({
    adminUrl: config.adminDatabaseUrl,
    tenantMigrations: await loadTenantMigrations(),
  });
  const provisioning = new ProvisioningService({
    registry,
    admin,
    secrets,
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
    tenantAdmin: new TenantAdminService(tenants, provisioning, registry),
    adminAuth: { adminToken: config.adminToken, trustIamIdentity: config.trustIamAdminIdentity },
    close: async () => {
      await tenantConnections.close();
      await pool.end();
    },
  };
}

function createSecretStore(config: TenantflowConfig): SecretStore {
  if (config.secrets.backend === 'local') {
    return new LocalSecretStore({ directory: resolve(config.secrets.directory) });
  }
  return new SecretsManagerSecretStore({ client: new SecretsManagerClient({}), stage: config.stage });
}

function hasInvalidate(store: SecretStore): store is SecretStore & { invalidate(tenantId: string): void } {
  return typeof (store as { invalidate?: unknown }).invalidate === 'function';
}

let processPlatform: Promise<Platform> | undefined;

/** The platform of this process (one per Lambda sandbox), built from the environment on first use. */
export function getPlatform(): Promise<Platform> {
  processPlatform ??= createPlatform(getConfig()).catch((error: unknown) => {
    processPlatform = undefined;
    throw error;
  });
  return processPlatform;
}
