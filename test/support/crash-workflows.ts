/**
 * The workflows of the crash tests, loaded by the local server through TENANTFLOW_WORKFLOWS_MODULE.
 *
 * Every task of `crash_fanout` counts its runs in `crash_effects`, **in its own transaction**: a run
 * that committed counts once, a run that died before committing counts nothing. So after any crash
 * and recovery, every count must be exactly 1.
 */
import { defineTask } from '@tenantflow/shared/workflows/task';
import { defineWorkflow } from '@tenantflow/shared/workflows/workflow';
import { WorkflowRegistry } from '@tenantflow/shared/workflows/workflow-registry';

/** Exit code of the task that always crashes, to tell it from a failpoint (86). */
export const DOOMED_EXIT_CODE = 87;

const countRun = (ctx: { db: { query(text: string, values: unknown[]): Promise<unknown> } } & Ids) =>
  ctx.db.query(
    `INSERT INTO crash_effects (execution_id, task_id, runs) VALUES ($1, $2, 1)
     ON CONFLICT (execution_id, task_id) DO UPDATE SET runs = crash_effects.runs + 1`,
    [ctx.executionId, ctx.taskId],
  );
interface Ids {
  readonly executionId: string;
  readonly taskId: string;
}

const prepare = defineTask({
  id: 'prepare',
  run: async (ctx) => {
    await countRun(ctx);
    ctx.set('items', (ctx.input as { items: number[] }).items);
  },
});

function fan(id: string, factor: number) {
  return defineTask({
    id,
    run: async (ctx) => {
      await countRun(ctx);
      const items = ctx.get<number[]>('items') ?? [];
      ctx.set(
        id,
        items.reduce((sum, item) => sum + item * factor, 0),
      );
    },
  });
}

const merge = defineTask({
  id: 'merge',
  run: async (ctx) => {
    await countRun(ctx);
    ctx.set(
      'total',
      ['fan_a', 'fan_b', 'fan_c'].reduce((sum, key) => sum + (ctx.get<number>(key) ?? NaN), 0),
    );
  },
});

export const crashFanout = defineWorkflow({
  name: 'crash_fanout',
  description: 'prepare → fan_a | fan_b | fan_c → merge, each run counted in crash_effects',
  tasks: [prepare, fan('fan_a', 1), fan('fan_b', 10), fan('fan_c', 100), merge],
  dependsOn: {
    fan_a: ['prepare'],
    fan_b: ['prepare'],
    fan_c: ['prepare'],
    merge: ['fan_a', 'fan_b', 'fan_c'],
  },
});

export const crashDoomed = defineWorkflow({
  name: 'crash_doomed',
  description: 'a task that takes the whole process down, every time',
  tasks: [
    defineTask({
      id: 'explode',
      run: async () => {
        // Locally the recovery pass that redrove this execution runs in the same process and records
        // its action just after the redrive call returns; a task that exits at once can beat that
        // write on a loaded machine. In AWS the task runs in another Lambda, so give the record time.
        await new Promise((resolve) => setTimeout(resolve, 500));
        process.stderr.write('crash_doomed: taking the process down\n');
        process.exit(DOOMED_EXIT_CODE);
      },
    }),
  ],
});

export const workflows = new WorkflowRegistry([crashFanout, crashDoomed]);
