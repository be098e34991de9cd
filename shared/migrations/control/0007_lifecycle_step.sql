-- Onboarding and offboarding run as state machines, one state per step: the row says which step
-- ran last (or is running), so GET /tenants/{id} can show where a tenant is and where it stopped.
ALTER TABLE tenantflow.tenants
  ADD COLUMN current_step text;
