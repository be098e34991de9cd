import { z } from '@tenantflow/shared/kernel/zod';
import { defineTask } from '@tenantflow/shared/workflows/task';
import { defineWorkflow } from '@tenantflow/shared/workflows/workflow';

/**
 * The tenant isolation workflow (after Cloacina's multi-tenant tutorial): the same three tasks run
 * for any number of tenants, and each run reads and writes only its own tenant's schema, as that
 * tenant's database role. Nothing in the task code names a schema: PostgreSQL resolves
 * `example_results` to the tenant's own table and refuses every other tenant's.
 *
 * Input: `{ "values": [numbers] }` (no `values`: none).
 */
const isolationInput = z.object({
  values: z.array(z.number()).default([]),
});

const loadTenantProfile = defineTask({
  id: 'load_tenant_profile',
  run: (ctx) => {
    ctx.set('profile', {
      tenantId: ctx.tenant.id,
      name: ctx.tenant.name,
      plan: typeof ctx.tenant.metadata.plan === 'string' ? ctx.tenant.metadata.plan : 'standard',
    });
  },
});

const computeSummary = defineTask<z.infer<typeof isolationInput>>({
  id: 'compute_summary',
  run: (ctx) => {
    const { values } = ctx.input;
    const total = values.reduce((sum, value) => sum + value, 0);
    ctx.set('summary', {
      count: values.length,
      total,
      mean: values.length === 0 ? null : total / values.length,
    });
  },
});

const storeResult = defineTask({
  id: 'store_result',
  run: async (ctx) => {
    await ctx.db.query(
      'INSERT INTO example_results (execution_id, workflow, tenant_id, payload) VALUES ($1, $2, $3, $4)',
      [
        ctx.executionId,
        ctx.workflow,
        ctx.tenant.id,
        JSON.stringify({ profile: ctx.get('profile'), summary: ctx.get('summary') }),
      ],
    );
    // What this tenant's role can see: its own rows only, whatever other tenants stored.
    const { rows } = await ctx.db.query<{ tenants: string[]; rows: number }>(
      'SELECT array_agg(DISTINCT tenant_id) AS tenants, count(*)::int AS rows FROM example_results',
    );
    ctx.set('visibleResults', { tenants: rows[0]?.tenants ?? [], rows: rows[0]?.rows ?? 0 });
  },
});

export const tenantIsolationWorkflow = defineWorkflow({
  name: 'tenant_isolation',
  description: 'Profile, summarise and store per-tenant results, each in its own schema',
  input: isolationInput,
  tasks: [loadTenantProfile, computeSummary, storeResult],
  dependsOn: { compute_summary: ['load_tenant_profile'], store_result: ['compute_summary'] },
});
