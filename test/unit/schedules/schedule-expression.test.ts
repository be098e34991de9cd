import { ValidationError } from '@tenantflow/shared/kernel/errors';
import {
  isTimeZone,
  nextDueTime,
  parseScheduleExpression,
  scheduleExpressionIssues,
} from '@tenantflow/shared/schedules/schedule-expression';
import { describe, expect, it } from 'vitest';

/** The next `count` due times after `from`, as ISO strings. */
function dueTimes(expression: string, timezone: string, from: string, count = 3, anchor?: string): string[] {
  const parsed = parseScheduleExpression(expression);
  const times: string[] = [];
  let after = new Date(from);
  for (let i = 0; i < count; i++) {
    const next = nextDueTime(parsed, timezone, after, anchor === undefined ? undefined : new Date(anchor));
    if (next === undefined) {
      break;
    }
    times.push(next.toISOString());
    after = next;
  }
  return times;
}

describe('EventBridge cron() to croner', () => {
  it.each([
    ['cron(0 9 ? * MON-FRI *)', '0 0 9 * * MON-FRI *'],
    ['cron(0 9 * * ? *)', '0 0 9 * * * *'],
    ['cron(0/15 * * * ? *)', '0 0-59/15 * * * * *'],
    ['cron(5/10 8-17 ? * 2-6 *)', '0 5-59/10 8-17 * * 2-6 *'],
    ['cron(0 9 ? * L *)', '0 0 9 * * 7 *'],
    ['cron(0 9 ? * 6L *)', '0 0 9 * * 6L *'],
    ['cron(0 9 ? * FRI#3 *)', '0 0 9 * * FRI#3 *'],
    ['cron(0 9 L * ? *)', '0 0 9 L * * *'],
    ['cron(0 9 LW * ? *)', '0 0 9 LW * * *'],
    ['cron(0 9 15W * ? *)', '0 0 9 15W * * *'],
    ['cron(0 9 1,15 JAN,jul ? 2027-2030)', '0 0 9 1,15 JAN,JUL * 2027-2030'],
    ['cron(30 2 ? * sun *)', '0 30 2 * * SUN *'],
  ])('%s reads as %s', (expression, pattern) => {
    const parsed = parseScheduleExpression(expression);
    expect(parsed).toMatchObject({ kind: 'cron', expression, cronerPattern: pattern });
  });

  // Day-of-week numbering: EventBridge's 1 is Sunday, croner's (standard) 1 is Monday.
  it.each([
    // 2026-03-28 is a Saturday.
    ['cron(0 9 ? * 1 *)', ['2026-03-29T09:00:00.000Z', '2026-04-05T09:00:00.000Z']], // Sundays
    ['cron(0 9 ? * 2 *)', ['2026-03-30T09:00:00.000Z', '2026-04-06T09:00:00.000Z']], // Mondays
    ['cron(0 9 ? * 7 *)', ['2026-04-04T09:00:00.000Z', '2026-04-11T09:00:00.000Z']], // Saturdays (after the 28th's 09:00)
    ['cron(0 9 ? * SAT *)', ['2026-04-04T09:00:00.000Z', '2026-04-11T09:00:00.000Z']],
    ['cron(0 9 ? * L *)', ['2026-04-04T09:00:00.000Z', '2026-04-11T09:00:00.000Z']], // L: the last day of the week
    ['cron(0 9 ? * MON-FRI *)', ['2026-03-30T09:00:00.000Z', '2026-03-31T09:00:00.000Z']],
    ['cron(0 9 ? * 2-6 *)', ['2026-03-30T09:00:00.000Z', '2026-03-31T09:00:00.000Z']],
    ['cron(0 9 ? * 6L *)', ['2026-04-24T09:00:00.000Z', '2026-05-29T09:00:00.000Z']], // last Friday
    ['cron(0 9 ? * 6#3 *)', ['2026-04-17T09:00:00.000Z', '2026-05-15T09:00:00.000Z']], // third Friday
    ['cron(0 9 ? * 2#1 *)', ['2026-04-06T09:00:00.000Z', '2026-05-04T09:00:00.000Z']], // first Monday
    ['cron(0 9 L * ? *)', ['2026-03-31T09:00:00.000Z', '2026-04-30T09:00:00.000Z']],
    [
      'cron(0 9 LW * ? *)',
      ['2026-03-31T09:00:00.000Z', '2026-04-30T09:00:00.000Z', '2026-05-29T09:00:00.000Z'],
    ],
    // 15 Aug 2026 is a Saturday: the nearest weekday is Friday the 14th.
    ['cron(0 9 15W 8 ? *)', ['2026-08-14T09:00:00.000Z', '2027-08-16T09:00:00.000Z']],
    ['cron(0 0 29 2 ? *)', ['2028-02-29T00:00:00.000Z', '2032-02-29T00:00:00.000Z']],
    [
      'cron(0/20 10 * * ? *)',
      ['2026-03-29T10:00:00.000Z', '2026-03-29T10:20:00.000Z', '2026-03-29T10:40:00.000Z'],
    ],
    ['cron(0 12 1 JAN ? 2027,2029)', ['2027-01-01T12:00:00.000Z', '2029-01-01T12:00:00.000Z']],
  ])('%s fires at the times EventBridge Scheduler would', (expression, expected) => {
    expect(dueTimes(expression, 'UTC', '2026-03-28T12:00:00Z', expected.length)).toEqual(expected);
  });

  it('stops when its years have passed', () => {
    expect(dueTimes('cron(0 12 1 JAN ? 2027)', 'UTC', '2026-03-28T12:00:00Z', 3)).toEqual([
      '2027-01-01T12:00:00.000Z',
    ]);
  });

  describe('time zones', () => {
    it('reads the fields in the schedule time zone', () => {
      expect(dueTimes('cron(0 9 ? * MON-FRI *)', 'Europe/Paris', '2026-03-27T12:00:00Z', 2)).toEqual([
        '2026-03-30T07:00:00.000Z', // CEST, UTC+2, after the change on the 29th
        '2026-03-31T07:00:00.000Z',
      ]);
      expect(dueTimes('cron(0 9 * * ? *)', 'America/New_York', '2026-01-10T00:00:00Z', 1)).toEqual([
        '2026-01-10T14:00:00.000Z', // EST, UTC-5
      ]);
      expect(dueTimes('cron(0 9 * * ? *)', 'Asia/Kolkata', '2026-01-10T00:00:00Z', 1)).toEqual([
        '2026-01-10T03:30:00.000Z', // IST, UTC+5:30
      ]);
    });

    it('keeps the wall-clock time across a daylight-saving change', () => {
      expect(dueTimes('cron(0 9 * * ? *)', 'Europe/Paris', '2026-03-28T00:00:00Z', 2)).toEqual([
        '2026-03-28T08:00:00.000Z', // CET
        '2026-03-29T07:00:00.000Z', // CEST
      ]);
    });

    it('skips a time the clocks skip in spring, as EventBridge Scheduler does', () => {
      // Paris, 29 March 2026: 02:00 becomes 03:00, so 02:30 does not exist that day.
      expect(dueTimes('cron(30 2 * * ? *)', 'Europe/Paris', '2026-03-28T12:00:00Z', 2)).toEqual([
        '2026-03-30T00:30:00.000Z',
        '2026-03-31T00:30:00.000Z',
      ]);
      // Hourly: the 02:15 of that day is skipped, the others fire.
      expect(dueTimes('cron(15 * * * ? *)', 'Europe/Paris', '2026-03-29T00:00:00Z', 2)).toEqual([
        '2026-03-29T00:15:00.000Z', // 01:15 CET
        '2026-03-29T01:15:00.000Z', // 03:15 CEST
      ]);
    });

    it('fires a time the clocks repeat in autumn once', () => {
      // Paris, 25 October 2026: 03:00 CEST becomes 02:00 CET, so 02:30 occurs twice.
      expect(dueTimes('cron(30 2 * * ? *)', 'Europe/Paris', '2026-10-24T12:00:00Z', 2)).toEqual([
        '2026-10-25T00:30:00.000Z',
        '2026-10-26T01:30:00.000Z',
      ]);
      expect(dueTimes('cron(30 * * * ? *)', 'Europe/Paris', '2026-10-24T23:00:00Z', 3)).toEqual([
        '2026-10-24T23:30:00.000Z', // 01:30 CEST
        '2026-10-25T00:30:00.000Z', // 02:30 CEST; its repeat at 01:30Z (02:30 CET) is not fired
        '2026-10-25T02:30:00.000Z', // 03:30 CET
      ]);
    });

    it('knows IANA time zones and nothing else', () => {
      expect(isTimeZone('UTC')).toBe(true);
      expect(isTimeZone('Europe/Paris')).toBe(true);
      expect(isTimeZone('America/Argentina/Buenos_Aires')).toBe(true);
      expect(isTimeZone('Mars/Olympus_Mons')).toBe(false);
      expect(isTimeZone('')).toBe(false);
      expect(isTimeZone('Europe/Paris\u0000')).toBe(false);
    });
  });
});

describe('EventBridge rate()', () => {
  it.each([
    ['rate(1 minute)', 60_000],
    ['rate(5 minutes)', 300_000],
    ['rate(1 hour)', 3_600_000],
    ['rate(12 hours)', 43_200_000],
    ['rate(1 day)', 86_400_000],
    ['rate(7 days)', 604_800_000],
  ])('%s repeats every %i ms', (expression, intervalMs) => {
    expect(parseScheduleExpression(expression)).toMatchObject({ kind: 'rate', intervalMs });
  });

  it('repeats from its anchor, not from whenever it is asked', () => {
    const anchor = '2026-03-28T12:00:20Z';
    expect(dueTimes('rate(1 minute)', 'UTC', '2026-03-28T12:05:00Z', 2, anchor)).toEqual([
      '2026-03-28T12:05:20.000Z',
      '2026-03-28T12:06:20.000Z',
    ]);
    // Before the anchor: the anchor itself is the first time (a start date, in EventBridge's words).
    expect(dueTimes('rate(1 hour)', 'UTC', '2026-03-28T11:00:00Z', 2, anchor)).toEqual([
      '2026-03-28T12:00:20.000Z',
      '2026-03-28T13:00:20.000Z',
    ]);
  });

  it('counts days as 24 hours across a daylight-saving change, as EventBridge Scheduler does', () => {
    expect(
      dueTimes('rate(1 day)', 'Europe/Paris', '2026-03-28T09:00:00Z', 2, '2026-03-27T09:00:00Z'),
    ).toEqual(['2026-03-29T09:00:00.000Z', '2026-03-30T09:00:00.000Z']);
  });
});

describe('expressions refused, with a reason that helps', () => {
  it.each([
    ['', 'must be cron('],
    ['every 5 minutes', 'must be cron('],
    ['rate(5 minute)', "the plural above 1: 'rate(5 minutes)'"],
    ['rate(1 minutes)', "the singular for 1: 'rate(1 minute)'"],
    ['rate(0 minutes)', 'at least 1'],
    ['rate(5 seconds)', 'minute(s), hour(s) or day(s)'],
    ['rate(1.5 hours)', 'whole number'],
    ['rate(20000 days)', 'at most 10000 days'],
    ['cron(0 9 * * *)', '6 fields'],
    ['cron(0 9 * * ? * *)', '6 fields'],
    ['cron(0  9 * * ? *)', 'single spaces'],
    ['cron(0 9 * * MON *)', "exactly one of them must be '?'"],
    ['cron(0 9 ? * ? *)', "exactly one of them must be '?'"],
    ['cron(60 9 * * ? *)', "minutes: '60' is outside 0–59"],
    ['cron(0 24 * * ? *)', "hours: '24' is outside 0–23"],
    ['cron(0 9 32 * ? *)', "day-of-month: '32' is outside 1–31"],
    ['cron(0 9 * 13 ? *)', "month: '13' is outside 1–12"],
    ['cron(0 9 ? * 0 *)', "day-of-week: '0' is outside 1–7"],
    ['cron(0 9 ? * 8 *)', "day-of-week: '8' is outside 1–7"],
    ['cron(0 9 ? * FUNDAY *)', "day-of-week: 'FUNDAY' is not a value of 1–7 or SUN–SAT"],
    ['cron(0 9 ? * 6#6 *)', 'needs #1 to #5'],
    ['cron(0 9 * * ? 1969)', "year: '1969' is outside 1970–2199"],
    ['cron(? 9 * * ? *)', "minutes: '?' is allowed in day-of-month and day-of-week only"],
    ['cron(0 9 1,,2 * ? *)', 'is empty'],
    ['cron(0/0 9 * * ? *)', 'a step outside'],
    ['cron(0 9 L * MON *)', "exactly one of them must be '?'"],
    ['cron(0 9 31 2 ? *)', 'matches no date'],
  ])('%j', (expression, reason) => {
    const issues = scheduleExpressionIssues(expression);
    expect(issues.join(' | ')).toContain(reason);
    expect(() => parseScheduleExpression(expression)).toThrow(ValidationError);
  });

  it('names every faulty field at once, under body.expression', () => {
    try {
      parseScheduleExpression('cron(61 25 * * ? *)');
      expect.unreachable();
    } catch (error) {
      expect((error as ValidationError).reasons).toEqual([
        "body.expression: minutes: '61' is outside 0–59",
        "body.expression: hours: '25' is outside 0–23",
      ]);
    }
  });
});
