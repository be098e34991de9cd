import type { TenantMigrationSet } from '@tenantflow/shared/db/migrations';
import { exampleTables } from '../examples/tables.js';

export interface InstalledWorkflowsOptions {
  /** Register the examples (`examples/`) and their table too. */
  readonly examples: boolean;
}

/**
 * Whether this process registers the examples: unless `TENANTFLOW_EXAMPLES=off`. On for
 * `npm start` and the tests; in AWS the deployment decides (`cdk deploy -c examples=true`, off by
 * default) and sets the variable on each function.
 */
export function examplesRegistered(env: NodeJS.ProcessEnv = process.env): InstalledWorkflowsOptions {
  return { examples: env.TENANTFLOW_EXAMPLES !== 'off' };
}

/**
 * The per-tenant tables of this installation's workflows, in the order they are applied after the
 * platform's. Add yours here (docs/first-workflow.md shows how). Kept apart from the workflows so
 * that the functions that only create tables (provisioning, migrations) do not load task code.
 */
export function installedTenantMigrations(options: InstalledWorkflowsOptions): TenantMigrationSet[] {
  return [...(options.examples ? [exampleTables] : [])];
}

/** The tables in this process. */
export const tenantMigrations = installedTenantMigrations(examplesRegistered());
