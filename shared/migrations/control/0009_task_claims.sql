-- A task's attempt is claimed inside the task's own transaction, on the tenant-role connection, so
-- that the claim, the task's writes and its completion commit once, together (or not at all).
--
-- The tenant role may call tenantflow_api.claim_task, and SQL running as the tenant is hostile: a
-- claim is accepted only with the platform's proof, an HMAC-SHA256 of the claim under a key that
-- only the platform role can read (this table). Without it, SQL running as the tenant could claim
-- an attempt with a token of its own choosing and then complete the task with made-up context.
--
-- The key is read by claim_task, so a tenant's transaction holds ACCESS SHARE on this table until it
-- ends. That blocks nothing but ALTER, DROP, TRUNCATE and VACUUM FULL of this table. Nothing of
-- tenantflow does any of those, and a migration that did would fail after its lock_timeout rather
-- than make every claim queue behind it. Replace the table instead of altering it.
CREATE TABLE tenantflow.task_claim_key (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  -- 32 bytes, from two gen_random_uuid() (the server's strong random source): 244 random bits.
  hmac_key bytea NOT NULL CHECK (octet_length(hmac_key) = 32),
  -- The HMAC's inner and outer keys (RFC 2104), so claim_task needs only sha256().
  inner_key bytea NOT NULL CHECK (octet_length(inner_key) = 64),
  outer_key bytea NOT NULL CHECK (octet_length(outer_key) = 64)
);

DO $$
DECLARE
  k bytea := decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex');
  padded bytea := k || decode(repeat('00', 32), 'hex');
  ipad bytea := padded;
  opad bytea := padded;
BEGIN
  FOR i IN 0..63 LOOP
    ipad := set_byte(ipad, i, get_byte(padded, i) # 54);  -- 0x36
    opad := set_byte(opad, i, get_byte(padded, i) # 92);  -- 0x5c
  END LOOP;
  INSERT INTO tenantflow.task_claim_key (hmac_key, inner_key, outer_key) VALUES (k, ipad, opad);
END
$$;

-- Claims an attempt of a task: reads the execution and, if it is in flight and its workflow is one
-- of p_workflows (those that declare the task in this deployment), starts the task's attempt (the
-- counter goes up, the attempt's token hash is stored). A task already succeeded is left alone.
-- Returns no row when the execution does not exist, else the execution and the attempt started
-- (NULL when none was: not runnable, not declared, or already succeeded).
--
-- It writes nothing but the tenant's own task_runs row, in the caller's transaction, and does not
-- touch the execution's row: a task that runs for minutes must not hold a lock that a start, a
-- cancel or a heartbeat would wait on. The attempt becomes visible when the task's transaction
-- commits (or is recorded as failed after it rolled back).
--
-- Two attempts of one task (a retried invocation while the first still runs) meet on the task's
-- row: the second waits for the first to commit or roll back, then finds the task done or claims
-- it. It waits at most lock_timeout (set for this function's run only), so an attempt whose
-- connection outlives its caller cannot hold a retry for longer; the runner reports that as a
-- retryable failure.
--
-- SECURITY DEFINER with search_path pinned to pg_catalog, like complete_task: every name is
-- qualified, and the tenant schema is addressed with %I from an id checked against the caller's
-- own login.
CREATE FUNCTION tenantflow_api.claim_task(
  p_tenant_id text,
  p_execution_id text,
  p_task_id text,
  p_workflows text[],
  p_token_hash bytea,
  p_proof bytea
) RETURNS TABLE (workflow text, status text, input jsonb, context jsonb, attempt integer)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '3s'
AS $$
DECLARE
  k_inner bytea;
  k_outer bytea;
  claim   bytea;
  e_workflow text;
  e_status   text;
  e_input    jsonb;
  e_context  jsonb;
  started    integer;
BEGIN
  IF p_tenant_id IS NULL OR session_user::text IS DISTINCT FROM p_tenant_id || '_user' THEN
    RAISE EXCEPTION 'claim_task: % may not claim tasks of tenant %', session_user, p_tenant_id
      USING ERRCODE = '42501';
  END IF;
  IF p_execution_id IS NULL OR p_task_id IS NULL OR p_token_hash IS NULL OR octet_length(p_token_hash) <> 32 THEN
    RAISE EXCEPTION 'claim_task: the claim is incomplete' USING ERRCODE = '22023';
  END IF;
  SELECT inner_key, outer_key INTO k_inner, k_outer FROM tenantflow.task_claim_key;
  -- Each part is length-prefixed, so no two different claims hash the same bytes.
  claim := convert_to(
             octet_length(p_tenant_id) || ':' || p_tenant_id || ','
             || octet_length(p_execution_id) || ':' || p_execution_id || ','
             || octet_length(p_task_id) || ':' || p_task_id || ',',
             'UTF8') || p_token_hash;
  IF k_outer IS NULL OR p_proof IS NULL OR p_proof <> sha256(k_outer || sha256(k_inner || claim)) THEN
    RAISE EXCEPTION 'claim_task: the claim was not made by the platform' USING ERRCODE = '42501';
  END IF;
  EXECUTE format('SELECT workflow, status, input, context FROM %I.executions WHERE id = $1', p_tenant_id)
     INTO e_workflow, e_status, e_input, e_context
    USING p_execution_id;
  IF e_workflow IS NULL THEN
    RETURN;
  END IF;
  IF e_status IN ('pending', 'running') AND e_workflow = ANY (COALESCE(p_workflows, ARRAY[]::text[])) THEN
    EXECUTE format('INSERT INTO %I.task_runs AS run (execution_id, task_id, attempt_token_hashes)
                    VALUES ($1, $2, ARRAY[$3])
                    ON CONFLICT (execution_id, task_id) DO UPDATE
                       SET attempt = run.attempt + 1, status = ''running'', error = NULL,
                           heartbeat_at = now(), started_at = now(), finished_at = NULL,
                           attempt_token_hashes = run.attempt_token_hashes || EXCLUDED.attempt_token_hashes
                     WHERE run.status <> ''succeeded''
                    RETURNING attempt', p_tenant_id)
       INTO started
      USING p_execution_id, p_task_id, p_token_hash;
  END IF;
  RETURN QUERY SELECT e_workflow, e_status, e_input, e_context, started;
END
$$;
REVOKE ALL ON FUNCTION tenantflow_api.claim_task(text, text, text, text[], bytea, bytea) FROM PUBLIC;

-- complete_task, for a caller that sends COMMIT right behind it in the same round trip: anything
-- but 'completed' is raised (SQLSTATE TF409, the outcome as DETAIL), so the server skips that COMMIT
-- and the transaction can only be rolled back. A completed task also leaves the execution's
-- running_tasks (tenant migration 0008) and moves the execution from pending to running
-- (claim_task leaves the execution's row alone; the start's own update may not have landed yet).
-- complete_task has just updated that row (only one in flight gets here), so it is locked
-- already, and only until the COMMIT that follows.
--
-- SECURITY DEFINER like complete_task, which still checks the caller: session_user stays the
-- tenant's login inside a definer function, and the tenant id is used only once that check passed.
CREATE FUNCTION tenantflow_api.finish_task(
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
  outcome text;
BEGIN
  outcome := tenantflow_api.complete_task(
    p_tenant_id, p_execution_id, p_task_id, p_attempt_token, p_context_set, p_context_unset);
  IF outcome IS DISTINCT FROM 'completed' THEN
    RAISE EXCEPTION 'finish_task: task % of execution % was not completed (%)', p_task_id, p_execution_id, outcome
      USING ERRCODE = 'TF409', DETAIL = outcome;
  END IF;
  -- Fail closed at the commit: a tenant deactivated while its task ran gets none of it committed.
  -- Read only now, with a valid token, right before the caller's COMMIT: SQL running as the tenant
  -- never gets here, so it cannot hold this read's lock on the registry in a transaction it keeps.
  PERFORM 1 FROM tenantflow.tenants WHERE tenant_id = p_tenant_id AND status = 'active';
  IF NOT FOUND THEN
    RAISE EXCEPTION 'finish_task: tenant % is not active; task % of execution % is not committed', p_tenant_id, p_task_id, p_execution_id
      USING ERRCODE = 'TF409', DETAIL = 'tenant_inactive';
  END IF;
  EXECUTE format('UPDATE %I.executions
                     SET status = ''running'', started_at = COALESCE(started_at, now()),
                         running_tasks = running_tasks - $2
                   WHERE id = $1', p_tenant_id)
    USING p_execution_id, p_task_id;
  RETURN outcome;
END
$$;
REVOKE ALL ON FUNCTION tenantflow_api.finish_task(text, text, text, text, jsonb, text[]) FROM PUBLIC;
