import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WorkflowRegistry } from '@tenantflow/shared/workflows/workflow-registry';
import { afterAll, beforeAll, expect, inject } from 'vitest';
import { type LocalPlatform, startLocalPlatform } from '../../local/local-platform.js';
import { createTestDatabase } from './database.js';
import { apiClient } from './http.js';
import { dropTenantRoles } from './tenants.js';

export interface LocalPlatformSuiteOptions {
  /** The prefix of the suite's home under the temporary directory. */
  readonly homePrefix: string;
  readonly adminToken: string;
  readonly workflows: WorkflowRegistry;
  /** Registered through `POST /tenants` and onboarded before the first test: id and config. */
  readonly tenants: ReadonlyArray<{ readonly tenantId: string; readonly config?: object }>;
  /** The suffix the tenant ids end with, so their roles are dropped after the suite. */
  readonly tenantSuffix: string;
  /** Runs before the platform stops (release what a test left holding). */
  readonly beforeStop?: () => void;
}

export interface LocalPlatformSuite {
  readonly local: LocalPlatform;
  /** An HTTP client with the admin token. */
  readonly admin: ReturnType<typeof apiClient>;
  /** An HTTP client with the tenant's own API key. */
  asTenant(tenantId: string): ReturnType<typeof apiClient>;
  /** The API key the tenant was given when it was registered. */
  apiKey(tenantId: string): string;
}

/**
 * The local platform, on a database of its own, with active tenants and their API keys, for a
 * suite that talks to it over HTTP: started before the first test, stopped (its database and its
 * tenants' roles dropped) after the last. Read its fields inside tests and hooks.
 *
 * @example
 * ```ts
 * const suite = localPlatformSuite({ homePrefix: 'tenantflow-x-', adminToken, workflows, tenants: [{ tenantId: acme }], tenantSuffix: suffix });
 * it('...', async () => suite.asTenant(acme)('GET', '/workflows'));
 * ```
 */
export function localPlatformSuite(options: LocalPlatformSuiteOptions): LocalPlatformSuite {
  let database: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
  let home: string | undefined;
  let local: LocalPlatform | undefined;
  const keys: Record<string, string> = {};
  const running = (): LocalPlatform => {
    if (local === undefined) {
      throw new Error('the local platform is not running yet: use it inside a test or hook');
    }
    return local;
  };
  beforeAll(async () => {
    database = await createTestDatabase();
    home = await mkdtemp(join(tmpdir(), options.homePrefix));
    local = await startLocalPlatform({
      home,
      port: 0,
      databaseUrl: database.url,
      adminToken: options.adminToken,
      workflows: options.workflows,
      retryIntervalMs: 0,
    });
    const admin = apiClient(local.url, options.adminToken);
    for (const { tenantId, config } of options.tenants) {
      const created = await admin('POST', '/tenants', {
        body: { tenantId, name: tenantId, ...(config === undefined ? {} : { config }) },
      });
      expect(created.status).toBe(202);
      keys[tenantId] = created.body.apiKey;
    }
    // Their onboardings run in the local lifecycle orchestrator; the keys work once they end.
    await local.platform.lifecycleOrchestrator.drain();
    for (const { tenantId } of options.tenants) {
      expect((await admin('GET', `/tenants/${tenantId}`)).body.status).toBe('active');
    }
  });
  afterAll(async () => {
    options.beforeStop?.();
    await local?.stop();
    await database?.drop();
    await dropTenantRoles(inject('superuserUrl'), options.tenantSuffix);
    if (home !== undefined) {
      await rm(home, { recursive: true, force: true });
    }
  });
  return {
    get local() {
      return running();
    },
    get admin() {
      return apiClient(running().url, options.adminToken);
    },
    asTenant: (tenantId) => apiClient(running().url, keys[tenantId]),
    apiKey: (tenantId) => {
      const key = keys[tenantId];
      if (key === undefined) {
        throw new Error(`no API key for '${tenantId}': it is not one of the suite's tenants`);
      }
      return key;
    },
  };
}
