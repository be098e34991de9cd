import {
  ConflictException,
  ResourceNotFoundException,
  type SchedulerClient,
  ThrottlingException,
} from '@aws-sdk/client-scheduler';
import { loadConfig } from '@tenantflow/shared/config/config';
import { ConfigurationError } from '@tenantflow/shared/kernel/errors';
import { eventBridgeScheduleTrigger } from '@tenantflow/shared/runtime/schedule-trigger';
import {
  EventBridgeScheduleTrigger,
  firingInputFor,
  SCHEDULE_NAME_PATTERN,
  scheduleNameFor,
} from '@tenantflow/shared/schedules/eventbridge-schedule-trigger';
import { describe, expect, it } from 'vitest';

const TARGET_ARN = 'arn:aws:lambda:eu-west-1:123456789012:function:tenantflow-prod-schedule-fire';
const ROLE_ARN = 'arn:aws:iam::123456789012:role/tenantflow-prod-scheduler';
const AWS_ENV = { DATABASE_URL: 'postgres://proxy.example/db', TENANTFLOW_STAGE: 'prod' };

/** A client that answers each command with the next of `answers` (an error is thrown), recording the calls. */
function scriptedClient(answers: Array<Error | object>) {
  const calls: string[] = [];
  const client = {
    send: async (command: { constructor: { name: string } }) => {
      calls.push(command.constructor.name);
      const answer = answers.shift() ?? {};
      if (answer instanceof Error) {
        throw answer;
      }
      return answer;
    },
  } as unknown as SchedulerClient;
  return { client, calls };
}

const metadata = { $metadata: {} };
const schedule = {
  tenantId: 'acme',
  scheduleId: 'nightly',
  expression: 'rate(5 minutes)',
  timezone: 'UTC',
  enabled: true,
};

function triggerOver(client: SchedulerClient) {
  return new EventBridgeScheduleTrigger({
    client,
    groupName: 'tenantflow-prod',
    targetArn: TARGET_ARN,
    roleArn: ROLE_ARN,
  });
}

describe('scheduleNameFor', () => {
  it("is the tenant id, a dash and 32 hex digits: Scheduler's characters, 64 at most", () => {
    const name = scheduleNameFor('acme', 'nightly');
    expect(name).toMatch(/^acme-[0-9a-f]{32}$/);
    expect(scheduleNameFor('acme', 'nightly')).toBe(name);
    const longest = scheduleNameFor('t'.repeat(58), 'x'.repeat(500));
    expect(longest).toHaveLength(64);
    expect(longest).toMatch(SCHEDULE_NAME_PATTERN);
  });

  it('keeps any schedule id out of the name: spaces, slashes and non-ASCII become hash digits', () => {
    expect(scheduleNameFor('acme', 'weekly / Montag 9:00 ☕')).toMatch(SCHEDULE_NAME_PATTERN);
  });

  it('tells pairs apart that plain concatenation would merge', () => {
    const names = [
      scheduleNameFor('a_b', 'c'),
      scheduleNameFor('a', 'b_c'),
      scheduleNameFor('a', '_b_c'),
      scheduleNameFor('acme', 'nightly'),
      scheduleNameFor('acme', 'nightly '),
    ];
    expect(new Set(names).size).toBe(names.length);
  });
});

describe('firingInputFor', () => {
  it('is JSON once Scheduler has put the time in, whatever the ids hold', () => {
    const input = firingInputFor('acme', '"}, "tenantId": "other');
    const delivered = input.replace('<aws.scheduler.scheduled-time>', '2030-01-01T09:00:00Z');
    expect(JSON.parse(delivered)).toEqual({
      tenantId: 'acme',
      scheduleId: '"}, "tenantId": "other',
      scheduledTime: '2030-01-01T09:00:00Z',
    });
  });
});

describe('EventBridgeScheduleTrigger errors', () => {
  it('updates when the create conflicts, and creates only otherwise', async () => {
    const conflict = scriptedClient([
      new ConflictException({ message: 'exists', Message: 'exists', ...metadata }),
      {},
    ]);
    await triggerOver(conflict.client).put(schedule);
    expect(conflict.calls).toEqual(['CreateScheduleCommand', 'UpdateScheduleCommand']);

    const fresh = scriptedClient([{}]);
    await triggerOver(fresh.client).put(schedule);
    expect(fresh.calls).toEqual(['CreateScheduleCommand']);
  });

  it('names the schedule group when Scheduler does not know it (a stack without it)', async () => {
    // moto_server answers a missing group with a 500, not Scheduler's ResourceNotFoundException.
    const { client } = scriptedClient([
      new ResourceNotFoundException({ message: 'no group', Message: 'no group', ...metadata }),
    ]);
    const put = triggerOver(client).put(schedule);
    await expect(put).rejects.toBeInstanceOf(ConfigurationError);
    await expect(put).rejects.toThrow(/schedule group 'tenantflow-prod' \(TENANTFLOW_SCHEDULE_GROUP\)/);
  });

  it('passes on any other failure of put and delete, rather than taking it for done', async () => {
    const throttled = () =>
      new ThrottlingException({ message: 'slow down', Message: 'slow down', ...metadata });
    await expect(triggerOver(scriptedClient([throttled()]).client).put(schedule)).rejects.toBeInstanceOf(
      ThrottlingException,
    );
    await expect(
      triggerOver(scriptedClient([throttled()]).client).delete('acme', 'nightly'),
    ).rejects.toBeInstanceOf(ThrottlingException);
  });

  it('takes a schedule that is not there for deleted', async () => {
    const { client, calls } = scriptedClient([
      new ResourceNotFoundException({ message: 'gone', Message: 'gone', ...metadata }),
    ]);
    await expect(triggerOver(client).delete('acme', 'nightly')).resolves.toBeUndefined();
    expect(calls).toEqual(['DeleteScheduleCommand']);
  });
});

describe('schedule configuration', () => {
  it('defaults the group to tenantflow-<stage> and needs no ARN locally', () => {
    expect(loadConfig(AWS_ENV).schedules).toEqual({
      groupName: 'tenantflow-prod',
      targetArn: undefined,
      roleArn: undefined,
      deadLetterArn: undefined,
    });
    expect(
      loadConfig({ DATABASE_URL: 'postgres://localhost/db', TENANTFLOW_LOCAL: '1' }).schedules.groupName,
    ).toBe('tenantflow-local');
  });

  it('reads the group, the target, the role and the dead-letter queue as CDK sets them', () => {
    const config = loadConfig({
      ...AWS_ENV,
      TENANTFLOW_SCHEDULE_GROUP: 'tenantflow-prod',
      TENANTFLOW_SCHEDULE_TARGET_ARN: TARGET_ARN,
      TENANTFLOW_SCHEDULER_ROLE_ARN: ROLE_ARN,
      TENANTFLOW_SCHEDULE_DEAD_LETTER_ARN:
        'arn:aws:sqs:eu-west-1:123456789012:tenantflow-prod-schedule-firings-dlq',
    });
    expect(config.schedules).toMatchObject({
      groupName: 'tenantflow-prod',
      targetArn: TARGET_ARN,
      roleArn: ROLE_ARN,
    });
  });

  it('names each malformed variable', () => {
    expect(() =>
      loadConfig({
        ...AWS_ENV,
        TENANTFLOW_SCHEDULE_GROUP: 'tenantflow/prod',
        TENANTFLOW_SCHEDULE_TARGET_ARN: ROLE_ARN,
        TENANTFLOW_SCHEDULER_ROLE_ARN: TARGET_ARN,
        TENANTFLOW_SCHEDULE_DEAD_LETTER_ARN: 'tenantflow-prod-dlq',
      }),
    ).toThrow(
      /TENANTFLOW_SCHEDULE_GROUP must be an EventBridge Scheduler schedule group name.*TENANTFLOW_SCHEDULE_TARGET_ARN must be a Lambda function ARN.*TENANTFLOW_SCHEDULER_ROLE_ARN must be an IAM role ARN.*TENANTFLOW_SCHEDULE_DEAD_LETTER_ARN must be an SQS queue ARN/,
    );
  });

  it('eventBridgeScheduleTrigger refuses to be built without the target and the role, naming both', () => {
    const config = loadConfig(AWS_ENV);
    expect(() => eventBridgeScheduleTrigger({ config })).toThrow(ConfigurationError);
    expect(() => eventBridgeScheduleTrigger({ config })).toThrow(
      /TENANTFLOW_SCHEDULE_TARGET_ARN .* and TENANTFLOW_SCHEDULER_ROLE_ARN/,
    );
    const configured = loadConfig({
      ...AWS_ENV,
      TENANTFLOW_SCHEDULE_TARGET_ARN: TARGET_ARN,
      TENANTFLOW_SCHEDULER_ROLE_ARN: ROLE_ARN,
    });
    expect(
      eventBridgeScheduleTrigger({ config: configured }, { client: scriptedClient([]).client }),
    ).toBeInstanceOf(EventBridgeScheduleTrigger);
  });
});
