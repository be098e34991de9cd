/**
 * The ScheduleTrigger port: what fires a tenant's schedules at their times. Adapters: EventBridge
 * Scheduler in AWS (one schedule per tenant schedule, in the stage's schedule group, whose target
 * invokes the schedule-firing Lambda) and a timer in the local server (a cron library over the
 * same expressions).
 *
 * The schedule's row in the control schema is the source of truth; the trigger only fires it. Every
 * call is idempotent, so a call repeated after a crash (or by recovery) converges.
 */
export interface TriggeredSchedule {
  readonly tenantId: string;
  readonly scheduleId: string;
  /** As EventBridge Scheduler writes it: `cron(0 9 ? * MON-FRI *)` or `rate(5 minutes)`. */
  readonly expression: string;
  /** An IANA time zone the cron fields are read in, e.g. `Europe/Paris`. */
  readonly timezone: string;
  /** A paused schedule stays defined but fires nothing. */
  readonly enabled: boolean;
  /**
   * When the expression was last set: a `rate()` repeats from here (an adapter may use it as the
   * start date, or ignore it and count from the put, as EventBridge Scheduler does by default).
   * Optional, so a trigger put from elsewhere still fits.
   */
  readonly anchoredAt?: Date | undefined;
}

/** What a trigger hands over when a schedule fires: ids and the time it was due, nothing more. */
export interface ScheduleFiring {
  readonly tenantId: string;
  readonly scheduleId: string;
  /** The time the firing was due (not when it arrived): the key a retried delivery is deduplicated on. */
  readonly scheduledTime: Date;
}

export interface ScheduleTrigger {
  /** Creates the schedule's trigger, or replaces it with this definition when it exists. */
  put(schedule: TriggeredSchedule): Promise<void>;
  /** Removes the schedule's trigger; removing one that does not exist is not an error. */
  delete(tenantId: string, scheduleId: string): Promise<void>;
}
