import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { API_ROUTES, type ApiRoute } from '../../../functions/api/routes.js';
import { type LocalPlatform, startLocalPlatform } from '../../../local/local-platform.js';
import { installedWorkflows } from '../../../workflows/index.js';
import { createTestDatabase } from '../../support/database.js';
import { apiClient } from '../../support/http.js';
import { dropTenantRoles, tenantIdSuffix } from '../../support/tenants.js';

/**
 * Generated requests against every route of the route table, over HTTP on the local server (the
 * same adapter, authorizer and handlers as `npm start`): ids, query strings, headers, content types
 * and bodies that are wrong in every way fast-check can think of, JSON nested up to 10,000 levels,
 * NUL characters, lone surrogates and `__proto__` keys. None may be answered with a 5xx, no answer
 * may show SQL or a stack trace, and the server must still serve a normal request afterwards.
 *
 * A failure prints fast-check's seed and path; replay it with `FUZZ_SEED=<seed> FUZZ_PATH=<path>
 * npx vitest run test/integration/api/route-fuzzing.test.ts`. `FUZZ_RUNS` changes the count.
 */

const ADMIN_TOKEN = 'fuzz-admin-token-0123456789abcdefgh';
const RUNS = Number(process.env.FUZZ_RUNS ?? 2_000);
const suffix = tenantIdSuffix();
const acme = `fuzz_acme_${suffix}`;
const globex = `fuzz_globex_${suffix}`;

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let home: string;
let local: LocalPlatform;
const keys: Record<string, string> = {};

beforeAll(async () => {
  database = await createTestDatabase();
  home = await mkdtemp(join(tmpdir(), 'tenantflow-fuzz-'));
  local = await startLocalPlatform({
    home,
    port: 0,
    databaseUrl: database.url,
    adminToken: ADMIN_TOKEN,
    workflows: installedWorkflows({ examples: true }),
    retryIntervalMs: 0,
  });
  const admin = apiClient(local.url, ADMIN_TOKEN);
  for (const tenantId of [acme, globex]) {
    const created = await admin('POST', '/tenants', { body: { tenantId, name: tenantId } });
    expect(created.status).toBe(202);
    keys[tenantId] = created.body.apiKey;
  }
  await local.platform.lifecycleOrchestrator.drain();
});

afterAll(async () => {
  await local?.stop();
  await database?.drop();
  await dropTenantRoles(inject('superuserUrl'), suffix);
  await rm(home, { recursive: true, force: true });
});

/** Strings that have broken parsers, drivers and databases before. */
const nastyString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom(
    '',
    '\u0000',
    'a\u0000b',
    '\ud800',
    'x\udfffy',
    '__proto__',
    'constructor',
    'prototype',
    '..',
    '../..',
    '%00',
    "'; DROP TABLE tenantflow.tenants; --",
    'pg_catalog',
    'public',
    'tenantflow',
    'A'.repeat(300),
    '😀'.repeat(50),
    '1e309',
    '-1',
    '0',
    'NaN',
    'null',
    'true',
    '{}',
    '[]',
  ),
);

/** A path segment: a real tenant id or execution id now and then, so routes get past their checks. */
const pathValue = fc.oneof(
  { weight: 3, arbitrary: nastyString },
  { weight: 2, arbitrary: fc.constantFrom(acme, globex) },
  { weight: 1, arbitrary: fc.uuid() },
  { weight: 1, arbitrary: fc.stringMatching(/^[a-z][a-z0-9_]{0,70}$/) },
);

/** Bytes percent-encoded as a client would, or left raw and malformed (`%ZZ`, `%C0`). */
const encodedSegment = fc.oneof(
  { weight: 5, arbitrary: pathValue.map(percentEncode) },
  { weight: 1, arbitrary: fc.constantFrom('%ZZ', '%C0', '%', '%E2%82', '%00', '%2F', '%u0041') },
);

/** JSON nested `depth` levels, as text (so it can go deeper than JSON.stringify would). */
const deepJson = fc
  .record({ depth: fc.integer({ min: 1, max: 10_000 }), kind: fc.constantFrom('array', 'object', 'mixed') })
  .map(({ depth, kind }) => {
    const open = (level: number) =>
      kind === 'array' || (kind === 'mixed' && level % 2 === 0) ? '[' : '{"a":';
    const close = (level: number) => (open(level) === '[' ? ']' : '}');
    let text = '1';
    for (let level = depth - 1; level >= 0; level -= 1) {
      text = `${open(level)}${text}${close(level)}`;
    }
    return `{"input":${text},"config":${text},"workflow":"greeting","name":"x"}`;
  });

/** A key set that reaches the handlers' fields, plus prototype keys. */
const fieldName = fc.constantFrom(
  'tenantId',
  'name',
  'metadata',
  'config',
  'settings',
  'features',
  'limits',
  'workflow',
  'input',
  'expression',
  'timezone',
  'state',
  '__proto__',
  'constructor',
  'maxConcurrentExecutions',
);

const jsonBody = fc.oneof(
  { weight: 4, arbitrary: fc.dictionary(fieldName, fc.jsonValue({ maxDepth: 4 }), { maxKeys: 6 }) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 6 }) },
  {
    weight: 2,
    arbitrary: fc.record({
      tenantId: pathValue,
      name: nastyString,
      workflow: fc.constantFrom('greeting', 'nightly_etl', 'nope', ''),
      input: fc.jsonValue({ maxDepth: 3 }),
      config: fc.dictionary(fieldName, fc.jsonValue({ maxDepth: 3 }), { maxKeys: 3 }),
    }),
  },
);

/** Body text: JSON (with `__proto__` written as a key, which JSON.stringify of an object drops), or not JSON. */
const bodyText = fc.oneof(
  { weight: 6, arbitrary: jsonBody.map((value) => JSON.stringify(value)) },
  { weight: 2, arbitrary: deepJson },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '{"__proto__":{"isAdmin":true},"tenantId":"x","name":"x"}',
      '{"constructor":{"prototype":{"polluted":1}}}',
      '{"name":"a\\u0000b","tenantId":"nul"}',
      '{"name":"\\ud800","tenantId":"lone"}',
      '{"workflow":"greeting","input":{"name":"\\udfff"}}',
      '{',
      '[',
      'null',
      '"text"',
      '1e999999',
      '{"a":1,"a":2}',
      '\u0000',
      '',
    ),
  },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
);

const contentType = fc.oneof(
  { weight: 6, arbitrary: fc.constant('application/json') },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'application/json',
      'application/json; charset=utf-8',
      'APPLICATION/JSON',
      'application/json; charset=utf-16',
      'text/plain',
      'application/x-www-form-urlencoded',
      'application/jsonp',
      'multipart/form-data; boundary=x',
      '',
    ),
  },
  { weight: 1, arbitrary: fc.constant(undefined) },
);

/** Credentials: mostly the admin's or a tenant's (so requests reach the handlers), else malformed or none. */
const authorization = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.constantFrom(
      () => `Bearer ${ADMIN_TOKEN}`,
      () => `Bearer ${keys[acme]}`,
      () => `Bearer ${keys[globex]}`,
    ),
  },
  {
    weight: 2,
    arbitrary: fc.oneof(
      fc.constantFrom(
        () => `bearer ${ADMIN_TOKEN}`,
        () => `Bearer  ${ADMIN_TOKEN}`,
        () => `Bearer ${ADMIN_TOKEN} `,
        () => 'Bearer tfk_nobody_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
        () => 'Basic YWRtaW46YWRtaW4=',
        () => 'Bearer',
      ),
      // Only what an HTTP header can carry: Node refuses to send anything else.
      nastyString.map((text) => () => `Bearer ${text.replaceAll(/[^\t\x20-\x7e\x80-\xff]/g, '')}`),
    ),
  },
  { weight: 1, arbitrary: fc.constant(() => undefined) },
);

const queryString = fc
  .array(
    fc.tuple(
      fc.oneof(
        fc.constantFrom('limit', 'nextToken', 'status', 'tenantId', '__proto__', 'constructor'),
        nastyString,
      ),
      fc.oneof(
        nastyString,
        fc.integer().map(String),
        fc.constantFrom('0', '101', '-5', '1.5', 'active', 'failed'),
      ),
    ),
    { maxLength: 4 },
  )
  .map((pairs) =>
    pairs.length === 0
      ? ''
      : `?${pairs.map(([key, value]) => `${percentEncode(key)}=${percentEncode(value)}`).join('&')}`,
  );

const method = fc.oneof(
  { weight: 9, arbitrary: fc.constant<string | undefined>(undefined) },
  { weight: 1, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD') },
);

const generatedRequest = fc.record({
  route: fc.constantFrom(...API_ROUTES),
  segments: fc.array(encodedSegment, { minLength: 2, maxLength: 2 }),
  query: queryString,
  method,
  authorization,
  contentType,
  body: fc.option(bodyText, { nil: undefined, freq: 4 }),
});

interface Answer {
  readonly status: number;
  readonly body: string;
}

describe('every route under generated requests', () => {
  it(`answers ${RUNS} generated requests without a 5xx, SQL or a stack trace, and still serves afterwards`, async () => {
    const seen = new Map<string, number>();
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(generatedRequest, async (generated) => {
        const path = fillPath(generated.route, generated.segments) + generated.query;
        const answer = await send({
          method: generated.method ?? generated.route.method,
          path,
          authorization: generated.authorization(),
          contentType: generated.contentType,
          body: generated.body,
        });
        seen.set(routeKey(generated.route), (seen.get(routeKey(generated.route)) ?? 0) + 1);
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        const context = `${generated.method ?? generated.route.method} ${path} → ${answer.status} ${answer.body.slice(0, 300)}`;
        expect(answer.status, context).toBeLessThan(500);
        expect(answer.body, context).not.toMatch(LEAKS);
      }),
      {
        numRuns: RUNS,
        ...(process.env.FUZZ_SEED === undefined ? {} : { seed: Number(process.env.FUZZ_SEED) }),
        ...(process.env.FUZZ_PATH === undefined ? {} : { path: process.env.FUZZ_PATH }),
      },
    );
    // Every route of the table was tried, and the requests got past the gate to the handlers:
    // some succeeded and the refusals were of many kinds, not one 401 for everything.
    expect([...seen.keys()].sort()).toEqual(API_ROUTES.map(routeKey).sort());
    console.log(`statuses of ${RUNS} generated requests: ${JSON.stringify(Object.fromEntries(statuses))}`);
    const count = (low: number, high: number) =>
      [...statuses].filter(([status]) => status >= low && status < high).reduce((sum, [, n]) => sum + n, 0);
    expect(count(200, 300)).toBeGreaterThan(0);
    expect([400, 401, 403, 404].filter((status) => (statuses.get(status) ?? 0) > 0)).toHaveLength(4);

    // And the server still does its job: the health check, a tenant's own read, a new tenant.
    expect((await send({ method: 'GET', path: '/health' })).status).toBe(200);
    const admin = apiClient(local.url, ADMIN_TOKEN);
    expect((await admin('GET', '/workflows')).status).toBe(200);
    // Whatever the generated requests got accepted (a tenant's config, metadata, a schedule) can
    // still be listed: a stored value no read can serve would make the list a 500 for good.
    expect((await admin('GET', '/tenants?limit=100')).status).toBe(200);
    for (const tenantId of [acme, globex]) {
      expect((await admin('GET', `/tenants/${tenantId}/executions?limit=100`)).status).toBeLessThan(500);
      expect((await admin('GET', `/tenants/${tenantId}/schedules?limit=100`)).status).toBeLessThan(500);
    }
    const fresh = `fuzz_after_${suffix}`;
    expect((await admin('POST', '/tenants', { body: { tenantId: fresh, name: 'after' } })).status).toBe(202);
    await local.platform.lifecycleOrchestrator.drain();
    expect((await admin('GET', `/tenants/${fresh}`)).body.status).toBe('active');
  }, 600_000);
});

/** What a response must never show: PostgreSQL's wording, SQL, or a JavaScript stack. */
const LEAKS =
  /syntax error at or near|violates (?:unique|foreign key|check|not-null) constraint|duplicate key value|relation "|column "[^"]*" (?:does not exist|of relation)|permission denied for|\n\s+at |node:internal|node_modules|\.ts:\d+/;

function routeKey(route: ApiRoute): string {
  return `${route.method} ${route.resource}`;
}

function fillPath(route: ApiRoute, segments: readonly string[]): string {
  let index = 0;
  return route.resource.replaceAll(/\{[^}]+\}/g, () => segments[index++ % segments.length] ?? 'x');
}

/** Percent-encodes the UTF-8 bytes of `value` (a lone surrogate becomes U+FFFD's), unreserved ones kept. */
function percentEncode(value: string): string {
  return [...Buffer.from(value, 'utf8')]
    .map((byte) => {
      const char = String.fromCharCode(byte);
      return /[A-Za-z0-9\-._~]/.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    })
    .join('');
}

/** One request on its own connection, with exactly the headers given (fetch would normalise some). */
function send(options: {
  method: string;
  path: string;
  authorization?: string | undefined;
  contentType?: string | undefined;
  body?: string | undefined;
}): Promise<Answer> {
  const url = new URL(local.url);
  const headers: Record<string, string> = {};
  if (options.authorization !== undefined) {
    headers.authorization = options.authorization;
  }
  if (options.contentType !== undefined) {
    headers['content-type'] = options.contentType;
  }
  const payload = options.body === undefined ? undefined : Buffer.from(options.body, 'utf8');
  if (payload !== undefined) {
    headers['content-length'] = String(payload.length);
  }
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        method: options.method,
        path: options.path,
        headers,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}
