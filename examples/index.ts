export { configurableWorkflow } from './configurable-workflow.js';
export { reportPipelineWorkflow } from './report-pipeline.js';
export { tenantIsolationWorkflow } from './tenant-isolation.js';
