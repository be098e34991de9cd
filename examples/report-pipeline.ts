import { z } from '@tenantflow/shared/kernel/zod';
import { defineTask } from '@tenantflow/shared/workflows/task';
import { defineWorkflow } from '@tenantflow/shared/workflows/workflow';

/**
 * A multi-step DAG: `extract` fans out to three independent tasks that run in parallel, which
 * `publish` joins. It shows the failure semantics:
 * - `enrich` is flaky: it fails its first two attempts and succeeds on the third, within its retry
 *   policy (3 attempts);
 * - `publish` fails for good unless the input's `destination` is one of the tenant's
 *   `settings.allowedDestinations`; after its 2 attempts the execution is `failed`, and says which
 *   task failed and why.
 *
 * Input: `{ "rows": [{ "id": string, "amount": number }], "destination": string }` (no `rows`:
 * none).
 */
const reportInput = z.object({
  rows: z.array(z.object({ id: z.string(), amount: z.number() })).default([]),
  destination: z.string(),
});
type ReportInput = z.infer<typeof reportInput>;

const extract = defineTask<ReportInput>({
  id: 'extract',
  run: (ctx) => {
    ctx.set('extracted', ctx.input.rows.length);
  },
});

const clean = defineTask<ReportInput>({
  id: 'clean',
  run: (ctx) => {
    // Every row has an id and a numeric amount: the input schema refuses any other.
    ctx.set('cleanRows', ctx.input.rows.length);
  },
});

const enrich = defineTask({
  id: 'enrich',
  retry: { attempts: 3, intervalSeconds: 1, backoffRate: 2 },
  run: (ctx) => {
    if (ctx.attempt < 3) {
      throw new Error(`enrichment service unavailable (simulated outage, attempt ${ctx.attempt})`);
    }
    ctx.set('enrichedOnAttempt', ctx.attempt);
  },
});

const score = defineTask<ReportInput>({
  id: 'score',
  run: (ctx) => {
    ctx.set(
      'score',
      ctx.input.rows.reduce((sum, row) => sum + row.amount, 0),
    );
  },
});

const publish = defineTask<ReportInput>({
  id: 'publish',
  retry: { attempts: 2 },
  run: async (ctx) => {
    const { destination } = ctx.input;
    const allowed = ctx.tenant.config.settings.allowedDestinations;
    if (!Array.isArray(allowed) || !allowed.includes(destination)) {
      throw new Error(`destination '${destination}' is not in the tenant's settings.allowedDestinations`);
    }
    await ctx.db.query(
      'INSERT INTO example_results (execution_id, workflow, tenant_id, payload) VALUES ($1, $2, $3, $4)',
      [
        ctx.executionId,
        ctx.workflow,
        ctx.tenant.id,
        JSON.stringify({ destination, score: ctx.get('score') }),
      ],
    );
    ctx.set('publishedTo', destination);
  },
});

export const reportPipelineWorkflow = defineWorkflow({
  name: 'report_pipeline',
  description: 'Extract, then clean, enrich (flaky) and score in parallel, then publish',
  input: reportInput,
  tasks: [extract, clean, enrich, score, publish],
  dependsOn: {
    clean: ['extract'],
    enrich: ['extract'],
    score: ['extract'],
    publish: ['clean', 'enrich', 'score'],
  },
});
