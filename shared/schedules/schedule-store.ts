import type pg from 'pg';
import { inTransaction } from '../db/connections.js';
import { CONTROL_SCHEMA, qualified, single } from '../db/sql.js';
import { LimitExceededError, TenantNotFoundError } from '../kernel/errors.js';
import { assertTenantActive } from '../tenancy/tenant-registry.js';
import type { JsonValue } from '../workflows/task.js';

export type ScheduleState = 'enabled' | 'paused';
export const SCHEDULE_STATES: readonly ScheduleState[] = ['enabled', 'paused'];

export interface ScheduleRecord {
  readonly scheduleId: string;
  readonly tenantId: string;
  readonly workflow: string;
  readonly expression: string;
  readonly timezone: string;
  readonly input: JsonValue;
  readonly state: ScheduleState;
  /** When the expression was last set: a `rate()` repeats from here. */
  readonly anchoredAt: Date;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** What a firing did, recorded once per (schedule, scheduled time). */
export type FiringOutcome =
  | { readonly outcome: 'started'; readonly executionId: string }
  | { readonly outcome: 'skipped'; readonly reason: string };

export type FiringRecord = FiringOutcome & {
  readonly scheduleId: string;
  readonly scheduledTime: Date;
  readonly firedAt: Date;
};

export interface ScheduleChanges {
  readonly workflow?: string | undefined;
  readonly expression?: string | undefined;
  readonly timezone?: string | undefined;
  readonly input?: JsonValue | undefined;
  readonly state?: ScheduleState | undefined;
}

const TENANTS = qualified(CONTROL_SCHEMA, 'tenants');
const SCHEDULES = qualified(CONTROL_SCHEMA, 'schedules');
const FIRINGS = qualified(CONTROL_SCHEMA, 'schedule_firings');
const COLUMNS =
  'id, seq, tenant_id, workflow, expression, timezone, input, state, anchored_at, created_at, updated_at';

interface ScheduleRow extends Record<string, unknown> {
  id: string;
  seq: string;
  tenant_id: string;
  workflow: string;
  expression: string;
  timezone: string;
  input: JsonValue;
  state: ScheduleState;
  anchored_at: Date;
  created_at: Date;
  updated_at: Date;
}

/**
 * Schedules and their firings, in the control schema, on the platform pool: schema-qualified SQL,
 * no session state. Every statement names the tenant, so one tenant's id never reaches another's
 * schedule.
 */
export class ScheduleStore {
  constructor(private readonly pool: pg.Pool) {}

  /**
   * Inserts a schedule if the tenant is active and has fewer than `maxSchedules`. The tenant's
   * registry row is locked for the check, as for executions, so two creates cannot both take the
   * last place and a deactivation cannot slip in between.
   */
  async insertWithinLimit(
    schedule: Omit<ScheduleRecord, 'anchoredAt' | 'createdAt' | 'updatedAt'>,
    maxSchedules: number,
  ): Promise<ScheduleRecord> {
    return inTransaction(this.pool, async (client) => {
      const tenant = await client.query<{ status: string }>(
        `SELECT status FROM ${TENANTS} WHERE tenant_id = $1 FOR UPDATE`,
        [schedule.tenantId],
      );
      const status = tenant.rows[0]?.status;
      if (status === undefined) {
        throw new TenantNotFoundError(schedule.tenantId);
      }
      assertTenantActive({ tenantId: schedule.tenantId, status });
      const existing = await client.query<{ count: number }>(
        `SELECT count(*)::int AS count FROM ${SCHEDULES} WHERE tenant_id = $1`,
        [schedule.tenantId],
      );
      const count = existing.rows[0]?.count ?? 0;
      if (count >= maxSchedules) {
        throw new LimitExceededError(
          `Tenant '${schedule.tenantId}' already has ${count} schedules, its limit (limits.maxSchedules = ${maxSchedules}); delete one first`,
        );
      }
      const { rows } = await client.query<ScheduleRow>(
        `INSERT INTO ${SCHEDULES} (id, tenant_id, workflow, expression, timezone, input, state)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${COLUMNS}`,
        [
          schedule.scheduleId,
          schedule.tenantId,
          schedule.workflow,
          schedule.expression,
          schedule.timezone,
          JSON.stringify(schedule.input),
          schedule.state,
        ],
      );
      return toRecord(single(rows, 'the schedule store'));
    });
  }

  async get(tenantId: string, scheduleId: string): Promise<ScheduleRecord | undefined> {
    const { rows } = await this.pool.query<ScheduleRow>(
      `SELECT ${COLUMNS} FROM ${SCHEDULES} WHERE tenant_id = $1 AND id = $2`,
      [tenantId, scheduleId],
    );
    const [row] = rows;
    return row === undefined ? undefined : toRecord(row);
  }

  /** A page of a tenant's schedules, oldest first; `next` is the position the following page starts after. */
  async list(
    tenantId: string,
    options: { readonly limit: number; readonly after?: number | undefined },
  ): Promise<{ schedules: ScheduleRecord[]; next: number | undefined }> {
    const { rows } = await this.pool.query<ScheduleRow>(
      `SELECT ${COLUMNS} FROM ${SCHEDULES}
        WHERE tenant_id = $1 AND ($2::bigint IS NULL OR seq > $2)
        ORDER BY seq LIMIT $3`,
      [tenantId, options.after ?? null, options.limit + 1],
    );
    const page = rows.slice(0, options.limit);
    const last = page.at(-1);
    return {
      schedules: page.map(toRecord),
      next: rows.length > options.limit && last !== undefined ? Number(last.seq) : undefined,
    };
  }

  /** Every schedule, of one tenant or all, in pages read by `seq`: what a resync walks. */
  async *all(tenantId?: string): AsyncGenerator<ScheduleRecord> {
    let after = 0;
    for (;;) {
      const { rows } = await this.pool.query<ScheduleRow>(
        `SELECT ${COLUMNS} FROM ${SCHEDULES}
          WHERE ($1::text IS NULL OR tenant_id = $1) AND seq > $2
          ORDER BY seq LIMIT 500`,
        [tenantId ?? null, after],
      );
      for (const row of rows) {
        yield toRecord(row);
      }
      const last = rows.at(-1);
      if (rows.length < 500 || last === undefined) {
        return;
      }
      after = Number(last.seq);
    }
  }

  /**
   * Applies the changes to an active tenant's schedule (the tenant row is locked as for an
   * insert); a new expression moves its anchor to now. `undefined` when there is no such schedule.
   */
  async update(
    tenantId: string,
    scheduleId: string,
    changes: ScheduleChanges,
  ): Promise<ScheduleRecord | undefined> {
    return inTransaction(this.pool, async (client) => {
      const tenant = await client.query<{ status: string }>(
        `SELECT status FROM ${TENANTS} WHERE tenant_id = $1 FOR SHARE`,
        [tenantId],
      );
      const status = tenant.rows[0]?.status;
      if (status === undefined) {
        throw new TenantNotFoundError(tenantId);
      }
      assertTenantActive({ tenantId, status });
      const { rows } = await client.query<ScheduleRow>(
        `UPDATE ${SCHEDULES}
            SET workflow = COALESCE($3, workflow),
                expression = COALESCE($4, expression),
                timezone = COALESCE($5, timezone),
                input = COALESCE($6::jsonb, input),
                state = COALESCE($7, state),
                anchored_at = CASE WHEN $4::text IS DISTINCT FROM NULL AND $4 <> expression
                                   THEN now() ELSE anchored_at END,
                updated_at = now()
          WHERE tenant_id = $1 AND id = $2
          RETURNING ${COLUMNS}`,
        [
          tenantId,
          scheduleId,
          changes.workflow ?? null,
          changes.expression ?? null,
          changes.timezone ?? null,
          changes.input === undefined ? null : JSON.stringify(changes.input),
          changes.state ?? null,
        ],
      );
      const [row] = rows;
      return row === undefined ? undefined : toRecord(row);
    });
  }

  /** Deletes the schedule (and its firings); whether it existed. */
  async delete(tenantId: string, scheduleId: string): Promise<boolean> {
    const { rowCount } = await this.pool.query(`DELETE FROM ${SCHEDULES} WHERE tenant_id = $1 AND id = $2`, [
      tenantId,
      scheduleId,
    ]);
    return (rowCount ?? 0) > 0;
  }

  async getFiring(scheduleId: string, scheduledTime: Date): Promise<FiringRecord | undefined> {
    const { rows } = await this.pool.query<FiringRow>(
      `SELECT schedule_id, scheduled_time, outcome, execution_id, reason, fired_at
         FROM ${FIRINGS} WHERE schedule_id = $1 AND scheduled_time = $2`,
      [scheduleId, scheduledTime],
    );
    const [row] = rows;
    return row === undefined ? undefined : toFiring(row);
  }

  /**
   * Records what a firing did, unless that (schedule, time) is already recorded: the record that
   * was there first is answered, so two deliveries agree on one outcome. `undefined` when the
   * schedule is gone.
   */
  async recordFiring(
    tenantId: string,
    scheduleId: string,
    scheduledTime: Date,
    outcome: FiringOutcome,
  ): Promise<FiringRecord | undefined> {
    const { rows } = await this.pool.query<FiringRow>(
      `INSERT INTO ${FIRINGS} (schedule_id, scheduled_time, tenant_id, outcome, execution_id, reason)
       SELECT id, $3, tenant_id, $4, $5, $6 FROM ${SCHEDULES} WHERE tenant_id = $1 AND id = $2
       ON CONFLICT (schedule_id, scheduled_time) DO NOTHING
       RETURNING schedule_id, scheduled_time, outcome, execution_id, reason, fired_at`,
      [
        tenantId,
        scheduleId,
        scheduledTime,
        outcome.outcome,
        outcome.outcome === 'started' ? outcome.executionId : null,
        outcome.outcome === 'skipped' ? outcome.reason : null,
      ],
    );
    const [row] = rows;
    return row === undefined ? this.getFiring(scheduleId, scheduledTime) : toFiring(row);
  }

  /** A schedule's firings, newest first. */
  async listFirings(tenantId: string, scheduleId: string, limit: number): Promise<FiringRecord[]> {
    const { rows } = await this.pool.query<FiringRow>(
      `SELECT schedule_id, scheduled_time, outcome, execution_id, reason, fired_at
         FROM ${FIRINGS} WHERE tenant_id = $1 AND schedule_id = $2
        ORDER BY scheduled_time DESC LIMIT $3`,
      [tenantId, scheduleId, limit],
    );
    return rows.map(toFiring);
  }
}

interface FiringRow extends Record<string, unknown> {
  schedule_id: string;
  scheduled_time: Date;
  outcome: 'started' | 'skipped';
  execution_id: string | null;
  reason: string | null;
  fired_at: Date;
}

function toRecord(row: ScheduleRow): ScheduleRecord {
  return {
    scheduleId: row.id,
    tenantId: row.tenant_id,
    workflow: row.workflow,
    expression: row.expression,
    timezone: row.timezone,
    input: row.input,
    state: row.state,
    anchoredAt: row.anchored_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function toFiring(row: FiringRow): FiringRecord {
  const base = { scheduleId: row.schedule_id, scheduledTime: row.scheduled_time, firedAt: row.fired_at };
  return row.outcome === 'started'
    ? { ...base, outcome: 'started', executionId: row.execution_id ?? '' }
    : { ...base, outcome: 'skipped', reason: row.reason ?? '' };
}
