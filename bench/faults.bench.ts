import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import {
  exited,
  isAlive,
  postmasterPid,
  type StartedTenantflow,
  startTenantflow,
} from '../local/tenantflow-process.js';
import { FAULT_TASK_MS, faultSlow } from './fault-workflows.js';

/** What `npm run bench -- faults` found. */
export interface FaultsBenchmarkResult {
  readonly executions: number;
  /** The answers the API gave while PostgreSQL was down, by route and status. */
  readonly outageAnswers: ReadonlyArray<{
    readonly route: string;
    readonly status: number;
    readonly retryAfter: string | undefined;
  }>;
  readonly shutdown: {
    readonly ms: number;
    readonly printedStopped: boolean;
    readonly exitCode: number | null;
    readonly pidFileLeft: boolean;
  };
  readonly restartMs: number;
  /** From the restart until every execution was terminal. */
  readonly recoveredMs: number;
  readonly succeeded: number;
  /** Not terminal by the deadline. */
  readonly unrecovered: number;
  /** A task whose run never committed in a succeeded execution. */
  readonly lost: number;
  /** A task whose run committed more than once. */
  readonly duplicated: number;
  readonly pause: {
    readonly seconds: number;
    readonly requestsBefore: number;
    readonly requestsAfter: number;
    /** Requests after the resume that failed (reset, refused) on a kept-alive connection. */
    readonly errorsAfter: number;
    readonly firstError: string | undefined;
  };
}

const ADMIN_TOKEN = 'bench-faults-admin-token-0123456789';
const TENANT = 'faults_bench';
/** How long every execution has to finish after the restart. */
const RECOVERY_DEADLINE_MS = 120_000;

/**
 * Faults on a real `npm start` (its own embedded PostgreSQL, in a temporary home), as an operator
 * would meet them:
 *
 * 1. `kill -9` of PostgreSQL with `executions` executions of a 3-task workflow in flight; the API's
 *    answers while it is down (the health check, a tenant read, an admin read: 503 with
 *    `Retry-After` is the documented answer);
 * 2. SIGINT to the server while the database is gone: how long it takes, whether it says
 *    `Stopped.` and removes its pid file;
 * 3. a restart on the same home: every execution must end `succeeded`, with each task's run
 *    committed exactly once (counted in the task's own transaction);
 * 4. SIGSTOP of the server for `pauseSeconds` under light load on a kept-alive connection, then
 *    SIGCONT: requests after the resume must be served, not reset.
 */
export async function benchmarkFaults(options: {
  executions: number;
  pauseSeconds: number;
}): Promise<FaultsBenchmarkResult> {
  const home = await mkdtemp(join(tmpdir(), 'tenantflow-bench-faults-'));
  // Run as root, embedded PostgreSQL runs as the `postgres` user, which must reach its data directory.
  await chmod(home, 0o755);
  let server: StartedTenantflow | undefined;
  try {
    server = await startServer(home);
    const api = client(server.url);
    const registered = await api('POST', '/tenants', ADMIN_TOKEN, {
      tenantId: TENANT,
      name: 'Faults',
      config: { limits: { maxConcurrentExecutions: 100 } },
    });
    const key = (registered.body as { apiKey: string }).apiKey;
    await waitFor(
      async () =>
        ((await api('GET', `/tenants/${TENANT}`, ADMIN_TOKEN)).body as { status?: string }).status ===
        'active',
      30_000,
      'the tenant to become active',
    );

    const executionIds: string[] = [];
    for (let index = 0; index < options.executions; index += 1) {
      const started = await api('POST', `/tenants/${TENANT}/executions`, key, {
        workflow: faultSlow.name,
        input: {},
      });
      if (started.status !== 202) {
        throw new Error(`start ${index} answered ${started.status}: ${JSON.stringify(started.body)}`);
      }
      executionIds.push((started.body as { executionId: string }).executionId);
    }
    // Mid-flight: the first tasks are running or committing.
    await sleep(FAULT_TASK_MS / 2);
    const postmaster = await postmasterPid(home);
    if (postmaster === undefined) {
      throw new Error(`no postmaster.pid under ${home}`);
    }
    process.kill(postmaster, 'SIGKILL');
    await waitFor(async () => !isAlive(postmaster), 10_000, 'PostgreSQL to die');

    const outageAnswers: FaultsBenchmarkResult['outageAnswers'][number][] = [];
    const running = server;
    if (running.child.exitCode !== null || running.child.signalCode !== null) {
      throw new Error(`tenantflow exited when PostgreSQL died:\n${running.output()}`);
    }
    for (const [route, token] of [
      ['/health', undefined],
      [`/tenants/${TENANT}/executions/${executionIds[0]}`, key],
      ['/tenants', ADMIN_TOKEN],
    ] as const) {
      const answer = await api('GET', route, token);
      outageAnswers.push({ route, status: answer.status, retryAfter: answer.retryAfter });
    }

    const shutdownStart = performance.now();
    server.child.kill('SIGINT');
    const exitCode = await exited(server.child);
    const shutdown = {
      ms: performance.now() - shutdownStart,
      printedStopped: server.output().includes('Stopped.'),
      exitCode,
      pidFileLeft: existsSync(join(home, 'tenantflow.pid')),
    };
    if (!shutdown.printedStopped || shutdown.pidFileLeft) {
      console.log(
        `  the server's output before it exited:\n${indent(server.output().split('\n').slice(-15).join('\n'))}`,
      );
    }
    server = undefined;

    const restartStart = performance.now();
    server = await startServer(home);
    const restartMs = performance.now() - restartStart;
    const restarted = client(server.url);
    const statuses = new Map<string, string>();
    const recoveryStart = performance.now();
    await waitFor(
      async () => {
        for (const executionId of executionIds) {
          if (['succeeded', 'failed', 'aborted'].includes(statuses.get(executionId) ?? '')) {
            continue;
          }
          const read = await restarted('GET', `/tenants/${TENANT}/executions/${executionId}`, key);
          statuses.set(executionId, (read.body as { status?: string }).status ?? `http ${read.status}`);
        }
        return [...statuses.values()].every((status) => ['succeeded', 'failed', 'aborted'].includes(status));
      },
      RECOVERY_DEADLINE_MS,
      'every execution to end',
      () => undefined,
    );
    const recoveredMs = performance.now() - recoveryStart;
    const runs = await committedRuns(home, executionIds);
    const tasks = faultSlow.tasks.map((task) => task.id);
    let lost = 0;
    let duplicated = 0;
    for (const executionId of executionIds) {
      for (const taskId of tasks) {
        const count = runs.get(`${executionId}/${taskId}`) ?? 0;
        if (count > 1) {
          duplicated += 1;
        }
        if (count === 0 && statuses.get(executionId) === 'succeeded') {
          lost += 1;
        }
      }
    }

    const pause = await pauseUnderLoad(server, options.pauseSeconds);
    return {
      executions: executionIds.length,
      outageAnswers,
      shutdown,
      restartMs,
      recoveredMs,
      succeeded: [...statuses.values()].filter((status) => status === 'succeeded').length,
      unrecovered: executionIds.filter((id) => statuses.get(id) !== 'succeeded').length,
      lost,
      duplicated,
      pause,
    };
  } finally {
    if (server !== undefined) {
      server.child.kill('SIGINT');
      await Promise.race([exited(server.child), sleep(15_000)]);
      server.child.kill('SIGKILL');
    }
    await stopPostgres(home);
    await rm(home, { recursive: true, force: true });
  }
}

/** `npm start` on a free port with its own embedded PostgreSQL under `home`, the fault workflows, quick recovery. */
function startServer(home: string): Promise<StartedTenantflow> {
  return startTenantflow(
    home,
    {
      TENANTFLOW_ADMIN_TOKEN: ADMIN_TOKEN,
      TENANTFLOW_WORKFLOWS_MODULE: 'bench/fault-workflows.ts',
      // What crashed is examined after 2 s of quiet, by a pass every 2 s: the restart's own pass
      // runs before the executions are quiet for long.
      TENANTFLOW_RECOVERY_STALE_SECONDS: '2',
      TENANTFLOW_RECOVERY_HEARTBEAT_STALE_SECONDS: '2',
      TENANTFLOW_RECOVERY_INTERVAL_SECONDS: '2',
      POWERTOOLS_LOG_LEVEL: 'ERROR',
    },
    { readyTimeoutMs: 60_000 },
  );
}

interface Answer {
  readonly status: number;
  readonly body: unknown;
  readonly retryAfter: string | undefined;
}

function client(baseUrl: string) {
  return async (method: string, path: string, token?: string, body?: unknown): Promise<Answer> => {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: {
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON: kept as text
    }
    return {
      status: response.status,
      body: parsed,
      retryAfter: response.headers.get('retry-after') ?? undefined,
    };
  };
}

/**
 * GET /health every 50 ms on one kept-alive connection, before and after the server was stopped
 * (SIGSTOP) for `seconds` and resumed (SIGCONT). The requests sent while it is stopped wait; those
 * after the resume must all be answered.
 */
async function pauseUnderLoad(
  server: StartedTenantflow,
  seconds: number,
): Promise<FaultsBenchmarkResult['pause']> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const url = new URL(server.url);
  const get = () =>
    new Promise<number>((resolve, reject) => {
      const req = request(
        { host: url.hostname, port: url.port, path: '/health', agent, timeout: (seconds + 10) * 1000 },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', reject);
      req.end();
    });
  const drive = async (ms: number) => {
    let ok = 0;
    let errors = 0;
    let firstError: string | undefined;
    const until = Date.now() + ms;
    while (Date.now() < until) {
      try {
        if ((await get()) === 200) {
          ok += 1;
        } else {
          errors += 1;
        }
      } catch (error) {
        errors += 1;
        firstError ??= (error as Error).message;
      }
      await sleep(50);
    }
    return { ok, errors, firstError };
  };
  try {
    const before = await drive(1_000);
    server.child.kill('SIGSTOP');
    // The connection sits idle while the server is stopped, as a client's pooled one would.
    await sleep(seconds * 1000);
    server.child.kill('SIGCONT');
    const after = await drive(2_000);
    return {
      seconds,
      requestsBefore: before.ok,
      requestsAfter: after.ok,
      errorsAfter: after.errors,
      firstError: after.firstError,
    };
  } finally {
    agent.destroy();
  }
}

/** Committed runs per `<execution>/<task>`, read from the tenant's `fault_effects` as the local superuser. */
async function committedRuns(home: string, executionIds: readonly string[]): Promise<Map<string, number>> {
  const secrets = JSON.parse(await readFile(join(home, 'local-secrets.json'), 'utf8')) as {
    postgresPassword: string;
  };
  const port = Number((await readFile(join(home, 'pgdata', 'postmaster.pid'), 'utf8')).split('\n')[3]);
  const db = new pg.Client({
    host: '127.0.0.1',
    port,
    user: 'postgres',
    password: secrets.postgresPassword,
    database: 'postgres',
  });
  await db.connect();
  try {
    const { rows } = await db.query<{ execution_id: string; task_id: string; runs: number }>(
      `SELECT execution_id, task_id, runs FROM "${TENANT}".fault_effects WHERE execution_id = ANY($1::text[])`,
      [executionIds],
    );
    return new Map(rows.map((row) => [`${row.execution_id}/${row.task_id}`, row.runs]));
  } finally {
    await db.end();
  }
}

async function stopPostgres(home: string): Promise<void> {
  const pid = await postmasterPid(home);
  if (pid === undefined || !isAlive(pid)) {
    return;
  }
  process.kill(pid, 'SIGINT');
  await waitFor(async () => !isAlive(pid), 15_000, 'PostgreSQL to stop').catch(() => undefined);
}

async function waitFor(
  check: () => Promise<boolean>,
  ms: number,
  what: string,
  onTimeout: () => void = () => {
    throw new Error(`timed out waiting for ${what}`);
  },
): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) {
      return;
    }
    await sleep(200);
  }
  onTimeout();
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => `    | ${line}`)
    .join('\n');
}
