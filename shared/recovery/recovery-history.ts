import { assertValidTenantId } from '../kernel/tenant-id.js';
import { z } from '../kernel/zod.js';
import type { RecoveryEventCursor, RecoveryEventPage, RecoveryStore } from './recovery-store.js';

const CURSOR_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

/**
 * A {@link RecoveryEventCursor} as it comes back from a client (inside a page token): a time in
 * the exact form the store writes, that is a real instant (no 30 February: PostgreSQL would refuse
 * it with a 500), and a positive bigint id.
 */
export const recoveryEventCursorSchema = z.strictObject({
  occurredAt: z
    .string()
    .regex(CURSOR_TIME)
    .refine(function isRealInstant(value) {
      const milliseconds = `${value.slice(0, 23)}Z`;
      const parsed = new Date(milliseconds);
      return !Number.isNaN(parsed.getTime()) && parsed.toISOString() === milliseconds;
    }),
  id: z.string().regex(/^[1-9]\d{0,17}$/),
}) satisfies z.ZodType<RecoveryEventCursor>;

export interface RecoveryEventsQuery {
  /** Only this tenant's events (it may have been removed since: its history is kept). */
  readonly tenantId?: string | undefined;
  /** At most this many events (the API allows 1–100). */
  readonly limit: number;
  /** The `next` of the previous page. */
  readonly after?: RecoveryEventCursor | undefined;
}

/**
 * What the recovery job did and why, for operators: the events of `tenantflow.recovery_events`,
 * newest first, one page at a time. Read only; the passes write them (see `RecoveryJournal`).
 *
 * @example
 * ```ts
 * const history = new RecoveryHistory(new RecoveryStore(pool));
 * const { events, next } = await history.events({ tenantId: 'acme', limit: 20 });
 * ```
 */
export class RecoveryHistory {
  constructor(private readonly store: Pick<RecoveryStore, 'eventPage'>) {}

  events(query: RecoveryEventsQuery): Promise<RecoveryEventPage> {
    if (query.tenantId !== undefined) {
      assertValidTenantId(query.tenantId);
    }
    return this.store.eventPage(query);
  }
}
