-- The attempts running right now, as the task runner's heartbeats report them: task id ->
-- {"attempt", "startedAt", "heartbeatAt"}. An attempt is claimed inside the task's own
-- transaction, so its task_runs row shows only once that transaction ends; a task that runs for
-- longer than a heartbeat's delay shows here meanwhile. Written by the platform's heartbeat, removed
-- when the attempt completes (tenantflow_api.finish_task), fails, or is found lost by recovery, and
-- cleared when the execution is finalized. The tenant role may read it, like the rest of the row.
ALTER TABLE executions ADD COLUMN running_tasks jsonb NOT NULL DEFAULT '{}'::jsonb;
