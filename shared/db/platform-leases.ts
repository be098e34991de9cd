import { randomUUID } from 'node:crypto';
import { ConflictError } from '../kernel/errors.js';
import { CONTROL_SCHEMA, type Queryable, qualified } from './sql.js';

const LEASES = qualified(CONTROL_SCHEMA, 'platform_leases');

/** Raised when a lease could not be taken in time: someone else holds it. */
export class LeaseBusyError extends ConflictError {
  override readonly code: string = 'LEASE_BUSY';
}

/** Raised when a holder finds its lease expired and taken over: it must not write. */
export class LeaseLostError extends ConflictError {
  override readonly code: string = 'LEASE_LOST';
}

/** A lease held by this process. */
export interface Lease {
  readonly name: string;
  readonly owner: string;
  /**
   * Checks that the lease is still this holder's and extends it by its duration. Call it right
   * before the write the lease protects: a holder that was too slow (its lease expired and another
   * took it) gets a {@link LeaseLostError} instead of overwriting the newer holder's work.
   */
  confirm(): Promise<void>;
}

export interface LeaseOptions {
  /** How long the lease lasts unless confirmed again; a crashed holder frees it after this. */
  readonly durationMs: number;
  /** How long to wait for a busy lease before giving up with {@link LeaseBusyError}. */
  readonly waitMs: number;
  /** Tells a caller that gives up what to do next; ends the {@link LeaseBusyError} message. */
  readonly busyHint?: string;
}

/** Time, replaceable in tests. */
export interface LeaseClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

/** The wall clock and `setTimeout`: what every caller but a test uses. */
export const realClock: LeaseClock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

const FIRST_RETRY_MS = 50;
const MAX_RETRY_MS = 1_000;

/**
 * Named, time-limited leases in `tenantflow.platform_leases`, for work that must not run twice at
 * once across Lambdas (today: the RDS Proxy auth list's read-modify-write).
 *
 * Taking, confirming and releasing a lease are each ONE compare-and-set statement on the platform
 * pool, judged by the database's clock; nothing is held between statements. There are no advisory
 * locks, no `SELECT … FOR UPDATE` across calls and no session state, so it works through RDS Proxy
 * (DESIGN, isolation rule 1). A holder that crashes frees its lease when the lease expires.
 *
 * @example
 * ```ts
 * const leases = new PlatformLeases(pool);
 * await leases.withLease('rds-proxy-auth:tenantflow-dev', { durationMs: 60_000, waitMs: 30_000 }, async (lease) => {
 *   const current = await read();
 *   await lease.confirm();
 *   await write(current);
 * });
 * ```
 */
export class PlatformLeases {
  readonly #pool: Queryable;
  readonly #clock: LeaseClock;

  constructor(pool: Queryable, clock: LeaseClock = realClock) {
    this.#pool = pool;
    this.#clock = clock;
  }

  /** Takes the lease `name` (waiting up to `waitMs`), runs `work`, and releases it, even on failure. */
  async withLease<T>(name: string, options: LeaseOptions, work: (lease: Lease) => Promise<T>): Promise<T> {
    const lease = await this.acquire(name, options);
    try {
      return await work(lease);
    } finally {
      await this.release(lease).catch(() => undefined); // it expires on its own otherwise
    }
  }

  /** Takes the lease, retrying with jittered backoff while another holder has it. */
  async acquire(name: string, options: LeaseOptions): Promise<Lease> {
    const owner = randomUUID();
    const deadline = this.#clock.now() + options.waitMs;
    let delay = FIRST_RETRY_MS;
    for (;;) {
      if (await this.#tryTake(name, owner, options.durationMs)) {
        return {
          name,
          owner,
          confirm: () => this.#confirm(name, owner, options.durationMs),
        };
      }
      const left = deadline - this.#clock.now();
      if (left <= 0) {
        throw new LeaseBusyError(
          `'${name}' has been held by another process for more than ${Math.round(options.waitMs / 1000)} s` +
            (options.busyHint === undefined ? '' : `; ${options.busyHint}`),
        );
      }
      // Full jitter: waiters that collided once do not collide again in lockstep.
      await this.#clock.sleep(Math.min(left, Math.ceil(Math.random() * delay)));
      delay = Math.min(MAX_RETRY_MS, delay * 2);
    }
  }

  /** Gives the lease up if it is still this holder's; a lease taken over by another is left alone. */
  async release(lease: Lease): Promise<void> {
    await this.#pool.query(`DELETE FROM ${LEASES} WHERE name = $1 AND owner = $2`, [lease.name, lease.owner]);
  }

  async #tryTake(name: string, owner: string, durationMs: number): Promise<boolean> {
    // Inserts a free name, or takes over an expired lease; a live lease makes the WHERE false and
    // the statement returns nothing. One statement, so two takers cannot both win.
    const { rows } = await this.#pool.query(
      `INSERT INTO ${LEASES} AS lease (name, owner, acquired_at, expires_at)
       VALUES ($1, $2, now(), now() + make_interval(secs => $3::double precision / 1000))
       ON CONFLICT (name) DO UPDATE
         SET owner = excluded.owner, acquired_at = excluded.acquired_at, expires_at = excluded.expires_at
         WHERE lease.expires_at <= now()
       RETURNING owner`,
      [name, owner, durationMs],
    );
    return rows.length === 1;
  }

  async #confirm(name: string, owner: string, durationMs: number): Promise<void> {
    const { rowCount } = await this.#pool.query(
      `UPDATE ${LEASES}
          SET expires_at = now() + make_interval(secs => $3::double precision / 1000)
        WHERE name = $1 AND owner = $2 AND expires_at > now()`,
      [name, owner, durationMs],
    );
    if (rowCount !== 1) {
      throw new LeaseLostError(
        `The lease on '${name}' expired before its work was written and may be held by another process; nothing was written, retry`,
      );
    }
  }
}
