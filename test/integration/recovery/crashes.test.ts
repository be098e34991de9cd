import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONTROL_SCHEMA, qualified, quoteIdent, tenantTable } from '@tenantflow/shared/db/sql';
import { tenantRoleName } from '@tenantflow/shared/provisioning/database-admin';
import { PROVISIONING_STEPS } from '@tenantflow/shared/provisioning/provisioning-service';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FAILPOINT_EXIT_CODE } from '../../../local/failpoints.js';
import {
  ExitedBeforeReadyError,
  exited,
  killTenantflow,
  type StartedTenantflow,
  startTenantflow,
} from '../../../local/tenantflow-process.js';
import { DOOMED_EXIT_CODE } from '../../support/crash-workflows.js';
import { createTestDatabase } from '../../support/database.js';
import { apiClient } from '../../support/http.js';
import { waitForTenant } from '../../support/onboarding.js';
import { dropTenantRoles, tenantIdSuffix } from '../../support/tenants.js';

/**
 * Crash tests: the local server (`npm start`'s entry point, as its own process, on a real
 * PostgreSQL) is made to `process.exit` at a chosen point through TENANTFLOW_FAILPOINTS, then
 * started again; its start-up recovery pass must repair what the crash left.
 *
 * The servers form a chain: the server that repairs crash k is armed for crash k+1, scoped to
 * another tenant, so each crash costs one restart.
 */

const ADMIN_TOKEN = 'crash-test-admin-token-0123456789abcdef';
const TASKS = ['prepare', 'fan_a', 'fan_b', 'fan_c', 'merge'] as const;
const INPUT = { items: [1, 2, 3] };
const EXPECTED_CONTEXT = { items: [1, 2, 3], fan_a: 6, fan_b: 60, fan_c: 600, total: 666 };

/** Every point a workflow can die at: after the insert, around each task's commit, before finalize. */
const WORKFLOW_CRASHES: readonly string[] = [
  'after-insert',
  ...TASKS.flatMap((task) => [`after-body:${task}`, `before-commit:${task}`, `after-commit:${task}`]),
  'before-finalize',
];

let home: string;
let database: { url: string; drop: () => Promise<void> };
let pool: pg.Pool;
let server: StartedTenantflow | undefined;
const suffix = tenantIdSuffix();
const apiKeys = new Map<string, string>();

const tenantFor = (index: number) => `crash${index}_${suffix}`;
const provisioningTenantFor = (step: string) => `prov_${step.replace('-', '_')}_${suffix}`;

function serverEnv(failpoint?: string): NodeJS.ProcessEnv {
  return {
    // The suite's admin (not a superuser); npm start creates the platform role, one of the suite's own.
    DATABASE_URL: database.url,
    TENANTFLOW_PLATFORM_ROLE: `tf_platform_${suffix}`,
    TENANTFLOW_ADMIN_TOKEN: ADMIN_TOKEN,
    TENANTFLOW_WORKFLOWS_MODULE: 'test/support/crash-workflows.ts',
    TENANTFLOW_RECOVERY_INTERVAL_SECONDS: '1',
    TENANTFLOW_RECOVERY_STALE_SECONDS: '1',
    TENANTFLOW_PROVISIONING_LEASE_SECONDS: '1',
    TENANTFLOW_FAILPOINTS: failpoint ?? '',
  };
}

/** Starts the next server of the chain, armed with `failpoint` if given. */
async function restart(failpoint?: string): Promise<StartedTenantflow> {
  server = await startTenantflow(home, serverEnv(failpoint));
  return server;
}

/** Waits for the current server to die, and returns its exit code. */
async function died(): Promise<number | null> {
  const current = server;
  if (current === undefined) {
    throw new Error('no server is running');
  }
  const code = await Promise.race([
    exited(current.child),
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`the server did not exit:\n${current.output()}`)), 20_000),
    ),
  ]);
  server = undefined;
  return code;
}

function api(token = ADMIN_TOKEN) {
  if (server === undefined) {
    throw new Error('no server is running');
  }
  return apiClient(server.url, token);
}

async function provisionCrashTenant(tenantId: string): Promise<void> {
  const created = await api()('POST', '/tenants', { body: { tenantId, name: tenantId } });
  expect(created.status).toBe(202);
  apiKeys.set(tenantId, created.body.apiKey);
  // Its schema and role exist once the onboarding state machine has made it active.
  await waitForTenant(api(), tenantId, 'active');
  // The per-task counter: owned by the test, written by the tenant role inside each task.
  await pool.query(
    `CREATE TABLE ${tenantTable(tenantId, 'crash_effects')} (
       execution_id text NOT NULL, task_id text NOT NULL, runs integer NOT NULL,
       PRIMARY KEY (execution_id, task_id))`,
  );
  await pool.query(
    `GRANT SELECT, INSERT, UPDATE ON ${tenantTable(tenantId, 'crash_effects')} TO ${quoteIdent(tenantRoleName(tenantId))}`,
  );
}

async function onlyExecution(tenantId: string) {
  const { rows } = await pool.query<{
    id: string;
    status: string;
    context: Record<string, unknown>;
    attempts: number;
    error: string | null;
  }>(`SELECT id, status, context, attempts, error FROM ${tenantTable(tenantId, 'executions')}`);
  expect(rows).toHaveLength(1);
  return rows[0] as (typeof rows)[number];
}

async function effects(tenantId: string, executionId: string): Promise<Record<string, number>> {
  const { rows } = await pool.query<{ task_id: string; runs: number }>(
    `SELECT task_id, runs FROM ${tenantTable(tenantId, 'crash_effects')} WHERE execution_id = $1`,
    [executionId],
  );
  return Object.fromEntries(rows.map((row) => [row.task_id, row.runs]));
}

async function recoveryActions(targetId: string): Promise<string[]> {
  const { rows } = await pool.query<{ action: string; outcome: string }>(
    `SELECT action, outcome FROM ${qualified(CONTROL_SCHEMA, 'recovery_events')} WHERE target_id = $1 ORDER BY id`,
    [targetId],
  );
  return rows.map((row) => `${row.action}:${row.outcome}`);
}

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'tenantflow-crash-'));
  database = await createTestDatabase('tf_crash');
  pool = new pg.Pool({ connectionString: database.url, max: 2 });
  // Dropping the database WITH (FORCE) may end a socket the pool is still closing: not a failure.
  pool.on('error', () => {});
  await restart(`${WORKFLOW_CRASHES[0]}@${tenantFor(0)}`);
  for (let index = 0; index < WORKFLOW_CRASHES.length; index += 1) {
    await provisionCrashTenant(tenantFor(index));
  }
  await provisionCrashTenant(`doomed_${suffix}`);
}, 120_000);

afterAll(async () => {
  await killTenantflow(home);
  await pool?.end();
  await database?.drop();
  await dropTenantRoles(inject('superuserUrl'), suffix);
  await rm(home, { recursive: true, force: true });
});

describe('a 5-task fan-out killed at every point recovers', () => {
  it.each(WORKFLOW_CRASHES.map((failpoint, index) => ({ failpoint, index })))(
    'killed at $failpoint: recovered to succeeded, context intact, each task committed once',
    async ({ failpoint, index }) => {
      const tenantId = tenantFor(index);
      const started = await api(apiKeys.get(tenantId))('POST', `/tenants/${tenantId}/executions`, {
        body: { workflow: 'crash_fanout', input: INPUT },
      }).catch((error: unknown) => error);
      if (failpoint === 'after-insert') {
        // The process died while answering: the client never learned the execution id.
        expect(started).toBeInstanceOf(Error);
      }
      expect(await died()).toBe(FAILPOINT_EXIT_CODE);
      const crashed = await onlyExecution(tenantId);
      expect(crashed.status).toMatch(/^(pending|running)$/);

      const next = WORKFLOW_CRASHES[index + 1];
      await restart(next === undefined ? undefined : `${next}@${tenantFor(index + 1)}`);
      await expect
        .poll(async () => (await onlyExecution(tenantId)).status, { timeout: 20_000 })
        .toBe('succeeded');

      const recovered = await onlyExecution(tenantId);
      expect(recovered.context).toEqual(EXPECTED_CONTEXT);
      expect(await effects(tenantId, recovered.id)).toEqual(
        Object.fromEntries(TASKS.map((task) => [task, 1])),
      );
      expect(recovered.attempts).toBe(1);
      expect(await recoveryActions(recovered.id)).toEqual([
        failpoint === 'after-insert' ? 'start:done' : 'redrive:done',
      ]);
    },
    40_000,
  );
});

describe('provisioning killed after every step recovers', () => {
  it.each([...PROVISIONING_STEPS])(
    'killed after %s: the tenant ends active with exactly one schema, role and secret',
    async (step) => {
      const tenantId = provisioningTenantFor(step);
      if (server !== undefined) {
        await killTenantflow(home);
        server = undefined;
      }
      await restart(`after-provisioning-step:${step}@${tenantId}`);
      // Accepted before any step runs: the onboarding state machine, journaled as running, takes
      // the process down after the step, once the client already holds the tenant's API key.
      const created = await api()('POST', '/tenants', { body: { tenantId, name: tenantId } });
      expect(created.status).toBe(202);
      expect(created.body).toMatchObject({ tenantId, status: 'provisioning' });
      const apiKey: string = created.body.apiKey;
      expect(await died()).toBe(FAILPOINT_EXIT_CODE);

      // Its start-up recovery pass redrives the onboarding the crash interrupted.
      await restart();
      await expect
        .poll(
          async () => {
            const response = await api()('GET', `/tenants/${tenantId}`);
            return response.body?.status;
          },
          { timeout: 20_000 },
        )
        .toBe('active');
      const objects = await pool.query<{ schemas: number; roles: number }>(
        `SELECT (SELECT count(*)::int FROM pg_namespace WHERE nspname = $1) AS schemas,
                (SELECT count(*)::int FROM pg_roles WHERE rolname = $2) AS roles`,
        [tenantId, tenantRoleName(tenantId)],
      );
      expect(objects.rows[0]).toEqual({ schemas: 1, roles: 1 });
      const secrets = (await readdir(join(home, 'secrets'))).filter((file) =>
        file.startsWith(`${tenantId}.`),
      );
      expect(secrets).toEqual([`${tenantId}.json`]);
      // The key returned before the crash is the tenant's key.
      expect((await api(apiKey)('GET', `/tenants/${tenantId}/executions`)).status).toBe(200);
      // Killed after `activate`, there was nothing left to recover; otherwise recovery finished it.
      expect(await recoveryActions(tenantId)).toEqual(
        step === 'activate' ? [] : ['resume_provisioning:done'],
      );
      if (step !== 'activate') {
        // Redriven from its journal entry, which the crash left running: not started anew.
        const { rows } = await pool.query<{ detail: string }>(
          `SELECT detail FROM ${qualified(CONTROL_SCHEMA, 'recovery_events')} WHERE target_id = $1`,
          [tenantId],
        );
        expect(rows).toEqual([
          { detail: expect.stringMatching(/^Redrove the onboarding execution .*Local\.ProcessExited/) },
        ]);
      }
    },
    40_000,
  );
});

describe('an execution whose task always crashes', () => {
  it('is restarted up to the cap, then abandoned with the reason, and never retried again', async () => {
    const tenantId = `doomed_${suffix}`;
    if (server === undefined) {
      await restart();
    }
    await api(apiKeys.get(tenantId))('POST', `/tenants/${tenantId}/executions`, {
      body: { workflow: 'crash_doomed', input: {} },
    }).catch(() => undefined);
    expect(await died()).toBe(DOOMED_EXIT_CODE);
    // Each start-up pass redrives it and the task takes the process down again, until the cap.
    for (let restarts = 1; restarts <= 3; restarts += 1) {
      const code = await restart().then(
        () => died(),
        (error: unknown) => {
          if (error instanceof ExitedBeforeReadyError) {
            server = undefined;
            return error.code;
          }
          throw error;
        },
      );
      expect(code).toBe(DOOMED_EXIT_CODE);
    }
    await restart();
    const execution = await onlyExecution(tenantId);
    expect(execution.status).toBe('failed');
    expect(execution.attempts).toBe(3);
    expect(execution.error).toMatch(
      /^ABANDONED: recovery restarted it 3 time\(s\), its cap \(TENANTFLOW_RECOVERY_MAX_ATTEMPTS = 3\); last seen: .*Local\.ProcessExited/,
    );
    const history = ['redrive:done', 'redrive:done', 'redrive:done', 'abandon:done'];
    expect(await recoveryActions(execution.id)).toEqual(history);
    // The scheduled passes (every second here) leave it alone from now on.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect(await recoveryActions(execution.id)).toEqual(history);
    expect(server?.child.exitCode).toBeNull();
  }, 90_000);
});
