import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killTenantflow, type StartedTenantflow, startTenantflow } from '../../local/tenantflow-process.js';
import { type ApiResponse, apiClient } from '../support/http.js';
import { waitForTenant } from '../support/onboarding.js';

/**
 * The examples, end to end: `npm start`'s entry point in its own process, with its own embedded
 * PostgreSQL (so the tenant ids can be exactly the examples'), driven over HTTP by three tenants'
 * own clients at once.
 */

const ADMIN_TOKEN = 'e2e-admin-token-workflows-0123456789';
const TENANTS = [
  { tenantId: 'premium_client', maxItems: 10_000, items: 5000, expected: 5000 },
  { tenantId: 'standard_client', maxItems: 1000, items: 1500, expected: 1000 },
  { tenantId: 'basic_client', maxItems: 100, items: 200, expected: 100 },
] as const;
const PREMIUM_DESTINATION = 's3://premium-reports';
const FINAL = new Set(['succeeded', 'failed', 'aborted']);

let home: string;
let started: StartedTenantflow;
const keys = new Map<string, string>();

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'tenantflow-e2e-workflows-'));
  await chmod(home, 0o755);
  started = await startTenantflow(home, { TENANTFLOW_ADMIN_TOKEN: ADMIN_TOKEN });
}, 60_000);

afterAll(async () => {
  await killTenantflow(home);
  await rm(home, { recursive: true, force: true });
});

/** As the platform's own superuser: reads every schema, to prove what each one holds. */
async function asAdmin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const secrets = JSON.parse(await readFile(join(home, 'local-secrets.json'), 'utf8')) as {
    postgresPassword: string;
    postgresPort: number;
  };
  const client = new pg.Client({
    host: '127.0.0.1',
    port: secrets.postgresPort,
    user: 'postgres',
    password: secrets.postgresPassword,
    database: 'postgres',
  });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** The execution as `GET /tenants/{id}/executions/{executionId}` returns it (the parts asserted here). */
interface ExecutionBody {
  readonly tenantId: string;
  readonly status: string;
  readonly error: string | null;
  // biome-ignore lint/suspicious/noExplicitAny: the context is whatever the example tasks set.
  readonly context: Record<string, any>;
  readonly tasks: readonly { taskId: string; status: string; attempt: number }[];
}

async function untilFinal(
  call: ReturnType<typeof apiClient>,
  path: string,
): Promise<ApiResponse<ExecutionBody>> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const response = await call<ExecutionBody>('GET', path);
    if (response.status !== 200 || FINAL.has(response.body.status) || Date.now() > deadline) {
      return response;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('example workflows over HTTP, three tenants at once', () => {
  it('runs the examples for three tenants concurrently, each on its own schema', async () => {
    const admin = apiClient(started.url, ADMIN_TOKEN);
    for (const tenant of TENANTS) {
      const created = await admin('POST', '/tenants', {
        body: {
          tenantId: tenant.tenantId,
          name: tenant.tenantId.replace('_', ' '),
          metadata: { plan: tenant.tenantId.split('_')[0] },
          config: {
            limits: { max_items_per_workflow: tenant.maxItems },
            settings: {
              allowedDestinations: tenant.tenantId === 'premium_client' ? [PREMIUM_DESTINATION] : [],
            },
            features: { detailed_report: tenant.tenantId === 'premium_client' },
          },
        },
      });
      expect(created.status).toBe(202);
      keys.set(tenant.tenantId, created.body.apiKey);
    }
    for (const tenant of TENANTS) {
      await waitForTenant(admin, tenant.tenantId, 'active');
    }

    // Each tenant's client starts all three examples; all nine run at once.
    const runs = await Promise.all(
      TENANTS.flatMap((tenant) => {
        const call = apiClient(started.url, keys.get(tenant.tenantId));
        const start = async (workflow: string, input: unknown) => {
          const response = await call('POST', `/tenants/${tenant.tenantId}/executions`, {
            body: { workflow, input },
          });
          expect(response.status).toBe(202);
          return { tenant, workflow, executionId: response.body.executionId as string, call };
        };
        return [
          start('tenant_isolation', { values: [1, 2, 3, tenant.maxItems] }),
          start('configurable_processing', { items: Array.from({ length: tenant.items }, (_, i) => i % 7) }),
          start('report_pipeline', { rows: [{ id: 'r1', amount: 5 }], destination: PREMIUM_DESTINATION }),
        ];
      }),
    );
    const finals = await Promise.all(
      runs.map(async (run) => ({
        ...run,
        view: (await untilFinal(run.call, `/tenants/${run.tenant.tenantId}/executions/${run.executionId}`))
          .body,
      })),
    );

    for (const { tenant, workflow, view } of finals) {
      expect(view.tenantId).toBe(tenant.tenantId);
      if (workflow === 'tenant_isolation') {
        expect(view.status).toBe('succeeded');
        expect(view.context.profile).toMatchObject({
          tenantId: tenant.tenantId,
          plan: tenant.tenantId.split('_')[0],
        });
        expect(view.context.summary).toMatchObject({ count: 4, total: 6 + tenant.maxItems });
        // What the tenant's own role could see of the results table: its own rows, nobody else's.
        expect(view.context.visibleResults.tenants).toEqual([tenant.tenantId]);
      }
      if (workflow === 'configurable_processing') {
        expect(view.status).toBe('succeeded');
        expect(view.context.requestedItems).toBe(tenant.items);
        expect(view.context.processedItems).toBe(tenant.expected);
        expect(view.context.limitApplied).toMatchObject({
          max_items_per_workflow: tenant.maxItems,
          truncated: tenant.items > tenant.maxItems,
        });
        expect('report' in view.context).toBe(tenant.tenantId === 'premium_client');
      }
      if (workflow === 'report_pipeline') {
        const enrich = view.tasks.find((task) => task.taskId === 'enrich');
        expect(enrich).toMatchObject({ status: 'succeeded', attempt: 3 });
        if (tenant.tenantId === 'premium_client') {
          expect(view.status).toBe('succeeded');
          expect(view.context.publishedTo).toBe(PREMIUM_DESTINATION);
        } else {
          expect(view.status).toBe('failed');
          expect(view.error).toBe(
            `Task 'publish' failed after 2 attempt(s): destination '${PREMIUM_DESTINATION}' is not in the tenant's settings.allowedDestinations`,
          );
          expect(view.tasks.find((task) => task.taskId === 'publish')).toMatchObject({
            status: 'failed',
            attempt: 2,
          });
        }
      }
    }

    // Each schema holds its own tenant's executions and results, and nothing of the others'.
    await asAdmin(async (client) => {
      for (const tenant of TENANTS) {
        const schema = tenant.tenantId;
        const executions = await client.query<{ id: string }>(
          `SELECT id FROM "${schema}".executions ORDER BY id`,
        );
        const expectedIds = finals
          .filter((run) => run.tenant.tenantId === schema)
          .map((run) => run.executionId)
          .sort();
        expect(executions.rows.map((row) => row.id)).toEqual(expectedIds);
        const results = await client.query<{ tenant_id: string; count: number }>(
          `SELECT tenant_id, count(*)::int AS count FROM "${schema}".example_results GROUP BY tenant_id`,
        );
        const published = schema === 'premium_client' ? 1 : 0;
        expect(results.rows).toEqual([{ tenant_id: schema, count: 2 + published }]);
      }
    });

    // Counters per tenant: three finished executions each.
    for (const tenant of TENANTS) {
      const metrics = await apiClient(started.url, keys.get(tenant.tenantId))(
        'GET',
        `/tenants/${tenant.tenantId}/metrics`,
      );
      expect(metrics.body).toMatchObject({
        executionsFinished: 3,
        executionsFailed: tenant.tenantId === 'premium_client' ? 0 : 1,
        running: 0,
        pending: 0,
      });
    }
  }, 120_000);

  it("refuses an input an example's schema does not accept, and records nothing", async () => {
    // Prepare: the tenants of the first test, and what basic_client's schema holds.
    const call = apiClient(started.url, keys.get('basic_client'));
    const count = () =>
      asAdmin(async (client) => {
        const { rows } = await client.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM basic_client.executions',
        );
        return rows[0]?.n;
      });
    const before = await count();

    // Act
    const response = await call('POST', '/tenants/basic_client/executions', {
      body: { workflow: 'report_pipeline', input: { rows: [{ id: 'r1', amount: '5' }] } },
    });

    // Assert
    expect(before).toBe(3);
    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({
      code: 'VALIDATION_FAILED',
      reasons: [
        'input.rows.0.amount: expected number, received string',
        'input.destination: expected string, received undefined',
      ],
    });
    expect(await count()).toBe(before);
    const listed = await call('GET', '/workflows');
    for (const name of ['tenant_isolation', 'configurable_processing', 'report_pipeline']) {
      const workflow = listed.body.workflows.find((w: { name: string }) => w.name === name);
      expect(workflow?.inputSchema, name).toMatchObject({ type: 'object', properties: expect.any(Object) });
    }
  });

  it("refuses one tenant's key on another tenant's executions", async () => {
    const premium = apiClient(started.url, keys.get('premium_client'));
    const response = await premium('GET', '/tenants/basic_client/executions');
    expect(response.status).toBe(403);
    expect(response.body.error.code).toBe('FORBIDDEN');
    const start = await premium('POST', '/tenants/basic_client/executions', {
      body: { workflow: 'tenant_isolation', input: {} },
    });
    expect(start.status).toBe(403);
  });
});
