-- Platform tables in every tenant schema. Names are unqualified on purpose: the runner resolves them
-- in the tenant's schema, so this one file serves every tenant.

-- One workflow execution. The context lives here, not in the Step Functions payload (256 KB cap).
CREATE TABLE executions (
  id                text PRIMARY KEY,
  workflow          text NOT NULL,
  status            text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'aborted')),
  input             jsonb NOT NULL DEFAULT '{}'::jsonb,
  context           jsonb NOT NULL DEFAULT '{}'::jsonb,
  orchestrator_ref  text,
  attempts          integer NOT NULL DEFAULT 0,
  error             text,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  started_at        timestamptz,
  finished_at       timestamptz
);

CREATE INDEX executions_status_updated_idx ON executions (status, updated_at);

-- One task of one execution; the (execution, task) pair is what makes the task runner idempotent.
CREATE TABLE task_runs (
  execution_id  text NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
  task_id       text NOT NULL,
  status        text NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'succeeded', 'failed')),
  attempt       integer NOT NULL DEFAULT 1,
  heartbeat_at  timestamptz NOT NULL DEFAULT now(),
  error         text,
  started_at    timestamptz NOT NULL DEFAULT now(),
  finished_at   timestamptz,
  PRIMARY KEY (execution_id, task_id)
);
