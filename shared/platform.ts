import type pg from 'pg';
import type { TenantflowConfig } from './config/config.js';
import { getConfig } from './config/config.js';
import { createPlatformPool } from './db/connections.js';
import type { AdminAuthOptions } from './http/admin-auth.middleware.js';
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
  readonly tenantAdmin: TenantAdminService;
  readonly adminAuth: AdminAuthOptions;
  close(): Promise<void>;
}

/**
 * Wires the platform from a configuration.
 *
 * @example
 * ```ts
 * const platform = createPlatform(loadConfig({ DATABASE_URL: url, TENANTFLOW_LOCAL: '1' }));
 * await platform.tenantAdmin.register({ tenantId: 'acme', name: 'Acme' });
 * await platform.close();
 * ```
 */
export function createPlatform(config: TenantflowConfig): Platform {
  const pool = createPlatformPool({ connectionString: config.databaseUrl, max: config.dbPoolMax });
  const registry = new PgTenantRegistry(pool);
  const tenants = new TenantContextSwitch(registry);
  return {
    config,
    pool,
    registry,
    tenants,
    tenantAdmin: new TenantAdminService(registry, tenants),
    adminAuth: { adminToken: config.adminToken, trustIamIdentity: config.trustIamAdminIdentity },
    close: () => pool.end(),
  };
}

let processPlatform: Platform | undefined;

/** The platform of this process (one per Lambda sandbox), built from the environment on first use. */
export function getPlatform(): Platform {
  processPlatform ??= createPlatform(getConfig());
  return processPlatform;
}
