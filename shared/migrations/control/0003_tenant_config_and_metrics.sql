-- JSON Merge Patch (RFC 7396) in one statement, so PATCH /tenants/{id} changes a tenant's config
-- atomically without a read-modify-write round trip. plpgsql because a SQL function cannot call
-- itself before it exists.
CREATE FUNCTION tenantflow.jsonb_merge_patch(target jsonb, patch jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  merged jsonb;
  item record;
BEGIN
  IF jsonb_typeof(patch) IS DISTINCT FROM 'object' THEN
    RETURN patch;
  END IF;
  merged := CASE WHEN jsonb_typeof(target) = 'object' THEN target ELSE '{}'::jsonb END;
  FOR item IN SELECT key, value FROM jsonb_each(patch) LOOP
    IF jsonb_typeof(item.value) = 'null' THEN
      merged := merged - item.key;
    ELSE
      merged := jsonb_set(merged, ARRAY[item.key], tenantflow.jsonb_merge_patch(merged -> item.key, item.value));
    END IF;
  END LOOP;
  RETURN merged;
END
$$;

-- Per-tenant counters, updated by finalize exactly once per execution. They live in the control
-- schema so an operator can read every tenant's activity in one query.
CREATE TABLE tenantflow.tenant_metrics (
  tenant_id            text PRIMARY KEY REFERENCES tenantflow.tenants (tenant_id) ON DELETE CASCADE,
  executions_finished  bigint NOT NULL DEFAULT 0,
  executions_succeeded bigint NOT NULL DEFAULT 0,
  executions_failed    bigint NOT NULL DEFAULT 0,
  executions_aborted   bigint NOT NULL DEFAULT 0,
  total_duration_ms    bigint NOT NULL DEFAULT 0,
  last_activity_at     timestamptz
);
