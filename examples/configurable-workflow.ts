import { z } from '@tenantflow/shared/kernel/zod';
import { defineTask } from '@tenantflow/shared/workflows/task';
import { defineWorkflow } from '@tenantflow/shared/workflows/workflow';

/**
 * The configurable workflow (after DataFlow's per-tenant configuration example): one workflow,
 * whose behaviour each tenant's config decides. `limits.max_items_per_workflow` caps how many items
 * a run processes (premium 10000, standard 1000, basic 100 in the examples), and the limit applied
 * is recorded in the context. `features.detailed_report` adds a breakdown.
 *
 * Input: `{ "items": [numbers] }` (no `items`: none).
 */
const configurableInput = z.object({
  items: z.array(z.number()).default([]),
});
type ConfigurableInput = z.infer<typeof configurableInput>;

const prepareItems = defineTask<ConfigurableInput>({
  id: 'prepare_items',
  run: (ctx) => {
    ctx.set('requestedItems', ctx.input.items.length);
  },
});

const processItems = defineTask<ConfigurableInput>({
  id: 'process_items',
  run: async (ctx) => {
    const { items } = ctx.input;
    const limit = ctx.tenant.config.limits.max_items_per_workflow;
    const processed = limit === undefined ? items : items.slice(0, limit);
    const total = processed.reduce((sum, item) => sum + item, 0);
    ctx.set('processedItems', processed.length);
    ctx.set('limitApplied', {
      max_items_per_workflow: limit ?? null,
      truncated: processed.length < items.length,
      skippedItems: items.length - processed.length,
    });
    ctx.set('total', total);
    await ctx.db.query(
      'INSERT INTO example_results (execution_id, workflow, tenant_id, payload) VALUES ($1, $2, $3, $4)',
      [
        ctx.executionId,
        ctx.workflow,
        ctx.tenant.id,
        JSON.stringify({ processedItems: processed.length, total }),
      ],
    );
  },
});

const summarize = defineTask({
  id: 'summarize',
  run: (ctx) => {
    const processed = ctx.get<number>('processedItems') ?? 0;
    const requested = ctx.get<number>('requestedItems') ?? 0;
    ctx.set('summary', `${processed} of ${requested} items processed for ${ctx.tenant.name}`);
    if (ctx.tenant.config.features.detailed_report === true) {
      ctx.set('report', {
        processed,
        requested,
        total: ctx.get('total') ?? 0,
        tier: ctx.tenant.config.settings.tier ?? null,
      });
    }
  },
});

export const configurableWorkflow = defineWorkflow({
  name: 'configurable_processing',
  description: "Process items up to the tenant's limits.max_items_per_workflow",
  input: configurableInput,
  tasks: [prepareItems, processItems, summarize],
  dependsOn: { process_items: ['prepare_items'], summarize: ['process_items'] },
});
