-- Locks the platform takes on its own work (database ACL changes, a schema's migrations), as row
-- locks in a table only the admin and platform roles can reach. An advisory lock would do the same
-- job, but any role can take any advisory lock key, so a tenant could hold one and stall everyone.
CREATE TABLE tenantflow.platform_locks (
  name text PRIMARY KEY
);

-- The entry points tenant roles may call. This schema and its functions are handed to the platform
-- role when the roles are set up (see DatabaseAdmin.grantPlatformAccess): they run with the
-- platform's rights, never the admin's.
CREATE SCHEMA tenantflow_api;
REVOKE ALL ON SCHEMA tenantflow_api FROM PUBLIC;

-- How a task's completion commits in the task's own transaction although the tenant role cannot
-- write the bookkeeping: the runner holds a per-attempt token whose SHA-256 is on the task run, and
-- only a caller logged in as the tenant's own role and holding the token of one of the task's
-- attempts can mark it succeeded and merge its context changes. Hostile SQL running as the tenant can call it, but
-- without the token of a running attempt it can only be refused.
--
-- SECURITY DEFINER with search_path pinned to pg_catalog: every name below is qualified, and
-- tenant schemas are addressed with %I from an id checked against the caller's own login.
-- Returns what happened: completed | already_succeeded | unknown_attempt | execution_ended | not_found.
CREATE FUNCTION tenantflow_api.complete_task(
  p_tenant_id text,
  p_execution_id text,
  p_task_id text,
  p_attempt_token text,
  p_context_set jsonb,
  p_context_unset text[]
) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  run_status text;
  run_tokens bytea[];
  updated    integer;
BEGIN
  -- Only the tenant's own login, and nothing read from a shared table to decide it: whatever this
  -- function reads stays locked (ACCESS SHARE) until the caller's transaction ends, and a lock on
  -- the registry held by a tenant would stall a migration of it and every request queued behind.
  -- EXECUTE is granted to tenant roles only, and `<id>_user` exists only for tenant `<id>`.
  IF p_tenant_id IS NULL OR session_user::text IS DISTINCT FROM p_tenant_id || '_user' THEN
    RAISE EXCEPTION 'complete_task: % may not complete tasks of tenant %', session_user, p_tenant_id
      USING ERRCODE = '42501';
  END IF;
  -- The token first, without a lock: a caller without one must not be able to hold the platform's
  -- rows locked (its transaction could stay open for as long as it likes).
  EXECUTE format('SELECT attempt_token_hashes FROM %I.task_runs
                   WHERE execution_id = $1 AND task_id = $2', p_tenant_id)
     INTO run_tokens
    USING p_execution_id, p_task_id;
  IF run_tokens IS NULL THEN
    RETURN 'not_found';
  END IF;
  IF p_attempt_token IS NULL OR NOT (sha256(convert_to(p_attempt_token, 'UTF8')) = ANY (run_tokens)) THEN
    RETURN 'unknown_attempt';
  END IF;
  -- The row lock makes a concurrent attempt of the same task wait here, then find it done.
  EXECUTE format('SELECT status FROM %I.task_runs
                   WHERE execution_id = $1 AND task_id = $2 FOR UPDATE', p_tenant_id)
     INTO run_status
    USING p_execution_id, p_task_id;
  IF run_status = 'succeeded' THEN
    RETURN 'already_succeeded';
  END IF;
  EXECUTE format('UPDATE %I.task_runs
                     SET status = ''succeeded'', error = NULL, finished_at = now(), heartbeat_at = now()
                   WHERE execution_id = $1 AND task_id = $2', p_tenant_id)
    USING p_execution_id, p_task_id;
  -- `||` merges only the keys this task set, so parallel tasks never overwrite each other.
  EXECUTE format('UPDATE %I.executions
                     SET context = (context || $2) - $3, updated_at = now()
                   WHERE id = $1 AND status IN (''pending'', ''running'')', p_tenant_id)
    USING p_execution_id, COALESCE(p_context_set, '{}'::jsonb), COALESCE(p_context_unset, ARRAY[]::text[]);
  GET DIAGNOSTICS updated = ROW_COUNT;
  IF updated = 0 THEN
    -- Finalized (failed, aborted) while the task ran: the caller rolls back, so nothing lands after the end.
    RETURN 'execution_ended';
  END IF;
  RETURN 'completed';
END
$$;
REVOKE ALL ON FUNCTION tenantflow_api.complete_task(text, text, text, text, jsonb, text[]) FROM PUBLIC;
