import { createHash, randomBytes } from 'node:crypto';
import { type Queryable, qualified, tenantTable } from '@tenantflow/shared/db/sql';
import type { ContextChanges, TaskCompletion } from '@tenantflow/shared/workflows/execution-store';

/**
 * A committed, running attempt of a task whose token only the caller holds: what the security
 * suite attacks. The runner never commits one (it claims attempts inside the task's transaction),
 * so it is written here as the platform role would, with the token's SHA-256 on the task run.
 */
export async function runningAttempt(
  platform: Queryable,
  tenantId: string,
  executionId: string,
  taskId: string,
): Promise<{ readonly attempt: number; readonly token: string }> {
  const token = randomBytes(32).toString('base64url');
  const { rows } = await platform.query<{ attempt: number }>(
    `WITH started AS (
       UPDATE ${tenantTable(tenantId, 'executions')}
          SET status = 'running', started_at = COALESCE(started_at, now()), updated_at = now()
        WHERE id = $1 AND status = 'pending')
     INSERT INTO ${tenantTable(tenantId, 'task_runs')} AS run (execution_id, task_id, attempt_token_hashes)
     VALUES ($1, $2, ARRAY[$3::bytea])
     ON CONFLICT (execution_id, task_id) DO UPDATE
        SET attempt = run.attempt + 1, status = 'running', error = NULL, heartbeat_at = now(),
            started_at = now(), finished_at = NULL,
            attempt_token_hashes = run.attempt_token_hashes || EXCLUDED.attempt_token_hashes
     RETURNING attempt`,
    [executionId, taskId, createHash('sha256').update(token, 'utf8').digest()],
  );
  const attempt = rows[0]?.attempt;
  if (attempt === undefined) {
    throw new Error(`no attempt of ${tenantId}/${executionId}/${taskId} was started`);
  }
  return { attempt, token };
}

/** `tenantflow_api.complete_task` called on `client` (a tenant-role connection), as a caller holding `token`. */
export async function completeTask(
  client: Queryable,
  tenantId: string,
  executionId: string,
  taskId: string,
  token: string,
  changes: ContextChanges,
): Promise<TaskCompletion> {
  const { rows } = await client.query<{ outcome: TaskCompletion }>(
    `SELECT ${qualified('tenantflow_api', 'complete_task')}($1, $2, $3, $4, $5::jsonb, $6::text[]) AS outcome`,
    [tenantId, executionId, taskId, token, JSON.stringify(changes.set), [...changes.unset]],
  );
  return rows[0]?.outcome ?? 'not_found';
}
