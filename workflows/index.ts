import { configurableWorkflow, reportPipelineWorkflow, tenantIsolationWorkflow } from '../examples/index.js';
import { WorkflowRegistry } from '../shared/workflows/workflow-registry.js';

/**
 * The workflows this installation runs. The run-task Lambda looks tasks up here, the executions
 * API accepts these names, and CDK deploys one state machine per entry.
 *
 * Register your own workflows here; the examples can be removed (with their table, in
 * `migrations/tenant/0003_example_results.sql`, if you have not deployed it yet).
 */
export const workflows = new WorkflowRegistry([
  tenantIsolationWorkflow,
  configurableWorkflow,
  reportPipelineWorkflow,
]);
