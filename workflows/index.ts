import { WorkflowRegistry } from '@tenantflow/shared/workflows/workflow-registry';
import { configurableWorkflow, reportPipelineWorkflow, tenantIsolationWorkflow } from '../examples/index.js';
import { examplesRegistered, type InstalledWorkflowsOptions, installedTenantMigrations } from './tables.js';

export type { InstalledWorkflowsOptions } from './tables.js';

/**
 * The workflows this installation runs, with the per-tenant tables they use (`tables.ts`). The
 * run-task Lambda looks tasks up here, the executions API accepts these names, CDK deploys one
 * state machine per entry, and provisioning and migrations create the tables in every tenant's
 * schema.
 *
 * Register your own workflows in the list below (docs/first-workflow.md shows how).
 */
export function installedWorkflows(options: InstalledWorkflowsOptions): WorkflowRegistry {
  return new WorkflowRegistry(
    [...(options.examples ? [tenantIsolationWorkflow, configurableWorkflow, reportPipelineWorkflow] : [])],
    { tenantMigrations: installedTenantMigrations(options) },
  );
}

/** The installation's workflows in this process: the examples unless `TENANTFLOW_EXAMPLES=off`. */
export const workflows = installedWorkflows(examplesRegistered());
