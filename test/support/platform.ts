import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import { loadConfig } from '../../shared/config/config.js';
import { migrateControlSchema } from '../../shared/db/control-schema.js';
import { createPlatform, type Platform, type PlatformOverrides } from '../../shared/platform.js';
import { createTestDatabase } from './database.js';
import { dropTenantRoles, tenantIdSuffix } from './tenants.js';

export interface TestPlatform {
  readonly platform: Platform;
  readonly databaseUrl: string;
  /** Appended to every tenant id of the suite, because roles are cluster-wide. */
  readonly suffix: string;
  id(base: string): string;
  cleanup(): Promise<void>;
}

/**
 * A platform on a database of its own, with local secrets in a temporary directory: the wiring
 * of `npm start`, without the HTTP server.
 */
export async function createTestPlatform(overrides: PlatformOverrides = {}): Promise<TestPlatform> {
  const database = await createTestDatabase();
  const secretsDir = await mkdtemp(join(tmpdir(), 'tenantflow-secrets-'));
  await migrateControlSchema(database.url);
  const platform = await createPlatform(
    loadConfig({
      TENANTFLOW_LOCAL: '1',
      DATABASE_URL: database.url,
      TENANTFLOW_SECRETS: 'local',
      TENANTFLOW_SECRETS_DIR: secretsDir,
    }),
    overrides,
  );
  const suffix = tenantIdSuffix();
  return {
    platform,
    databaseUrl: database.url,
    suffix,
    id: (base) => `${base}_${suffix}`,
    cleanup: async () => {
      await platform.close();
      await database.drop();
      await dropTenantRoles(inject('databaseUrl'), suffix);
      await rm(secretsDir, { recursive: true, force: true });
    },
  };
}
