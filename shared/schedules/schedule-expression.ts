import { Cron } from 'croner';
import { ValidationError } from '../kernel/errors.js';

/**
 * Schedule expressions exactly as EventBridge Scheduler writes them, checked here so a bad one is
 * a 400 naming the field at fault instead of a failure inside the Scheduler, and converted to
 * croner's patterns so the local server fires them at the same times.
 *
 * - `cron(minutes hours day-of-month month day-of-week year)`: day-of-week 1–7 is SUN–SAT (or the
 *   names), one of day-of-month and day-of-week must be `?`, `L`, `W` and `#` as in Quartz.
 * - `rate(value unit)`: minute(s), hour(s) or day(s), the singular for 1.
 */
export type ScheduleExpression = CronExpression | RateExpression;

export interface CronExpression {
  readonly kind: 'cron';
  readonly expression: string;
  /** The same schedule as croner reads it: seconds first, `?` as `*`, day-of-week 1–7 (Quartz numbering). */
  readonly cronerPattern: string;
}

export interface RateExpression {
  readonly kind: 'rate';
  readonly expression: string;
  readonly value: number;
  readonly unit: 'minute' | 'hour' | 'day';
  readonly intervalMs: number;
}

/** The croner options every converted pattern is read with. */
export const CRONER_OPTIONS = {
  mode: '7-part',
  // EventBridge numbers day-of-week 1 (SUN) to 7 (SAT), as Quartz does.
  alternativeWeekdays: true,
  // One of the two day fields is always `?` (read as `*`), so AND is what EventBridge means.
  domAndDow: true,
} as const;

const UNIT_MS = { minute: 60_000, hour: 3_600_000, day: 86_400_000 } as const;
/** EventBridge takes years 1970–2199. */
const MIN_YEAR = 1970;
const MAX_YEAR = 2199;
/** A rate longer than this (about 27 years) is a mistake, and its milliseconds must stay exact. */
const MAX_RATE_DAYS = 10_000;

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

interface FieldSpec {
  readonly name: string;
  readonly min: number;
  readonly max: number;
  readonly names?: readonly string[];
  /** Day-of-month and day-of-week only. */
  readonly question?: boolean;
}

const FIELDS: readonly FieldSpec[] = [
  { name: 'minutes', min: 0, max: 59 },
  { name: 'hours', min: 0, max: 23 },
  { name: 'day-of-month', min: 1, max: 31, question: true },
  { name: 'month', min: 1, max: 12, names: MONTHS },
  { name: 'day-of-week', min: 1, max: 7, names: DAYS, question: true },
  { name: 'year', min: MIN_YEAR, max: MAX_YEAR },
];

const RATE = /^rate\((\d{1,7}) (minutes?|hours?|days?)\)$/;
const CRON = /^cron\((.*)\)$/;

/**
 * What is wrong with an expression, one reason per fault (empty when it is valid). The API puts
 * these under `body.expression`.
 *
 * @example
 * ```ts
 * scheduleExpressionIssues('cron(0 9 * * MON *)');
 * // ["day-of-month and day-of-week: one of them must be '?' (e.g. cron(0 9 ? * MON *))"]
 * ```
 */
export function scheduleExpressionIssues(expression: string): string[] {
  const parsed = tryParse(expression);
  return parsed.kind === 'invalid' ? parsed.issues : [];
}

/**
 * Parses an expression, or throws a ValidationError (400) whose reasons say what to fix.
 *
 * @example
 * ```ts
 * parseScheduleExpression('rate(5 minutes)'); // { kind: 'rate', value: 5, unit: 'minute', intervalMs: 300000, ... }
 * parseScheduleExpression('cron(0 9 ? * MON-FRI *)').cronerPattern; // '0 0 9 * * MON-FRI *'
 * ```
 */
export function parseScheduleExpression(expression: string): ScheduleExpression {
  const parsed = tryParse(expression);
  if (parsed.kind === 'invalid') {
    throw new ValidationError(
      'Invalid request',
      parsed.issues.map((issue) => `body.expression: ${issue}`),
    );
  }
  return parsed;
}

/** Whether `timezone` is an IANA time zone this runtime knows (`Europe/Paris`, `UTC`). */
export function isTimeZone(timezone: string): boolean {
  if (timezone.length === 0 || timezone.length > 64) {
    return false;
  }
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
    return true;
  } catch {
    return false;
  }
}

/**
 * The first time after `after` the schedule is due, or `undefined` when it never is again (a
 * cron whose years have passed). A rate repeats every interval from `anchor` (when the expression
 * was set), as EventBridge Scheduler counts from when the schedule was created or changed. Cron
 * fields are read in `timezone`, with EventBridge Scheduler's daylight-saving rules: a time the
 * clocks skip in spring is skipped, and a time they repeat in autumn fires once.
 *
 * @example
 * ```ts
 * nextDueTime(parseScheduleExpression('cron(0 9 ? * MON-FRI *)'), 'Europe/Paris', new Date('2026-03-28T12:00:00Z'));
 * // 2026-03-30T07:00:00.000Z (Monday, 09:00 in Paris)
 * ```
 */
export function nextDueTime(
  schedule: ScheduleExpression,
  timezone: string,
  after: Date,
  anchor: Date = after,
  compiled?: Cron,
): Date | undefined {
  if (schedule.kind === 'rate') {
    // The anchor, then every interval after it: the first of those strictly after `after`.
    const elapsed = after.getTime() - anchor.getTime();
    const periods = elapsed < 0 ? 0 : Math.floor(elapsed / schedule.intervalMs) + 1;
    return new Date(anchor.getTime() + periods * schedule.intervalMs);
  }
  const cron = compiled ?? compileCron(schedule, timezone);
  let from = after;
  // A skipped or repeated wall-clock time is passed over; a few steps always reach a real one.
  for (let step = 0; step < 1000; step++) {
    const next = cron.nextRun(from);
    if (next === null) {
      return undefined;
    }
    if (cron.match(next) && !repeatsAnEarlierWallClock(next, timezone)) {
      return next;
    }
    from = next;
  }
  return undefined;
}

/** A croner job for a cron expression, paused: the caller decides when it runs. */
export function compileCron(schedule: CronExpression, timezone: string): Cron {
  return new Cron(schedule.cronerPattern, { ...CRONER_OPTIONS, timezone, paused: true });
}

/**
 * Whether `instant`'s wall-clock time in `timezone` already occurred shortly before it: the second
 * pass through an hour the clocks turned back, which EventBridge Scheduler does not fire again.
 */
function repeatsAnEarlierWallClock(instant: Date, timezone: string): boolean {
  const wallClock = wallClockFormatter(timezone);
  const at = wallClock.format(instant);
  // Zones turn their clocks back by 30 minutes (Lord Howe), one hour or two (Troll).
  return [30, 60, 120].some(
    (minutes) => wallClock.format(new Date(instant.getTime() - minutes * 60_000)) === at,
  );
}

const formatters = new Map<string, Intl.DateTimeFormat>();
function wallClockFormatter(timezone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timezone);
  if (formatter === undefined) {
    formatter = new Intl.DateTimeFormat('en-CA', {
      timeZone: timezone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
    });
    formatters.set(timezone, formatter);
  }
  return formatter;
}

type Parsed = ScheduleExpression | { readonly kind: 'invalid'; readonly issues: string[] };

function tryParse(expression: string): Parsed {
  if (expression.startsWith('rate(')) {
    return parseRate(expression);
  }
  const cron = CRON.exec(expression);
  if (cron === null) {
    return invalid(
      "must be cron(minutes hours day-of-month month day-of-week year) or rate(value unit), e.g. 'cron(0 9 ? * MON-FRI *)' or 'rate(5 minutes)'",
    );
  }
  const fields = (cron[1] ?? '').split(' ');
  if (fields.length !== 6 || fields.some((field) => field.length === 0)) {
    return invalid(
      `cron() takes 6 fields separated by single spaces (minutes hours day-of-month month day-of-week year), got ${fields.filter((field) => field.length > 0).length}: e.g. 'cron(0 9 ? * MON-FRI *)'`,
    );
  }
  const upper = fields.map((field) => field.toUpperCase());
  const issues: string[] = [];
  FIELDS.forEach((spec, index) => {
    issues.push(...fieldIssues(spec, upper[index] ?? ''));
  });
  const dayOfMonth = upper[2];
  const dayOfWeek = upper[4];
  if ((dayOfMonth === '?') === (dayOfWeek === '?')) {
    issues.push(
      `day-of-month and day-of-week: exactly one of them must be '?' (got '${fields[2]}' and '${fields[4]}'), e.g. 'cron(0 9 ? * MON-FRI *)' or 'cron(0 9 1 * ? *)'`,
    );
  }
  if (issues.length > 0) {
    return { kind: 'invalid', issues };
  }
  const converted: CronExpression = { kind: 'cron', expression, cronerPattern: toCronerPattern(upper) };
  try {
    const job = compileCron(converted, 'UTC');
    if (job.nextRun(new Date(Date.UTC(MIN_YEAR, 0, 1))) === null) {
      return invalid('matches no date at all (e.g. day 31 of a month that has 30)');
    }
  } catch (error) {
    return invalid(`is not a schedule: ${(error as Error).message.replace(/^CronPattern: /, '')}`);
  }
  return converted;
}

function parseRate(expression: string): Parsed {
  const match = RATE.exec(expression);
  if (match === null) {
    return invalid(
      "rate() takes a whole number and a unit of minute(s), hour(s) or day(s), e.g. 'rate(1 hour)' or 'rate(15 minutes)'",
    );
  }
  const value = Number(match[1]);
  const written = match[2] as string;
  const unit = written.replace(/s$/, '') as RateExpression['unit'];
  if (value < 1) {
    return invalid('rate() needs a value of at least 1');
  }
  if (value === 1 && written.endsWith('s')) {
    return invalid(`rate() takes the singular for 1: 'rate(1 ${unit})'`);
  }
  if (value > 1 && !written.endsWith('s')) {
    return invalid(`rate() takes the plural above 1: 'rate(${value} ${unit}s)'`);
  }
  const intervalMs = value * UNIT_MS[unit];
  if (intervalMs > MAX_RATE_DAYS * UNIT_MS.day) {
    return invalid(`rate() is at most ${MAX_RATE_DAYS} days`);
  }
  return { kind: 'rate', expression, value, unit, intervalMs };
}

function invalid(issue: string): Parsed {
  return { kind: 'invalid', issues: [issue] };
}

/** The faults of one field, checked against EventBridge's grammar for it. */
function fieldIssues(spec: FieldSpec, field: string): string[] {
  if (field === '?') {
    return spec.question === true
      ? []
      : [`${spec.name}: '?' is allowed in day-of-month and day-of-week only`];
  }
  const issues: string[] = [];
  for (const item of field.split(',')) {
    const problem = itemIssue(spec, item);
    if (problem !== undefined) {
      issues.push(`${spec.name}: '${item}' ${problem}`);
    }
  }
  return issues;
}

function itemIssue(spec: FieldSpec, item: string): string | undefined {
  if (item.length === 0) {
    return 'is empty (a list is values separated by commas, e.g. 1,15)';
  }
  if (spec.name === 'day-of-month') {
    if (item === 'L' || item === 'LW') {
      return undefined;
    }
    const weekday = /^(\d+)W$/.exec(item);
    if (weekday !== null) {
      return inRange(spec, Number(weekday[1]));
    }
  }
  if (spec.name === 'day-of-week') {
    if (item === 'L') {
      return undefined;
    }
    const last = /^([A-Z]+|\d+)L$/.exec(item);
    if (last !== null) {
      return valueIssue(spec, last[1] as string);
    }
    const nth = /^([A-Z]+|\d+)#(\d+)$/.exec(item);
    if (nth !== null) {
      const nthNumber = Number(nth[2]);
      return (
        valueIssue(spec, nth[1] as string) ??
        (nthNumber >= 1 && nthNumber <= 5 ? undefined : 'needs #1 to #5')
      );
    }
  }
  const [range, step, ...rest] = item.split('/');
  if (rest.length > 0 || range === undefined) {
    return 'has more than one /';
  }
  if (step !== undefined && !/^\d+$/.test(step)) {
    return 'has a step that is not a whole number';
  }
  if (step !== undefined && (Number(step) < 1 || Number(step) > spec.max)) {
    return `has a step outside 1–${spec.max}`;
  }
  if (range === '*') {
    return undefined;
  }
  const bounds = range.split('-');
  if (bounds.length > 2) {
    return 'is not a value, a range (a-b), a step (a/n) or a list';
  }
  for (const bound of bounds) {
    const issue = valueIssue(spec, bound);
    if (issue !== undefined) {
      return issue;
    }
  }
  return undefined;
}

function valueIssue(spec: FieldSpec, value: string): string | undefined {
  if (/^\d+$/.test(value)) {
    return inRange(spec, Number(value));
  }
  if (spec.names?.includes(value) === true) {
    return undefined;
  }
  const allowed = spec.names === undefined ? '' : ` or ${spec.names[0]}–${spec.names.at(-1)}`;
  return `is not a value of ${spec.min}–${spec.max}${allowed}`;
}

function inRange(spec: FieldSpec, value: number): string | undefined {
  return value >= spec.min && value <= spec.max ? undefined : `is outside ${spec.min}–${spec.max}`;
}

/**
 * EventBridge's six fields as croner's seven: a seconds field of 0 first, `?` as `*`, a
 * day-of-week `L` alone as 7 (Saturday, the last day of the week), and a bare start with a step
 * (`5/15`) as the range to the field's end (`5-59/15`), which is what EventBridge means by it.
 */
function toCronerPattern(fields: readonly string[]): string {
  const converted = FIELDS.map((spec, index) => {
    const field = fields[index] ?? '*';
    if (field === '?') {
      return '*';
    }
    return field
      .split(',')
      .map((item) => {
        if (spec.name === 'day-of-week' && item === 'L') {
          return '7';
        }
        const startWithStep = /^([A-Z]+|\d+)\/(\d+)$/.exec(item);
        if (startWithStep !== null) {
          return `${startWithStep[1]}-${spec.max}/${startWithStep[2]}`;
        }
        return item;
      })
      .join(',');
  });
  return ['0', ...converted].join(' ');
}
