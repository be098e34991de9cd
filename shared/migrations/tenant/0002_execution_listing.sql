-- Listing a tenant's executions newest first (GET /tenants/{id}/executions), paged by (created_at, id),
-- with or without a status filter.
CREATE INDEX executions_created_idx ON executions (created_at DESC, id DESC);
CREATE INDEX executions_status_created_idx ON executions (status, created_at DESC, id DESC);
