import { randomBytes } from 'node:crypto';
import {
  CreateScheduleGroupCommand,
  GetScheduleCommand,
  ResourceNotFoundException,
  SchedulerClient,
} from '@aws-sdk/client-scheduler';
import { TENANT_ID_MAX_LENGTH } from '@tenantflow/shared/kernel/tenant-id';
import {
  DEFAULT_RETRY_POLICY,
  EventBridgeScheduleTrigger,
  SCHEDULE_NAME_PATTERN,
  scheduleNameFor,
} from '@tenantflow/shared/schedules/eventbridge-schedule-trigger';
import type { TriggeredSchedule } from '@tenantflow/shared/schedules/schedule-trigger';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { MOTO_INSTALL_HINT } from '../../support/moto-setup.js';

const motoEndpoint = inject('motoEndpoint');
const motoMissing = motoEndpoint === '';

const TARGET_ARN = 'arn:aws:lambda:us-east-1:123456789012:function:tenantflow-qa-schedule-fire';
const ROLE_ARN = 'arn:aws:iam::123456789012:role/tenantflow-qa-scheduler';
const DEAD_LETTER_ARN = 'arn:aws:sqs:us-east-1:123456789012:tenantflow-qa-schedule-firings-dlq';

const clients: SchedulerClient[] = [];

afterAll(() => {
  for (const client of clients) {
    client.destroy();
  }
});

/** A client of the run's moto_server, recording the operations it sends. */
function motoClient(): { client: SchedulerClient; calls: string[] } {
  const client = new SchedulerClient({
    endpoint: motoEndpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    // An answer the test did not expect must fail the test, not be retried into a different one.
    maxAttempts: 1,
  });
  const calls: string[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      calls.push(String(context.commandName));
      return next(args);
    },
    { step: 'initialize', name: 'recordCalls' },
  );
  clients.push(client);
  return { client, calls };
}

/** A schedule group of its own (as CDK creates the stage's), so tests share moto without meeting. */
async function freshTrigger() {
  const { client, calls } = motoClient();
  const groupName = `tenantflow-t${randomBytes(6).toString('hex')}`;
  await client.send(new CreateScheduleGroupCommand({ Name: groupName }));
  calls.length = 0;
  const trigger = new EventBridgeScheduleTrigger({
    client,
    groupName,
    targetArn: TARGET_ARN,
    roleArn: ROLE_ARN,
    deadLetterArn: DEAD_LETTER_ARN,
  });
  const get = (tenantId: string, scheduleId: string) =>
    client.send(
      new GetScheduleCommand({ GroupName: groupName, Name: scheduleNameFor(tenantId, scheduleId) }),
    );
  return { trigger, client, groupName, calls, get };
}

const nightly: TriggeredSchedule = {
  tenantId: 'acme',
  scheduleId: 'nightly-report',
  expression: 'cron(0 2 * * ? *)',
  timezone: 'Europe/Paris',
  enabled: true,
};

describe.skipIf(motoMissing)(
  motoMissing
    ? `EventBridgeScheduleTrigger on moto_server (skipped: moto_server is not on the PATH; install it with ${MOTO_INSTALL_HINT})`
    : 'EventBridgeScheduleTrigger on moto_server',
  () => {
    it('put creates one schedule in the group: the expression in its time zone, exactly on time, invoking the firing function', async () => {
      // Prepare
      const { trigger, groupName, get } = await freshTrigger();

      // Act
      await trigger.put(nightly);

      // Assert
      const schedule = await get('acme', 'nightly-report');
      expect(schedule).toMatchObject({
        GroupName: groupName,
        Name: scheduleNameFor('acme', 'nightly-report'),
        ScheduleExpression: 'cron(0 2 * * ? *)',
        ScheduleExpressionTimezone: 'Europe/Paris',
        State: 'ENABLED',
        FlexibleTimeWindow: { Mode: 'OFF' },
        Target: {
          Arn: TARGET_ARN,
          RoleArn: ROLE_ARN,
          RetryPolicy: DEFAULT_RETRY_POLICY,
          DeadLetterConfig: { Arn: DEAD_LETTER_ARN },
        },
      });
      expect(schedule.Description).toContain("'acme'");
    });

    it("the target input names the tenant and schedule, and leaves the scheduled time to Scheduler's placeholder", async () => {
      // Prepare
      const { trigger, get } = await freshTrigger();

      // Act
      await trigger.put({ ...nightly, tenantId: 'acme_corp', scheduleId: 'id with "quotes" and \\' });

      // Assert
      const input = (await get('acme_corp', 'id with "quotes" and \\')).Target?.Input ?? '';
      expect(input).toContain('"scheduledTime":"<aws.scheduler.scheduled-time>"');
      expect(JSON.parse(input)).toEqual({
        tenantId: 'acme_corp',
        scheduleId: 'id with "quotes" and \\',
        scheduledTime: '<aws.scheduler.scheduled-time>',
      });
    });

    it('put again replaces the definition (expression, time zone, paused): create conflicts, then update', async () => {
      // Prepare
      const { trigger, get, calls } = await freshTrigger();
      await trigger.put(nightly);

      // Act
      await trigger.put({ ...nightly, expression: 'rate(15 minutes)', timezone: 'UTC', enabled: false });

      // Assert
      expect(calls).toEqual(['CreateScheduleCommand', 'CreateScheduleCommand', 'UpdateScheduleCommand']);
      const schedule = await get('acme', 'nightly-report');
      expect(schedule).toMatchObject({
        ScheduleExpression: 'rate(15 minutes)',
        ScheduleExpressionTimezone: 'UTC',
        State: 'DISABLED',
        FlexibleTimeWindow: { Mode: 'OFF' },
        Target: { Arn: TARGET_ARN, RoleArn: ROLE_ARN, DeadLetterConfig: { Arn: DEAD_LETTER_ARN } },
      });
      expect(JSON.parse(schedule.Target?.Input ?? '')).toMatchObject({ scheduleId: 'nightly-report' });
    });

    it('put of a paused schedule creates it disabled, and putting it enabled resumes it', async () => {
      // Prepare
      const { trigger, get } = await freshTrigger();

      // Act
      await trigger.put({ ...nightly, enabled: false });
      const paused = (await get('acme', 'nightly-report')).State;
      await trigger.put(nightly);

      // Assert
      expect(paused).toBe('DISABLED');
      expect((await get('acme', 'nightly-report')).State).toBe('ENABLED');
    });

    it('delete removes the schedule, and deleting it again is not an error', async () => {
      // Prepare
      const { trigger, get } = await freshTrigger();
      await trigger.put(nightly);

      // Act
      await trigger.delete('acme', 'nightly-report');
      await trigger.delete('acme', 'nightly-report');

      // Assert
      await expect(get('acme', 'nightly-report')).rejects.toBeInstanceOf(ResourceNotFoundException);
    });

    it("delete removes that schedule only, not the tenant's others", async () => {
      // Prepare
      const { trigger, get } = await freshTrigger();
      await trigger.put(nightly);
      await trigger.put({ ...nightly, scheduleId: 'hourly' });

      // Act
      await trigger.delete('acme', 'nightly-report');

      // Assert
      expect((await get('acme', 'hourly')).Name).toBe(scheduleNameFor('acme', 'hourly'));
    });

    it('tenants with the longest ids, alike in their first 31 characters, get distinct schedules', async () => {
      // Prepare: moto does not check names, so their validity is asserted here, against Scheduler's rules.
      const { trigger, get } = await freshTrigger();
      const stem = 'a'.repeat(TENANT_ID_MAX_LENGTH - 1);
      const first = { ...nightly, tenantId: `${stem}x` };
      const second = { ...nightly, tenantId: `${stem}y`, expression: 'rate(1 hour)' };

      // Act
      await trigger.put(first);
      await trigger.put(second);

      // Assert
      const names = [first, second].map((schedule) =>
        scheduleNameFor(schedule.tenantId, schedule.scheduleId),
      );
      expect(new Set(names).size).toBe(2);
      for (const name of names) {
        expect(name).toMatch(SCHEDULE_NAME_PATTERN);
        expect(name.length).toBeLessThanOrEqual(64);
      }
      expect((await get(first.tenantId, 'nightly-report')).ScheduleExpression).toBe('cron(0 2 * * ? *)');
      expect((await get(second.tenantId, 'nightly-report')).ScheduleExpression).toBe('rate(1 hour)');
    });
  },
);
