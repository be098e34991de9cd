import { defineTenantMigrations } from '@tenantflow/shared/db/migrations';

/**
 * The table the example workflows write their results to, in every tenant's schema: created only
 * where the examples are registered. `IF NOT EXISTS` because tenants provisioned by earlier
 * versions already have it (the platform's own migrations created it then).
 */
export const exampleTables = defineTenantMigrations('examples', [
  {
    name: '0001_example_results',
    sql: `CREATE TABLE IF NOT EXISTS example_results (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  execution_id  text NOT NULL,
  workflow      text NOT NULL,
  -- Which tenant the task believed it was working for: the isolation test checks it never differs
  -- from the schema the row is in.
  tenant_id     text NOT NULL,
  payload       jsonb NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  UNIQUE (execution_id, workflow)
)`,
  },
]);
