export { configurableWorkflow } from './configurable-workflow.js';
export { reportPipelineWorkflow } from './report-pipeline.js';
export { exampleTables } from './tables.js';
export { tenantIsolationWorkflow } from './tenant-isolation.js';
