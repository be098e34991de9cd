import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { type RunningPostgres, startEmbeddedPostgres } from '../../local/embedded-postgres.js';
import { createAdminRole, withLogin } from '../../local/local-roles.js';
import { withDedicatedClient } from '../../shared/db/connections.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /**
     * The admin role's connection string (database `postgres`): CREATEROLE and CREATEDB, never a
     * superuser, as Aurora's master user is. What every suite runs its DDL as.
     */
    databaseUrl: string;
    /** The bootstrap superuser's: only to set the cluster up, clean up after suites, and look. */
    superuserUrl: string;
  }
}

/** The test cluster's admin role: what production's admin (Aurora's master user) can do, no more. */
export const TEST_ADMIN_ROLE = 'tenantflow_test_admin';

/**
 * Starts one real PostgreSQL for the whole test run (or uses `DATABASE_URL`, a superuser's, when it
 * is set), creates the non-superuser admin role on it, and provides both URLs to every test file.
 * Suites create their own databases on it, as that admin.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const external = process.env.DATABASE_URL;
  if (external !== undefined && external.length > 0) {
    await provideLogins(project, external);
    return async () => {};
  }
  // Under /tmp: the `postgres` OS user (used when running as root) must be able to read it.
  const dataRoot = await mkdtemp(join(tmpdir(), 'tenantflow-test-pg-'));
  await chmod(dataRoot, 0o755);
  let postgres: RunningPostgres | undefined;
  try {
    postgres = await startEmbeddedPostgres({
      dataDir: join(dataRoot, 'data'),
      password: randomBytes(18).toString('base64url'),
      persistent: false,
      ephemeralDurability: true,
    });
  } catch (error) {
    await rm(dataRoot, { recursive: true, force: true });
    throw error;
  }
  await provideLogins(project, postgres.url('postgres'));
  const running = postgres;
  return async function stopTestPostgres() {
    await running.stop();
    await rm(dataRoot, { recursive: true, force: true });
  };
}

async function provideLogins(project: TestProject, superuserUrl: string): Promise<void> {
  const password = randomBytes(18).toString('base64url');
  // What `npm start` does to its cluster: the admin owns the maintenance database, so its
  // lock-down reaches it, and nobody may connect to template1.
  const maintenance = new URL(superuserUrl);
  maintenance.pathname = '/postgres';
  await withDedicatedClient(maintenance.toString(), (client) =>
    createAdminRole(client, TEST_ADMIN_ROLE, password),
  );
  project.provide('superuserUrl', superuserUrl);
  project.provide('databaseUrl', withLogin(maintenance.toString(), TEST_ADMIN_ROLE, password));
}
