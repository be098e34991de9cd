import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * `npm start` run as a child process, as a user runs it, for the end-to-end tests and the fault
 * benchmark: started, found ready, killed, and the embedded PostgreSQL under its home stopped.
 */

/** A running `npm start` (its entry point, `local/start.ts`), as a user would run it. */
export interface StartedTenantflow {
  readonly child: ChildProcess;
  readonly url: string;
  readonly output: () => string;
}

const children = new Set<ChildProcess>();

/**
 * Spawns `local/start.ts` on a free port with its own embedded PostgreSQL under `home`, and
 * resolves once it prints that it is ready (rejects after `readyTimeoutMs`). `env` is added to the
 * environment.
 */
export function startTenantflow(
  home: string,
  env: NodeJS.ProcessEnv = {},
  options: { readonly readyTimeoutMs?: number } = {},
): Promise<StartedTenantflow> {
  const childEnv: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: '0',
    TENANTFLOW_HOME: home,
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    ...env,
  };
  if (env.DATABASE_URL === undefined) {
    // The embedded PostgreSQL under `home`, not whatever the test run itself uses.
    delete childEnv.DATABASE_URL;
  }
  const child = spawn(process.execPath, ['--import', 'tsx', 'local/start.ts'], {
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.on('exit', () => children.delete(child));
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`tenantflow did not become ready:\n${output}`)),
      options.readyTimeoutMs ?? 45_000,
    );
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const ready = /tenantflow ready on (http:\/\/\S+)/.exec(output);
      if (ready?.[1] !== undefined) {
        clearTimeout(timer);
        resolve({ child, url: ready[1], output: () => output });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new ExitedBeforeReadyError(code, output));
    });
  });
}

/** The process ended before it printed that it was ready (a crash test's restart may do that). */
export class ExitedBeforeReadyError extends Error {
  constructor(
    readonly code: number | null,
    readonly output: string,
  ) {
    super(`tenantflow exited with ${code} before it was ready:\n${output}`);
  }
}

export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve(child.exitCode);
  }
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

export async function postmasterPid(home: string): Promise<number | undefined> {
  try {
    return Number((await readFile(join(home, 'pgdata', 'postmaster.pid'), 'utf8')).split('\n')[0]);
  } catch {
    return undefined;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Kills every tenantflow this module started and stops the embedded PostgreSQL under `home`,
 * waiting until it has exited: a postmaster still writing its files would make removing `home`
 * fail.
 */
export async function killTenantflow(home: string): Promise<void> {
  for (const child of children) {
    child.kill('SIGKILL');
    await exited(child);
  }
  const pid = await postmasterPid(home);
  if (pid === undefined || !isAlive(pid)) {
    return;
  }
  process.kill(pid, 'SIGINT');
  const deadline = Date.now() + 15_000;
  while (isAlive(pid) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
