-- The concurrency limit (limits.maxConcurrentExecutions) without serializing a tenant's starts.
-- Every execution in flight holds one admission slot, a number below the limit it was admitted
-- under, and no two executions in flight hold the same one: a start (or a rerun) takes a free slot
-- in the same statement that records it, and the unique index below settles a race for a slot,
-- only between the starts that picked the same one. A slot frees itself when its execution ends
-- (the index covers in-flight rows only), so nothing has to remember to give it back. Platform
-- bookkeeping: the tenant role may read the column, never write it.
ALTER TABLE executions ADD COLUMN admission_slot integer CHECK (admission_slot >= 0);

-- Executions already in flight keep their place: each gets a distinct slot, oldest first.
UPDATE executions AS e
   SET admission_slot = numbered.slot
  FROM (SELECT id, (row_number() OVER (ORDER BY created_at, id) - 1)::int AS slot
          FROM executions WHERE status IN ('pending', 'running')) AS numbered
 WHERE e.id = numbered.id;

CREATE UNIQUE INDEX executions_admission_slot_idx ON executions (admission_slot)
  WHERE status IN ('pending', 'running');
