import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { withDedicatedClient } from '@tenantflow/shared/db/connections';
import type { TestProject } from 'vitest/node';
import { type RunningPostgres, startEmbeddedPostgres } from '../../local/embedded-postgres.js';
import { createAdminRole, withLogin } from '../../local/local-roles.js';

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

/** The run's PostgreSQL and its logins, shared by every project whose global setup is this file. */
interface SharedTestPostgres {
  readonly logins: Promise<TestLogins>;
  /** Projects set up and not yet torn down: the last one out stops the server. */
  users: number;
}

interface TestLogins {
  readonly superuserUrl: string;
  readonly databaseUrl: string;
  readonly stop: () => Promise<void>;
}

/**
 * Vitest runs a project's global setup for each project that lists it, each in a module runner of
 * its own, so module state is not shared between projects: the server is kept on `globalThis`.
 */
const SHARED = Symbol.for('tenantflow.test.postgres');
type WithSharedPostgres = typeof globalThis & { [SHARED]?: SharedTestPostgres };

/**
 * Starts one real PostgreSQL for the whole test run (or uses `DATABASE_URL`, a superuser's, when it
 * is set), creates the non-superuser admin role on it, and provides both URLs to every test file
 * of the project. Several projects list this setup: the first one starts the server, the others
 * reuse it, and the last teardown stops it. Suites create their own databases on it, as that admin.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const holder = globalThis as WithSharedPostgres;
  let shared = holder[SHARED];
  if (shared === undefined) {
    shared = { logins: startTestPostgres(), users: 0 };
    holder[SHARED] = shared;
    // A failed start is not cached: a rerun in watch mode tries again.
    shared.logins.catch(() => {
      if (holder[SHARED] === shared) {
        delete holder[SHARED];
      }
    });
  }
  const running = shared;
  const logins = await running.logins;
  running.users += 1;
  project.provide('superuserUrl', logins.superuserUrl);
  project.provide('databaseUrl', logins.databaseUrl);
  return async function releaseTestPostgres() {
    running.users -= 1;
    if (running.users > 0) {
      return;
    }
    if (holder[SHARED] === running) {
      delete holder[SHARED];
    }
    await logins.stop();
  };
}

async function startTestPostgres(): Promise<TestLogins> {
  const external = process.env.DATABASE_URL;
  if (external !== undefined && external.length > 0) {
    return { ...(await createLogins(external)), stop: async () => {} };
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
    const running = postgres;
    return {
      ...(await createLogins(running.url('postgres'))),
      stop: async function stopTestPostgres() {
        await running.stop();
        await rm(dataRoot, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await postgres?.stop();
    await rm(dataRoot, { recursive: true, force: true });
    throw error;
  }
}

async function createLogins(superuserUrl: string): Promise<Omit<TestLogins, 'stop'>> {
  const password = randomBytes(18).toString('base64url');
  // What `npm start` does to its cluster: the admin owns the maintenance database, so its
  // lock-down reaches it, and nobody may connect to template1.
  const maintenance = new URL(superuserUrl);
  maintenance.pathname = '/postgres';
  await withDedicatedClient(maintenance.toString(), (client) =>
    createAdminRole(client, TEST_ADMIN_ROLE, password),
  );
  return { superuserUrl, databaseUrl: withLogin(maintenance.toString(), TEST_ADMIN_ROLE, password) };
}
