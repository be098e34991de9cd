import type { Logger } from '@tenantflow/shared/logging/logger';
import type { ScheduleFiring } from '@tenantflow/shared/schedules/schedule-trigger';
import type { Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { createScheduleFiringHandler } from '../../../functions/schedules/fire.js';

/** The handler over a schedules service that records the firings it is given, and a logger that records errors. */
function handlerWithFakeSchedules(
  fire: (firing: ScheduleFiring) => Promise<unknown> = async () => undefined,
) {
  const firings: ScheduleFiring[] = [];
  const errors: Array<{ message: string; detail: unknown }> = [];
  const logger = {
    error: (message: string, detail: unknown) => errors.push({ message, detail }),
  } as unknown as Logger;
  const handler = createScheduleFiringHandler({
    logger,
    schedules: {
      fire: async (firing) => {
        firings.push(firing);
        return fire(firing);
      },
    },
  });
  return { firings, errors, invoke: (event: unknown) => handler(event, {} as Context) };
}

describe('the schedule-firing handler', () => {
  it('fires the schedule named by the event, at the time Scheduler filled in', async () => {
    // Prepare
    const { firings, invoke } = handlerWithFakeSchedules();

    // Act
    const outcome = await invoke({
      tenantId: 'acme',
      scheduleId: 'nightly',
      scheduledTime: '2030-01-01T09:00:00Z',
    });

    // Assert
    expect(outcome).toEqual({ fired: true });
    expect(firings).toEqual([
      { tenantId: 'acme', scheduleId: 'nightly', scheduledTime: new Date('2030-01-01T09:00:00.000Z') },
    ]);
  });

  it.each([
    ['no event', undefined],
    ['an EventBridge rule event', { 'detail-type': 'Scheduled Event', source: 'aws.events', detail: {} }],
    ['a bad tenant id', { tenantId: 'Acme!', scheduleId: 'nightly', scheduledTime: '2030-01-01T09:00:00Z' }],
    ['an empty schedule id', { tenantId: 'acme', scheduleId: '', scheduledTime: '2030-01-01T09:00:00Z' }],
    [
      'the placeholder not replaced',
      { tenantId: 'acme', scheduleId: 'nightly', scheduledTime: '<aws.scheduler.scheduled-time>' },
    ],
    [
      'a time that does not exist',
      { tenantId: 'acme', scheduleId: 'nightly', scheduledTime: '2030-02-31T25:00:00Z' },
    ],
  ])('logs and drops %s, without throwing (a retry could never succeed)', async (_title, event) => {
    // Prepare
    const { firings, errors, invoke } = handlerWithFakeSchedules();

    // Act
    const outcome = await invoke(event);

    // Assert
    expect(outcome).toEqual({ fired: false, reason: 'malformed' });
    expect(firings).toEqual([]);
    expect(errors.map((error) => error.message)).toEqual(['malformed schedule firing dropped']);
  });

  it('throws when firing fails, so that Lambda delivers the firing again', async () => {
    // Prepare
    const { invoke } = handlerWithFakeSchedules(async () => {
      throw new Error('database unreachable');
    });

    // Act
    const invocation = invoke({
      tenantId: 'acme',
      scheduleId: 'nightly',
      scheduledTime: '2030-01-01T09:00:00Z',
    });

    // Assert
    await expect(invocation).rejects.toThrow('database unreachable');
  });
});
