import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tenantTable } from '@tenantflow/shared/db/sql';
import { tenantRoleName } from '@tenantflow/shared/provisioning/database-admin';
import { hashApiKey } from '@tenantflow/shared/tenancy/api-keys';
import { ExecutionStore } from '@tenantflow/shared/workflows/execution-store';
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
/** Ids whose first letters order them the same under any collation. */
const fleet = ['alpha', 'bravo', 'charlie', 'delta', 'echo'].map((base) => `${base}_${suffix}`);

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let home: string;
let local: LocalPlatform;
let api: ReturnType<typeof apiClient>;
/** Pauses an onboarding or offboarding where a test wants to look at it; passes through otherwise. */
const gate = failpointGate();

/** The authorizer's key cache, kept short here so the test of a replaced key waits for it. */
const AUTHORIZER_CACHE_SECONDS = 1;

beforeAll(async () => {
  process.env.TENANTFLOW_AUTHORIZER_CACHE_SECONDS = String(AUTHORIZER_CACHE_SECONDS);
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

  describe('GET /tenants, a page at a time', () => {
    type TenantsPage = { tenants: { tenantId: string; status: string }[]; nextToken?: string };

    /** Every page of `query`, following nextToken, each answered 200 (at most 10 pages). */
    async function allPages(query: string): Promise<string[][]> {
      const pages: string[][] = [];
      let nextToken: string | undefined;
      do {
        const token = nextToken === undefined ? '' : `&nextToken=${encodeURIComponent(nextToken)}`;
        const response = await api<TenantsPage>('GET', `/tenants?${query}${token}`);
        expect(response.status).toBe(200);
        pages.push(response.body.tenants.map((tenant) => tenant.tenantId));
        nextToken = response.body.nextToken;
      } while (nextToken !== undefined && pages.length < 10);
      return pages;
    }

    /** Registers the whole fleet (POSTs first, then one wait for every onboarding). */
    async function registerFleet(): Promise<void> {
      for (const tenantId of [...fleet].reverse()) {
        expect((await api('POST', '/tenants', { body: { tenantId, name: tenantId } })).status).toBe(202);
      }
      await waitForLifecycles();
    }

    it('pages through every tenant in id order with a small limit: no duplicates, no gaps', async () => {
      await registerFleet();

      const pages = await allPages('limit=2');

      expect(pages).toEqual([fleet.slice(0, 2), fleet.slice(2, 4), fleet.slice(4)]);
      expect(new Set(pages.flat()).size).toBe(fleet.length);
    });

    it('answers the first 50 and no token when no limit is given and all fit', async () => {
      await registerFleet();

      const response = await api<TenantsPage>('GET', '/tenants');

      expect(response.status).toBe(200);
      expect(response.body.tenants.map((tenant) => tenant.tenantId)).toEqual(fleet);
      expect(response.body).not.toHaveProperty('nextToken');
    });

    it('filters by status, paging within the filter', async () => {
      await registerFleet();
      const [alpha, bravo, charlie, delta, echo] = fleet as [string, string, string, string, string];
      for (const tenantId of [bravo, delta]) {
        expect((await api('POST', `/tenants/${tenantId}/deactivate`)).status).toBe(200);
      }

      const inactive = await allPages('status=inactive&limit=1');
      const active = await allPages('status=active&limit=2');
      const provisioning = await api<TenantsPage>('GET', '/tenants?status=provisioning');

      expect(inactive).toEqual([[bravo], [delta]]);
      expect(active).toEqual([[alpha, charlie], [echo]]);
      expect(provisioning.status).toBe(200);
      expect(provisioning.body).toEqual({ tenants: [] });
      const statuses = (await api<TenantsPage>('GET', '/tenants?status=inactive')).body.tenants.map(
        (tenant) => tenant.status,
      );
      expect(statuses).toEqual(['inactive', 'inactive']);
    });

    it('continues after a tenant removed between two pages, skipping nobody', async () => {
      await registerFleet();
      const [, bravo, charlie, delta] = fleet as [string, string, string, string, string];
      const first = await api<TenantsPage>('GET', '/tenants?limit=2');
      expect(first.body.tenants.map((tenant) => tenant.tenantId).at(-1)).toBe(bravo);
      await api('POST', `/tenants/${bravo}/deactivate`);
      expect((await api('DELETE', `/tenants/${bravo}`)).status).toBe(202);
      await waitForLifecycles();

      const second = await api<TenantsPage>('GET', `/tenants?limit=2&nextToken=${first.body.nextToken}`);

      expect(second.status).toBe(200);
      expect(second.body.tenants.map((tenant) => tenant.tenantId)).toEqual([charlie, delta]);
    });

    it.each([
      ['a limit of 0', 'limit=0', /^query\.limit: /],
      ['a limit over 100', 'limit=101', /^query\.limit: /],
      ['a limit that is not a whole number', 'limit=2.5', /^query\.limit: must be a whole number/],
      ['a limit that is not a number', 'limit=ten', /^query\.limit: /],
      ['an unknown status', 'status=deleted', /^query\.status: must be one of provisioning, active/],
      ['a token this API did not hand out', 'nextToken=garbage', /^query\.nextToken: is not a token/],
      [
        'a forged token with no tenant id in it',
        `nextToken=${Buffer.from('{"after":"Robert\'); DROP TABLE"}').toString('base64url')}`,
        /^query\.nextToken: is not a token this API returned$/,
      ],
      ['an unknown parameter', 'offset=10', /^query: Unrecognized key/],
    ])('answers 400 VALIDATION_FAILED for %s', async (_case, query, reason) => {
      const response = await api('GET', `/tenants?${query}`);

      expect(response.status).toBe(400);
      expect(response.body.error.code).toBe('VALIDATION_FAILED');
      expect(response.body.error.reasons).toEqual([expect.stringMatching(reason)]);
    });

    it('lists every reason at once', async () => {
      const response = await api('GET', '/tenants?limit=0&status=gone&nextToken=garbage');

      expect(response.status).toBe(400);
      expect(response.body.error.reasons).toEqual([
        expect.stringMatching(/^query\.status: /),
        expect.stringMatching(/^query\.limit: /),
        expect.stringMatching(/^query\.nextToken: /),
      ]);
    });
  });

  describe('GET /recovery-events', () => {
    type RecoveryEventsPage = {
      events: {
        id: string;
        runId: string;
        occurredAt: string;
        tenantId: string;
        targetType: string;
        targetId: string;
        finding: string;
        action: string;
        outcome: string;
        detail?: string;
      }[];
      nextToken?: string;
    };

    /**
     * Executions left pending for an hour, of a workflow this installation does not deploy: the
     * next recovery pass abandons each one, and records it.
     */
    async function strandExecutions(tenantId: string, count: number): Promise<string[]> {
      const store = new ExecutionStore(local.platform.pool);
      const ids: string[] = [];
      for (let i = 0; i < count; i++) {
        const { executionId } = await store.insertWithinLimit(
          tenantId,
          { executionId: crypto.randomUUID(), workflow: 'retired_workflow', input: {} },
          100,
        );
        ids.push(executionId);
      }
      await local.platform.pool.query(
        `UPDATE ${tenantTable(tenantId, 'executions')} SET updated_at = now() - interval '1 hour'`,
      );
      return ids;
    }

    /** Every page of `query`, following nextToken, each answered 200 (at most 20 pages). */
    async function allPages(query: string): Promise<RecoveryEventsPage['events'][]> {
      const pages: RecoveryEventsPage['events'][] = [];
      let nextToken: string | undefined;
      do {
        const token = nextToken === undefined ? '' : `&nextToken=${encodeURIComponent(nextToken)}`;
        const response = await api<RecoveryEventsPage>('GET', `/recovery-events?${query}${token}`);
        expect(response.status).toBe(200);
        pages.push(response.body.events);
        nextToken = response.body.nextToken;
      } while (nextToken !== undefined && pages.length < 20);
      return pages;
    }

    /**
     * Newest first: times never increase. Events within one millisecond are ordered by their
     * microsecond time (then id), which the API's millisecond timestamps cannot show, so ties are
     * not judged here; that no event is repeated or skipped across pages is asserted separately.
     */
    function expectNewestFirst(events: RecoveryEventsPage['events']): void {
      for (let i = 1; i < events.length; i++) {
        const [before, after] = [events[i - 1], events[i]] as [
          RecoveryEventsPage['events'][number],
          RecoveryEventsPage['events'][number],
        ];
        const [earlier, later] = [Date.parse(after.occurredAt), Date.parse(before.occurredAt)];
        expect(earlier, `${after.id} after ${before.id}`).toBeLessThanOrEqual(later);
      }
    }

    it('shows what a real recovery pass did, newest first, filtered by tenant and paged', async () => {
      // Prepare
      await registerTenant({ tenantId: acme, name: 'Acme' });
      await registerTenant({ tenantId: globex, name: 'Globex' });
      const acmeExecutions = await strandExecutions(acme, 3);
      const globexExecutions = await strandExecutions(globex, 2);

      // Act
      await local.recover();
      const acmePages = await allPages(`tenantId=${acme}&limit=2`);
      const globexPages = await allPages(`tenantId=${globex}&limit=2`);

      // Assert
      expect(acmePages.map((page) => page.length)).toEqual([2, 1]);
      const acmeEvents = acmePages.flat();
      expect(acmeEvents.map((event) => event.targetId).sort()).toEqual([...acmeExecutions].sort());
      expect(new Set(acmeEvents.map((event) => event.id)).size).toBe(3);
      expectNewestFirst(acmeEvents);
      for (const event of acmeEvents) {
        expect(event).toEqual({
          id: expect.stringMatching(/^[1-9]\d*$/),
          runId: expect.stringMatching(/^[0-9a-f-]{36}$/),
          occurredAt: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/),
          tenantId: acme,
          targetType: 'execution',
          targetId: expect.any(String),
          finding: 'stale_pending',
          action: 'abandon',
          outcome: 'done',
          detail: expect.stringContaining("workflow 'retired_workflow' is not deployed any more"),
        });
      }
      expect(
        globexPages
          .flat()
          .map((event) => event.targetId)
          .sort(),
      ).toEqual([...globexExecutions].sort());
      expect(globexPages.flat().every((event) => event.tenantId === globex)).toBe(true);
    });

    it("pages through every tenant's events with no duplicates and no gaps", async () => {
      // Prepare
      await registerTenant({ tenantId: acme, name: 'Acme' });
      await registerTenant({ tenantId: globex, name: 'Globex' });
      const stranded = [...(await strandExecutions(acme, 2)), ...(await strandExecutions(globex, 2))];
      await local.recover();

      // Act
      const pages = await allPages('limit=2');
      const whole = await api<RecoveryEventsPage>('GET', '/recovery-events?limit=100');

      // Assert
      const paged = pages.flat();
      expect(pages.every((page) => page.length <= 2)).toBe(true);
      expect(new Set(paged.map((event) => event.id)).size).toBe(paged.length);
      expectNewestFirst(paged);
      // No gaps: paging found exactly what one big page holds (this suite records far fewer than 100).
      expect(whole.body.nextToken).toBeUndefined();
      expect(paged.map((event) => event.id)).toEqual(whole.body.events.map((event) => event.id));
      expect(paged.map((event) => event.targetId)).toEqual(expect.arrayContaining(stranded));
    });

    it("keeps a removed tenant's events", async () => {
      await registerTenant({ tenantId: globex, name: 'Globex' });
      const [executionId] = await strandExecutions(globex, 1);
      await local.recover();
      await api('POST', `/tenants/${globex}/deactivate`);
      expect((await api('DELETE', `/tenants/${globex}`)).status).toBe(202);
      await waitForLifecycles();
      expect((await api('GET', `/tenants/${globex}`)).status).toBe(404);

      const response = await api<RecoveryEventsPage>('GET', `/recovery-events?tenantId=${globex}`);

      expect(response.status).toBe(200);
      expect(response.body.events.map((event) => event.targetId)).toContain(executionId);
    });

    it('answers an empty page, not a 404, for a tenant with no events', async () => {
      const response = await api<RecoveryEventsPage>('GET', '/recovery-events?tenantId=nobody_ever');

      expect(response.status).toBe(200);
      expect(response.body).toEqual({ events: [] });
    });

    it.each([
      ['an invalid tenant id', 'tenantId=Bad%20Id', /^query\.tenantId: /],
      ['a limit of 0', 'limit=0', /^query\.limit: /],
      ['a limit over 100', 'limit=500', /^query\.limit: /],
      ['a token this API did not hand out', 'nextToken=garbage', /^query\.nextToken: is not a token/],
      [
        "a tenants list's token",
        `nextToken=${Buffer.from('{"after":"acme"}').toString('base64url')}`,
        /^query\.nextToken: is not a token this API returned$/,
      ],
      [
        'a forged token with a day that does not exist',
        `nextToken=${Buffer.from('{"after":{"occurredAt":"2025-02-30T10:00:00.000000Z","id":"1"}}').toString('base64url')}`,
        /^query\.nextToken: is not a token this API returned$/,
      ],
      ['an unknown parameter', 'status=done', /^query: Unrecognized key/],
    ])('answers 400 VALIDATION_FAILED for %s', async (_case, query, reason) => {
      const response = await api('GET', `/recovery-events?${query}`);

      expect(response.status).toBe(400);
      expect(response.body.error.code).toBe('VALIDATION_FAILED');
      expect(response.body.error.reasons).toEqual([expect.stringMatching(reason)]);
    });
  });

  describe('operator reads are for admins only', () => {
    it.each(['/tenants?status=active&limit=1', `/recovery-events?tenantId=${acme}`])(
      'GET %s answers 401 to a tenant key and to no token, and 200 to the admin',
      async (path) => {
        const registered = await registerTenant({ tenantId: acme, name: 'Acme' });
        const key: string = registered.body.apiKey;
        expect((await api('GET', `/tenants/${acme}/metrics`, { token: key })).status).toBe(200);

        const asTenant = await api('GET', path, { token: key });
        const anonymous = await api('GET', path, { token: null });
        const asAdmin = await api('GET', path);

        expect(asTenant.status).toBe(401);
        expect(asTenant.body.error.code).toBe('UNAUTHENTICATED');
        expect(asTenant.body).not.toHaveProperty('tenants');
        expect(asTenant.body).not.toHaveProperty('events');
        expect(anonymous.status).toBe(401);
        expect(asAdmin.status).toBe(200);
      },
    );
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

    it('issues a new key once: 201, the new key authenticates and the old one gets 401 once the authorizer cache lets it go', async () => {
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
      // The authorizer trusted the old key when it saw it, for at most its cache time.
      await new Promise((resolve) => setTimeout(resolve, AUTHORIZER_CACHE_SECONDS * 1000 + 50));
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
