import { defineTenantMigrations } from '@tenantflow/shared/db/migrations';
import { z } from '@tenantflow/shared/kernel/zod';
import { defineTask } from '@tenantflow/shared/workflows/task';
import { defineWorkflow } from '@tenantflow/shared/workflows/workflow';
import { WorkflowRegistry } from '@tenantflow/shared/workflows/workflow-registry';

/**
 * The table these workflows use, created in every tenant's schema: by provisioning for a new
 * tenant, and by `npm run migrate` (or `npm start`) for the existing ones. Names are unqualified:
 * each tenant gets its own `orders`. Never edit an applied migration; add `0002_…` instead.
 */
export const ordersTables = defineTenantMigrations('orders', [
  {
    name: '0001_orders',
    sql: `CREATE TABLE orders (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  customer    text NOT NULL,
  total_cents integer NOT NULL CHECK (total_cents > 0),
  created_at  timestamptz NOT NULL DEFAULT now()
)`,
  },
]);

/**
 * The execution's input: `{ "customer": "ada", "totalCents": 1250 }`. The executions API refuses
 * (400) an input this schema does not accept, before anything is recorded or run.
 */
const orderInput = z.object({
  customer: z.string().min(1, 'must not be empty'),
  totalCents: z.number().int('must be a whole number of cents').positive('must be above 0'),
});
/** What `ctx.input` is in the tasks below: `{ customer: string; totalCents: number }`. */
type OrderInput = z.infer<typeof orderInput>;

/** Writes the order to the tenant's own `orders` table, as the tenant's own database role. */
const recordOrder = defineTask<OrderInput>({
  id: 'record_order',
  run: async (ctx) => {
    const { customer, totalCents } = ctx.input;
    const { rows } = await ctx.db.query<{ id: string }>(
      'INSERT INTO orders (customer, total_cents) VALUES ($1, $2) RETURNING id',
      [customer, totalCents],
    );
    // A bigint comes back from PostgreSQL as a string: a JavaScript number cannot hold them all.
    ctx.set('orderId', rows[0]?.id);
  },
});

/** Reads the tenant's orders back: how many there are, what they add up to, how many are this customer's. */
const summarizeOrders = defineTask<OrderInput>({
  id: 'summarize_orders',
  run: async (ctx) => {
    const { customer } = ctx.input;
    const { rows } = await ctx.db.query<{ orders: number; revenue_cents: number; customer_orders: number }>(
      `SELECT count(*)::int AS orders,
              coalesce(sum(total_cents), 0)::int AS revenue_cents,
              (count(*) FILTER (WHERE customer = $1))::int AS customer_orders
         FROM orders`,
      [customer],
    );
    const totals = rows[0];
    ctx.set('summary', {
      orders: totals?.orders ?? 0,
      revenueCents: totals?.revenue_cents ?? 0,
      customerOrders: totals?.customer_orders ?? 0,
    });
  },
});

/** Record the order, then sum up: `summarize_orders` runs after `record_order` has committed. */
export const takeOrderWorkflow = defineWorkflow({
  name: 'take_order',
  description: "Record an order in the tenant's orders table, then sum up the tenant's orders",
  input: orderInput,
  tasks: [recordOrder, summarizeOrders],
  dependsOn: { summarize_orders: ['record_order'] },
});

/** What `TENANTFLOW_WORKFLOWS_MODULE` loads: the workflows, with the tables they use. */
export const workflows = new WorkflowRegistry([takeOrderWorkflow], { tenantMigrations: [ordersTables] });
