import { spawn } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import { killTenantflow, type StartedTenantflow, startTenantflow } from '../../local/tenantflow-process.js';

/** What a command printed and how it ended. */
export interface CommandResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * One `npm start` for the whole suite, in a home of its own under the temporary directory, started
 * before the first test and killed (with its embedded PostgreSQL) after the last. Read `home` and
 * `started` inside tests and hooks: they are set once the suite's `beforeAll` has run.
 *
 * @example
 * ```ts
 * const server = npmStartForSuite('tenantflow-e2e-cli-', { TENANTFLOW_ADMIN_TOKEN: token });
 * it('...', async () => fetch(`${server.started.url}/health`));
 * ```
 */
export function npmStartForSuite(
  homePrefix: string,
  env: NodeJS.ProcessEnv = {},
): { readonly home: string; readonly started: StartedTenantflow } {
  let home: string | undefined;
  let started: StartedTenantflow | undefined;
  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), homePrefix));
    // The embedded PostgreSQL runs as the `postgres` OS user when tests run as root.
    await chmod(home, 0o755);
    started = await startTenantflow(home, env);
  }, 60_000);
  afterAll(async () => {
    if (home !== undefined) {
      await killTenantflow(home);
      await rm(home, { recursive: true, force: true });
    }
  });
  return {
    get home() {
      if (home === undefined) {
        throw new Error('npm start is not running yet: read `home` inside a test or hook');
      }
      return home;
    },
    get started() {
      if (started === undefined) {
        throw new Error('npm start is not running yet: read `started` inside a test or hook');
      }
      return started;
    },
  };
}

/** Runs `command` with `args` in a process of its own and collects what it printed. */
export function runCommand(
  command: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The JSON a command printed, once it exited with 0 (its output is the failure message otherwise). */
export function printedJson<T>(result: CommandResult): T {
  expect(result.code, result.stdout + result.stderr).toBe(0);
  return JSON.parse(result.stdout) as T;
}
