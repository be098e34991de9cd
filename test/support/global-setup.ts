import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { type RunningPostgres, startEmbeddedPostgres } from '../../local/embedded-postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Superuser connection string of the PostgreSQL serving this test run. */
    databaseUrl: string;
  }
}

/**
 * Starts one real PostgreSQL for the whole test run (or uses `DATABASE_URL` when it is set) and
 * provides its URL to every test file. Suites create their own databases on it.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const external = process.env.DATABASE_URL;
  if (external !== undefined && external.length > 0) {
    project.provide('databaseUrl', external);
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
  project.provide('databaseUrl', postgres.url('postgres'));
  const running = postgres;
  return async function stopTestPostgres() {
    await running.stop();
    await rm(dataRoot, { recursive: true, force: true });
  };
}
