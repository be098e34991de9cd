import type pg from 'pg';
import { inTransaction } from '../db/connections.js';
import { CONTROL_SCHEMA, qualified, tenantTable } from '../db/sql.js';
import type { TenantLoginRecord } from '../provisioning/tenant-logins.js';
import type { TenantStatus } from '../tenancy/tenant-registry.js';

const TENANTS = qualified(CONTROL_SCHEMA, 'tenants');
const EVENTS = qualified(CONTROL_SCHEMA, 'recovery_events');
const RUNS = qualified(CONTROL_SCHEMA, 'recovery_runs');

/** A tenant as one recovery pass sees it. */
export interface ScannedTenant {
  readonly tenantId: string;
  readonly status: TenantStatus;
  /**
   * Provisioning or deprovisioning, with no live claim, and untouched for longer than the stale
   * threshold: the run that was working on it is gone.
   */
  readonly stuck: boolean;
  readonly lastError: string | null;
  /** When it was registered: with its id, the name of its onboarding and offboarding executions. */
  readonly createdAt: Date;
}

/** An in-flight execution that has made no progress lately, or has a task whose heartbeat stopped. */
export interface StuckExecution {
  readonly tenantId: string;
  readonly executionId: string;
  readonly workflow: string;
  readonly status: 'pending' | 'running';
  readonly attempts: number;
  readonly lastProgressAt: Date;
  /** No row change and no heartbeat for longer than the stale threshold. */
  readonly stale: boolean;
  /** Tasks recorded as running whose heartbeat is older than the heartbeat threshold. */
  readonly staleTaskRuns: readonly string[];
}

export interface ExecutionClaim {
  readonly workflow: string;
  readonly status: 'pending' | 'running';
  /** How many times recovery has restarted this execution so far. */
  readonly attempts: number;
}

/**
 * An execution's input as recovery measures it before restarting it: its size as PostgreSQL stores
 * it (the text of the jsonb) and, only when that is at most the `readUpTo` asked for, the input
 * itself, so a huge input written by a tenant never reaches the recovery process.
 */
export interface StoredInput {
  readonly storedBytes: number;
  readonly read: boolean;
  readonly input: unknown;
}

/** Whether recovery may restart an execution now (see {@link RecoveryStore.admitRestart}). */
export type RestartAdmission =
  | { readonly kind: 'admitted'; readonly attempt: number }
  | { readonly kind: 'at_limit'; readonly running: number }
  | { readonly kind: 'claim_lost' };

export type RecoveryTargetType = 'execution' | 'task_run' | 'tenant';
export type RecoveryOutcome = 'done' | 'skipped' | 'failed';

export interface RecoveryEvent {
  readonly runId: string;
  readonly tenantId: string;
  readonly targetType: RecoveryTargetType;
  readonly targetId: string;
  readonly finding: string;
  readonly action: string;
  readonly outcome: RecoveryOutcome;
  readonly detail?: string | undefined;
}

export interface RecoveryEventRecord extends RecoveryEvent {
  readonly occurredAt: Date;
}

/** A recorded event as an operator reads it: with its id, and when it happened. */
export interface StoredRecoveryEvent extends RecoveryEventRecord {
  /** The event's id (a bigint, as a decimal string). */
  readonly id: string;
}

/**
 * Where a page of events starts: the time (microseconds, UTC, ISO 8601: a JavaScript `Date` would
 * round it to milliseconds and skip or repeat events) and id of the last event of the previous page.
 */
export interface RecoveryEventCursor {
  readonly occurredAt: string;
  readonly id: string;
}

export interface RecoveryEventPageQuery {
  /** Only this tenant's events; every tenant's when absent. */
  readonly tenantId?: string | undefined;
  readonly limit: number;
  readonly after?: RecoveryEventCursor | undefined;
}

export interface RecoveryEventPage {
  readonly events: StoredRecoveryEvent[];
  /** Where the next page starts; `undefined` on the last page. */
  readonly next: RecoveryEventCursor | undefined;
}

export interface Thresholds {
  readonly staleAfterSeconds: number;
  readonly heartbeatStaleAfterSeconds: number;
}

/**
 * The SQL of the recovery job. Platform code: every statement is one schema-qualified,
 * parameterised query on the platform pool, with no session state, so it is safe behind RDS Proxy.
 * Time is always the database's `now()`, so clock skew between Lambdas cannot make a fresh
 * execution look stale.
 */
export class RecoveryStore {
  constructor(private readonly pool: pg.Pool) {}

  async countTenants(): Promise<number> {
    const { rows } = await this.pool.query<{ count: number }>(
      `SELECT count(*)::int AS count FROM ${TENANTS}`,
    );
    return rows[0]?.count ?? 0;
  }

  /** Every tenant's status and secret reference, for the login check (at most a few hundred in proxy mode). */
  async tenantLoginRecords(): Promise<TenantLoginRecord[]> {
    const { rows } = await this.pool.query<{
      tenant_id: string;
      status: TenantStatus;
      secret_ref: string | null;
    }>(`SELECT tenant_id, status, secret_ref FROM ${TENANTS} ORDER BY tenant_id`);
    return rows.map((row) => ({
      tenantId: row.tenant_id,
      status: row.status,
      secretRef: row.secret_ref ?? undefined,
    }));
  }

  /**
   * A page of tenants in id order, after `after` and up to `upTo` (inclusive), so a pass can start
   * in the middle of the fleet and wrap around.
   */
  async tenantPage(range: {
    after: string | undefined;
    upTo: string | undefined;
    limit: number;
    staleAfterSeconds: number;
  }): Promise<ScannedTenant[]> {
    const { rows } = await this.pool.query<{
      tenant_id: string;
      status: TenantStatus;
      stuck: boolean;
      last_error: string | null;
      created_at: Date;
    }>(
      `SELECT tenant_id, status, last_error, created_at,
              status IN ('provisioning', 'deprovisioning')
                AND (lease_expires_at IS NULL OR lease_expires_at < now())
                AND updated_at < now() - make_interval(secs => $4::double precision) AS stuck
         FROM ${TENANTS}
        WHERE ($1::text IS NULL OR tenant_id > $1) AND ($2::text IS NULL OR tenant_id <= $2)
        ORDER BY tenant_id
        LIMIT $3`,
      [range.after ?? null, range.upTo ?? null, range.limit, range.staleAfterSeconds],
    );
    return rows.map((row) => ({
      tenantId: row.tenant_id,
      status: row.status,
      stuck: row.stuck,
      lastError: row.last_error,
      createdAt: row.created_at,
    }));
  }

  /**
   * The stuck executions of several tenants in **one** statement: a `UNION ALL` of one
   * schema-qualified subquery per tenant, so an idle fleet costs one round trip per batch rather
   * than one per tenant. At most `perTenantLimit` per tenant, oldest progress first. Claimed
   * executions (a live recovery lease) are left out.
   */
  async findStuckExecutions(
    tenantIds: readonly string[],
    thresholds: Thresholds,
    perTenantLimit: number,
  ): Promise<StuckExecution[]> {
    if (tenantIds.length === 0) {
      return [];
    }
    const subqueries = tenantIds.map((tenantId, index) => {
      const executions = tenantTable(tenantId, 'executions');
      const taskRuns = tenantTable(tenantId, 'task_runs');
      return `(SELECT $${index + 4}::text AS tenant_id, e.id, e.workflow, e.status, e.attempts,
                      greatest(e.updated_at, runs.last_heartbeat_at) AS last_progress_at,
                      greatest(e.updated_at, runs.last_heartbeat_at) < now() - make_interval(secs => $1::double precision) AS stale,
                      runs.stale_task_runs
                 FROM ${executions} e
                 LEFT JOIN LATERAL (
                   SELECT max(r.heartbeat_at) AS last_heartbeat_at,
                          array_agg(DISTINCT r.task_id ORDER BY r.task_id) FILTER (
                            WHERE r.status = 'running'
                              AND r.heartbeat_at < now() - make_interval(secs => $2::double precision)
                          ) AS stale_task_runs
                     FROM (SELECT task_id, status, heartbeat_at FROM ${taskRuns} WHERE execution_id = e.id
                           UNION ALL
                           SELECT live.key, 'running', (live.value->>'heartbeatAt')::timestamptz
                             FROM jsonb_each(e.running_tasks) AS live) r
                 ) runs ON true
                WHERE e.status IN ('pending', 'running')
                  AND (e.recovery_lease_until IS NULL OR e.recovery_lease_until < now())
                  AND (greatest(e.updated_at, runs.last_heartbeat_at) < now() - make_interval(secs => $1::double precision)
                       OR runs.stale_task_runs IS NOT NULL)
                ORDER BY e.updated_at
                LIMIT $3)`;
    });
    const { rows } = await this.pool.query<{
      tenant_id: string;
      id: string;
      workflow: string;
      status: 'pending' | 'running';
      attempts: number;
      last_progress_at: Date;
      stale: boolean;
      stale_task_runs: string[] | null;
    }>(subqueries.join('\nUNION ALL\n'), [
      thresholds.staleAfterSeconds,
      thresholds.heartbeatStaleAfterSeconds,
      perTenantLimit,
      ...tenantIds,
    ]);
    return rows.map((row) => ({
      tenantId: row.tenant_id,
      executionId: row.id,
      workflow: row.workflow,
      status: row.status,
      attempts: row.attempts,
      lastProgressAt: row.last_progress_at,
      stale: row.stale,
      staleTaskRuns: row.stale_task_runs ?? [],
    }));
  }

  /**
   * Takes the execution's tasks whose heartbeat is stale off the running list, so nobody reads a
   * dead attempt as alive, and returns their ids:
   * - attempts the heartbeats reported in `running_tasks` are removed from it. Their own task_runs
   *   row is written only when they end, and is left alone: an attempt that is gone rolled back
   *   and wrote nothing, and one that was merely slow can still commit.
   * - committed runs still `running` (written that way before claims moved into the task's
   *   transaction) are marked failed, skipping a row a live attempt holds locked: recovery never
   *   waits on a tenant's transaction.
   */
  async markTaskRunsLost(
    tenantId: string,
    executionId: string,
    heartbeatStaleAfterSeconds: number,
  ): Promise<string[]> {
    const executions = tenantTable(tenantId, 'executions');
    const taskRuns = tenantTable(tenantId, 'task_runs');
    const { rows } = await this.pool.query<{ task_id: string }>(
      `WITH stale AS (
         SELECT live.key AS task_id
           FROM ${executions} e, jsonb_each(e.running_tasks) AS live
          WHERE e.id = $1
            AND (live.value->>'heartbeatAt')::timestamptz < now() - make_interval(secs => $2::double precision)
       ), forgotten AS (
         UPDATE ${executions} SET running_tasks = running_tasks - ARRAY(SELECT task_id FROM stale)
          WHERE id = $1 AND EXISTS (SELECT 1 FROM stale)
       ), lockable AS (
         SELECT task_id FROM ${taskRuns}
          WHERE execution_id = $1 AND status = 'running'
            AND heartbeat_at < now() - make_interval(secs => $2::double precision)
            FOR UPDATE SKIP LOCKED
       ), committed AS (
         UPDATE ${taskRuns}
            SET status = 'failed', finished_at = now(),
                error = 'Heartbeat lost: no sign of life since ' || to_char(heartbeat_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') ||
                        '; the process running attempt ' || attempt || ' is gone'
          WHERE execution_id = $1 AND task_id IN (SELECT task_id FROM lockable)
         RETURNING task_id
       )
       SELECT task_id FROM stale UNION SELECT task_id FROM committed`,
      [executionId, heartbeatStaleAfterSeconds],
    );
    return rows.map((row) => row.task_id).sort();
  }

  /**
   * Claims an execution for one recovery run: a compare-and-set on the row, which succeeds only if
   * the execution is still in flight, still without progress for `staleAfterSeconds`, and not
   * claimed by a live lease. Under concurrency PostgreSQL re-checks these conditions on the row's
   * latest version, so of two recoveries exactly one wins, and one that comes after a repair finds
   * the row fresh again.
   */
  async claimExecution(
    tenantId: string,
    executionId: string,
    owner: string,
    lease: { claimSeconds: number; staleAfterSeconds: number },
  ): Promise<ExecutionClaim | undefined> {
    const executions = tenantTable(tenantId, 'executions');
    const taskRuns = tenantTable(tenantId, 'task_runs');
    const { rows } = await this.pool.query<ExecutionClaim & Record<string, unknown>>(
      `UPDATE ${executions} e
          SET recovery_owner = $2, recovery_lease_until = now() + make_interval(secs => $3::double precision)
        WHERE e.id = $1 AND e.status IN ('pending', 'running')
          AND (e.recovery_lease_until IS NULL OR e.recovery_lease_until < now())
          AND greatest(e.updated_at, (SELECT max(r.heartbeat_at) FROM ${taskRuns} r WHERE r.execution_id = e.id))
              < now() - make_interval(secs => $4::double precision)
        RETURNING e.workflow, e.status, e.attempts`,
      [executionId, owner, lease.claimSeconds, lease.staleAfterSeconds],
    );
    return rows[0];
  }

  /**
   * The execution's input, measured in the database: `storedBytes` is the length of its jsonb text,
   * and the input itself is read only when that is at most `readUpTo`. `undefined` when the row is
   * gone.
   */
  async storedInput(
    tenantId: string,
    executionId: string,
    readUpTo: number,
  ): Promise<StoredInput | undefined> {
    const { rows } = await this.pool.query<{ stored_bytes: number; read: boolean; input: unknown }>(
      `SELECT m.stored_bytes, m.stored_bytes <= $2 AS read,
              CASE WHEN m.stored_bytes <= $2 THEN e.input END AS input
         FROM ${tenantTable(tenantId, 'executions')} e
        CROSS JOIN LATERAL (SELECT octet_length(e.input::text) AS stored_bytes) m
        WHERE e.id = $1`,
      [executionId, readUpTo],
    );
    const row = rows[0];
    return row === undefined
      ? undefined
      : { storedBytes: row.stored_bytes, read: row.read, input: row.input };
  }

  /**
   * Admits one recovery restart (start or redrive) within the tenant's `maxConcurrent`, while
   * `owner` still holds the claim: counts the attempt and marks a `pending` execution `running`, so
   * it takes its slot before the orchestrator is called. `at_limit` when the tenant's other
   * executions already running fill its limit; `claim_lost` when the claim ran out (another run took
   * over) or the execution ended meanwhile.
   *
   * Only `running` executions are counted, not `pending` ones: a pending execution was never handed
   * to the orchestrator, so it runs nothing, and counting them would let 30 stuck pending rows keep
   * each other from ever starting. Admission locks the tenant's registry row, as
   * `ExecutionStore.insertWithinLimit` does, so two passes (or a pass and the API) take turns and
   * cannot both take the last slot. The API admits an execution only while pending + running stays
   * within the limit, so together running never exceeds it. The lock is on the control schema,
   * which no tenant can reach, and the transaction is bounded by the platform role's own
   * `lock_timeout` and `statement_timeout` (role defaults: nothing is `SET` on a pooled connection).
   */
  async admitRestart(
    tenantId: string,
    executionId: string,
    owner: string,
    maxConcurrent: number,
  ): Promise<RestartAdmission> {
    const executions = tenantTable(tenantId, 'executions');
    return inTransaction(this.pool, async (client) => {
      const tenant = await client.query(`SELECT 1 FROM ${TENANTS} WHERE tenant_id = $1 FOR UPDATE`, [
        tenantId,
      ]);
      if (tenant.rows.length === 0) {
        return { kind: 'claim_lost' };
      }
      const counted = await client.query<{ running: number }>(
        `SELECT count(*)::int AS running FROM ${executions} WHERE status = 'running' AND id <> $1`,
        [executionId],
      );
      const running = counted.rows[0]?.running ?? 0;
      if (running >= maxConcurrent) {
        return { kind: 'at_limit', running };
      }
      const { rows } = await client.query<{ attempts: number }>(
        `UPDATE ${executions}
            SET attempts = attempts + 1, status = CASE WHEN status = 'pending' THEN 'running' ELSE status END
          WHERE id = $1 AND recovery_owner = $2 AND recovery_lease_until > now()
            AND status IN ('pending', 'running')
          RETURNING attempts`,
        [executionId, owner],
      );
      const admitted = rows[0];
      return admitted === undefined
        ? { kind: 'claim_lost' }
        : { kind: 'admitted', attempt: admitted.attempts };
    });
  }

  /**
   * Releases a claim. `progressed` marks the execution as just repaired (or just confirmed alive),
   * so the next pass leaves it alone until it has again been quiet for the stale threshold; a
   * failed attempt leaves the timestamp as it was, so the next pass tries again.
   */
  async releaseExecution(
    tenantId: string,
    executionId: string,
    owner: string,
    progressed: boolean,
  ): Promise<void> {
    await this.pool.query(
      `UPDATE ${tenantTable(tenantId, 'executions')}
          SET recovery_owner = NULL, recovery_lease_until = NULL,
              updated_at = CASE WHEN $3::boolean THEN now() ELSE updated_at END
        WHERE id = $1 AND recovery_owner = $2`,
      [executionId, owner, progressed],
    );
  }

  async recordEvent(event: RecoveryEvent): Promise<void> {
    await this.pool.query(
      `INSERT INTO ${EVENTS} (run_id, tenant_id, target_type, target_id, finding, action, outcome, detail)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [
        event.runId,
        event.tenantId,
        event.targetType,
        event.targetId,
        event.finding,
        event.action,
        event.outcome,
        event.detail?.slice(0, 2000) ?? null,
      ],
    );
  }

  /** The recorded history of one target (an execution id, `<execution>/<task>`, or a tenant id), oldest first. */
  async eventsFor(targetId: string): Promise<RecoveryEventRecord[]> {
    const { rows } = await this.pool.query<EventRow>(
      `SELECT * FROM ${EVENTS} WHERE target_id = $1 ORDER BY occurred_at, id`,
      [targetId],
    );
    return rows.map(toEventRecord);
  }

  /**
   * One page of events, newest first (`occurred_at`, then `id`, both descending), of one tenant or
   * all: keyset pagination after `query.after`, never OFFSET, so a page costs the same however
   * deep it is and events recorded meanwhile land before the first page, not inside a later one.
   * The tenant need not exist any more: its history outlives it.
   */
  async eventPage(query: RecoveryEventPageQuery): Promise<RecoveryEventPage> {
    const { rows } = await this.pool.query<EventRow & { id: string; cursor_at: string }>(
      // `occurred_at <= $2` repeats the row comparison's first column, so the index on
      // (tenant_id, occurred_at DESC) or on occurred_at bounds the scan.
      `SELECT id::text AS id, run_id, tenant_id, target_type, target_id, finding, action, outcome,
              detail, occurred_at,
              to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_at
         FROM ${EVENTS}
        WHERE ($1::text IS NULL OR tenant_id = $1::text)
          AND ($2::timestamptz IS NULL
               OR (occurred_at <= $2::timestamptz AND (occurred_at, id) < ($2::timestamptz, $3::bigint)))
        ORDER BY occurred_at DESC, id DESC
        LIMIT $4`,
      [query.tenantId ?? null, query.after?.occurredAt ?? null, query.after?.id ?? null, query.limit + 1],
    );
    const page = rows.slice(0, query.limit);
    const last = page.at(-1);
    return {
      events: page.map((row) => ({ id: row.id, ...toEventRecord(row) })),
      next:
        rows.length > query.limit && last !== undefined
          ? { occurredAt: last.cursor_at, id: last.id }
          : undefined,
    };
  }

  /** How often recovery has already failed to resume this tenant since it was created. */
  async failedTenantResumes(tenantId: string): Promise<number> {
    const { rows } = await this.pool.query<{ count: number }>(
      `SELECT count(*)::int AS count FROM ${EVENTS} ev
        WHERE ev.target_type = 'tenant' AND ev.target_id = $1 AND ev.outcome = 'failed'
          AND ev.occurred_at >= (SELECT t.created_at FROM ${TENANTS} t WHERE t.tenant_id = $1)`,
      [tenantId],
    );
    return rows[0]?.count ?? 0;
  }

  /**
   * Records the start of a pass, and returns where the previous pass stopped if it ran out of time
   * before covering the whole fleet. Runs that scan no tenants (`complete` left null by
   * {@link RecoveryStore.beginLoginsRun}'s runs) are passed over: they do not move the cursor.
   */
  async beginRun(runId: string): Promise<{ resumeAfter: string | undefined }> {
    const previous = await this.pool.query<{ complete: boolean | null; resume_after: string | null }>(
      `SELECT complete, resume_after FROM ${RUNS}
        WHERE finished_at IS NOT NULL AND complete IS NOT NULL
        ORDER BY finished_at DESC LIMIT 1`,
    );
    await this.pool.query(`INSERT INTO ${RUNS} (run_id) VALUES ($1)`, [runId]);
    const last = previous.rows[0];
    return { resumeAfter: last?.complete === false ? (last.resume_after ?? undefined) : undefined };
  }

  /** Records the start of a run that reconciles the tenant logins only, and scans no tenant. */
  async beginLoginsRun(runId: string): Promise<void> {
    await this.pool.query(`INSERT INTO ${RUNS} (run_id) VALUES ($1)`, [runId]);
  }

  /**
   * `complete` is whether a pass covered the whole fleet; `undefined` (stored as null) for a run
   * that scans no tenants, so that the next pass still resumes where the last pass stopped.
   */
  async finishRun(
    runId: string,
    result: { complete: boolean | undefined; resumeAfter: string | undefined; summary: unknown },
  ): Promise<void> {
    await this.pool.query(
      `UPDATE ${RUNS} SET finished_at = now(), complete = $2, resume_after = $3, summary = $4 WHERE run_id = $1`,
      [runId, result.complete ?? null, result.resumeAfter ?? null, JSON.stringify(result.summary)],
    );
  }

  /** Deletes events and runs older than the retention, so the history stays bounded. */
  async prune(retentionDays: number): Promise<{ events: number; runs: number }> {
    const events = await this.pool.query(
      `DELETE FROM ${EVENTS} WHERE occurred_at < now() - make_interval(days => $1::int)`,
      [retentionDays],
    );
    const runs = await this.pool.query(
      `DELETE FROM ${RUNS} WHERE started_at < now() - make_interval(days => $1::int)`,
      [retentionDays],
    );
    return { events: events.rowCount ?? 0, runs: runs.rowCount ?? 0 };
  }
}

/** A `recovery_events` row as the event queries select it. */
interface EventRow {
  run_id: string;
  tenant_id: string;
  target_type: RecoveryTargetType;
  target_id: string;
  finding: string;
  action: string;
  outcome: RecoveryOutcome;
  detail: string | null;
  occurred_at: Date;
}

function toEventRecord(row: EventRow): RecoveryEventRecord {
  return {
    runId: row.run_id,
    tenantId: row.tenant_id,
    targetType: row.target_type,
    targetId: row.target_id,
    finding: row.finding,
    action: row.action,
    outcome: row.outcome,
    detail: row.detail ?? undefined,
    occurredAt: row.occurred_at,
  };
}
