import { readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { type RunningPostgres, runningPostmasterPort, startEmbeddedPostgres } from './embedded-postgres.js';
import { type LocalDatabaseLogins, prepareLocalDatabase } from './local-roles.js';
import { loadOrCreateLocalSecrets } from './local-state.js';

const OWNER_FILE = 'tenantflow.pid';

/** The pid of a live `npm start` that owns `home`, if any. */
export async function runningOwner(home: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt(await readFile(join(home, OWNER_FILE), 'utf8'), 10);
    if (!Number.isInteger(pid) || pid === process.pid) {
      return undefined;
    }
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

/**
 * Marks `home` as owned by this process, refusing when another live `npm start` owns it: its
 * PostgreSQL is in use, not stale, and must not be stopped from under it.
 */
export async function claimHome(home: string): Promise<() => Promise<void>> {
  const owner = await runningOwner(home);
  if (owner !== undefined) {
    throw new Error(
      `tenantflow is already running (pid ${owner}) with ${home}. Stop it first, or set TENANTFLOW_HOME to another directory.`,
    );
  }
  const file = join(home, OWNER_FILE);
  await writeFile(file, String(process.pid), { mode: 0o644 });
  return async () => {
    await rm(file, { force: true });
  };
}

/**
 * The logins of the local platform's PostgreSQL, for one-off commands such as `npm run migrate`:
 * on `DATABASE_URL` if set (a superuser or an admin with CREATEROLE), else on the embedded server
 * `npm start` is running, else on the embedded server started just for `work` and stopped
 * afterwards. The database gets production's roles first ({@link prepareLocalDatabase}).
 */
export async function withLocalDatabase<T>(
  home: string,
  work: (logins: LocalDatabaseLogins) => Promise<T>,
): Promise<T> {
  const absoluteHome = resolve(home);
  const secrets = await loadOrCreateLocalSecrets(absoluteHome);
  const passwords = { admin: secrets.adminRolePassword, platform: secrets.platformRolePassword };
  const prepared = async (url: string) => work(await prepareLocalDatabase(url, passwords));
  if (process.env.DATABASE_URL) {
    return prepared(process.env.DATABASE_URL);
  }
  const dataDir = join(absoluteHome, 'pgdata');
  const port =
    (await runningOwner(absoluteHome)) === undefined ? undefined : await runningPostmasterPort(dataDir);
  if (port !== undefined) {
    return prepared(
      `postgresql://postgres:${encodeURIComponent(secrets.postgresPassword)}@127.0.0.1:${port}/postgres`,
    );
  }
  const release = await claimHome(absoluteHome);
  let postgres: RunningPostgres | undefined;
  try {
    postgres = await startEmbeddedPostgres({
      dataDir,
      password: secrets.postgresPassword,
      persistent: true,
      ...(secrets.postgresPort === undefined ? {} : { port: secrets.postgresPort }),
    });
    return await prepared(postgres.url('postgres'));
  } finally {
    await postgres?.stop();
    await release();
  }
}
