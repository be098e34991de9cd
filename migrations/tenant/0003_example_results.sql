-- The table the example workflows (examples/) write their results to, in every tenant's schema.
-- An application's own per-tenant tables are added the same way: a numbered file in this folder,
-- with unqualified names, applied to every tenant by provisioning and `npm run migrate`.
CREATE TABLE example_results (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  execution_id  text NOT NULL,
  workflow      text NOT NULL,
  -- Which tenant the task believed it was working for: the isolation test checks it never differs
  -- from the schema the row is in.
  tenant_id     text NOT NULL,
  payload       jsonb NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  UNIQUE (execution_id, workflow)
);
