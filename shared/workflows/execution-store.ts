import { createHash, createHmac, randomBytes, randomInt } from 'node:crypto';
import type pg from 'pg';
import { inTransaction } from '../db/connections.js';
import type { PipelinedStatement } from '../db/pipelined-query.js';
import { CONTROL_SCHEMA, qualified, SQLSTATE, single, sqlState, tenantTable } from '../db/sql.js';
import { LimitExceededError, TenantNotFoundError } from '../kernel/errors.js';
import { assertTenantActive } from '../tenancy/tenant-registry.js';
import type { JsonValue } from './task.js';

export type ExecutionStatus = 'pending' | 'running' | 'succeeded' | 'failed' | 'aborted';
export const EXECUTION_STATUSES: readonly ExecutionStatus[] = [
  'pending',
  'running',
  'succeeded',
  'failed',
  'aborted',
];
export type FinalOutcome = 'succeeded' | 'failed' | 'aborted';
export type TaskRunStatus = 'running' | 'succeeded' | 'failed';

export interface ExecutionSummary {
  readonly executionId: string;
  readonly workflow: string;
  readonly status: ExecutionStatus;
  readonly error: string | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly startedAt: Date | null;
  readonly finishedAt: Date | null;
}

export interface TaskRunRecord {
  readonly taskId: string;
  readonly status: TaskRunStatus;
  readonly attempt: number;
  readonly error: string | null;
  readonly startedAt: Date;
  readonly finishedAt: Date | null;
  readonly heartbeatAt: Date;
}

export interface ExecutionRecord extends ExecutionSummary {
  readonly input: JsonValue;
  readonly context: Record<string, JsonValue>;
  readonly orchestratorRef: string | null;
  /** How many times recovery has acted on this execution. */
  readonly attempts: number;
  /** When a client cancelled it (`POST …/cancel`), and as whom; `null` for one never cancelled. */
  readonly cancelledAt: Date | null;
  readonly cancelledBy: CancelledBy | null;
  /** How many times a client reran it (`POST …/rerun`), and when last. */
  readonly rerunCount: number;
  readonly lastRerunAt: Date | null;
  readonly tasks: readonly TaskRunRecord[];
}

export interface TenantMetrics {
  readonly executionsFinished: number;
  readonly executionsSucceeded: number;
  readonly executionsFailed: number;
  readonly executionsAborted: number;
  readonly totalDurationMs: number;
  readonly lastActivityAt: Date | null;
}

/** Who cancelled an execution: the tenant's own API key, or the admin. */
export type CancelledBy = 'tenant_api_key' | 'admin';

/** What {@link ExecutionStore.cancel} found and did. */
export type CancelRecord =
  | ({ readonly kind: 'cancelled' } & CancelledExecution)
  /** Cancelled before: `stopConfirmed` says whether the orchestrator's stop was confirmed since. */
  | ({ readonly kind: 'already_cancelled'; readonly stopConfirmed: boolean } & CancelledExecution)
  | { readonly kind: 'ended'; readonly status: ExecutionStatus }
  | { readonly kind: 'not_found' };

export interface CancelledExecution {
  readonly workflow: string;
  readonly cancelledAt: Date;
  readonly cancelledBy: CancelledBy;
}

/** What {@link ExecutionStore.beginRerun} found and did. */
export type RerunAdmission =
  | {
      readonly kind: 'admitted';
      readonly workflow: string;
      readonly rerunCount: number;
      /** What the failed row held, for {@link ExecutionStore.undoRerun}. */
      readonly failed: {
        readonly error: string | null;
        readonly finishedAt: Date | null;
        readonly lastRerunAt: Date | null;
      };
    }
  | { readonly kind: 'not_failed'; readonly status: ExecutionStatus; readonly cancelled: boolean }
  | { readonly kind: 'not_found' };

/** What a task changed in the workflow context: keys set and keys removed. */
export interface ContextChanges {
  readonly set: Readonly<Record<string, JsonValue>>;
  readonly unset: readonly string[];
}

/** An execution as the task runner reads it. */
export interface ExecutionForTask {
  readonly workflow: string;
  readonly status: ExecutionStatus;
  readonly input: JsonValue;
  readonly context: Record<string, JsonValue>;
}

/** What {@link ExecutionStore.claimTask} found and did. */
export type TaskClaim =
  | { readonly kind: 'not_found' }
  /** Ended (or cancelled): its tasks no longer run. Nothing was claimed. */
  | { readonly kind: 'not_runnable'; readonly execution: ExecutionForTask }
  /** The execution's workflow does not declare the task in this deployment. Nothing was claimed. */
  | { readonly kind: 'unknown_task'; readonly execution: ExecutionForTask }
  | { readonly kind: 'already_succeeded'; readonly execution: ExecutionForTask }
  | {
      readonly kind: 'started';
      readonly execution: ExecutionForTask;
      readonly attempt: number;
      /**
       * The attempt's secret: only its SHA-256 is stored, and `complete_task` needs it, so SQL running
       * as the tenant cannot mark tasks done. Keep it out of logs.
       */
      readonly token: string;
    };

/** What `tenantflow_api.complete_task` answers. */
export type TaskCompletion =
  | 'completed'
  | 'already_succeeded'
  | 'unknown_attempt'
  | 'execution_ended'
  | 'not_found';

/** Why `finish_task` refused to complete an attempt: what `complete_task` answered, or the tenant is no longer active. */
export type CompletionRefusal = Exclude<TaskCompletion, 'completed'> | 'tenant_inactive';

const TENANTS = qualified(CONTROL_SCHEMA, 'tenants');
/** How many times a start (or a rerun) tries another free slot after losing one to a concurrent start. */
const ADMISSION_TRIES = 8;
/** Random slots a start probes before it looks for a gap among the slots in use. */
const RANDOM_SLOT_PROBES = 16;
/** Slots are `integer`s; a larger limit is as good as no limit. */
const MAX_ADMISSION_SLOTS = 2 ** 31 - 1;
const CLAIM_TASK = qualified('tenantflow_api', 'claim_task');
const FINISH_TASK = qualified('tenantflow_api', 'finish_task');
const CLAIM_KEY = qualified(CONTROL_SCHEMA, 'task_claim_key');
/** What `finish_task` raises with, its refusal as the error's DETAIL. */
const TASK_NOT_COMPLETED = 'TF409';
const COMPLETION_REFUSALS = [
  'already_succeeded',
  'unknown_attempt',
  'execution_ended',
  'not_found',
  'tenant_inactive',
] as const;
const METRICS = qualified(CONTROL_SCHEMA, 'tenant_metrics');
const SUMMARY_COLUMNS = 'id, workflow, status, error, created_at, updated_at, started_at, finished_at';

/**
 * The longest duration {@link ExecutionStore.finalize} counts for one execution: a Standard state
 * machine runs for a year at most, so a longer one is a bad timestamp, not a real run. It keeps one
 * execution from swamping (or overflowing) the tenant's total.
 */
export const MAX_RECORDED_DURATION_MS = 365 * 24 * 60 * 60 * 1000;

interface SummaryRow extends Record<string, unknown> {
  id: string;
  workflow: string;
  status: ExecutionStatus;
  error: string | null;
  created_at: Date;
  updated_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
}

/**
 * Executions and task runs, kept in each tenant's own schema, plus the per-tenant counters in the
 * control schema. Platform code: every statement runs on the platform pool with schema-qualified
 * names ({@link tenantTable}), never relying on a `search_path`; the one exception is
 * {@link completeTask}, which runs inside the task's own transaction on the tenant-role connection,
 * so the task's writes, its context changes and its completion commit together.
 */
export class ExecutionStore {
  #claimKeyRead: Promise<Buffer> | undefined;

  constructor(private readonly pool: pg.Pool) {}

  /**
   * Inserts a `pending` execution if the tenant is active and has fewer than `maxConcurrent`
   * executions pending or running, in one statement (one round trip, one short transaction).
   *
   * The limit is exact without serializing the tenant's starts: the new execution takes a free
   * admission slot below `maxConcurrent` (see tenant migration 0007), and the unique index on the
   * slots of executions in flight means two concurrent starts can never both hold the same one, so
   * at most `maxConcurrent` admitted executions are ever in flight. Two starts only wait for each
   * other when they picked the same slot (the loser tries another, up to {@link ADMISSION_TRIES}
   * times). The tenant's registry row is read `FOR SHARE`: starts do not block each other, but a
   * deactivation (an UPDATE of the row) waits for the starts in progress, and a start that waited
   * for a deactivation sees the tenant inactive.
   *
   * With `ifAbsent`, an execution already recorded under this id is answered as it is
   * (`inserted: false`) and nothing is inserted or checked against the limit: a caller that chose
   * the id (a schedule's firing) can repeat the call and never start twice.
   */
  async insertWithinLimit(
    tenantId: string,
    execution: { executionId: string; workflow: string; input: JsonValue },
    maxConcurrent: number,
    options: { readonly ifAbsent?: boolean } = {},
  ): Promise<ExecutionSummary & { readonly inserted: boolean }> {
    const executions = tenantTable(tenantId, 'executions');
    const input = JSON.stringify(execution.input);
    const slots = Math.max(0, Math.min(Math.floor(maxConcurrent), MAX_ADMISSION_SLOTS));
    for (let attempt = 1; ; attempt += 1) {
      const { rows } = await this.pool.query<{
        tenant_status: string | null;
        in_flight: number;
        free_slot: number | null;
        existing: SummaryRow | null;
        inserted: SummaryRow | null;
      }>(
        `WITH tenant AS (
           SELECT status FROM ${TENANTS} WHERE tenant_id = $1 FOR SHARE
         ), existing AS (
           SELECT ${SUMMARY_COLUMNS} FROM ${executions} WHERE $6 AND id = $2
         ), in_flight AS (
           SELECT count(*)::int AS count FROM ${executions} WHERE status IN ('pending', 'running')
         ), free_slot AS (
           ${freeSlotQuery(executions, '$5', '$7')}
         ), inserted AS (
           INSERT INTO ${executions} (id, workflow, input, admission_slot)
           SELECT $2, $3, $4, free_slot.slot
             FROM tenant, in_flight, free_slot
            WHERE tenant.status = 'active' AND in_flight.count < $5 AND NOT EXISTS (SELECT 1 FROM existing)
           ON CONFLICT DO NOTHING
           RETURNING ${SUMMARY_COLUMNS}
         )
         SELECT (SELECT status FROM tenant) AS tenant_status,
                (SELECT count FROM in_flight) AS in_flight,
                (SELECT slot FROM free_slot) AS free_slot,
                (SELECT row_to_json(existing) FROM existing) AS existing,
                (SELECT row_to_json(inserted) FROM inserted) AS inserted`,
        [
          tenantId,
          execution.executionId,
          execution.workflow,
          input,
          slots,
          options.ifAbsent === true,
          randomInt(Math.max(1, slots)),
        ],
      );
      const row = single(rows, 'the execution store');
      if (row.tenant_status === null) {
        throw new TenantNotFoundError(tenantId);
      }
      assertTenantActive({ tenantId, status: row.tenant_status });
      if (row.existing !== null) {
        return { ...toSummary(fromJsonRow(row.existing)), inserted: false };
      }
      if (row.inserted !== null) {
        return { ...toSummary(fromJsonRow(row.inserted)), inserted: true };
      }
      // Nothing inserted: the tenant is at its limit, or a concurrent start took the slot this one
      // picked (or, with `ifAbsent`, recorded the same id first: the next try answers it).
      const atLimit = row.in_flight >= maxConcurrent || row.free_slot === null;
      // With `ifAbsent`, try once more even at the limit: a concurrent call that recorded this id
      // is answered, not refused.
      const answerConcurrentRecord = options.ifAbsent === true && attempt === 1;
      if ((atLimit && !answerConcurrentRecord) || attempt >= ADMISSION_TRIES) {
        throw new LimitExceededError(
          `Tenant '${tenantId}' already has ${row.in_flight} executions pending or running, its limit (limits.maxConcurrentExecutions = ${maxConcurrent}); retry when one finishes`,
        );
      }
    }
  }

  /** Records the orchestrator's reference; `pending` becomes `running` unless a task got there first. */
  async markStarted(tenantId: string, executionId: string, ref: string): Promise<void> {
    await this.pool.query(
      `UPDATE ${tenantTable(tenantId, 'executions')}
          SET orchestrator_ref = $2, updated_at = now(), started_at = COALESCE(started_at, now()),
              status = CASE WHEN status = 'pending' THEN 'running' ELSE status END
        WHERE id = $1`,
      [executionId, ref],
    );
  }

  async get(tenantId: string, executionId: string): Promise<ExecutionRecord | undefined> {
    const { rows } = await this.pool.query<
      SummaryRow & {
        input: JsonValue;
        context: Record<string, JsonValue>;
        orchestrator_ref: string | null;
        attempts: number;
        cancelled_at: Date | null;
        cancelled_by: CancelledBy | null;
        rerun_count: number;
        last_rerun_at: Date | null;
        running_tasks: Record<string, { attempt: number; startedAt: string; heartbeatAt: string }>;
      }
    >(
      `SELECT ${SUMMARY_COLUMNS}, input, context, orchestrator_ref, attempts,
              cancelled_at, cancelled_by, rerun_count, last_rerun_at, running_tasks
         FROM ${tenantTable(tenantId, 'executions')} WHERE id = $1`,
      [executionId],
    );
    const row = rows[0];
    if (row === undefined) {
      return undefined;
    }
    const tasks = await this.pool.query<{
      task_id: string;
      status: TaskRunStatus;
      attempt: number;
      error: string | null;
      started_at: Date;
      finished_at: Date | null;
      heartbeat_at: Date;
    }>(
      `SELECT task_id, status, attempt, error, started_at, finished_at, heartbeat_at
         FROM ${tenantTable(tenantId, 'task_runs')} WHERE execution_id = $1 ORDER BY started_at, task_id`,
      [executionId],
    );
    return {
      ...toSummary(row),
      input: row.input,
      context: row.context,
      orchestratorRef: row.orchestrator_ref,
      attempts: row.attempts,
      cancelledAt: row.cancelled_at,
      cancelledBy: row.cancelled_by,
      rerunCount: row.rerun_count,
      lastRerunAt: row.last_rerun_at,
      tasks: withRunningAttempts(
        tasks.rows.map((task) => ({
          taskId: task.task_id,
          status: task.status,
          attempt: task.attempt,
          error: task.error,
          startedAt: task.started_at,
          finishedAt: task.finished_at,
          heartbeatAt: task.heartbeat_at,
        })),
        row.running_tasks,
      ),
    };
  }

  /**
   * A page of executions, newest first. `after` is the last execution id of the previous page:
   * paging by (created_at, id) stays stable while new executions arrive.
   */
  async list(
    tenantId: string,
    options: { status?: ExecutionStatus | undefined; limit: number; after?: string | undefined },
  ): Promise<{ executions: ExecutionSummary[]; next: string | undefined }> {
    const executions = tenantTable(tenantId, 'executions');
    const { rows } = await this.pool.query<SummaryRow>(
      `SELECT ${SUMMARY_COLUMNS} FROM ${executions}
        WHERE ($1::text IS NULL OR status = $1)
          AND ($2::text IS NULL OR (created_at, id) < (SELECT created_at, id FROM ${executions} WHERE id = $2))
        ORDER BY created_at DESC, id DESC
        LIMIT $3`,
      [options.status ?? null, options.after ?? null, options.limit + 1],
    );
    const page = rows.slice(0, options.limit).map(toSummary);
    return { executions: page, next: rows.length > options.limit ? page.at(-1)?.executionId : undefined };
  }

  async exists(tenantId: string, executionId: string): Promise<boolean> {
    const { rows } = await this.pool.query(
      `SELECT 1 FROM ${tenantTable(tenantId, 'executions')} WHERE id = $1`,
      [executionId],
    );
    return rows.length > 0;
  }

  /**
   * The statement that claims a task's attempt **inside the task's own transaction**, on the
   * tenant-role connection (the task runner sends it with `BEGIN`, in one round trip), and the
   * attempt's token. `tenantflow_api.claim_task` reads the execution and, if it is in flight and its
   * workflow is one of `workflows` (those that declare the task in this deployment), starts the
   * task's attempt: the counter goes up and the token's hash is stored. A task already succeeded is
   * left alone. Read the answer with {@link readTaskClaim}.
   *
   * The claim carries the platform's proof, an HMAC of the claim under the key in
   * `tenantflow.task_claim_key` (read once per process, by the platform role), so SQL running as
   * the tenant cannot claim an attempt of its own and complete it. The attempt is recorded when the
   * task's transaction commits; one that rolled back is recorded by {@link recordTaskFailure}.
   */
  async taskClaim(
    tenantId: string,
    executionId: string,
    taskId: string,
    workflows: readonly string[],
  ): Promise<{ readonly statement: PipelinedStatement; readonly token: string }> {
    const token = randomBytes(32).toString('base64url');
    const hash = tokenHash(token);
    const proof = createHmac('sha256', await this.#claimKey())
      .update(claimMessage(tenantId, executionId, taskId, hash))
      .digest();
    return {
      token,
      statement: {
        text: `SELECT workflow, status, input, context, attempt
                 FROM ${CLAIM_TASK}($1, $2, $3, ARRAY(SELECT jsonb_array_elements_text($4::jsonb)),
                                    decode($5, 'hex'), decode($6, 'hex'))`,
        values: [
          tenantId,
          executionId,
          taskId,
          JSON.stringify(workflows),
          hash.toString('hex'),
          proof.toString('hex'),
        ],
      },
    };
  }

  /** What the statement of {@link taskClaim} answered, for the attempt whose token is `token`. */
  readTaskClaim(result: pg.QueryResult | undefined, workflows: readonly string[], token: string): TaskClaim {
    const row = result?.rows[0] as
      | {
          workflow: string;
          status: ExecutionStatus;
          input: JsonValue;
          context: Record<string, JsonValue>;
          attempt: number | null;
        }
      | undefined;
    if (row === undefined) {
      return { kind: 'not_found' };
    }
    const execution = { workflow: row.workflow, status: row.status, input: row.input, context: row.context };
    if (row.status !== 'pending' && row.status !== 'running') {
      return { kind: 'not_runnable', execution };
    }
    if (!workflows.includes(row.workflow)) {
      return { kind: 'unknown_task', execution };
    }
    return row.attempt === null
      ? { kind: 'already_succeeded', execution }
      : { kind: 'started', execution, attempt: row.attempt, token };
  }

  /**
   * The statement that completes the attempt, sent with `COMMIT` in one round trip:
   * `tenantflow_api.finish_task` is {@link completeTask} that raises on anything but `completed`,
   * so the server skips that COMMIT. {@link completionRefusal} reads why from the error.
   */
  taskCompletion(
    tenantId: string,
    executionId: string,
    taskId: string,
    token: string,
    changes: ContextChanges,
  ): PipelinedStatement {
    return {
      text: `SELECT ${FINISH_TASK}($1, $2, $3, $4, $5::jsonb, ARRAY(SELECT jsonb_array_elements_text($6::jsonb)))`,
      values: [
        tenantId,
        executionId,
        taskId,
        token,
        JSON.stringify(changes.set),
        JSON.stringify(changes.unset),
      ],
    };
  }

  /** Why `finish_task` refused a completion, from its error; undefined for any other error. */
  static completionRefusal(error: unknown): CompletionRefusal | undefined {
    if (sqlState(error) !== TASK_NOT_COMPLETED) {
      return undefined;
    }
    const detail = (error as { detail?: unknown }).detail;
    return COMPLETION_REFUSALS.find((refusal) => refusal === detail) ?? 'not_found';
  }

  /** The claim key, read once; a failed read is retried by the next claim. */
  #claimKey(): Promise<Buffer> {
    this.#claimKeyRead ??= this.pool
      .query<{ hmac_key: Buffer }>(`SELECT hmac_key FROM ${CLAIM_KEY}`)
      .then(({ rows }) => single(rows, CLAIM_KEY).hmac_key)
      .catch((error: unknown) => {
        this.#claimKeyRead = undefined;
        throw error;
      });
    return this.#claimKeyRead;
  }

  /**
   * Proves the execution's task is alive: recovery treats an execution without progress for its
   * stale threshold as stuck, and this counts as progress. Answers whether the execution is still
   * in flight: `false` once it ended under the task (cancelled, or finalized), so the runner can
   * abort the task's signal instead of working on for nothing.
   *
   * It writes the execution's row (`running_tasks`, which {@link get} shows as the task running),
   * not the attempt's: the attempt is claimed inside the task's transaction, so its task_runs row
   * is not visible (or is locked) until that transaction ends.
   */
  async heartbeat(
    tenantId: string,
    executionId: string,
    attempt: { readonly taskId: string; readonly attempt: number; readonly startedAt: Date },
  ): Promise<boolean> {
    const { rows } = await this.pool.query<{ in_flight: boolean }>(
      `UPDATE ${tenantTable(tenantId, 'executions')}
          SET updated_at = now(),
              running_tasks = running_tasks || jsonb_build_object($2::text, jsonb_build_object(
                'attempt', $3::int, 'startedAt', $4::timestamptz, 'heartbeatAt', now()))
        WHERE id = $1 AND status IN ('pending', 'running')
       RETURNING true AS in_flight`,
      [executionId, attempt.taskId, attempt.attempt, attempt.startedAt],
    );
    return rows[0]?.in_flight ?? false;
  }

  /**
   * Records a failed attempt, unless the task succeeded or a later attempt was recorded meanwhile.
   * The attempt's claim rolled back with the task's transaction, so this writes the run as it
   * ended: inserted for a first attempt, updated for a retry.
   */
  async recordTaskFailure(
    tenantId: string,
    executionId: string,
    taskId: string,
    attempt: number,
    error: string,
    startedAt: Date = new Date(),
  ): Promise<void> {
    await this.pool.query(
      `WITH stopped AS (
         UPDATE ${tenantTable(tenantId, 'executions')} SET running_tasks = running_tasks - $2
          WHERE id = $1 AND running_tasks ? $2)
       INSERT INTO ${tenantTable(tenantId, 'task_runs')} AS run
              (execution_id, task_id, status, attempt, error, started_at, heartbeat_at, finished_at)
       SELECT $1, $2, 'failed', $3, $4, $5, now(), now()
        WHERE EXISTS (SELECT 1 FROM ${tenantTable(tenantId, 'executions')} WHERE id = $1)
       ON CONFLICT (execution_id, task_id) DO UPDATE
          SET status = 'failed', attempt = EXCLUDED.attempt, error = EXCLUDED.error,
              started_at = EXCLUDED.started_at, heartbeat_at = now(), finished_at = now()
        WHERE run.status <> 'succeeded' AND run.attempt <= EXCLUDED.attempt`,
      [executionId, taskId, attempt, error, startedAt],
    );
  }

  /**
   * Records the final status and counts it in the tenant's counters, once: an execution that is
   * already final is left as it is (finalize may be retried, and recovery may finalize too).
   * Returns whether this call finalized it.
   *
   * The duration comes from the row's `started_at` (or `created_at`), which the tenant's own role
   * may have written, so it is clamped rather than trusted: a non-finite or future timestamp counts
   * as now (0 ms), and no execution counts for more than {@link MAX_RECORDED_DURATION_MS}. Whatever
   * the row says, finalize succeeds; an error here would leave the execution in flight for ever.
   */
  async finalize(
    tenantId: string,
    executionId: string,
    outcome: FinalOutcome,
    error: string | null,
  ): Promise<boolean> {
    // One statement (one round trip, one commit): the final status, and the tenant's counters only
    // when this call is the one that ended the execution. CASE evaluates the subtraction only for a
    // finite past timestamp: with ±infinity it fails ("cannot convert infinity to bigint"), and a
    // future one would count a negative duration.
    const { rows } = await this.pool.query<{ duration_ms: string }>(
      `WITH finalized AS (
         UPDATE ${tenantTable(tenantId, 'executions')}
            SET status = $2, error = $3, finished_at = now(), updated_at = now(), running_tasks = '{}'
          WHERE id = $1 AND status IN ('pending', 'running')
          RETURNING CASE
                      WHEN NOT isfinite(COALESCE(started_at, created_at, now()))
                        OR COALESCE(started_at, created_at, now()) >= now() THEN 0
                      ELSE LEAST(extract(epoch FROM (now() - COALESCE(started_at, created_at))) * 1000,
                                 $4::bigint)::bigint
                    END AS duration_ms
       ), counted AS (
         INSERT INTO ${METRICS} AS m (tenant_id, executions_finished, executions_succeeded, executions_failed,
                                      executions_aborted, total_duration_ms, last_activity_at)
         SELECT $5, 1, ($2 = 'succeeded')::int, ($2 = 'failed')::int, ($2 = 'aborted')::int, duration_ms, now()
           FROM finalized
         ON CONFLICT (tenant_id) DO UPDATE SET
           executions_finished  = m.executions_finished + 1,
           executions_succeeded = m.executions_succeeded + EXCLUDED.executions_succeeded,
           executions_failed    = m.executions_failed + EXCLUDED.executions_failed,
           executions_aborted   = m.executions_aborted + EXCLUDED.executions_aborted,
           total_duration_ms    = m.total_duration_ms + EXCLUDED.total_duration_ms,
           last_activity_at     = EXCLUDED.last_activity_at
       )
       SELECT duration_ms FROM finalized`,
      [executionId, outcome, error, MAX_RECORDED_DURATION_MS, tenantId],
    );
    return rows.length > 0;
  }

  /** The task that failed last, with its error: what a failed execution reports. */
  async lastFailedTask(
    tenantId: string,
    executionId: string,
  ): Promise<{ taskId: string; attempt: number; error: string | null } | undefined> {
    const { rows } = await this.pool.query<{ task_id: string; attempt: number; error: string | null }>(
      `SELECT task_id, attempt, error FROM ${tenantTable(tenantId, 'task_runs')}
        WHERE execution_id = $1 AND status = 'failed' ORDER BY finished_at DESC NULLS LAST LIMIT 1`,
      [executionId],
    );
    const row = rows[0];
    return row === undefined ? undefined : { taskId: row.task_id, attempt: row.attempt, error: row.error };
  }

  /**
   * Cancels an execution in flight: in one transaction it becomes `aborted`, with who cancelled it
   * and when, and is counted in the tenant's counters. This is the record of the intent, written
   * before the orchestrator is asked to stop: from here on a task's completion
   * (`complete_task`) finds the execution ended and rolls back, finalize leaves it as it is, and
   * recovery's scan (in-flight executions only) never sees it again. A task that committed first
   * holds the row until it commits, so the cancel lands after it and its commit stands.
   */
  async cancel(tenantId: string, executionId: string, cancelledBy: CancelledBy): Promise<CancelRecord> {
    const executions = tenantTable(tenantId, 'executions');
    return inTransaction(this.pool, async (client) => {
      const { rows } = await client.query<{
        workflow: string;
        cancelled_at: Date;
        cancelled_by: CancelledBy;
        duration_ms: string;
      }>(
        `UPDATE ${executions}
            SET status = 'aborted', error = $3, finished_at = now(), updated_at = now(),
                cancelled_at = now(), cancelled_by = $2
          WHERE id = $1 AND status IN ('pending', 'running')
          RETURNING workflow, cancelled_at, cancelled_by,
                    CASE
                      WHEN NOT isfinite(COALESCE(started_at, created_at, now()))
                        OR COALESCE(started_at, created_at, now()) >= now() THEN 0
                      ELSE LEAST(extract(epoch FROM (now() - COALESCE(started_at, created_at))) * 1000,
                                 $4::bigint)::bigint
                    END AS duration_ms`,
        [
          executionId,
          cancelledBy,
          `Cancelled by ${cancelledBy === 'admin' ? 'the admin' : "the tenant's API key"}`,
          MAX_RECORDED_DURATION_MS,
        ],
      );
      const cancelled = rows[0];
      if (cancelled !== undefined) {
        await client.query(
          `INSERT INTO ${METRICS} AS m (tenant_id, executions_finished, executions_aborted, total_duration_ms,
                                        last_activity_at)
           VALUES ($1, 1, 1, $2, now())
           ON CONFLICT (tenant_id) DO UPDATE SET
             executions_finished = m.executions_finished + 1,
             executions_aborted  = m.executions_aborted + 1,
             total_duration_ms   = m.total_duration_ms + EXCLUDED.total_duration_ms,
             last_activity_at    = EXCLUDED.last_activity_at`,
          [tenantId, Number(cancelled.duration_ms)],
        );
        return {
          kind: 'cancelled',
          workflow: cancelled.workflow,
          cancelledAt: cancelled.cancelled_at,
          cancelledBy: cancelled.cancelled_by,
        };
      }
      const found = await client.query<{
        workflow: string;
        status: ExecutionStatus;
        cancelled_at: Date | null;
        cancelled_by: CancelledBy | null;
        orchestrator_stopped_at: Date | null;
      }>(
        `SELECT workflow, status, cancelled_at, cancelled_by, orchestrator_stopped_at
           FROM ${executions} WHERE id = $1`,
        [executionId],
      );
      const row = found.rows[0];
      if (row === undefined) {
        return { kind: 'not_found' };
      }
      return row.cancelled_at === null || row.cancelled_by === null
        ? { kind: 'ended', status: row.status }
        : {
            kind: 'already_cancelled',
            workflow: row.workflow,
            cancelledAt: row.cancelled_at,
            cancelledBy: row.cancelled_by,
            stopConfirmed: row.orchestrator_stopped_at !== null,
          };
    });
  }

  /** Records that the orchestrator confirmed the stop of a cancelled execution. */
  async markCancelStopped(tenantId: string, executionId: string): Promise<void> {
    await this.pool.query(
      `UPDATE ${tenantTable(tenantId, 'executions')} SET orchestrator_stopped_at = now()
        WHERE id = $1 AND cancelled_at IS NOT NULL AND orchestrator_stopped_at IS NULL`,
      [executionId],
    );
  }

  /** Whether a client cancelled the execution. */
  async isCancelled(tenantId: string, executionId: string): Promise<boolean> {
    const { rows } = await this.pool.query(
      `SELECT 1 FROM ${tenantTable(tenantId, 'executions')} WHERE id = $1 AND cancelled_at IS NOT NULL`,
      [executionId],
    );
    return rows.length > 0;
  }

  /**
   * Takes a failed execution back to `running` for a rerun, if the tenant is active and has a free
   * admission slot under `maxConcurrent` (a {@link LimitExceededError} otherwise; the slot is what
   * keeps the limit exact against concurrent starts, see {@link insertWithinLimit}), counting the
   * rerun. Written before the orchestrator is asked to redrive, under the tenant row's lock: if the
   * redrive is then lost, recovery finds the execution running with a failed orchestrator
   * execution and redrives it. Nothing changes for an execution that is not `failed`.
   */
  async beginRerun(tenantId: string, executionId: string, maxConcurrent: number): Promise<RerunAdmission> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await this.#tryRerun(tenantId, executionId, maxConcurrent);
      } catch (error) {
        // Lost the free slot it picked to a concurrent start: pick again.
        if (sqlState(error) !== SQLSTATE.uniqueViolation || attempt >= ADMISSION_TRIES) {
          throw error;
        }
      }
    }
  }

  async #tryRerun(tenantId: string, executionId: string, maxConcurrent: number): Promise<RerunAdmission> {
    const executions = tenantTable(tenantId, 'executions');
    const slots = Math.max(0, Math.min(Math.floor(maxConcurrent), MAX_ADMISSION_SLOTS));
    return inTransaction(this.pool, async (client) => {
      const tenant = await client.query<{ status: string }>(
        `SELECT status FROM ${TENANTS} WHERE tenant_id = $1 FOR UPDATE`,
        [tenantId],
      );
      const status = tenant.rows[0]?.status;
      if (status === undefined) {
        throw new TenantNotFoundError(tenantId);
      }
      assertTenantActive({ tenantId, status });
      const found = await client.query<{
        workflow: string;
        status: ExecutionStatus;
        error: string | null;
        finished_at: Date | null;
        last_rerun_at: Date | null;
        cancelled_at: Date | null;
      }>(
        `SELECT workflow, status, error, finished_at, last_rerun_at, cancelled_at
           FROM ${executions} WHERE id = $1 FOR UPDATE`,
        [executionId],
      );
      const row = found.rows[0];
      if (row === undefined) {
        return { kind: 'not_found' };
      }
      if (row.status !== 'failed') {
        return { kind: 'not_failed', status: row.status, cancelled: row.cancelled_at !== null };
      }
      const inFlight = await client.query<{ count: number }>(
        `SELECT count(*)::int AS count FROM ${executions} WHERE status IN ('pending', 'running')`,
      );
      const count = inFlight.rows[0]?.count ?? 0;
      if (count >= maxConcurrent) {
        throw new LimitExceededError(
          `Tenant '${tenantId}' already has ${count} executions pending or running, its limit (limits.maxConcurrentExecutions = ${maxConcurrent}); retry the rerun when one finishes`,
        );
      }
      // Back in flight, so it needs a free admission slot like a start (tenant migration 0007).
      const { rows } = await client.query<{ rerun_count: number; admission_slot: number | null }>(
        `UPDATE ${executions}
            SET status = 'running', error = NULL, finished_at = NULL, updated_at = now(),
                rerun_count = rerun_count + 1, last_rerun_at = now(),
                admission_slot = (${freeSlotQuery(executions, '$2', '$3')})
          WHERE id = $1
          RETURNING rerun_count, admission_slot`,
        [executionId, slots, randomInt(Math.max(1, slots))],
      );
      if (rows[0] !== undefined && rows[0].admission_slot === null) {
        throw new LimitExceededError(
          `Tenant '${tenantId}' already has ${count} executions pending or running, its limit (limits.maxConcurrentExecutions = ${maxConcurrent}); retry the rerun when one finishes`,
        );
      }
      return {
        kind: 'admitted',
        workflow: row.workflow,
        rerunCount: single(rows, 'the execution store').rerun_count,
        failed: { error: row.error, finishedAt: row.finished_at, lastRerunAt: row.last_rerun_at },
      };
    });
  }

  /**
   * Puts back what {@link beginRerun} changed, when the orchestrator refused the redrive: the
   * execution is `failed` again as it was. Only the rerun that took it (its `rerunCount`), and only
   * while nothing else moved it on.
   */
  async undoRerun(
    tenantId: string,
    executionId: string,
    admission: Extract<RerunAdmission, { kind: 'admitted' }>,
  ): Promise<void> {
    await this.pool.query(
      `UPDATE ${tenantTable(tenantId, 'executions')}
          SET status = 'failed', error = $3, finished_at = COALESCE($4, now()), updated_at = now(),
              rerun_count = rerun_count - 1, last_rerun_at = $5
        WHERE id = $1 AND status = 'running' AND rerun_count = $2`,
      [
        executionId,
        admission.rerunCount,
        admission.failed.error,
        admission.failed.finishedAt,
        admission.failed.lastRerunAt,
      ],
    );
  }

  async metrics(tenantId: string): Promise<TenantMetrics & { pending: number; running: number }> {
    const [counters, current] = await Promise.all([
      this.pool.query<{
        executions_finished: string;
        executions_succeeded: string;
        executions_failed: string;
        executions_aborted: string;
        total_duration_ms: string;
        last_activity_at: Date | null;
      }>(`SELECT * FROM ${METRICS} WHERE tenant_id = $1`, [tenantId]),
      this.pool.query<{ status: ExecutionStatus; count: number }>(
        `SELECT status, count(*)::int AS count FROM ${tenantTable(tenantId, 'executions')}
          WHERE status IN ('pending', 'running') GROUP BY status`,
      ),
    ]);
    const row = counters.rows[0];
    const inFlight = (status: ExecutionStatus) => current.rows.find((r) => r.status === status)?.count ?? 0;
    return {
      executionsFinished: Number(row?.executions_finished ?? 0),
      executionsSucceeded: Number(row?.executions_succeeded ?? 0),
      executionsFailed: Number(row?.executions_failed ?? 0),
      executionsAborted: Number(row?.executions_aborted ?? 0),
      totalDurationMs: Number(row?.total_duration_ms ?? 0),
      lastActivityAt: row?.last_activity_at ?? null,
      pending: inFlight('pending'),
      running: inFlight('running'),
    };
  }
}

/** What is stored of an attempt's token: `complete_task` looks for `sha256(token)` among them. */
function tokenHash(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/**
 * The task runs as committed, with the attempts the heartbeats report running (`running_tasks`)
 * in place of an older run of the same task: an attempt's own row shows only once it ends.
 */
function withRunningAttempts(
  runs: readonly TaskRunRecord[],
  running: Readonly<Record<string, { attempt: number; startedAt: string; heartbeatAt: string }>> | null,
): TaskRunRecord[] {
  const byTask = new Map(runs.map((run) => [run.taskId, run]));
  for (const [taskId, live] of Object.entries(running ?? {})) {
    const committed = byTask.get(taskId);
    if (committed !== undefined && (committed.status === 'succeeded' || committed.attempt >= live.attempt)) {
      continue;
    }
    byTask.set(taskId, {
      taskId,
      status: 'running',
      attempt: live.attempt,
      error: null,
      startedAt: new Date(live.startedAt),
      finishedAt: null,
      heartbeatAt: new Date(live.heartbeatAt),
    });
  }
  return [...byTask.values()].sort(
    (a, b) => a.startedAt.getTime() - b.startedAt.getTime() || a.taskId.localeCompare(b.taskId),
  );
}

/**
 * The bytes `claim_task` checks the proof against: each id length-prefixed (in bytes), so no two
 * different claims give the same bytes, then the token's hash.
 */
function claimMessage(tenantId: string, executionId: string, taskId: string, hash: Buffer): Buffer {
  const part = (value: string) => `${Buffer.byteLength(value, 'utf8')}:${value},`;
  return Buffer.concat([Buffer.from(part(tenantId) + part(executionId) + part(taskId), 'utf8'), hash]);
}

/**
 * A free admission slot below `limit` (a parameter), or no row. A few slots from a random place
 * first (`offset`, a parameter), so concurrent starts rarely pick the same one; then, if those are
 * all taken, every slot just above one in use (and 0), which finds a free slot whenever there is
 * one, in as many index probes as there are executions in flight. Not `generate_series` over the
 * whole range: PostgreSQL materializes it, thousands of rows per start for a large limit.
 */
function freeSlotQuery(executions: string, limit: string, offset: string): string {
  return `SELECT candidate.slot
            FROM (SELECT ((step + ${offset}::int) % ${limit}::int) AS slot
                    FROM generate_series(0, LEAST(${limit}::int, ${RANDOM_SLOT_PROBES}) - 1) AS step
                  UNION ALL
                  SELECT 0
                  UNION ALL
                  SELECT admission_slot + 1 FROM ${executions}
                   WHERE status IN ('pending', 'running') AND admission_slot IS NOT NULL) AS candidate
           WHERE candidate.slot < ${limit}::int
             AND NOT EXISTS (SELECT 1 FROM ${executions} AS e
                              WHERE e.admission_slot = candidate.slot AND e.status IN ('pending', 'running'))
           LIMIT 1`;
}

/** A summary row as `row_to_json` gives it: its timestamps are strings there. */
function fromJsonRow(row: Record<string, unknown>): SummaryRow {
  const at = (value: unknown) => (value === null || value === undefined ? null : new Date(String(value)));
  return {
    ...(row as SummaryRow),
    created_at: at(row.created_at) as Date,
    updated_at: at(row.updated_at) as Date,
    started_at: at(row.started_at),
    finished_at: at(row.finished_at),
  };
}

function toSummary(row: SummaryRow): ExecutionSummary {
  return {
    executionId: row.id,
    workflow: row.workflow,
    status: row.status,
    error: row.error,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
  };
}
