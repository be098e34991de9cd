import { readFileSync } from 'node:fs';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import AjvDraft04 from 'ajv-draft-04';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  apiGatewayBodyModel,
  buildOpenApiDocument,
  ERROR_RESPONSES,
  type JsonSchema,
  operationIdOf,
} from '../../../functions/api/openapi.js';
import { noInput, tenantPath } from '../../../functions/api/request-schemas.js';
import { API_ROUTES, type ApiRoute, takesJsonBody } from '../../../functions/api/routes.js';
import { lambdaContext } from '../../support/api-gateway-events.js';
import { apiWithRecordingServices, eventFor, validBodyFor } from './api-test-doubles.js';

/**
 * The OpenAPI document `GET /openapi.json` serves, against a real OpenAPI 3.1 validator and the
 * route table it is generated from; and each body schema in it, and the API Gateway model made of
 * the same zod schema, against the zod schema the handler validates with.
 */

const document = buildOpenApiDocument();
const manifest = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

type Operation = {
  operationId: string;
  security: Record<string, string[]>[];
  parameters?: { name: string; in: string; required: boolean; schema: JsonSchema }[];
  requestBody?: { required: boolean; content: Record<string, { schema: JsonSchema }> };
  responses: Record<string, { $ref?: string; description?: string }>;
};
const paths = document.paths as Record<string, Record<string, Operation>>;
const components = document.components as {
  schemas: Record<string, JsonSchema>;
  responses: Record<string, unknown>;
};

function operationOf(route: ApiRoute): Operation {
  const operation = paths[route.resource]?.[route.method.toLowerCase()];
  if (operation === undefined) {
    throw new Error(`${route.method} ${route.resource} is not in the document`);
  }
  return operation;
}

const routeKey = (route: Pick<ApiRoute, 'method' | 'resource'>) => `${route.method} ${route.resource}`;

describe('the OpenAPI document', () => {
  it('is a valid OpenAPI 3.1 document', async () => {
    const result = await new Validator().validate(document);

    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
    expect(document.openapi).toBe('3.1.0');
  });

  it('is refused by the same validator once broken (the check is not blind)', async () => {
    const { info: _info, ...withoutInfo } = document;
    const badParameter = structuredClone(document) as typeof document;
    const operation = (badParameter.paths as Record<string, Record<string, Operation>>)['/tenants/{tenantId}']
      ?.get as unknown as { parameters: { in: string }[] };
    operation.parameters = [{ in: 'nowhere' }];

    expect((await new Validator().validate(withoutInfo)).valid).toBe(false);
    expect((await new Validator().validate(badParameter)).valid).toBe(false);
  });

  it('has exactly the routes of the route table, each with its method', () => {
    const documented = Object.entries(paths).flatMap(([path, operations]) =>
      Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`),
    );

    expect(documented.sort()).toEqual(API_ROUTES.map(routeKey).sort());
  });

  it('names each operation uniquely', () => {
    const ids = API_ROUTES.map(operationIdOf);

    expect(new Set(ids).size).toBe(ids.length);
    expect(operationIdOf({ method: 'POST', resource: '/tenants/{tenantId}/executions' })).toBe(
      'postTenantsByTenantIdExecutions',
    );
  });

  it('has the version of package.json, and a server relative to where it is served', () => {
    expect((document.info as { version: string }).version).toBe(manifest.version);
    expect(document.servers).toEqual([expect.objectContaining({ url: '.' })]);
    expect(buildOpenApiDocument({ version: '9.9.9' }).info).toMatchObject({ version: '9.9.9' });
  });

  it('describes the admin bearer token, the tenant API key, and SigV4 for admin routes in AWS', () => {
    const schemes = (document.components as { securitySchemes: Record<string, { description: string }> })
      .securitySchemes;

    expect(Object.keys(schemes).sort()).toEqual(['adminToken', 'tenantApiKey']);
    expect(schemes.adminToken).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(schemes.adminToken?.description).toMatch(/IAM.*SigV4/);
    expect(schemes.tenantApiKey).toMatchObject({ type: 'http', scheme: 'bearer' });
  });

  it('documents one error body, with every status of the error table that some route answers', () => {
    expect(components.schemas.Error).toMatchObject({
      required: ['error'],
      properties: { error: { required: ['code', 'message'] } },
    });
    expect(Object.keys(components.responses).sort()).toEqual(
      Object.keys(ERROR_RESPONSES)
        .map((status) => `Error${status}`)
        .sort(),
    );
  });

  describe.each(API_ROUTES.map((route) => [routeKey(route), route] as const))('%s', (_key, route) => {
    const operation = operationOf(route);
    const placeholders = [...route.resource.matchAll(/\{([^}]+)\}/g)].map((match) => match[1]);

    it('has the security of its authorization', () => {
      const expected = {
        admin: [{ adminToken: [] }],
        tenant: [{ tenantApiKey: [] }, { adminToken: [] }],
        none: [],
      }[route.authorization];

      expect(operation.security).toEqual(expected);
    });

    it('has each path parameter, required, and the query parameters of its schema', () => {
      const parameters = operation.parameters ?? [];
      const path = parameters.filter((parameter) => parameter.in === 'path');
      const query = parameters.filter((parameter) => parameter.in === 'query');
      const queryShape = route.request.queryStringParameters?.def as { shape?: object } | undefined;

      expect(path.map((parameter) => parameter.name)).toEqual(placeholders);
      expect(path.every((parameter) => parameter.required)).toBe(true);
      expect(query.map((parameter) => parameter.name).sort()).toEqual(
        Object.keys(queryShape?.shape ?? {}).sort(),
      );
      // Paged lists: the page size has a default, so it is never required.
      for (const parameter of query) {
        expect(parameter.required, parameter.name).toBe(false);
      }
    });

    it('has a JSON request body exactly when its handler reads one', () => {
      expect(operation.requestBody !== undefined).toBe(takesJsonBody(route));
      if (operation.requestBody !== undefined) {
        expect(operation.requestBody.required).toBe(true);
        expect(Object.keys(operation.requestBody.content)).toEqual(['application/json']);
      }
    });

    it('answers its success status, and the errors its authorization and input imply', () => {
      const statuses = Object.keys(operation.responses);
      const authenticated = route.authorization !== 'none';

      expect(statuses).toContain(String(route.success.status));
      expect(statuses.includes('401')).toBe(authenticated);
      expect(statuses.includes('403')).toBe(authenticated);
      expect(statuses.includes('404')).toBe(placeholders.length > 0);
      expect(statuses.includes('423')).toBe(
        route.authorization === 'tenant' && placeholders.includes('tenantId'),
      );
      expect(statuses.includes('415')).toBe(takesJsonBody(route));
      expect(statuses.includes('413')).toBe(takesJsonBody(route));
      expect(statuses).toContain('500');
      for (const error of route.errors ?? []) {
        expect(statuses).toContain(String(error));
      }
    });
  });

  it('refuses a route whose path parameter has no schema', () => {
    const [health] = API_ROUTES;
    if (health === undefined) {
      throw new Error('empty route table');
    }
    const broken: ApiRoute = { ...health, resource: '/tenants/{tenantId}/{other}', request: tenantPath };

    expect(() => buildOpenApiDocument({ routes: [broken] })).toThrow(/\{tenantId\}, \{other\}.*tenantId/);
    expect(() =>
      buildOpenApiDocument({ routes: [{ ...health, resource: '/tenants/{tenantId}', request: noInput }] }),
    ).toThrow(/names none/);
  });

  it('does not compile a route without request schemas', () => {
    // @ts-expect-error: `request` is required, so a route cannot be added without its schemas
    const withoutSchemas: ApiRoute = {
      method: 'GET',
      resource: '/nowhere',
      function: 'health',
      authorization: 'none',
      summary: 'Nothing',
      success: { status: 200, description: 'Nothing' },
    };

    expect(withoutSchemas.request).toBeUndefined();
  });
});

/** Bodies for each body route, by what they get wrong. */
interface BodySamples {
  /** Accepted by the handler, the document and the API Gateway model alike. */
  readonly valid: readonly unknown[];
  /** Wrong in shape or type: refused by all three. */
  readonly wrongShape: readonly unknown[];
  /** Right in shape, wrong in a value: refused by the handler and the document, let through by the model. */
  readonly wrongValue: readonly unknown[];
  /** Wrong only by a rule the handler checks in code (a refinement): the handler alone refuses them. */
  readonly refinedAway: readonly unknown[];
}

const SAMPLES: Record<string, BodySamples> = {
  'POST /tenants': {
    valid: [
      { tenantId: 'acme', name: 'Acme' },
      {
        tenantId: 'acme',
        name: '  Acme  ',
        metadata: { tier: ['gold', { since: null }] },
        config: {
          settings: { region: 'eu' },
          features: { beta: true },
          limits: { maxConcurrentExecutions: 5, custom: 1.5 },
        },
      },
      { tenantId: 'acme', name: 'Acme', config: { limits: { maxSchedules: 1.0 } } },
    ],
    wrongShape: [
      {},
      { name: 'Acme' },
      { tenantId: 'acme', name: 42 },
      { tenantId: 'acme', name: 'Acme', plan: 'gold' },
      { tenantId: 'acme', name: 'Acme', metadata: ['not', 'an', 'object'] },
      { tenantId: 'acme', name: 'Acme', config: { features: { beta: 'yes' } } },
      { tenantId: 'acme', name: 'Acme', config: { quotas: {} } },
      [],
      'acme',
    ],
    wrongValue: [
      { tenantId: 'acme', name: '' },
      { tenantId: 'acme', name: 'A'.repeat(201) },
      { tenantId: 'acme', name: 'Acme', config: { limits: { custom: -1 } } },
    ],
    refinedAway: [
      { tenantId: 'Not A Tenant!', name: 'Acme' },
      { tenantId: 'acme', name: 'Acme', config: { limits: { maxConcurrentExecutions: 0.5 } } },
    ],
  },
  'PATCH /tenants/{tenantId}': {
    valid: [{ name: 'Acme Corp' }, { metadata: { tier: null } }, { config: { features: { beta: null } } }],
    wrongShape: [
      { plan: 'gold' },
      { name: null },
      { config: { limits: { custom: '1' } } },
      { config: { settings: 'none' } },
    ],
    wrongValue: [{ name: '' }, { config: { limits: { custom: -2 } } }],
    refinedAway: [{}],
  },
  'POST /tenants/{tenantId}/executions': {
    valid: [
      { workflow: 'echo' },
      { workflow: 'echo', input: [1, 'two', null, { deep: { er: true } }] },
      { workflow: 'echo', input: 'text' },
      { workflow: 'echo', input: null },
    ],
    wrongShape: [
      {},
      { input: {} },
      { workflow: 7 },
      { workflow: 'echo', priority: 'high' },
      { workflow: null },
    ],
    wrongValue: [{ workflow: '' }],
    refinedAway: [],
  },
  'POST /tenants/{tenantId}/schedules': {
    valid: [
      { workflow: 'echo', expression: 'rate(1 hour)' },
      {
        workflow: 'echo',
        expression: 'cron(0 12 * * ? *)',
        timezone: 'Europe/Paris',
        input: { a: [1] },
        state: 'paused',
      },
    ],
    wrongShape: [
      { workflow: 'echo' },
      { expression: 'rate(1 hour)' },
      { workflow: 'echo', expression: 60 },
      { workflow: 'echo', expression: 'rate(1 hour)', state: true },
      { workflow: 'echo', expression: 'rate(1 hour)', every: 'day' },
    ],
    wrongValue: [
      { workflow: '', expression: 'rate(1 hour)' },
      { workflow: 'echo', expression: 'rate(1 hour)', state: 'off' },
      { workflow: 'echo', expression: 'rate(1 hour)', timezone: '' },
    ],
    refinedAway: [{ workflow: 'echo', expression: 'every day' }],
  },
  'PATCH /tenants/{tenantId}/schedules/{scheduleId}': {
    valid: [{ state: 'enabled' }, { input: null }, { expression: 'rate(5 minutes)', timezone: 'UTC' }],
    wrongShape: [{ state: 1 }, { enabled: false }, { workflow: ['echo'] }],
    wrongValue: [{ state: 'off' }, { timezone: '' }],
    refinedAway: [{}, { expression: 'rate(0 minutes)' }],
  },
};

/** The document's schema of a route's body, its `#/components/...` references resolvable by Ajv. */
function documentedBodySchema(route: ApiRoute): JsonSchema {
  const schema = operationOf(route).requestBody?.content['application/json']?.schema;
  if (schema === undefined) {
    throw new Error(`${routeKey(route)} has no documented body`);
  }
  return { ...schema, components };
}

const draft2020 = new Ajv2020({ strict: false, allErrors: true });
// ajv-draft-04 is CommonJS: its class is the module itself, and (for TypeScript) its `default`.
const draft04 = new AjvDraft04.default({ strict: false, allErrors: true });
const bodyRoutes = API_ROUTES.filter(takesJsonBody).map((route) => [routeKey(route), route] as const);

describe('request bodies: the handler schema, the documented schema and the API Gateway model', () => {
  it('have samples for every body route', () => {
    expect(bodyRoutes.map(([key]) => key).sort()).toEqual(Object.keys(SAMPLES).sort());
  });

  describe.each(bodyRoutes)('%s', (key, route) => {
    const samples = SAMPLES[key] ?? { valid: [], wrongShape: [], wrongValue: [], refinedAway: [] };
    const body = route.request.body;
    if (body === undefined) {
      throw new Error(`${key} takes no body`);
    }
    const handlerAccepts = (value: unknown) => body.safeParse(value).success;
    const documentAccepts = draft2020.compile(documentedBodySchema(route));
    const model = apiGatewayBodyModel(body);
    const modelAccepts = draft04.compile(model);

    it('a draft-04 model without value checks, references or integers', () => {
      const text = JSON.stringify(model);

      expect(model.$schema).toBe('http://json-schema.org/draft-04/schema#');
      expect(draft04.validateSchema(model)).toBe(true);
      expect(text).not.toMatch(/"(\$ref|minLength|maxLength|minimum|maximum|pattern|format|enum|default)"/);
      expect(text).not.toContain('"integer"');
    });

    it.each([
      ...samples.valid.map((sample) => [JSON.stringify(sample), sample] as const),
      ['the body the handler tests send', validBodyFor(route)] as const,
    ])('all accept %s', (_name, sample) => {
      expect(handlerAccepts(sample)).toBe(true);
      expect(documentAccepts(sample), JSON.stringify(documentAccepts.errors)).toBe(true);
      expect(modelAccepts(sample), JSON.stringify(modelAccepts.errors)).toBe(true);
    });

    it.each(samples.wrongShape.map((sample) => [JSON.stringify(sample), sample] as const))(
      'all refuse %s',
      (_name, sample) => {
        expect(handlerAccepts(sample)).toBe(false);
        expect(documentAccepts(sample)).toBe(false);
        expect(modelAccepts(sample)).toBe(false);
      },
    );

    it.each(samples.wrongValue.map((sample) => [JSON.stringify(sample), sample] as const))(
      'the handler and the document refuse %s, the model leaves it to the handler',
      (_name, sample) => {
        expect(handlerAccepts(sample)).toBe(false);
        expect(documentAccepts(sample)).toBe(false);
        expect(modelAccepts(sample)).toBe(true);
      },
    );

    it.each(samples.refinedAway.map((sample) => [JSON.stringify(sample), sample] as const))(
      'only the handler refuses %s (a rule checked in code)',
      (_name, sample) => {
        expect(handlerAccepts(sample)).toBe(false);
        expect(documentAccepts(sample)).toBe(true);
        expect(modelAccepts(sample)).toBe(true);
      },
    );

    it.each(samples.valid.map((sample) => [JSON.stringify(sample), sample] as const))(
      'the route handler itself (these schemas are the ones it validates with) accepts %s',
      async (_name, sample) => {
        const api = apiWithRecordingServices();
        const event = eventFor(route, {
          body: JSON.stringify(sample),
          headers: { 'Content-Type': 'application/json' },
        });

        const response = await api.handlers[route.function](event, lambdaContext());

        expect(response.statusCode, response.body).toBeLessThan(300);
        expect(api.serviceCalls()).toBe(1);
      },
    );

    it.each(
      [...samples.wrongShape, ...samples.wrongValue, ...samples.refinedAway].map(
        (sample) => [JSON.stringify(sample), sample] as const,
      ),
    )('the route handler itself refuses %s with a 400 naming each fault', async (_name, sample) => {
      const api = apiWithRecordingServices();
      const event = eventFor(route, {
        body: JSON.stringify(sample),
        headers: { 'Content-Type': 'application/json' },
      });

      const response = await api.handlers[route.function](event, lambdaContext());
      const { error } = JSON.parse(response.body) as { error: { code: string; reasons: string[] } };

      expect(response.statusCode).toBe(400);
      expect(error.code).toBe('VALIDATION_FAILED');
      expect(error.reasons.length).toBeGreaterThan(0);
      expect(api.serviceCalls()).toBe(0);
    });

    it('the model accepts every generated body the handler accepts', () => {
      // Bodies made of the fields of the valid samples (kept, dropped, swapped between samples or
      // replaced by any JSON), plus an unknown field now and then.
      const fields = new Map<string, unknown[]>();
      for (const sample of [...samples.valid, validBodyFor(route)] as Record<string, unknown>[]) {
        for (const [name, value] of Object.entries(sample)) {
          fields.set(name, [...(fields.get(name) ?? []), value]);
        }
      }
      const field = (values: unknown[]) =>
        fc.option(
          fc.oneof(
            { arbitrary: fc.constantFrom(...values), weight: 4 },
            { arbitrary: fc.jsonValue({ maxDepth: 3 }), weight: 1 },
          ),
          { nil: undefined, freq: 4 },
        );
      const generated = fc
        .tuple(
          fc.record(Object.fromEntries([...fields].map(([name, values]) => [name, field(values)]))),
          fc.oneof(
            { arbitrary: fc.constant(undefined), weight: 9 },
            { arbitrary: fc.jsonValue({ maxDepth: 1 }), weight: 1 },
          ),
        )
        .map(([record, extra]) => ({
          ...Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined)),
          ...(extra === undefined ? {} : { extra }),
        }));
      let accepted = 0;

      fc.assert(
        fc.property(generated, (candidate) => {
          if (handlerAccepts(candidate)) {
            accepted += 1;
            expect(modelAccepts(candidate), JSON.stringify(candidate)).toBe(true);
          }
        }),
        { numRuns: 500 },
      );

      // Not vacuous: a good share of the bodies got past the handler's schema.
      expect(accepted).toBeGreaterThan(25);
    });
  });
});
