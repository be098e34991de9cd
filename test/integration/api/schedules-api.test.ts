import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createScheduleCleanup, createSchedules } from '@tenantflow/shared/runtime/schedules';
import { firingExecutionId } from '@tenantflow/shared/schedules/schedule-service';
import { defineTask } from '@tenantflow/shared/workflows/task';
import { defineWorkflow } from '@tenantflow/shared/workflows/workflow';
import { WorkflowRegistry } from '@tenantflow/shared/workflows/workflow-registry';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type LocalPlatform, startLocalPlatform } from '../../../local/local-platform.js';
import { installedWorkflows } from '../../../workflows/index.js';
import { createTestDatabase } from '../../support/database.js';
import { apiClient } from '../../support/http.js';
import { ManualClock } from '../../support/manual-clock.js';
import { dropTenantRoles, tenantIdSuffix } from '../../support/tenants.js';

/**
 * Schedules over HTTP on the local server (the same handlers as the Lambda), their firing through
 * the same ExecutionService as the API, and the local timer on a clock the test moves.
 */

const ADMIN_TOKEN = 'test-admin-token-schedules-0123456789';
const suffix = tenantIdSuffix();
const acme = `acme_${suffix}`;
const globex = `globex_${suffix}`;
/** Allowed two schedules, to reach the limit quickly. */
const initech = `initech_${suffix}`;
const leaving = `leaving_${suffix}`;

const echo = defineTask({
  id: 'echo',
  run: (ctx) => {
    ctx.set('echoed', ctx.input);
  },
});
const workflows = new WorkflowRegistry([defineWorkflow({ name: 'echo', tasks: [echo] })]).include(
  installedWorkflows({ examples: true }),
);

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let home: string;
let local: LocalPlatform;
let admin: ReturnType<typeof apiClient>;
const clock = new ManualClock();
const keys: Record<string, string> = {};

beforeAll(async () => {
  database = await createTestDatabase();
  home = await mkdtemp(join(tmpdir(), 'tenantflow-schedules-api-'));
  local = await startLocalPlatform({
    home,
    port: 0,
    databaseUrl: database.url,
    adminToken: ADMIN_TOKEN,
    workflows,
    retryIntervalMs: 0,
    adapters: { scheduleClock: clock },
  });
  admin = apiClient(local.url, ADMIN_TOKEN);
  for (const tenantId of [acme, globex, initech, leaving]) {
    const created = await admin('POST', '/tenants', {
      body: {
        tenantId,
        name: tenantId,
        ...(tenantId === initech ? { config: { limits: { maxSchedules: 2 } } } : {}),
      },
    });
    expect(created.status).toBe(202);
    keys[tenantId] = created.body.apiKey;
  }
  await local.platform.lifecycleOrchestrator.drain();
});

afterAll(async () => {
  await local?.stop();
  await database?.drop();
  await dropTenantRoles(inject('superuserUrl'), suffix);
  await rm(home, { recursive: true, force: true });
});

const asTenant = (tenantId: string) => apiClient(local.url, keys[tenantId]);

async function createSchedule(tenantId: string, body: Record<string, unknown>) {
  const response = await asTenant(tenantId)('POST', `/tenants/${tenantId}/schedules`, { body });
  expect(response.status).toBe(201);
  return response.body;
}

/** Waits for the execution a firing started to be on record, and answers it. */
async function executionOf(tenantId: string, executionId: string) {
  for (let i = 0; i < 200; i++) {
    const response = await asTenant(tenantId)('GET', `/tenants/${tenantId}/executions/${executionId}`);
    if (response.status === 200) {
      return response.body;
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`execution ${executionId} was never recorded`);
}

async function executionCount(tenantId: string): Promise<number> {
  const { rows } = await local.platform.pool.query<{ count: number }>(
    `SELECT count(*)::int AS count FROM "${tenantId}".executions`,
  );
  return rows[0]?.count ?? -1;
}

describe('schedules API', () => {
  describe('create, read, change, delete', () => {
    it('creates a schedule (201) with its defaults and when it is next due', async () => {
      const before = Date.now();
      const schedule = await createSchedule(acme, {
        workflow: 'echo',
        expression: 'cron(0 9 ? * MON-FRI *)',
        timezone: 'Europe/Paris',
        input: { n: 1 },
      });
      expect(schedule).toMatchObject({
        scheduleId: expect.stringMatching(/^[0-9a-f-]{36}$/),
        tenantId: acme,
        workflow: 'echo',
        expression: 'cron(0 9 ? * MON-FRI *)',
        timezone: 'Europe/Paris',
        input: { n: 1 },
        state: 'enabled',
      });
      const next = new Date(schedule.nextDueAt);
      expect(next.getTime()).toBeGreaterThan(before);
      // 09:00 on a weekday in Paris: 07:00 or 08:00 UTC.
      expect([7, 8]).toContain(next.getUTCHours());
      expect([1, 2, 3, 4, 5]).toContain(next.getUTCDay());

      const minimal = await createSchedule(acme, { workflow: 'echo', expression: 'rate(1 hour)' });
      expect(minimal).toMatchObject({ timezone: 'UTC', input: {}, state: 'enabled' });

      const read = await asTenant(acme)('GET', `/tenants/${acme}/schedules/${schedule.scheduleId}`);
      expect(read.status).toBe(200);
      expect(read.body).toEqual(schedule);
      // Armed on the local timer.
      expect(local.platform.scheduleTrigger.nextDue(acme, schedule.scheduleId)?.toISOString()).toBe(
        schedule.nextDueAt,
      );
    });

    it('lists in pages of limit, oldest first, with a nextToken', async () => {
      const call = asTenant(acme);
      const all = await call('GET', `/tenants/${acme}/schedules`);
      expect(all.status).toBe(200);
      expect(all.body.schedules.length).toBeGreaterThanOrEqual(2);
      expect(all.body.nextToken).toBeUndefined();

      const first = await call('GET', `/tenants/${acme}/schedules?limit=1`);
      expect(first.body.schedules).toHaveLength(1);
      expect(first.body.schedules[0].scheduleId).toBe(all.body.schedules[0].scheduleId);
      const second = await call(
        'GET',
        `/tenants/${acme}/schedules?limit=1&nextToken=${first.body.nextToken}`,
      );
      expect(second.body.schedules[0].scheduleId).toBe(all.body.schedules[1].scheduleId);

      const forged = await call('GET', `/tenants/${acme}/schedules?nextToken=not-ours`);
      expect(forged.status).toBe(400);
      expect(forged.body.error.reasons).toEqual(['query.nextToken: is not a token this API returned']);
    });

    it('pauses, resumes and redefines a schedule with PATCH', async () => {
      const call = asTenant(acme);
      const schedule = await createSchedule(acme, { workflow: 'echo', expression: 'rate(5 minutes)' });
      const path = `/tenants/${acme}/schedules/${schedule.scheduleId}`;

      const paused = await call('PATCH', path, { body: { state: 'paused' } });
      expect(paused.status).toBe(200);
      expect(paused.body).toMatchObject({ state: 'paused', nextDueAt: null });
      expect(local.platform.scheduleTrigger.nextDue(acme, schedule.scheduleId)).toBeUndefined();

      const resumed = await call('PATCH', path, { body: { state: 'enabled' } });
      expect(resumed.body.state).toBe('enabled');
      expect(resumed.body.nextDueAt).not.toBeNull();

      const changed = await call('PATCH', path, {
        body: { expression: 'cron(30 6 1 * ? *)', timezone: 'Asia/Tokyo', input: { n: 2 } },
      });
      expect(changed.status).toBe(200);
      expect(changed.body).toMatchObject({
        expression: 'cron(30 6 1 * ? *)',
        timezone: 'Asia/Tokyo',
        input: { n: 2 },
      });
      const next = new Date(changed.body.nextDueAt);
      // 06:30 on the 1st in Tokyo (UTC+9) is 21:30 UTC the day before.
      expect(next.getUTCHours()).toBe(21);
      expect(next.getUTCMinutes()).toBe(30);

      const empty = await call('PATCH', path, { body: {} });
      expect(empty.status).toBe(400);
    });

    it('deletes a schedule (204), its trigger too; then it is 404', async () => {
      const call = asTenant(acme);
      const schedule = await createSchedule(acme, { workflow: 'echo', expression: 'rate(1 day)' });
      const path = `/tenants/${acme}/schedules/${schedule.scheduleId}`;
      const deleted = await call('DELETE', path);
      expect(deleted.status).toBe(204);
      expect(local.platform.scheduleTrigger.nextDue(acme, schedule.scheduleId)).toBeUndefined();
      for (const method of ['GET', 'DELETE', 'PATCH'] as const) {
        const gone = await call(method, path, method === 'PATCH' ? { body: { state: 'paused' } } : {});
        expect(gone.status).toBe(404);
        expect(gone.body.error.code).toBe('SCHEDULE_NOT_FOUND');
      }
    });
  });

  describe('refusals', () => {
    it('answers 400 naming what is wrong with the expression, time zone, workflow or input', async () => {
      const call = asTenant(acme);
      const post = (body: Record<string, unknown>) => call('POST', `/tenants/${acme}/schedules`, { body });

      const badCron = await post({ workflow: 'echo', expression: 'cron(0 9 * * MON *)' });
      expect(badCron.status).toBe(400);
      expect(badCron.body.error.reasons).toEqual([
        expect.stringMatching(
          /^body\.expression: day-of-month and day-of-week: exactly one of them must be '\?'/,
        ),
      ]);
      const badRate = await post({ workflow: 'echo', expression: 'rate(1 minutes)' });
      expect(badRate.body.error.reasons).toEqual([
        "body.expression: rate() takes the singular for 1: 'rate(1 minute)'",
      ]);

      const badZone = await post({
        workflow: 'echo',
        expression: 'rate(1 hour)',
        timezone: 'Mars/Olympus_Mons',
      });
      expect(badZone.status).toBe(400);
      expect(badZone.body.error.reasons).toEqual([
        expect.stringContaining("body.timezone: 'Mars/Olympus_Mons' is not an IANA time zone"),
      ]);

      const unknownWorkflow = await post({ workflow: 'no_such_workflow', expression: 'rate(1 hour)' });
      expect(unknownWorkflow.status).toBe(400);
      expect(unknownWorkflow.body.error.reasons).toEqual([
        "body.workflow: 'no_such_workflow' is not a registered workflow (GET /workflows lists them)",
      ]);

      const badInput = await post({
        workflow: 'configurable_processing',
        expression: 'rate(1 hour)',
        input: { items: [1, 'two'] },
      });
      expect(badInput.status).toBe(400);
      expect(badInput.body.error.reasons).toEqual(['input.items.1: expected number, received string']);

      const extra = await post({ workflow: 'echo', expression: 'rate(1 hour)', every: 'day' });
      expect(extra.status).toBe(400);

      const badId = await call('GET', `/tenants/${acme}/schedules/not-a-uuid`);
      expect(badId.status).toBe(400);
      expect((await call('GET', `/tenants/${acme}/schedules`)).body.schedules).not.toContainEqual(
        expect.objectContaining({ workflow: 'no_such_workflow' }),
      );
    });

    it("answers 403 to a tenant's key on another tenant's schedules, and 404 for its ids", async () => {
      const globexSchedule = await createSchedule(globex, { workflow: 'echo', expression: 'rate(1 hour)' });
      const acmeClient = asTenant(acme);
      for (const [method, path] of [
        ['GET', `/tenants/${globex}/schedules`],
        ['POST', `/tenants/${globex}/schedules`],
        ['GET', `/tenants/${globex}/schedules/${globexSchedule.scheduleId}`],
        ['PATCH', `/tenants/${globex}/schedules/${globexSchedule.scheduleId}`],
        ['DELETE', `/tenants/${globex}/schedules/${globexSchedule.scheduleId}`],
      ] as const) {
        const response = await acmeClient(
          method,
          path,
          method === 'POST' || method === 'PATCH'
            ? { body: { workflow: 'echo', expression: 'rate(1 hour)' } }
            : {},
        );
        expect(response.status).toBe(403);
      }
      // Another tenant's schedule id under one's own tenant is not found, never shown.
      const crossed = await acmeClient('GET', `/tenants/${acme}/schedules/${globexSchedule.scheduleId}`);
      expect(crossed.status).toBe(404);
      // The admin token reaches any tenant's.
      const asAdmin = await admin('GET', `/tenants/${globex}/schedules/${globexSchedule.scheduleId}`);
      expect(asAdmin.status).toBe(200);
    });

    it('answers 429 past limits.maxSchedules', async () => {
      await createSchedule(initech, { workflow: 'echo', expression: 'rate(1 hour)' });
      await createSchedule(initech, { workflow: 'echo', expression: 'rate(2 hours)' });
      const third = await asTenant(initech)('POST', `/tenants/${initech}/schedules`, {
        body: { workflow: 'echo', expression: 'rate(3 hours)' },
      });
      expect(third.status).toBe(429);
      expect(third.body.error.message).toContain('limits.maxSchedules = 2');
      const listed = await asTenant(initech)('GET', `/tenants/${initech}/schedules`);
      expect(listed.body.schedules).toHaveLength(2);
    });

    it('answers 423 to changes of an inactive tenant and to any call while it is onboarded', async () => {
      const schedule = await createSchedule(globex, { workflow: 'echo', expression: 'rate(1 hour)' });
      await admin('POST', `/tenants/${globex}/deactivate`);
      try {
        const created = await admin('POST', `/tenants/${globex}/schedules`, {
          body: { workflow: 'echo', expression: 'rate(1 hour)' },
        });
        expect(created.status).toBe(423);
        const patched = await admin('PATCH', `/tenants/${globex}/schedules/${schedule.scheduleId}`, {
          body: { state: 'paused' },
        });
        expect(patched.status).toBe(423);
        // Reads still work for an inactive tenant, as for its executions.
        expect((await admin('GET', `/tenants/${globex}/schedules`)).status).toBe(200);
      } finally {
        await admin('POST', `/tenants/${globex}/activate`);
      }

      const onboarding = `onboarding_${suffix}`;
      await local.platform.provisioning.register({ tenantId: onboarding, name: onboarding });
      const listed = await admin('GET', `/tenants/${onboarding}/schedules`);
      expect(listed.status).toBe(423);
      expect(listed.body.error.code).toBe('TENANT_INACTIVE');
      const unknown = await admin('GET', `/tenants/nobody_${suffix}/schedules`);
      expect(unknown.status).toBe(404);
    });
  });

  describe('firing', () => {
    it('starts one execution per scheduled time, however often that firing is delivered', async () => {
      const schedule = await createSchedule(acme, {
        workflow: 'echo',
        expression: 'rate(1 hour)',
        input: { n: 7 },
      });
      const scheduledTime = new Date('2026-06-01T10:00:00Z');
      const firing = { tenantId: acme, scheduleId: schedule.scheduleId, scheduledTime };
      const before = await executionCount(acme);

      const [first, second] = await Promise.all([local.schedules.fire(firing), local.schedules.fire(firing)]);
      const third = await local.schedules.fire({ ...firing, scheduledTime: new Date(scheduledTime) });

      const executionId = firingExecutionId(schedule.scheduleId, scheduledTime);
      for (const result of [first, second, third]) {
        expect(result).toMatchObject({ outcome: 'started', executionId });
      }
      expect(await executionCount(acme)).toBe(before + 1);
      const execution = await executionOf(acme, executionId);
      expect(execution).toMatchObject({ workflow: 'echo', input: { n: 7 } });

      // Another time is another execution.
      const later = await local.schedules.fire({
        ...firing,
        scheduledTime: new Date('2026-06-01T11:00:00Z'),
      });
      expect(later).toMatchObject({ outcome: 'started' });
      expect(await executionCount(acme)).toBe(before + 2);
    });

    it('records a firing of an inactive tenant as skipped, and starts nothing', async () => {
      const schedule = await createSchedule(globex, { workflow: 'echo', expression: 'rate(1 hour)' });
      const before = await executionCount(globex);
      await admin('POST', `/tenants/${globex}/deactivate`);
      try {
        const scheduledTime = new Date('2026-06-02T10:00:00Z');
        const result = await local.schedules.fire({
          tenantId: globex,
          scheduleId: schedule.scheduleId,
          scheduledTime,
        });
        expect(result).toMatchObject({ outcome: 'skipped', reason: expect.stringContaining('inactive') });
        const firings = await local.schedules.firings(globex, schedule.scheduleId);
        expect(firings).toEqual([expect.objectContaining({ outcome: 'skipped', scheduledTime })]);
        expect(await executionCount(globex)).toBe(before);
      } finally {
        await admin('POST', `/tenants/${globex}/activate`);
      }
    });

    it('starts nothing for a paused schedule or a deleted one', async () => {
      const schedule = await createSchedule(acme, { workflow: 'echo', expression: 'rate(1 hour)' });
      const path = `/tenants/${acme}/schedules/${schedule.scheduleId}`;
      await asTenant(acme)('PATCH', path, { body: { state: 'paused' } });
      const before = await executionCount(acme);
      const firing = {
        tenantId: acme,
        scheduleId: schedule.scheduleId,
        scheduledTime: new Date('2026-06-03T10:00:00Z'),
      };

      expect(await local.schedules.fire(firing)).toMatchObject({ outcome: 'paused' });
      await asTenant(acme)('DELETE', path);
      expect(await local.schedules.fire(firing)).toMatchObject({ outcome: 'not_found' });
      // Nor for another tenant's schedule named under this one.
      const globexSchedule = await createSchedule(globex, { workflow: 'echo', expression: 'rate(1 hour)' });
      expect(await local.schedules.fire({ ...firing, scheduleId: globexSchedule.scheduleId })).toMatchObject({
        outcome: 'not_found',
      });
      expect(await executionCount(acme)).toBe(before);
    });

    it('records a firing past the concurrency limit as skipped instead of failing', async () => {
      await admin('PATCH', `/tenants/${initech}`, {
        body: { config: { limits: { maxConcurrentExecutions: 1 } } },
      });
      const [schedule] = (await asTenant(initech)('GET', `/tenants/${initech}/schedules`)).body.schedules;
      // One execution pending: the limit is reached.
      await local.platform.pool.query(
        `INSERT INTO "${initech}".executions (id, workflow, input) VALUES (gen_random_uuid(), 'echo', '{}')`,
      );
      const result = await local.schedules.fire({
        tenantId: initech,
        scheduleId: schedule.scheduleId,
        scheduledTime: new Date('2026-06-04T10:00:00Z'),
      });
      expect(result).toMatchObject({ outcome: 'skipped', reason: expect.stringContaining('Limit reached') });
    });
  });

  describe('the local timer', () => {
    it('fires a rate(1 minute) schedule at its start and every minute after', async () => {
      const schedule = await createSchedule(acme, {
        workflow: 'echo',
        expression: 'rate(1 minute)',
        input: { timer: 1 },
      });
      const trigger = local.platform.scheduleTrigger;
      const first = trigger.nextDue(acme, schedule.scheduleId);
      expect(first).toBeDefined();
      clock.advanceTo((first as Date).getTime());
      await executionOf(acme, firingExecutionId(schedule.scheduleId, first as Date));

      const second = trigger.nextDue(acme, schedule.scheduleId) as Date;
      expect(second.getTime() - (first as Date).getTime()).toBe(60_000);
      clock.advanceTo(second.getTime());
      const execution = await executionOf(acme, firingExecutionId(schedule.scheduleId, second));
      expect(execution.input).toEqual({ timer: 1 });
      await asTenant(acme)('DELETE', `/tenants/${acme}/schedules/${schedule.scheduleId}`);
    });

    it('fires a cron schedule of every minute on the minute', async () => {
      const schedule = await createSchedule(acme, { workflow: 'echo', expression: 'cron(* * * * ? *)' });
      const due = local.platform.scheduleTrigger.nextDue(acme, schedule.scheduleId) as Date;
      expect(due.getUTCSeconds()).toBe(0);
      expect(due.getTime() - clock.now()).toBeLessThanOrEqual(60_000);
      clock.advanceTo(due.getTime());
      await executionOf(acme, firingExecutionId(schedule.scheduleId, due));
      await asTenant(acme)('DELETE', `/tenants/${acme}/schedules/${schedule.scheduleId}`);
    });

    it('arms again from the table what it lost (resync)', async () => {
      const schedule = await createSchedule(acme, { workflow: 'echo', expression: 'rate(1 day)' });
      const trigger = local.platform.scheduleTrigger;
      await trigger.delete(acme, schedule.scheduleId);
      expect(trigger.nextDue(acme, schedule.scheduleId)).toBeUndefined();
      const resynced = await local.schedules.resync(acme);
      expect(resynced.failed).toBe(0);
      expect(trigger.nextDue(acme, schedule.scheduleId)).toBeDefined();
    });
  });

  it('creates nothing when the trigger cannot be put, so a retry leaves one schedule', async () => {
    const failing = createSchedules(local.platform.core, {
      workflows,
      orchestrator: local.orchestrator,
      trigger: {
        put: async () => {
          throw new Error('Scheduler unavailable');
        },
        delete: async () => {},
      },
      logger: { info: () => {}, warn: () => {}, error: () => {} } as never,
    });
    const before = (await admin('GET', `/tenants/${globex}/schedules?limit=100`)).body.schedules.length;
    await expect(
      failing.schedules.create(globex, { workflow: 'echo', expression: 'rate(1 hour)' }),
    ).rejects.toThrow('Scheduler unavailable');
    expect((await admin('GET', `/tenants/${globex}/schedules?limit=100`)).body.schedules).toHaveLength(
      before,
    );
  });

  describe('offboarding', () => {
    it("deletes the tenant's schedules and their triggers before its schema goes", async () => {
      const schedules = [
        await createSchedule(leaving, { workflow: 'echo', expression: 'rate(1 hour)' }),
        await createSchedule(leaving, { workflow: 'echo', expression: 'cron(0 9 ? * MON-FRI *)' }),
      ];
      const trigger = local.platform.scheduleTrigger;
      for (const schedule of schedules) {
        expect(trigger.nextDue(leaving, schedule.scheduleId)).toBeDefined();
      }
      expect((await admin('POST', `/tenants/${leaving}/deactivate`)).status).toBe(200);
      expect((await admin('DELETE', `/tenants/${leaving}`)).status).toBe(202);
      await local.platform.lifecycleOrchestrator.drain();

      expect((await admin('GET', `/tenants/${leaving}`)).status).toBe(404);
      for (const schedule of schedules) {
        expect(trigger.nextDue(leaving, schedule.scheduleId)).toBeUndefined();
      }
      const { rows } = await local.platform.pool.query(
        'SELECT id FROM tenantflow.schedules WHERE tenant_id = $1',
        [leaving],
      );
      expect(rows).toEqual([]);
    });

    it('deletes each trigger before its row, and a repeated run (a retried step) deletes nothing more', async () => {
      const schedule = await createSchedule(initech, { workflow: 'echo', expression: 'rate(1 hour)' }).catch(
        async () => (await asTenant(initech)('GET', `/tenants/${initech}/schedules`)).body.schedules[0],
      );
      const deleted: string[] = [];
      const cleanup = createScheduleCleanup(local.platform.core, {
        trigger: {
          put: async () => {},
          delete: async (tenantId, scheduleId) => {
            // The row is still there when its trigger goes: a crash here leaves it for the retry.
            const { rows } = await local.platform.pool.query(
              'SELECT 1 FROM tenantflow.schedules WHERE id = $1',
              [scheduleId],
            );
            expect(rows).toHaveLength(1);
            deleted.push(`${tenantId}/${scheduleId}`);
          },
        },
        logger: { info: () => {}, warn: () => {}, error: () => {} },
      });
      const first = await cleanup.removeTenantSchedules(initech);
      expect(first).toBeGreaterThanOrEqual(1);
      expect(deleted).toContain(`${initech}/${schedule.scheduleId}`);
      expect(await cleanup.removeTenantSchedules(initech)).toBe(0);
      expect(deleted).toHaveLength(first);
      expect((await asTenant(initech)('GET', `/tenants/${initech}/schedules`)).body.schedules).toEqual([]);
    });
  });
});
