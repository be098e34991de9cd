-- Recovery claims an execution before it acts on it, with a compare-and-set on the row itself (no
-- session lock, which would pin a pooled connection): whoever sets recovery_owner while the lease is
-- free and the row is still stale acts, and a concurrent recovery finds the claim taken.
ALTER TABLE executions
  ADD COLUMN recovery_owner       text,
  ADD COLUMN recovery_lease_until timestamptz;

-- The recovery scan: in-flight executions only, oldest progress first.
CREATE INDEX executions_in_flight_idx ON executions (updated_at) WHERE status IN ('pending', 'running');
