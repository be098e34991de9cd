import { defineTask } from '@tenantflow/shared/workflows/task';
import { defineWorkflow } from '@tenantflow/shared/workflows/workflow';
import { WorkflowRegistry } from '@tenantflow/shared/workflows/workflow-registry';
import { describe, expect, it } from 'vitest';
import { installedWorkflows } from '../../../workflows/index.js';
import { apiClient } from '../../support/http.js';
import { localPlatformSuite } from '../../support/local-platform-suite.js';
import { tenantIdSuffix } from '../../support/tenants.js';

/**
 * The tenant routes over HTTP on the local server: the REQUEST authorizer and its policy, the
 * handlers' validation and errors, and per-tenant config reaching the tasks.
 */

const ADMIN_TOKEN = 'test-admin-token-executions-0123456789';
const suffix = tenantIdSuffix();
const acme = `acme_${suffix}`;
const globex = `globex_${suffix}`;

/** A task that reports the config it was given, so the test can see what reached it. */
const echoConfig = defineTask({
  id: 'echo_config',
  run: (ctx) => {
    ctx.set('config', ctx.tenant.config);
  },
});
/** A task that waits until released, to hold executions `running` for the concurrency limit. */
let releaseHeld: () => void = () => {};
let held = new Promise<void>((resolve) => {
  releaseHeld = resolve;
});
const hold = defineTask({ id: 'hold', timeoutSeconds: 30, run: () => held });

/** With the examples, whose input schemas the tests below send good and bad inputs to. */
const workflows = new WorkflowRegistry([
  defineWorkflow({ name: 'echo', description: 'Echo the tenant config', tasks: [echoConfig] }),
  defineWorkflow({ name: 'hold', tasks: [hold] }),
]).include(installedWorkflows({ examples: true }));

const suite = localPlatformSuite({
  homePrefix: 'tenantflow-executions-api-',
  adminToken: ADMIN_TOKEN,
  workflows,
  tenants: [acme, globex].map((tenantId) => ({
    tenantId,
    config: { settings: { colour: 'blue' }, limits: { maxConcurrentExecutions: 2 } },
  })),
  tenantSuffix: suffix,
  beforeStop: () => releaseHeld(),
});
const admin: ReturnType<typeof apiClient> = (...args) => suite.admin(...args);
const asTenant = (tenantId: string) => suite.asTenant(tenantId);

async function finished(tenantId: string, executionId: string) {
  const call = asTenant(tenantId);
  for (let i = 0; i < 200; i++) {
    const response = await call('GET', `/tenants/${tenantId}/executions/${executionId}`);
    if (['succeeded', 'failed'].includes(response.body.status)) {
      return response.body;
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`execution ${executionId} did not finish`);
}

describe('executions API', () => {
  describe('authentication and tenant access', () => {
    it('answers 401 without credentials, with a malformed header, and with an unknown key', async () => {
      const call = apiClient(suite.local.url);
      const missing = await call('GET', `/tenants/${acme}/executions`);
      expect(missing.status).toBe(401);
      expect(missing.body.error).toMatchObject({
        code: 'UNAUTHENTICATED',
        message: expect.stringContaining('Bearer'),
      });
      const malformed = await fetch(`${suite.local.url}/tenants/${acme}/executions`, {
        headers: { authorization: `Basic ${suite.apiKey(acme)}` },
      });
      expect(malformed.status).toBe(401);
      const forged = `tfk_${acme}_${'A'.repeat(43)}`;
      expect((await call('GET', `/tenants/${acme}/executions`, { token: forged })).status).toBe(401);
    });

    it("answers 403 to a tenant's key on another tenant's routes, and reveals nothing of them", async () => {
      const acmeClient = asTenant(acme);
      for (const [method, path] of [
        ['GET', `/tenants/${globex}/executions`],
        ['GET', `/tenants/${globex}/metrics`],
        ['POST', `/tenants/${globex}/executions`],
      ] as const) {
        const response = await acmeClient(
          method,
          path,
          method === 'POST' ? { body: { workflow: 'echo', input: {} } } : {},
        );
        expect(response.status).toBe(403);
        expect(response.body.error.code).toBe('FORBIDDEN');
      }
      const globexExecutions = await asTenant(globex)('GET', `/tenants/${globex}/executions`);
      expect(globexExecutions.body.executions).toEqual([]);
    });

    it('refuses a tenant key on the admin routes', async () => {
      const response = await asTenant(acme)('GET', '/tenants');
      expect(response.status).toBe(401);
    });

    it('accepts the admin token on any tenant', async () => {
      expect((await admin('GET', `/tenants/${globex}/metrics`)).status).toBe(200);
    });
  });

  describe('workflows and executions', () => {
    it('lists the registered workflows with their tasks', async () => {
      const response = await asTenant(acme)('GET', '/workflows');
      expect(response.status).toBe(200);
      expect(response.body.workflows.map((w: { name: string }) => w.name)).toEqual(workflows.names());
      expect(response.body.workflows[0].tasks[0]).toMatchObject({ id: 'echo_config', dependsOn: [] });
    });

    it("passes the tenant's config to its tasks, and a PATCH reaches the next run", async () => {
      const call = asTenant(acme);
      const first = await call('POST', `/tenants/${acme}/executions`, { body: { workflow: 'echo' } });
      expect(first.status).toBe(202);
      expect(first.body).toMatchObject({ executionId: expect.any(String), status: expect.any(String) });
      expect((await finished(acme, first.body.executionId)).context.config).toEqual({
        settings: { colour: 'blue' },
        features: {},
        limits: { maxConcurrentExecutions: 2 },
      });

      const patched = await admin('PATCH', `/tenants/${acme}`, {
        body: { config: { settings: { colour: null, size: 'L' }, features: { beta: true } } },
      });
      expect(patched.status).toBe(200);
      const second = await call('POST', `/tenants/${acme}/executions`, {
        body: { workflow: 'echo', input: { n: 1 } },
      });
      expect((await finished(acme, second.body.executionId)).context.config).toEqual({
        settings: { size: 'L' },
        features: { beta: true },
        limits: { maxConcurrentExecutions: 2 },
      });
    });

    it('answers 400 for malformed bodies and ids, listing the reasons', async () => {
      const call = asTenant(acme);
      const notJson = await call('POST', `/tenants/${acme}/executions`, { rawBody: '{nope' });
      expect(notJson.status).toBe(400);
      const wrongShape = await call('POST', `/tenants/${acme}/executions`, {
        body: { input: 1, extra: true },
      });
      expect(wrongShape.status).toBe(400);
      expect(wrongShape.body.error.reasons).toEqual(
        expect.arrayContaining([expect.stringContaining('workflow'), expect.stringContaining('extra')]),
      );
      const badId = await call('GET', `/tenants/${acme}/executions/not-a-uuid`);
      expect(badId.status).toBe(400);
      const badQuery = await call('GET', `/tenants/${acme}/executions?limit=0&status=done`);
      expect(badQuery.status).toBe(400);
      expect(badQuery.body.error.reasons).toHaveLength(2);
      const badToken = await call('GET', `/tenants/${acme}/executions?nextToken=garbage`);
      expect(badToken.status).toBe(400);
      // Well-formed tokens whose position is not an execution id (a NUL used to reach PostgreSQL: 500).
      for (const after of ['\u0000', 'x'.repeat(5000), 42]) {
        const forged = Buffer.from(JSON.stringify({ after })).toString('base64url');
        const response = await call('GET', `/tenants/${acme}/executions?nextToken=${forged}`);
        expect(response.status, JSON.stringify(after).slice(0, 20)).toBe(400);
      }
    });

    it('answers 404 for an unknown workflow and an unknown execution', async () => {
      const call = asTenant(acme);
      const workflow = await call('POST', `/tenants/${acme}/executions`, { body: { workflow: 'nope' } });
      expect(workflow.status).toBe(404);
      expect(workflow.body.error).toMatchObject({
        code: 'WORKFLOW_NOT_FOUND',
        message: expect.stringContaining('echo'),
      });
      const execution = await call('GET', `/tenants/${acme}/executions/00000000-0000-4000-8000-000000000000`);
      expect(execution.status).toBe(404);
      expect(execution.body.error.code).toBe('EXECUTION_NOT_FOUND');
    });

    it("does not show one tenant's execution under another tenant's path, even to an admin", async () => {
      const started = await asTenant(acme)('POST', `/tenants/${acme}/executions`, {
        body: { workflow: 'echo' },
      });
      await finished(acme, started.body.executionId);
      const crossRead = await admin('GET', `/tenants/${globex}/executions/${started.body.executionId}`);
      expect(crossRead.status).toBe(404);
    });

    it('pages through executions newest first', async () => {
      const call = asTenant(globex);
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const started = await call('POST', `/tenants/${globex}/executions`, { body: { workflow: 'echo' } });
        await finished(globex, started.body.executionId);
        ids.push(started.body.executionId);
      }
      const first = await call('GET', `/tenants/${globex}/executions?limit=2&status=succeeded`);
      const second = await call(
        'GET',
        `/tenants/${globex}/executions?limit=2&status=succeeded&nextToken=${first.body.nextToken}`,
      );
      const seen = [...first.body.executions, ...second.body.executions].map(
        (e: { executionId: string }) => e.executionId,
      );
      expect(seen).toEqual([...ids].reverse());
      expect(second.body.nextToken).toBeUndefined();
    });
  });

  describe('input schemas', () => {
    /** What a tenant has on record: its executions, newest first, and its counters. */
    async function recorded(tenantId: string) {
      const call = asTenant(tenantId);
      const list = await call('GET', `/tenants/${tenantId}/executions?limit=100`);
      const metrics = await call('GET', `/tenants/${tenantId}/metrics`);
      expect([list.status, metrics.status]).toEqual([200, 200]);
      return {
        executionIds: list.body.executions.map((e: { executionId: string }) => e.executionId),
        inFlight: metrics.body.pending + metrics.body.running,
        finished: metrics.body.executionsFinished,
      };
    }

    it("answers 400 VALIDATION_FAILED with each issue's path, and records nothing", async () => {
      // Prepare
      const call = asTenant(acme);
      const before = await recorded(acme);

      // Act
      const items = await call('POST', `/tenants/${acme}/executions`, {
        body: { workflow: 'configurable_processing', input: { items: [1, 'two', 3] } },
      });
      const rows = await call('POST', `/tenants/${acme}/executions`, {
        body: { workflow: 'report_pipeline', input: { rows: [{ id: 7 }] } },
      });
      const notAnObject = await call('POST', `/tenants/${acme}/executions`, {
        body: { workflow: 'tenant_isolation', input: [1, 2, 3] },
      });

      // Assert
      expect([items.status, rows.status, notAnObject.status]).toEqual([400, 400, 400]);
      expect(items.body.error).toMatchObject({
        code: 'VALIDATION_FAILED',
        message: expect.stringContaining("'configurable_processing'"),
        reasons: ['input.items.1: expected number, received string'],
      });
      expect(rows.body.error.reasons).toEqual([
        'input.rows.0.id: expected string, received number',
        'input.rows.0.amount: expected number, received undefined',
        'input.destination: expected string, received undefined',
      ]);
      expect(notAnObject.body.error.reasons).toEqual(['input: expected object, received array']);
      expect(await recorded(acme)).toEqual(before);
    });

    it('accepts (202) an input its schema accepts, and records and runs it as the schema parsed it', async () => {
      const call = asTenant(acme);
      const before = await recorded(acme);

      const started = await call('POST', `/tenants/${acme}/executions`, {
        body: { workflow: 'configurable_processing', input: { items: [1, 2, 3], note: 'not declared' } },
      });

      expect(started.status).toBe(202);
      const execution = await finished(acme, started.body.executionId);
      expect(execution).toMatchObject({
        status: 'succeeded',
        input: { items: [1, 2, 3] },
        context: { requestedItems: 3, processedItems: 3, total: 6 },
      });
      expect(execution.input).not.toHaveProperty('note');
      const after = await recorded(acme);
      expect(after.executionIds).toEqual([started.body.executionId, ...before.executionIds]);
      expect(after.finished).toBe(before.finished + 1);
    });

    it('fills in what the schema defaults: an empty input runs with an empty list', async () => {
      const started = await asTenant(acme)('POST', `/tenants/${acme}/executions`, {
        body: { workflow: 'tenant_isolation' },
      });

      expect(started.status).toBe(202);
      expect(await finished(acme, started.body.executionId)).toMatchObject({
        status: 'succeeded',
        input: { values: [] },
        context: { summary: { count: 0, total: 0, mean: null } },
      });
    });

    it('keeps the older checks first: an unknown workflow is 404, an oversized input 413', async () => {
      const call = asTenant(acme);
      const unknown = await call('POST', `/tenants/${acme}/executions`, {
        body: { workflow: 'nope', input: { items: ['x'] } },
      });
      expect(unknown.status).toBe(404);
      expect(unknown.body.error.code).toBe('WORKFLOW_NOT_FOUND');

      await admin('PATCH', `/tenants/${acme}`, { body: { config: { limits: { maxInputBytes: 100 } } } });
      try {
        const oversized = await call('POST', `/tenants/${acme}/executions`, {
          body: { workflow: 'configurable_processing', input: { items: ['x'.repeat(200)] } },
        });
        expect(oversized.status).toBe(413);
        expect(oversized.body.error.code).toBe('PAYLOAD_TOO_LARGE');
      } finally {
        await admin('PATCH', `/tenants/${acme}`, { body: { config: { limits: { maxInputBytes: null } } } });
      }
    });

    it("shows each workflow's input as JSON Schema in GET /workflows, and {} without a schema", async () => {
      const response = await asTenant(acme)('GET', '/workflows');

      expect(response.status).toBe(200);
      const inputSchemas = Object.fromEntries(
        response.body.workflows.map((w: { name: string; inputSchema: unknown }) => [w.name, w.inputSchema]),
      );
      const draft = 'https://json-schema.org/draft/2020-12/schema';
      const numbers = { type: 'array', items: { type: 'number' }, default: [] };
      expect(inputSchemas).toEqual({
        echo: {},
        hold: {},
        tenant_isolation: { $schema: draft, type: 'object', properties: { values: numbers } },
        configurable_processing: { $schema: draft, type: 'object', properties: { items: numbers } },
        report_pipeline: {
          $schema: draft,
          type: 'object',
          properties: {
            rows: {
              type: 'array',
              default: [],
              items: {
                type: 'object',
                properties: { id: { type: 'string' }, amount: { type: 'number' } },
                required: ['id', 'amount'],
              },
            },
            destination: { type: 'string' },
          },
          required: ['destination'],
        },
      });
    });
  });

  describe('limits and tenant state', () => {
    it('answers 413 for an input over limits.maxInputBytes, and runs nothing', async () => {
      await admin('PATCH', `/tenants/${globex}`, { body: { config: { limits: { maxInputBytes: 100 } } } });
      const before = (await asTenant(globex)('GET', `/tenants/${globex}/metrics`)).body;
      const response = await asTenant(globex)('POST', `/tenants/${globex}/executions`, {
        body: { workflow: 'echo', input: { blob: 'x'.repeat(200) } },
      });
      expect(response.status).toBe(413);
      expect(response.body.error).toMatchObject({
        code: 'PAYLOAD_TOO_LARGE',
        message: expect.stringContaining('100'),
      });
      const after = (await asTenant(globex)('GET', `/tenants/${globex}/metrics`)).body;
      expect(after.pending + after.running).toBe(before.pending + before.running);
      await admin('PATCH', `/tenants/${globex}`, { body: { config: { limits: { maxInputBytes: null } } } });
    });

    it('answers 429 past limits.maxConcurrentExecutions, and accepts again once one finishes', async () => {
      const call = asTenant(acme);
      const accepted = [
        await call('POST', `/tenants/${acme}/executions`, { body: { workflow: 'hold' } }),
        await call('POST', `/tenants/${acme}/executions`, { body: { workflow: 'hold' } }),
      ];
      expect(accepted.map((r) => r.status)).toEqual([202, 202]);
      const refused = await call('POST', `/tenants/${acme}/executions`, { body: { workflow: 'echo' } });
      expect(refused.status).toBe(429);
      expect(refused.body.error).toMatchObject({
        code: 'LIMIT_EXCEEDED',
        message: expect.stringContaining('maxConcurrentExecutions = 2'),
      });
      releaseHeld();
      for (const response of accepted) {
        expect((await finished(acme, response.body.executionId)).status).toBe('succeeded');
      }
      held = Promise.resolve();
      expect((await call('POST', `/tenants/${acme}/executions`, { body: { workflow: 'echo' } })).status).toBe(
        202,
      );
    });

    it('answers 423 for an inactive tenant and starts nothing, but still lets it read', async () => {
      await admin('POST', `/tenants/${globex}/deactivate`);
      const call = asTenant(globex);
      const before = (await call('GET', `/tenants/${globex}/executions`)).body.executions.length;
      const response = await call('POST', `/tenants/${globex}/executions`, { body: { workflow: 'echo' } });
      expect(response.status).toBe(423);
      expect(response.body.error.code).toBe('TENANT_INACTIVE');
      expect((await call('GET', `/tenants/${globex}/executions`)).body.executions).toHaveLength(before);
      await admin('POST', `/tenants/${globex}/activate`);
    });
  });
});
