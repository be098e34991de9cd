import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tenantRoleName } from '@tenantflow/shared/provisioning/database-admin';
import { hashApiKey } from '@tenantflow/shared/tenancy/api-keys';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { type LocalPlatform, startLocalPlatform } from '../../../local/local-platform.js';
import { createTestDatabase } from '../../support/database.js';
import { failpointGate } from '../../support/failpoint-gate.js';
import { apiClient } from '../../support/http.js';
import { dropTenantRoles, tenantIdSuffix } from '../../support/tenants.js';

const ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';
const suffix = tenantIdSuffix();
const acme = `acme_${suffix}`;
const globex = `globex_${suffix}`;

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let home: string;
let local: LocalPlatform;
let api: ReturnType<typeof apiClient>;
/** Pauses an onboarding or offboarding where a test wants to look at it; passes through otherwise. */
const gate = failpointGate();

beforeAll(async () => {
  database = await createTestDatabase();
  home = await mkdtemp(join(tmpdir(), 'tenantflow-api-'));
  local = await startLocalPlatform({
    home,
    port: 0,
    databaseUrl: database.url,
    adminToken: ADMIN_TOKEN,
    adapters: { failpoints: gate.failpoints },
  });
  api = apiClient(local.url, ADMIN_TOKEN);
});

afterAll(async () => {
  await local?.stop();
  await database?.drop();
  await dropTenantRoles(inject('superuserUrl'), suffix);
  await rm(home, { recursive: true, force: true });
});

afterEach(() => {
  // A test that failed while it held a run must not leave it waiting forever.
  gate.releaseAll();
});

beforeEach(async () => {
  // The onboardings and offboardings a test started end first; then offboard for real, so each
  // test starts with no tenant, schema, role or secret.
  await waitForLifecycles();
  for (const tenant of await local.platform.registry.list()) {
    if (tenant.status === 'active') {
      await local.platform.tenantAdmin.deactivate(tenant.tenantId);
    }
    await local.platform.provisioning.deprovision(tenant.tenantId);
  }
});

/** Waits for every onboarding and offboarding the API started (the state machines run in-process). */
function waitForLifecycles(): Promise<void> {
  return local.platform.lifecycleOrchestrator.drain();
}

/** POST /tenants, answered 202, then waits for the onboarding: the tenant is active after this. */
async function registerTenant(body: { tenantId: string; name: string } & Record<string, unknown>) {
  const response = await api('POST', '/tenants', { body });
  expect(response.status).toBe(202);
  await waitForLifecycles();
  return response;
}

/** What the tenant owns in PostgreSQL: its schema and its login role. */
async function tenantObjects(tenantId: string): Promise<{ schemas: number; roles: number }> {
  const { rows } = await local.platform.pool.query<{ schemas: number; roles: number }>(
    `SELECT (SELECT count(*)::int FROM pg_namespace WHERE nspname = $1) AS schemas,
            (SELECT count(*)::int FROM pg_roles WHERE rolname = $2) AS roles`,
    [tenantId, tenantRoleName(tenantId)],
  );
  return rows[0] ?? { schemas: -1, roles: -1 };
}

describe('tenant admin API', () => {
  describe('authentication', () => {
    it('answers 401 without a bearer token, saying what to send', async () => {
      const response = await api('GET', '/tenants', { token: null });
      expect(response.status).toBe(401);
      expect(response.body.error).toMatchObject({
        code: 'UNAUTHENTICATED',
        message: expect.stringContaining('Bearer'),
      });
    });

    it('answers 401 for a wrong token and for a malformed Authorization header', async () => {
      expect((await api('GET', '/tenants', { token: 'not-the-admin-token' })).status).toBe(401);
      const malformed = await fetch(`${local.url}/tenants`, {
        headers: { authorization: `Basic ${ADMIN_TOKEN}` },
      });
      expect(malformed.status).toBe(401);
    });

    it('checks the token before touching the body or the registry', async () => {
      const response = await api('POST', '/tenants', {
        token: null,
        body: { tenantId: acme, name: 'Acme' },
      });
      expect(response.status).toBe(401);
      expect((await api('GET', '/tenants')).body.tenants).toEqual([]);
    });

    it('serves /health without a token', async () => {
      const response = await api('GET', '/health', { token: null });
      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({ status: 'ok', checks: { database: 'ok' } });
    });
  });

  describe('POST /tenants', () => {
    it('accepts a tenant: 202 with the tenant provisioning, its API key and its location', async () => {
      const response = await api('POST', '/tenants', {
        body: { tenantId: acme, name: 'Acme Corp', metadata: { plan: 'pro' } },
      });

      expect(response.status).toBe(202);
      expect(response.headers.get('location')).toBe(`tenants/${acme}`);
      expect(response.body.apiKey).toMatch(new RegExp(`^tfk_${acme}_[A-Za-z0-9_-]{43}$`));
      expect(response.body).toMatchObject({
        tenantId: acme,
        name: 'Acme Corp',
        active: false,
        status: 'provisioning',
        metadata: { plan: 'pro' },
      });
      expect(new Date(response.body.createdAt).toString()).not.toBe('Invalid Date');
      expect((await api('GET', `/tenants/${acme}`)).body.name).toBe('Acme Corp');
    });

    it('makes the tenant active once its onboarding ends, and its key then authenticates', async () => {
      const registered = await api('POST', '/tenants', { body: { tenantId: acme, name: 'Acme Corp' } });
      expect(registered.status).toBe(202);

      await waitForLifecycles();

      const tenant = await api('GET', `/tenants/${acme}`);
      expect(tenant.status).toBe(200);
      expect(tenant.body).toMatchObject({
        tenantId: acme,
        name: 'Acme Corp',
        active: true,
        status: 'active',
      });
      expect(tenant.body).not.toHaveProperty('currentStep');
      expect(tenant.body).not.toHaveProperty('lastError');
      expect(tenant.body).not.toHaveProperty('apiKey');
      expect(await tenantObjects(acme)).toEqual({ schemas: 1, roles: 1 });
      expect((await api('GET', `/tenants/${acme}/metrics`, { token: registered.body.apiKey })).status).toBe(
        200,
      );
    });

    it('shows the step under way while provisioning, and the key works only once active', async () => {
      const held = gate.hold('after-provisioning-step', { tenantId: acme, name: 'schema' });
      const registered = await api('POST', '/tenants', { body: { tenantId: acme, name: 'Acme' } });
      expect(registered.status).toBe(202);
      await held.reached;

      const during = await api('GET', `/tenants/${acme}`);
      const keyDuring = await api('GET', `/tenants/${acme}/metrics`, { token: registered.body.apiKey });
      held.release();
      await waitForLifecycles();

      expect(during.status).toBe(200);
      expect(during.body).toMatchObject({
        tenantId: acme,
        active: false,
        status: 'provisioning',
        currentStep: 'schema-and-role',
      });
      // Refused, as unauthenticated or as a tenant not active yet: either way not served (nor a 500).
      expect([401, 423]).toContain(keyDuring.status);
      expect(['UNAUTHENTICATED', 'TENANT_INACTIVE']).toContain(keyDuring.body.error?.code);
      const after = await api('GET', `/tenants/${acme}`);
      expect(after.body).toMatchObject({ status: 'active', active: true });
      expect(after.body).not.toHaveProperty('currentStep');
      expect((await api('GET', `/tenants/${acme}/metrics`, { token: registered.body.apiKey })).status).toBe(
        200,
      );
    });

    it('answers 409 for a repeat while provisioning, naming the status and step, and keeps the original', async () => {
      const held = gate.hold('after-provisioning-step', { tenantId: acme, name: 'schema' });
      const registered = await api('POST', '/tenants', { body: { tenantId: acme, name: 'Acme' } });
      expect(registered.status).toBe(202);
      await held.reached;

      const response = await api('POST', '/tenants', { body: { tenantId: acme, name: 'Impostor' } });
      held.release();
      await waitForLifecycles();

      expect(response.status).toBe(409);
      expect(response.body.error).toEqual({
        code: 'TENANT_ALREADY_EXISTS',
        message: `Tenant '${acme}' is already registered and is provisioning (step: schema-and-role); GET /tenants/${acme} shows its progress`,
      });
      expect(response.body).not.toHaveProperty('apiKey');
      const tenant = await api('GET', `/tenants/${acme}`);
      expect(tenant.body).toMatchObject({ name: 'Acme', status: 'active' });
      // The first key is the one that works: the refused repeat minted none.
      expect((await api('GET', `/tenants/${acme}/metrics`, { token: registered.body.apiKey })).status).toBe(
        200,
      );
    });

    it('answers 409 for a duplicate of an active tenant, naming its status, and keeps the original', async () => {
      await registerTenant({ tenantId: acme, name: 'Acme' });

      const response = await api('POST', '/tenants', { body: { tenantId: acme, name: 'Impostor' } });

      expect(response.status).toBe(409);
      expect(response.body.error).toEqual({
        code: 'TENANT_ALREADY_EXISTS',
        message: `Tenant '${acme}' is already registered and is active`,
      });
      expect((await api('GET', `/tenants/${acme}`)).body.name).toBe('Acme');
    });

    it('answers 400 listing every reason for a bad id and a bad name', async () => {
      const response = await api('POST', '/tenants', { body: { tenantId: 'pg_Bad-Id', name: '   ' } });

      expect(response.status).toBe(400);
      expect(response.body.error.code).toBe('VALIDATION_FAILED');
      expect(response.body.error.reasons).toEqual([
        expect.stringMatching(/^body\.tenantId: must start with a lowercase letter/),
        expect.stringMatching(/^body\.tenantId: must not start with 'pg_'/),
        expect.stringMatching(/^body\.name: must not be empty/),
      ]);
    });

    it.each([
      ['a malformed JSON body', '{"tenantId": "acme",', /not valid JSON/],
      ['an empty body', '', /a JSON body is required/],
      ['a JSON array', '[]', /body: /],
      ['unknown fields', '{"tenantId":"acme","name":"Acme","plan":"pro"}', /Unrecognized key/],
      [
        'metadata that is not an object',
        '{"tenantId":"acme","name":"Acme","metadata":[1]}',
        /body\.metadata/,
      ],
      [
        'an SQL-injection id',
        `{"tenantId":"acme'; DROP SCHEMA tenantflow CASCADE; --","name":"x"}`,
        /body\.tenantId/,
      ],
    ])('answers 400, never 500, for %s', async (_case, rawBody, message) => {
      const response = await api('POST', '/tenants', { rawBody });

      expect(response.status).toBe(400);
      expect(response.body.error.message).toMatch(message);
      expect((await api('GET', '/tenants')).body.tenants).toEqual([]);
    });

    it('answers 400 for metadata over 16 KiB', async () => {
      const response = await api('POST', '/tenants', {
        body: { tenantId: acme, name: 'Acme', metadata: { blob: 'x'.repeat(17 * 1024) } },
      });
      expect(response.status).toBe(400);
      expect(response.body.error.reasons).toEqual([
        expect.stringMatching(/body\.metadata: must be at most 16384 bytes/),
      ]);
    });
  });

  describe('reading tenants', () => {
    it('lists tenants ordered by id', async () => {
      await registerTenant({ tenantId: globex, name: 'Globex' });
      await registerTenant({ tenantId: acme, name: 'Acme' });

      const response = await api('GET', '/tenants');

      expect(response.status).toBe(200);
      expect(response.body.tenants.map((t: { tenantId: string }) => t.tenantId)).toEqual([acme, globex]);
    });

    it('answers 404 for an unknown tenant without revealing other tenants', async () => {
      await registerTenant({ tenantId: acme, name: 'Acme' });

      const response = await api('GET', `/tenants/${globex}`);

      expect(response.status).toBe(404);
      expect(response.body.error).toEqual({
        code: 'TENANT_NOT_FOUND',
        message: `Tenant '${globex}' is not registered`,
      });
    });

    it('answers 400 for an invalid id in the path', async () => {
      const response = await api('GET', '/tenants/Bad%20Id');
      expect(response.status).toBe(400);
      expect(response.body.error.reasons[0]).toMatch(/^path\.tenantId: /);
    });
  });

  describe('lifecycle', () => {
    it('deactivates, refuses to delete an active tenant, then deletes an inactive one', async () => {
      await registerTenant({ tenantId: acme, name: 'Acme' });

      const refused = await api('DELETE', `/tenants/${acme}`);
      expect(refused.status).toBe(409);
      expect(refused.body.error.message).toContain(`POST /tenants/${acme}/deactivate`);

      const deactivated = await api('POST', `/tenants/${acme}/deactivate`);
      expect(deactivated.status).toBe(200);
      expect(deactivated.body).toMatchObject({ active: false, status: 'inactive' });

      const reactivated = await api('POST', `/tenants/${acme}/activate`);
      expect(reactivated.body).toMatchObject({ active: true, status: 'active' });

      await api('POST', `/tenants/${acme}/deactivate`);
      const deleted = await api('DELETE', `/tenants/${acme}`);
      expect(deleted.status).toBe(202);
      expect(deleted.headers.get('location')).toBe(acme);
      expect(deleted.body).toMatchObject({ tenantId: acme, active: false, status: 'deprovisioning' });

      await waitForLifecycles();

      expect((await api('GET', `/tenants/${acme}`)).status).toBe(404);
      expect(await tenantObjects(acme)).toEqual({ schemas: 0, roles: 0 });
    });

    it('shows the step under way while deprovisioning, and the tenant is gone once offboarded', async () => {
      await registerTenant({ tenantId: acme, name: 'Acme' });
      await api('POST', `/tenants/${acme}/deactivate`);
      const held = gate.hold('after-provisioning-step', { tenantId: acme, name: 'terminate-sessions' });

      const deleted = await api('DELETE', `/tenants/${acme}`);
      expect(deleted.status).toBe(202);
      await held.reached;
      const during = await api('GET', `/tenants/${acme}`);
      held.release();
      await waitForLifecycles();

      expect(deleted.body).toMatchObject({ tenantId: acme, status: 'deprovisioning' });
      expect(during.status).toBe(200);
      expect(during.body).toMatchObject({
        tenantId: acme,
        active: false,
        status: 'deprovisioning',
        currentStep: 'schema-and-role',
      });
      const gone = await api('GET', `/tenants/${acme}`);
      expect(gone.status).toBe(404);
      expect(gone.body.error.code).toBe('TENANT_NOT_FOUND');
      expect(await tenantObjects(acme)).toEqual({ schemas: 0, roles: 0 });
    });

    it('answers 409 to deleting a tenant whose onboarding still runs, naming its step, and changes nothing', async () => {
      const held = gate.hold('after-provisioning-step', { tenantId: acme, name: 'schema' });
      expect((await api('POST', '/tenants', { body: { tenantId: acme, name: 'Acme' } })).status).toBe(202);
      await held.reached;

      const refused = await api('DELETE', `/tenants/${acme}`);
      held.release();
      await waitForLifecycles();

      expect(refused.status).toBe(409);
      expect(refused.body.error.code).toBe('TENANT_STATE_CONFLICT');
      expect(refused.body.error.message).toContain(
        `Tenant '${acme}' is still being onboarded (step: schema-and-role)`,
      );
      expect((await api('GET', `/tenants/${acme}`)).body).toMatchObject({ status: 'active' });
      expect(await tenantObjects(acme)).toEqual({ schemas: 1, roles: 1 });
    });

    it('answers 404 when activating, deactivating or deleting an unknown tenant', async () => {
      expect((await api('POST', '/tenants/nobody/activate')).status).toBe(404);
      expect((await api('POST', '/tenants/nobody/deactivate')).status).toBe(404);
      expect((await api('DELETE', '/tenants/nobody')).status).toBe(404);
    });
  });

  describe('PATCH /tenants/{tenantId}', () => {
    it('renames, and merge-patches metadata and config (null removes a key)', async () => {
      await registerTenant({
        tenantId: acme,
        name: 'Acme',
        metadata: { plan: 'gold', region: 'eu' },
        config: { settings: { colour: 'blue' }, limits: { maxConcurrentExecutions: 5 } },
      });
      const patched = await api('PATCH', `/tenants/${acme}`, {
        body: {
          name: 'Acme Corp',
          metadata: { region: null, tier: 2 },
          config: {
            settings: { size: 'L' },
            features: { beta: true },
            limits: { maxConcurrentExecutions: null },
          },
        },
      });
      expect(patched.status).toBe(200);
      expect(patched.body).toMatchObject({
        name: 'Acme Corp',
        metadata: { plan: 'gold', tier: 2 },
        config: { settings: { colour: 'blue', size: 'L' }, features: { beta: true }, limits: {} },
      });
      expect((await api('GET', `/tenants/${acme}`)).body).toEqual(patched.body);
    });

    it('answers 400 for an empty or invalid patch and 404 for an unknown tenant', async () => {
      await registerTenant({ tenantId: acme, name: 'Acme' });
      expect((await api('PATCH', `/tenants/${acme}`, { body: {} })).status).toBe(400);
      const badLimit = await api('PATCH', `/tenants/${acme}`, {
        body: { config: { limits: { maxConcurrentExecutions: 0 } } },
      });
      expect(badLimit.status).toBe(400);
      expect(badLimit.body.error.reasons).toEqual([
        expect.stringMatching(/^body\.config\.limits\.maxConcurrentExecutions: /),
      ]);
      expect((await api('PATCH', '/tenants/nobody', { body: { name: 'x' } })).status).toBe(404);
    });

    it('keeps the merged config within its size limit, however many patches arrive', async () => {
      await registerTenant({ tenantId: acme, name: 'Acme' });
      const chunk = 'x'.repeat(6000);
      expect(
        (await api('PATCH', `/tenants/${acme}`, { body: { config: { settings: { a: chunk } } } })).status,
      ).toBe(200);
      expect(
        (await api('PATCH', `/tenants/${acme}`, { body: { config: { settings: { b: chunk } } } })).status,
      ).toBe(200);
      const third = await api('PATCH', `/tenants/${acme}`, { body: { config: { settings: { c: chunk } } } });
      expect(third.status).toBe(400);
      expect(third.body.error.reasons[0]).toContain('16384');
      expect(Object.keys((await api('GET', `/tenants/${acme}`)).body.config.settings)).toEqual(['a', 'b']);
    });
  });

  describe('POST /tenants/{tenantId}/api-key', () => {
    const asKey = (key: string) => api('GET', `/tenants/${acme}/metrics`, { token: key });

    it('issues a new key once: 201, the new key authenticates and the old one gets 401', async () => {
      const registered = await registerTenant({ tenantId: acme, name: 'Acme' });
      const oldKey: string = registered.body.apiKey;
      expect((await asKey(oldKey)).status).toBe(200);

      const issued = await api('POST', `/tenants/${acme}/api-key`);

      expect(issued.status).toBe(201);
      expect(issued.headers.get('cache-control')).toBe('no-store');
      expect(Object.keys(issued.body).sort()).toEqual(['apiKey', 'issuedAt', 'tenantId']);
      expect(issued.body.tenantId).toBe(acme);
      expect(issued.body.apiKey).toMatch(new RegExp(`^tfk_${acme}_[A-Za-z0-9_-]{43}$`));
      expect(issued.body.apiKey).not.toBe(oldKey);
      expect(new Date(issued.body.issuedAt).toString()).not.toBe('Invalid Date');
      expect((await asKey(issued.body.apiKey)).status).toBe(200);
      const stale = await asKey(oldKey);
      expect(stale.status).toBe(401);
      expect(stale.body.error.code).toBe('UNAUTHENTICATED');
      expect((await api('GET', `/tenants/${acme}`)).body).not.toHaveProperty('apiKey');
    });

    it('issues a key for an inactive tenant and leaves it inactive', async () => {
      await registerTenant({ tenantId: acme, name: 'Acme' });
      await api('POST', `/tenants/${acme}/deactivate`);

      const issued = await api('POST', `/tenants/${acme}/api-key`);

      expect(issued.status).toBe(201);
      expect((await api('GET', `/tenants/${acme}`)).body.status).toBe('inactive');
    });

    it('answers 404 for an unknown tenant and 400 for an invalid id', async () => {
      const unknown = await api('POST', `/tenants/${globex}/api-key`);
      expect(unknown.status).toBe(404);
      expect(unknown.body.error).toEqual({
        code: 'TENANT_NOT_FOUND',
        message: `Tenant '${globex}' is not registered`,
      });
      const invalid = await api('POST', '/tenants/Bad%20Id/api-key');
      expect(invalid.status).toBe(400);
      expect(invalid.body.error.reasons[0]).toMatch(/^path\.tenantId: /);
    });

    it('answers 401 to a tenant key or no token, and keeps the current key', async () => {
      const registered = await registerTenant({ tenantId: acme, name: 'Acme' });
      const key: string = registered.body.apiKey;

      const asTenant = await api('POST', `/tenants/${acme}/api-key`, { token: key });
      const anonymous = await api('POST', `/tenants/${acme}/api-key`, { token: null });

      expect(asTenant.status).toBe(401);
      expect(asTenant.body.error.code).toBe('UNAUTHENTICATED');
      expect(asTenant.body).not.toHaveProperty('apiKey');
      expect(anonymous.status).toBe(401);
      expect((await asKey(key)).status).toBe(200);
    });

    it('answers 409 for a tenant still provisioning, saying its key works once active, and keeps that key', async () => {
      const held = gate.hold('after-provisioning-step', { tenantId: acme, name: 'schema' });
      const registered = await api('POST', '/tenants', { body: { tenantId: acme, name: 'Acme' } });
      expect(registered.status).toBe(202);
      await held.reached;

      const refused = await api('POST', `/tenants/${acme}/api-key`);
      const { rows } = await local.platform.pool.query<{ api_key_hash: string | null }>(
        `SELECT api_key_hash FROM "tenantflow"."tenants" WHERE tenant_id = $1`,
        [acme],
      );
      held.release();
      await waitForLifecycles();

      expect(refused.status).toBe(409);
      expect(refused.body.error.code).toBe('TENANT_STATE_CONFLICT');
      expect(refused.body.error.message).toMatch(
        /still provisioning; the key returned by POST \/tenants works once it is active/,
      );
      expect(refused.body).not.toHaveProperty('apiKey');
      // Only the hash of the key minted at registration is stored: the refusal stored none.
      expect(rows).toEqual([{ api_key_hash: hashApiKey(registered.body.apiKey) }]);
      expect((await asKey(registered.body.apiKey)).status).toBe(200);
    });
  });

  describe('routing', () => {
    it('answers 404 for an unknown route and 405 for a wrong method', async () => {
      expect((await api('GET', '/nope')).status).toBe(404);
      const wrongMethod = await api('PUT', '/tenants');
      expect(wrongMethod.status).toBe(405);
      expect(wrongMethod.headers.get('allow')).toBe('POST, GET');
    });
  });
});
