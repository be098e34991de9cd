-- A tenant's workflows started on a schedule. The row is the source of truth; the trigger (an
-- EventBridge Scheduler schedule in AWS, a timer locally) only fires it, and is put again from the
-- row whenever they may disagree. The platform role gets its privileges on these tables as on every
-- control table (DatabaseAdmin.grantPlatformAccess).
CREATE TABLE tenantflow.schedules (
  id          uuid PRIMARY KEY,
  -- Creation order, for keyset paging that a deleted schedule cannot break.
  seq         bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  -- Offboarding deletes a tenant's schedules (and their triggers) first; the cascade is the backstop.
  tenant_id   text NOT NULL REFERENCES tenantflow.tenants (tenant_id) ON DELETE CASCADE,
  workflow    text NOT NULL,
  expression  text NOT NULL,
  timezone    text NOT NULL,
  input       jsonb NOT NULL,
  state       text NOT NULL CHECK (state IN ('enabled', 'paused')),
  -- When the expression was last set: a rate() repeats from here, as EventBridge Scheduler's does.
  anchored_at timestamptz NOT NULL DEFAULT now(),
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX schedules_tenant_idx ON tenantflow.schedules (tenant_id, seq);

-- One row per (schedule, scheduled time) that fired: what it did. The key is what makes a retried
-- delivery of the same firing start nothing twice.
CREATE TABLE tenantflow.schedule_firings (
  schedule_id    uuid NOT NULL REFERENCES tenantflow.schedules (id) ON DELETE CASCADE,
  scheduled_time timestamptz NOT NULL,
  tenant_id      text NOT NULL,
  outcome        text NOT NULL CHECK (outcome IN ('started', 'skipped')),
  execution_id   uuid,
  reason         text,
  fired_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (schedule_id, scheduled_time),
  CHECK ((outcome = 'started') = (execution_id IS NOT NULL))
);
