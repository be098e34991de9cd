import type { ScheduleFiring } from '@tenantflow/shared/schedules/schedule-trigger';
import { describe, expect, it, vi } from 'vitest';
import { LocalScheduleTrigger } from '../../../local/local-schedule-trigger.js';
import { ManualClock } from '../../support/manual-clock.js';

const SCHEDULE = {
  tenantId: 'acme',
  scheduleId: '0b6f3c1e-8f2a-4c55-9d1e-6a7b8c9d0e1f',
  timezone: 'UTC',
  enabled: true,
};

function started(clock: ManualClock, fire: (firing: ScheduleFiring) => Promise<unknown> = async () => {}) {
  const logger = { error: vi.fn() };
  const trigger = new LocalScheduleTrigger({ logger, clock });
  const fired: ScheduleFiring[] = [];
  trigger.start(async (firing) => {
    fired.push(firing);
    return fire(firing);
  });
  return { trigger, fired, logger };
}

describe('LocalScheduleTrigger', () => {
  it('fires a rate() at its anchor, then every interval, with the time each was due', async () => {
    const clock = new ManualClock();
    const { trigger, fired } = started(clock);
    const anchor = new Date(clock.now());
    await trigger.put({ ...SCHEDULE, expression: 'rate(1 minute)', anchoredAt: anchor });

    clock.advance(0);
    clock.advance(60_000);
    clock.advance(60_000);

    expect(fired.map((firing) => firing.scheduledTime.getTime() - anchor.getTime())).toEqual([
      0, 60_000, 120_000,
    ]);
    expect(fired[0]).toMatchObject({ tenantId: 'acme', scheduleId: SCHEDULE.scheduleId });
  });

  it('does not fire again at an old anchor when it is put again later (a restart)', async () => {
    const clock = new ManualClock();
    const { trigger, fired } = started(clock);
    const anchor = new Date(clock.now() - 10 * 60_000);
    await trigger.put({ ...SCHEDULE, expression: 'rate(1 minute)', anchoredAt: anchor });
    clock.advance(60_000);
    expect(fired).toHaveLength(1);
    expect((fired[0] as ScheduleFiring).scheduledTime.getTime()).toBeGreaterThan(clock.now() - 60_000);
  });

  it('fires a cron() on its minute', async () => {
    const clock = new ManualClock();
    const { trigger, fired } = started(clock);
    await trigger.put({ ...SCHEDULE, expression: 'cron(* * * * ? *)' });
    clock.advance(60_000);
    expect(fired).toHaveLength(1);
    expect((fired[0] as ScheduleFiring).scheduledTime.getUTCSeconds()).toBe(0);
    expect((fired[0] as ScheduleFiring).scheduledTime.getUTCMilliseconds()).toBe(0);
  });

  it('fires nothing for a paused or deleted schedule, and replaces a definition put again', async () => {
    const clock = new ManualClock();
    const { trigger, fired } = started(clock);
    await trigger.put({ ...SCHEDULE, expression: 'cron(* * * * ? *)' });
    await trigger.put({ ...SCHEDULE, expression: 'cron(* * * * ? *)', enabled: false });
    clock.advance(120_000);
    expect(fired).toHaveLength(0);
    expect(trigger.size).toBe(0);

    await trigger.put({
      ...SCHEDULE,
      expression: 'rate(1 hour)',
      anchoredAt: new Date(clock.now() - 3_600_000),
    });
    await trigger.put({
      ...SCHEDULE,
      expression: 'rate(1 day)',
      anchoredAt: new Date(clock.now() - 3_600_000),
    });
    clock.advance(3_600_000);
    expect(fired).toHaveLength(0);
    await trigger.delete(SCHEDULE.tenantId, SCHEDULE.scheduleId);
    expect(clock.nextTimerAt).toBeUndefined();
    await trigger.delete(SCHEDULE.tenantId, SCHEDULE.scheduleId);
  });

  it('logs a firing that fails and keeps the schedule armed', async () => {
    const clock = new ManualClock();
    const { trigger, fired, logger } = started(clock, async () => {
      throw new Error('database unreachable');
    });
    await trigger.put({ ...SCHEDULE, expression: 'cron(* * * * ? *)' });
    clock.advance(60_000);
    await trigger.stop();
    expect(fired).toHaveLength(1);
    expect(logger.error).toHaveBeenCalledWith(
      'schedule firing failed',
      expect.objectContaining({ tenantId: 'acme' }),
    );
  });

  it('arms what was put before it started only once it starts', async () => {
    const clock = new ManualClock();
    const trigger = new LocalScheduleTrigger({ logger: { error: vi.fn() }, clock });
    await trigger.put({ ...SCHEDULE, expression: 'cron(* * * * ? *)' });
    expect(clock.nextTimerAt).toBeUndefined();
    const fired: ScheduleFiring[] = [];
    trigger.start(async (firing) => fired.push(firing));
    clock.advance(60_000);
    expect(fired).toHaveLength(1);
    await trigger.stop();
    clock.advance(120_000);
    expect(fired).toHaveLength(1);
  });
});
