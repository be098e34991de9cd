import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@tenantflow/shared/config/config';
import { DatabaseAdmin } from '@tenantflow/shared/provisioning/database-admin';
import { prepareControlSchema } from '@tenantflow/shared/provisioning/database-migrator';
import pg from 'pg';
import { inject } from 'vitest';
import { withLogin } from '../../local/local-roles.js';
import {
  createPlatformServices,
  type LocalAdapters,
  type PlatformServices,
} from '../../local/platform-services.js';
import { createTestDatabase } from './database.js';
import { dropTenantRoles, tenantIdSuffix } from './tenants.js';

export interface TestPlatform {
  readonly platform: PlatformServices;
  /** The admin role's URL on the suite's database (DDL, and looking at what the platform did). */
  readonly databaseUrl: string;
  /** The platform role's URL on it: what every request runs as. */
  readonly platformUrl: string;
  /** The bootstrap superuser's URL on it: to look only. */
  readonly superuserUrl: string;
  /**
   * A pool logged in as the admin, for what a test prepares or inspects beyond the platform
   * role's rights (a tenant's own tables, say). Closed by `cleanup`.
   */
  readonly adminPool: pg.Pool;
  /** Appended to every tenant id of the suite, because roles are cluster-wide. */
  readonly suffix: string;
  id(base: string): string;
  cleanup(): Promise<void>;
}

export interface PreparedTestDatabase {
  readonly platformRole: string;
  readonly platformUrl: string;
}

/**
 * What `npm start` and every deploy do to a database, on a suite's database: the control schema
 * migrated and the suite's own platform role (roles are cluster-wide) created and granted, all as
 * the non-superuser admin.
 */
export async function prepareTestDatabase(adminUrl: string, suffix: string): Promise<PreparedTestDatabase> {
  const platformRole = `tf_platform_${suffix}`;
  const password = randomBytes(18).toString('base64url');
  const admin = new DatabaseAdmin({ adminUrl, platformRole, tenantMigrations: [] });
  await prepareControlSchema(admin, { platformRole: { name: platformRole, password } });
  return { platformRole, platformUrl: withLogin(adminUrl, platformRole, password) };
}

/**
 * A platform on a database of its own, with local secrets in a temporary directory: the wiring
 * of `npm start`, without the HTTP server. The platform pool logs in as the platform role and DDL
 * as the non-superuser admin, as in production.
 */
export async function createTestPlatform(overrides: LocalAdapters = {}): Promise<TestPlatform> {
  const database = await createTestDatabase();
  const secretsDir = await mkdtemp(join(tmpdir(), 'tenantflow-secrets-'));
  const suffix = tenantIdSuffix();
  const { platformUrl } = await prepareTestDatabase(database.url, suffix);
  const platform = await createPlatformServices(
    loadConfig({
      TENANTFLOW_LOCAL: '1',
      DATABASE_URL: platformUrl,
      TENANTFLOW_ADMIN_DATABASE_URL: database.url,
      TENANTFLOW_SECRETS: 'local',
      TENANTFLOW_SECRETS_DIR: secretsDir,
    }),
    overrides,
  );
  const adminPool = new pg.Pool({ connectionString: database.url, max: 2 });
  // Dropping the database WITH (FORCE) may end a socket the pool is still closing: not a failure.
  adminPool.on('error', () => {});
  return {
    platform,
    adminPool,
    databaseUrl: database.url,
    platformUrl,
    superuserUrl: database.superuserUrl,
    suffix,
    id: (base) => `${base}_${suffix}`,
    cleanup: async () => {
      await platform.close();
      await adminPool.end();
      await database.drop();
      await dropTenantRoles(inject('superuserUrl'), suffix);
      await rm(secretsDir, { recursive: true, force: true });
    },
  };
}
