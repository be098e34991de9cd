-- Cancelling and rerunning an execution. Platform bookkeeping like the rest of the table: the
-- tenant role may read these columns, never write them.
--
-- A cancel ends the row as 'aborted' at once (so a task's completion, finalize and recovery all
-- find it ended), records who and when, and only then asks the orchestrator to stop:
-- orchestrator_stopped_at stays NULL until the orchestrator confirmed the stop, and a repeated
-- cancel asks again until it is.
ALTER TABLE executions
  ADD COLUMN cancelled_at            timestamptz,
  ADD COLUMN cancelled_by            text CHECK (cancelled_by IN ('admin', 'tenant_api_key')),
  ADD COLUMN orchestrator_stopped_at timestamptz,
  -- A rerun redrives a failed execution from its failed task.
  ADD COLUMN rerun_count             integer NOT NULL DEFAULT 0,
  ADD COLUMN last_rerun_at           timestamptz;

