import type { TriggerClock } from '../../local/local-schedule-trigger.js';

/**
 * A clock for the local schedule timer that only moves when a test says so: it starts at the real
 * time (so it agrees with the database's `now()`), and `advance` runs every timer that falls due,
 * in order, as the real one would have.
 */
export class ManualClock implements TriggerClock {
  #offset = 0;
  #timers: { at: number; callback: () => void; id: number }[] = [];
  #nextId = 1;

  now(): number {
    return Date.now() + this.#offset;
  }

  setTimer(callback: () => void, ms: number): unknown {
    const timer = { at: this.now() + ms, callback, id: this.#nextId++ };
    this.#timers.push(timer);
    return timer.id;
  }

  clearTimer(timer: unknown): void {
    this.#timers = this.#timers.filter((candidate) => candidate.id !== timer);
  }

  /** The earliest time a timer is set for, if any. */
  get nextTimerAt(): number | undefined {
    return this.#timers.reduce<number | undefined>(
      (earliest, timer) => Math.min(earliest ?? timer.at, timer.at),
      undefined,
    );
  }

  /** Moves the clock to `to` (a time, in ms; never backwards), running every timer due by then. */
  advanceTo(time: number): void {
    const to = Math.max(time, this.now());
    for (;;) {
      const due = this.#timers
        .filter((timer) => timer.at <= to)
        .sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (due === undefined) {
        break;
      }
      this.#offset += Math.max(due.at - this.now(), 0);
      this.#timers = this.#timers.filter((timer) => timer !== due);
      due.callback();
    }
    this.#offset += Math.max(to - this.now(), 0);
  }

  advance(ms: number): void {
    this.advanceTo(this.now() + ms);
  }
}
