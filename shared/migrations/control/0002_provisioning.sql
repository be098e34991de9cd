-- Provisioning is resumable: a lease says who is working on a tenant right now, so a retry while a
-- run is in flight is refused instead of racing it, and a crashed run's lease simply expires.
ALTER TABLE tenantflow.tenants
  ADD COLUMN lease_owner      text,
  ADD COLUMN lease_expires_at timestamptz;

CREATE UNIQUE INDEX tenants_api_key_hash_idx ON tenantflow.tenants (api_key_hash) WHERE api_key_hash IS NOT NULL;
