import { type ChildProcess, spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { findFreePort } from '../../local/embedded-postgres.js';
import { skipWithout } from './required-tools.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /**
     * Endpoint of the moto_server serving this test run (`http://127.0.0.1:<port>`), or `''` when
     * moto_server is not installed and this is not CI: suites that need it then report themselves
     * skipped with {@link MOTO_INSTALL_HINT}.
     */
    motoEndpoint: string;
  }
}

/** How to get moto_server, shown wherever a suite is skipped or CI fails for the lack of it. */
export const MOTO_INSTALL_HINT = "pip install 'moto[server]'";

/** Put on moto_server's PYTHONPATH: a `sitecustomize` that adds the RDS Proxy call moto lacks. */
const MOTO_EXTENSIONS = fileURLToPath(new URL('./moto-extensions', import.meta.url));

const READY_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 5_000;
const START_ATTEMPTS = 3;

/**
 * Starts one `moto_server` (the Python AWS mock, not an npm package) for the whole test run and
 * provides its endpoint to every test file as `motoEndpoint`. Suites keep out of each other's way
 * by naming what they create uniquely (a random stage per test), not by having a server each.
 *
 * `MOTO_ENDPOINT` set to a running server's URL is used as is. Without moto_server on the PATH the
 * run fails in CI; elsewhere it says so once, with the install hint, and provides `''`: the suites
 * needing it are then skipped (see {@link skipWithout}).
 */
export default async function setupMoto(project: TestProject): Promise<() => Promise<void>> {
  const external = process.env.MOTO_ENDPOINT;
  if (external !== undefined && external.length > 0) {
    project.provide('motoEndpoint', external);
    return async () => {};
  }
  const executable = await findOnPath('moto_server');
  if (executable === undefined) {
    // Said here, once for the run, rather than by each suite that needs it; in CI this throws.
    skipWithout({
      name: 'moto_server',
      found: false,
      skipping: 'the suites on moto_server (Secrets Manager, Step Functions, RDS Proxy)',
      installHint: MOTO_INSTALL_HINT,
    });
    project.provide('motoEndpoint', '');
    return async () => {};
  }
  const moto = await startMoto(executable);
  project.provide('motoEndpoint', moto.endpoint);
  return moto.stop;
}

interface RunningMoto {
  readonly endpoint: string;
  readonly stop: () => Promise<void>;
}

/** Starts moto_server on a free port, retrying when another process took the port first. */
async function startMoto(executable: string): Promise<RunningMoto> {
  let lastError: unknown;
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    try {
      return await startMotoOnce(executable, await findFreePort());
    } catch (error) {
      lastError = error;
    }
  }
  throw new Error(`moto_server did not start after ${START_ATTEMPTS} attempts`, { cause: lastError });
}

async function startMotoOnce(executable: string, port: number): Promise<RunningMoto> {
  const endpoint = `http://127.0.0.1:${port}`;
  const child = spawn(executable, ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
    // moto lacks ModifyDBProxy; MOTO_EXTENSIONS adds it (see its sitecustomize.py).
    env: {
      ...process.env,
      PYTHONPATH: [MOTO_EXTENSIONS, process.env.PYTHONPATH].filter(Boolean).join(delimiter),
    },
  });
  // moto logs every request on stderr. It must be drained or moto blocks once the pipe fills;
  // the tail is kept to explain a failed start.
  let stderrTail = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderrTail = (stderrTail + chunk.toString('utf8')).slice(-4_000);
  });
  // A test run killed before teardown must not leave moto holding its port.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const stop = async function stopMoto(): Promise<void> {
    process.removeListener('exit', killOnExit);
    await terminate(child);
  };
  try {
    await waitUntilAnswering(endpoint, child);
  } catch (error) {
    await stop();
    throw new Error(`${error instanceof Error ? error.message : String(error)}\n${stderrTail}`, {
      cause: error,
    });
  }
  return { endpoint, stop };
}

/** Polls until moto answers any HTTP request: it binds its port only once it can serve. */
async function waitUntilAnswering(endpoint: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let failure: string | undefined;
  child.once('exit', (code, signal) => {
    failure = `moto_server exited (${signal ?? `code ${code}`}) before answering on ${endpoint}`;
  });
  child.once('error', (error) => {
    failure = `moto_server could not be started: ${error.message}`;
  });
  while (Date.now() < deadline) {
    if (failure !== undefined) {
      throw new Error(failure);
    }
    try {
      const response = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(1_000) });
      await response.body?.cancel();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new Error(`moto_server did not answer on ${endpoint} within ${READY_TIMEOUT_MS} ms`);
}

/** SIGTERM, then SIGKILL if moto has not exited in time. */
async function terminate(child: ChildProcess): Promise<void> {
  // No pid: it never started, and no 'exit' will come.
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) {
    return;
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

async function findOnPath(command: string): Promise<string | undefined> {
  for (const directory of (process.env.PATH ?? '').split(delimiter)) {
    if (directory.length === 0) {
      continue;
    }
    const candidate = join(directory, command);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not in this directory; try the next.
    }
  }
  return undefined;
}
