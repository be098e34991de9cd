import { MAX_JSON_DEPTH } from '@tenantflow/shared/kernel/untrusted-json';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { API_ROUTES, type ApiRoute } from '../../../functions/api/routes.js';
import { lambdaContext } from '../../support/api-gateway-events.js';
import {
  apiWithRecordingServices,
  eventFor,
  freeformFieldOf,
  JSON_BODY_ROUTES,
  TENANT_ID,
  validBodyFor,
} from './api-test-doubles.js';

const JSON_HEADERS = { 'Content-Type': 'application/json' };

function routeOf(method: string, resource: string): ApiRoute {
  const route = API_ROUTES.find(
    (candidate) => candidate.method === method && candidate.resource === resource,
  );
  if (route === undefined) {
    throw new Error(`No route ${method} ${resource}`);
  }
  return route;
}

async function send(route: ApiRoute, options: Parameters<typeof eventFor>[1]) {
  const api = apiWithRecordingServices();
  const response = await api.handlers[route.function](eventFor(route, options), lambdaContext());
  return { response, error: errorOf(response), serviceCalls: api.serviceCalls() };
}

function errorOf(response: APIGatewayProxyResult): { code: string; message: string; reasons?: string[] } {
  return JSON.parse(response.body).error ?? {};
}

/** A valid body whose free-form JSON field holds `json` verbatim (raw text, escapes and all). */
function bodyWithFreeform(route: ApiRoute, json: string): string {
  const field = freeformFieldOf(route);
  const { [field]: _replaced, ...rest } = validBodyFor(route);
  const others = Object.keys(rest).length > 0 ? `,${JSON.stringify(rest).slice(1, -1)}` : '';
  return `{${JSON.stringify(field)}:${json}${others}}`;
}

/** `{"a":{"a":...{}...}}`: `levels` objects, one inside the other. */
function nestedObjects(levels: number): string {
  return `${'{"a":'.repeat(levels - 1)}{}${'}'.repeat(levels - 1)}`;
}

const jsonRoutes = JSON_BODY_ROUTES.map((route) => [`${route.method} ${route.resource}`, route] as const);

describe('Routes that take a JSON body', () => {
  it('are all covered here (the route table names at least one)', () => {
    expect(jsonRoutes.length).toBeGreaterThanOrEqual(3);
  });

  describe.each(jsonRoutes)('%s', (_name, route) => {
    it.each(['application/json', 'application/json; charset=utf-8', 'Application/JSON;charset="UTF-8"'])(
      'accepts a valid body sent as %s',
      async (contentType) => {
        const { response, serviceCalls } = await send(route, {
          body: JSON.stringify(validBodyFor(route)),
          headers: { 'content-type': contentType },
        });

        expect(response.statusCode).toBeLessThan(300);
        expect(serviceCalls).toBe(1);
      },
    );

    it.each([
      ['no Content-Type at all', undefined],
      ['text/plain', 'text/plain'],
      ['a form', 'application/x-www-form-urlencoded'],
      ['JSONP', 'application/jsonp'],
      ['a JSON lookalike subtype', 'application/json-patch+json'],
      ['text/json', 'text/json'],
      ['application/x-json', 'application/x-json'],
      ['JSON in another charset', 'application/json; charset=iso-8859-1'],
      ['two media types in one header', 'application/json, text/plain'],
    ])('answers 415, before any service runs, for a JSON body sent as %s', async (_case, contentType) => {
      const { response, error, serviceCalls } = await send(route, {
        body: JSON.stringify(validBodyFor(route)),
        headers: contentType === undefined ? {} : { 'Content-Type': contentType },
      });

      expect(response.statusCode).toBe(415);
      expect(error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
      expect(error.message).toContain('Content-Type: application/json');
      expect(serviceCalls).toBe(0);
    });

    it(`answers 400 naming the limit for a body nested 100000 levels deep, never a 500`, async () => {
      const deep = `{"a":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;

      const { response, error, serviceCalls } = await send(route, {
        body: bodyWithFreeform(route, deep),
        headers: JSON_HEADERS,
      });

      expect(response.statusCode).toBe(400);
      expect(error.code).toBe('VALIDATION_FAILED');
      expect(error.message).toContain(`${MAX_JSON_DEPTH} levels`);
      expect(serviceCalls).toBe(0);
    });

    it(`accepts a body nested exactly ${MAX_JSON_DEPTH} levels deep, and refuses one level more`, async () => {
      // The body object itself is the first level.
      const atLimit = await send(route, {
        body: bodyWithFreeform(route, nestedObjects(MAX_JSON_DEPTH - 1)),
        headers: JSON_HEADERS,
      });
      const overLimit = await send(route, {
        body: bodyWithFreeform(route, nestedObjects(MAX_JSON_DEPTH)),
        headers: JSON_HEADERS,
      });

      expect(atLimit.response.statusCode).toBeLessThan(300);
      expect(overLimit.response.statusCode).toBe(400);
      expect(overLimit.error.message).toContain(`${MAX_JSON_DEPTH} levels`);
    });

    it.each([
      ['a NUL in a string value', '{"note":"a\\u0000b"}', /\.note: contains a NUL character/],
      ['a NUL in a key', '{"a\\u0000b":1}', /: the key "a\\u0000b" contains a NUL character/],
      ['a lone high surrogate', '{"note":"\\ud800"}', /\.note: contains an unpaired UTF-16 surrogate/],
      ['a lone low surrogate', '{"note":"x\\udc00y"}', /\.note: contains an unpaired UTF-16 surrogate/],
      [
        'a lone surrogate in a key',
        '{"\\udbff":1}',
        /the key "\\udbff" contains an unpaired UTF-16 surrogate/,
      ],
      ['surrogates in the wrong order', '{"note":"\\ude00\\ud83d"}', /\.note: contains an unpaired/],
      ['a NUL deep in an array', '{"list":[[1,"\\u0000"]]}', /\.list\.0\.1: contains a NUL character/],
    ])('answers 400 for %s, which PostgreSQL cannot store', async (_case, json, reason) => {
      const { response, error, serviceCalls } = await send(route, {
        body: bodyWithFreeform(route, json),
        headers: JSON_HEADERS,
      });

      expect(response.statusCode).toBe(400);
      expect(error.code).toBe('VALIDATION_FAILED');
      expect(error.reasons).toEqual([expect.stringMatching(reason)]);
      expect(error.reasons?.[0]).toMatch(new RegExp(`^body\\.${freeformFieldOf(route)}`));
      expect(serviceCalls).toBe(0);
    });

    it('accepts a surrogate pair (an emoji), escaped or not', async () => {
      const { response } = await send(route, {
        body: bodyWithFreeform(route, '{"escaped":"\\ud83d\\ude00","raw":"😀"}'),
        headers: JSON_HEADERS,
      });

      expect(response.statusCode).toBeLessThan(300);
    });

    it('answers 400 for a base64-encoded body that is not UTF-8', async () => {
      const bytes = Buffer.concat([Buffer.from('{"name":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);

      const { response, error, serviceCalls } = await send(route, {
        body: bytes.toString('base64'),
        isBase64Encoded: true,
        headers: JSON_HEADERS,
      });

      expect(response.statusCode).toBe(400);
      expect(error.message).toContain('UTF-8');
      expect(serviceCalls).toBe(0);
    });
  });
});

describe('Path and query parameters', () => {
  const listExecutions = routeOf('GET', '/tenants/{tenantId}/executions');
  const getTenant = routeOf('GET', '/tenants/{tenantId}');

  it('answers 400 for a NUL in a query value, before it reaches a service', async () => {
    const api = apiWithRecordingServices();
    const event = eventFor(listExecutions);
    event.queryStringParameters = { nextToken: 'abc\u0000' };

    const response = await api.handlers.executions(event, lambdaContext());

    expect(response.statusCode).toBe(400);
    expect(errorOf(response).reasons).toEqual([
      expect.stringMatching(/^query\.nextToken: contains a NUL character/),
    ]);
    expect(api.serviceCalls()).toBe(0);
  });

  it('answers 400 for a lone surrogate in a query key, on a route that reads no query', async () => {
    const api = apiWithRecordingServices();
    const event = eventFor(getTenant);
    event.queryStringParameters = { '\ud800': '1' };

    const response = await api.handlers.tenants(event, lambdaContext());

    expect(response.statusCode).toBe(400);
    expect(errorOf(response).reasons).toEqual([
      expect.stringMatching(/^query: the key "\\ud800" contains an unpaired UTF-16 surrogate/),
    ]);
    expect(api.serviceCalls()).toBe(0);
  });

  it('answers 400 naming the NUL in a path parameter', async () => {
    const api = apiWithRecordingServices();
    const event = eventFor(getTenant);
    event.pathParameters = { tenantId: `${TENANT_ID}\u0000` };

    const response = await api.handlers.tenants(event, lambdaContext());

    expect(response.statusCode).toBe(400);
    expect(errorOf(response).reasons).toEqual([
      expect.stringMatching(/^path\.tenantId: contains a NUL character/),
    ]);
  });
});

describe('Routes that take no body', () => {
  it.each([
    ['no body and no Content-Type', null, {}],
    ['an empty body and no Content-Type', '', {}],
    ['a body it ignores, as text/plain', 'ignored', { 'Content-Type': 'text/plain' }],
  ])('keep working with %s', async (_case, body, headers) => {
    const route = routeOf('POST', '/tenants/{tenantId}/activate');

    const { response, serviceCalls } = await send(route, { body, headers });

    expect(response.statusCode).toBe(200);
    expect(serviceCalls).toBe(1);
  });
});
