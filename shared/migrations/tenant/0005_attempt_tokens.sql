-- The SHA-256 of each attempt's token. Only the task runner holds a token itself; a task's
-- completion is accepted (tenantflow_api.complete_task) only with the token of one of its attempts,
-- so SQL running as the tenant cannot mark its own tasks done. Every attempt's hash is kept: two
-- live attempts of one task (a retried invocation) may both finish, and the first to commit wins.
ALTER TABLE task_runs ADD COLUMN attempt_token_hashes bytea[] NOT NULL DEFAULT '{}';
