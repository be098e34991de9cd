/**
 * The workflows of the `faults` benchmark, loaded by the local server it starts through
 * TENANTFLOW_WORKFLOWS_MODULE. Each task of `fault_slow` takes a moment (so executions are in
 * flight when PostgreSQL is killed) and counts its committed runs in `fault_effects`, in the task's
 * own transaction: after any crash and recovery, every count must be exactly 1.
 */
import { defineTenantMigrations } from '@tenantflow/shared/db/migrations';
import { defineTask } from '@tenantflow/shared/workflows/task';
import { defineWorkflow } from '@tenantflow/shared/workflows/workflow';
import { WorkflowRegistry } from '@tenantflow/shared/workflows/workflow-registry';

/** How long each task works before it commits. */
export const FAULT_TASK_MS = 400;

const faultTables = defineTenantMigrations('fault_bench', [
  {
    name: '0001_fault_effects',
    sql: `CREATE TABLE fault_effects (
  execution_id text NOT NULL,
  task_id      text NOT NULL,
  runs         integer NOT NULL,
  PRIMARY KEY (execution_id, task_id)
)`,
  },
]);

const step = (id: string) =>
  defineTask({
    id,
    timeoutSeconds: 30,
    run: async (ctx) => {
      await new Promise((resolve) => setTimeout(resolve, FAULT_TASK_MS));
      await ctx.db.query(
        `INSERT INTO fault_effects (execution_id, task_id, runs) VALUES ($1, $2, 1)
         ON CONFLICT (execution_id, task_id) DO UPDATE SET runs = fault_effects.runs + 1`,
        [ctx.executionId, ctx.taskId],
      );
    },
  });

export const faultSlow = defineWorkflow({
  name: 'fault_slow',
  description: 'three slow tasks in a line, each committed run counted (bench/faults.bench.ts)',
  tasks: [step('first'), step('second'), step('third')],
  dependsOn: { second: ['first'], third: ['second'] },
});

export const workflows = new WorkflowRegistry([faultSlow], { tenantMigrations: [faultTables] });
