-- What every recovery pass did: one row per action (or deliberate non-action) on one target, so an
-- operator can answer "what happened to this execution / tenant, and who touched it".
CREATE TABLE tenantflow.recovery_events (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  run_id      uuid NOT NULL,
  -- no foreign key: the history outlives a deleted tenant
  tenant_id   text NOT NULL,
  target_type text NOT NULL CHECK (target_type IN ('execution', 'task_run', 'tenant')),
  target_id   text NOT NULL,
  finding     text NOT NULL,
  action      text NOT NULL,
  outcome     text NOT NULL CHECK (outcome IN ('done', 'skipped', 'failed')),
  detail      text,
  occurred_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX recovery_events_target_idx ON tenantflow.recovery_events (target_id, occurred_at DESC);
CREATE INDEX recovery_events_tenant_idx ON tenantflow.recovery_events (tenant_id, occurred_at DESC);
CREATE INDEX recovery_events_occurred_idx ON tenantflow.recovery_events (occurred_at);

-- One row per recovery pass. A pass that ran out of time records where it stopped, and the next pass
-- starts there, so a large fleet is covered across passes instead of its first tenants only.
CREATE TABLE tenantflow.recovery_runs (
  run_id       uuid PRIMARY KEY,
  started_at   timestamptz NOT NULL DEFAULT now(),
  finished_at  timestamptz,
  complete     boolean,
  resume_after text,
  summary      jsonb
);

CREATE INDEX recovery_runs_started_idx ON tenantflow.recovery_runs (started_at DESC);
