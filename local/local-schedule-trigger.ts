import type { Logger } from '@tenantflow/shared/logging/logger';
import {
  type CronExpression,
  compileCron,
  nextDueTime,
  parseScheduleExpression,
  type ScheduleExpression,
} from '@tenantflow/shared/schedules/schedule-expression';
import type {
  ScheduleFiring,
  ScheduleTrigger,
  TriggeredSchedule,
} from '@tenantflow/shared/schedules/schedule-trigger';
import type { Cron } from 'croner';

/** The clock the timer reads and sets timers on: the system's, or a test's that it advances itself. */
export interface TriggerClock {
  now(): number;
  setTimer(callback: () => void, ms: number): unknown;
  clearTimer(timer: unknown): void;
}

export const SYSTEM_CLOCK: TriggerClock = {
  now: () => Date.now(),
  setTimer: (callback, ms) => {
    const timer = setTimeout(callback, ms);
    timer.unref();
    return timer;
  },
  clearTimer: (timer) => clearTimeout(timer as NodeJS.Timeout),
};

/** How recently a rate() must have been set for its anchor to fire (EventBridge Scheduler's precision). */
const RATE_START_GRACE_MS = 60_000;

/** setTimeout's longest delay; a later due time is reached in steps. */
const MAX_TIMER_MS = 2_147_483_647;

interface Armed {
  readonly schedule: TriggeredSchedule;
  readonly expression: ScheduleExpression;
  /** The croner job of a cron() schedule (paused: this trigger runs the timer, so a test clock can drive it). */
  readonly cron: Cron | undefined;
  /** Where a rate() counts from. */
  readonly anchor: Date;
  timer: unknown;
  due: Date | undefined;
}

/**
 * The local stand-in for EventBridge Scheduler: one croner job per enabled schedule, the same
 * expressions converted by `schedule-expression.ts`, each firing handed to `fire` with the time it
 * was due. Nothing is kept across restarts: `npm start` puts every schedule again from the table
 * (`ScheduleService.resync`). A firing missed while the server was down is not made up, as
 * EventBridge Scheduler does not make up a disabled schedule's.
 *
 * @example
 * ```ts
 * const trigger = new LocalScheduleTrigger({ logger });
 * trigger.start((firing) => schedules.fire(firing));
 * await schedules.resync();
 * ```
 */
export class LocalScheduleTrigger implements ScheduleTrigger {
  readonly #armed = new Map<string, Armed>();
  readonly #clock: TriggerClock;
  readonly #logger: Pick<Logger, 'error'>;
  readonly #inFlight = new Set<Promise<void>>();
  #fire: ((firing: ScheduleFiring) => Promise<unknown>) | undefined;

  constructor(options: { readonly logger: Pick<Logger, 'error'>; readonly clock?: TriggerClock }) {
    this.#logger = options.logger;
    this.#clock = options.clock ?? SYSTEM_CLOCK;
  }

  /** Starts firing: schedules put before are armed now. */
  start(fire: (firing: ScheduleFiring) => Promise<unknown>): void {
    this.#fire = fire;
    for (const armed of this.#armed.values()) {
      this.#arm(armed, this.#firstLookFrom(armed));
    }
  }

  async put(schedule: TriggeredSchedule): Promise<void> {
    const key = keyOf(schedule.tenantId, schedule.scheduleId);
    this.#disarm(key);
    if (!schedule.enabled) {
      return;
    }
    const expression = parseScheduleExpression(schedule.expression);
    const armed: Armed = {
      schedule,
      expression,
      cron:
        expression.kind === 'cron' ? compileCron(expression as CronExpression, schedule.timezone) : undefined,
      anchor: schedule.anchoredAt ?? new Date(this.#clock.now()),
      timer: undefined,
      due: undefined,
    };
    this.#armed.set(key, armed);
    if (this.#fire !== undefined) {
      this.#arm(armed, this.#firstLookFrom(armed));
    }
  }

  async delete(tenantId: string, scheduleId: string): Promise<void> {
    this.#disarm(keyOf(tenantId, scheduleId));
  }

  /** When each armed schedule is next due: what tests and the start-up log look at. */
  nextDue(tenantId: string, scheduleId: string): Date | undefined {
    return this.#armed.get(keyOf(tenantId, scheduleId))?.due;
  }

  /** How many schedules are armed. */
  get size(): number {
    return this.#armed.size;
  }

  /** Stops every timer and waits for the firings under way. */
  async stop(): Promise<void> {
    for (const key of [...this.#armed.keys()]) {
      this.#disarm(key);
    }
    this.#fire = undefined;
    await Promise.allSettled([...this.#inFlight]);
  }

  /**
   * Where to look for an armed schedule's first due time: now, except for a rate() set within the
   * last minute, which fires at its anchor first, as EventBridge Scheduler starts a rate schedule
   * without a start date at once. Firing is idempotent per scheduled time, so looking back again
   * after a restart starts nothing twice.
   */
  #firstLookFrom(armed: Armed): Date {
    const now = this.#clock.now();
    const anchor = armed.anchor.getTime();
    if (armed.expression.kind === 'rate' && now - anchor < RATE_START_GRACE_MS) {
      return new Date(Math.min(now, anchor - 1));
    }
    return new Date(now);
  }

  #arm(armed: Armed, after: Date): void {
    const due = nextDueTime(armed.expression, armed.schedule.timezone, after, armed.anchor, armed.cron);
    armed.due = due;
    if (due === undefined) {
      return;
    }
    const wait = Math.min(Math.max(due.getTime() - this.#clock.now(), 0), MAX_TIMER_MS);
    armed.timer = this.#clock.setTimer(() => this.#onTimer(armed, due), wait);
  }

  #onTimer(armed: Armed, due: Date): void {
    const key = keyOf(armed.schedule.tenantId, armed.schedule.scheduleId);
    if (this.#armed.get(key) !== armed) {
      return;
    }
    if (this.#clock.now() < due.getTime()) {
      // A due time beyond setTimeout's range: wait again.
      this.#arm(armed, new Date(due.getTime() - 1));
      return;
    }
    // The next one first, so a slow firing never delays it.
    this.#arm(armed, due);
    const fire = this.#fire;
    if (fire === undefined) {
      return;
    }
    const firing = fire({
      tenantId: armed.schedule.tenantId,
      scheduleId: armed.schedule.scheduleId,
      scheduledTime: due,
    })
      .then(() => undefined)
      .catch((error: unknown) => {
        this.#logger.error('schedule firing failed', {
          tenantId: armed.schedule.tenantId,
          scheduleId: armed.schedule.scheduleId,
          scheduledTime: due.toISOString(),
          error,
        });
      })
      .finally(() => this.#inFlight.delete(firing));
    this.#inFlight.add(firing);
  }

  #disarm(key: string): void {
    const armed = this.#armed.get(key);
    if (armed !== undefined) {
      this.#clock.clearTimer(armed.timer);
      this.#armed.delete(key);
    }
  }
}

function keyOf(tenantId: string, scheduleId: string): string {
  return `${tenantId}/${scheduleId}`;
}
