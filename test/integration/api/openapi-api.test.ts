import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOpenApiDocument } from '../../../functions/api/openapi.js';
import { API_ROUTES } from '../../../functions/api/routes.js';
import { type LocalPlatform, startLocalPlatform } from '../../../local/local-platform.js';
import { installedWorkflows } from '../../../workflows/index.js';
import { createTestDatabase } from '../../support/database.js';
import { apiClient } from '../../support/http.js';

/**
 * `GET /openapi.json` over HTTP on the local server (the same route table, adapter and handler as
 * `npm start`): open to anyone, the document generated from the route table, usable as it is.
 */

const ADMIN_TOKEN = 'openapi-admin-token-0123456789abcdef';

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let home: string;
let local: LocalPlatform;

beforeAll(async () => {
  database = await createTestDatabase();
  home = await mkdtemp(join(tmpdir(), 'tenantflow-openapi-'));
  local = await startLocalPlatform({
    home,
    port: 0,
    databaseUrl: database.url,
    adminToken: ADMIN_TOKEN,
    workflows: installedWorkflows({ examples: true }),
    retryIntervalMs: 0,
  });
});

afterAll(async () => {
  await local?.stop();
  await database?.drop();
  await rm(home, { recursive: true, force: true });
});

describe('GET /openapi.json', () => {
  it('answers the generated OpenAPI 3.1 document to a caller without credentials', async () => {
    const response = await fetch(`${local.url}/openapi.json`);
    const document = (await response.json()) as Record<string, unknown>;

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(document).toEqual(buildOpenApiDocument());
    expect((await new Validator().validate(document)).valid).toBe(true);
  });

  it('is the same whatever credentials come with it, even wrong ones', async () => {
    const anonymous = await apiClient(local.url)('GET', '/openapi.json');
    const wrongKey = await apiClient(local.url, 'tfk_nobody_0000')('GET', '/openapi.json');
    const admin = await apiClient(local.url, ADMIN_TOKEN)('GET', '/openapi.json');

    expect([anonymous.status, wrongKey.status, admin.status]).toEqual([200, 200, 200]);
    expect(wrongKey.body).toEqual(anonymous.body);
    expect(admin.body).toEqual(anonymous.body);
  });

  it('describes every route this server answers, under a server URL relative to the document', async () => {
    const { body: document } = await apiClient(local.url)('GET', '/openapi.json');
    const base = new URL(document.servers[0].url, `${local.url}/openapi.json`);
    const paths = document.paths as Record<string, Record<string, unknown>>;

    // The relative server resolves to where the API is: its health route answers there.
    expect((await fetch(new URL('health', base))).status).toBe(200);
    for (const route of API_ROUTES) {
      expect(
        paths[route.resource]?.[route.method.toLowerCase()],
        `${route.method} ${route.resource}`,
      ).toBeDefined();
    }
  });

  it('answers 405 to another method', async () => {
    const response = await apiClient(local.url)('POST', '/openapi.json', { body: {} });

    expect(response.status).toBe(405);
    expect(response.body.error.code).toBe('METHOD_NOT_ALLOWED');
  });
});
