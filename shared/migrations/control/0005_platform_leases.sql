-- Named, time-limited claims on platform-wide resources, taken with a compare-and-set and never
-- with a session lock (RDS Proxy would pin the session; a pooler could hand it to someone else).
-- The first user is the RDS Proxy auth list: adding a tenant's secret to it is a read-modify-write
-- of the whole list, so two onboardings must take turns or one of them loses its entry.
CREATE TABLE tenantflow.platform_leases (
  name        text PRIMARY KEY,
  owner       uuid NOT NULL,
  acquired_at timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL
);
