-- The tenant registry. Platform code always names this table schema-qualified.
CREATE TABLE tenantflow.tenants (
  tenant_id    text PRIMARY KEY
               CHECK (tenant_id ~ '^[a-z][a-z0-9_]*$' AND length(tenant_id) <= 58 AND tenant_id NOT LIKE 'pg\_%'),
  name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  status       text NOT NULL DEFAULT 'active'
               CHECK (status IN ('provisioning', 'active', 'inactive', 'deprovisioning')),
  metadata     jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
  -- settings / features / limits, read by task code through ctx.tenant.config
  config       jsonb NOT NULL DEFAULT '{"settings": {}, "features": {}, "limits": {}}'::jsonb
               CHECK (jsonb_typeof(config) = 'object'),
  -- where the tenant role's credentials live (a Secrets Manager name or a local path); never the secret itself
  secret_ref   text,
  api_key_hash text,
  last_error   text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX tenants_status_idx ON tenantflow.tenants (status);
