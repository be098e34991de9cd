/**
 * The REST API as an OpenAPI 3.1 document, generated from the route table (`API_ROUTES`) and the
 * zod schemas the handlers validate with, so the description cannot drift from what is served:
 * a route without schemas does not compile, and a schema change shows in the document at once.
 * `GET /openapi.json` serves it (`health.ts`), locally and in AWS.
 *
 * The same schemas become API Gateway's request models (`apiGatewayBodyModel`), in the JSON Schema
 * draft-04 API Gateway reads.
 */
import { z } from '@tenantflow/shared/kernel/zod';
import manifest from '../../package.json' with { type: 'json' };
import { API_ROUTES, type ApiRoute, takesJsonBody } from './routes.js';

/** A JSON Schema (or a part of one) as zod emits it. */
export type JsonSchema = { [keyword: string]: unknown };

/** The error statuses the API answers with; which ones a route documents is `errorStatusesOf`. */
export type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 415 | 423 | 429 | 500 | 503;

/**
 * The one error table: what each status means in this API. Every error body has the same shape
 * (`ERROR_BODY_SCHEMA`), its `code` the stable identifier of `shared/kernel/errors.ts`.
 */
export const ERROR_RESPONSES: Readonly<Record<ErrorStatus, string>> = {
  400: 'VALIDATION_FAILED: the parameters or the body are invalid. `error.reasons` lists every fault, each prefixed with where it is (`path.tenantId: …`, `query.limit: …`, `body.name: …`)',
  401: 'UNAUTHENTICATED: no credentials, or credentials that are not valid',
  403: "FORBIDDEN: valid credentials that do not reach this resource (another tenant's path)",
  404: 'NOT_FOUND (TENANT_NOT_FOUND, EXECUTION_NOT_FOUND, WORKFLOW_NOT_FOUND, …): what the request names does not exist',
  409: 'CONFLICT (TENANT_ALREADY_EXISTS, TENANT_STATE_CONFLICT, …): the request conflicts with the current state of its target',
  413: "PAYLOAD_TOO_LARGE: the body is larger than the server takes, or than the tenant's `limits.maxInputBytes` allows",
  415: 'UNSUPPORTED_MEDIA_TYPE: the body was not sent as `Content-Type: application/json`',
  423: 'TENANT_INACTIVE: the tenant is deactivated (no work runs for it), or still being onboarded or offboarded',
  429: "LIMIT_EXCEEDED: a tenant limit is reached (concurrent executions, schedules). In AWS, API Gateway also answers 429 itself past the stage's request rate",
  500: 'INTERNAL_ERROR: an unexpected failure; `error.requestId` names it in the logs',
  503: 'SERVICE_UNAVAILABLE: the database is unreachable; retry after `Retry-After` seconds',
};

/** `{error: {code, message, …details}}`: the body of every error response. */
export const ERROR_BODY_SCHEMA: JsonSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', description: 'Stable identifier to branch on, e.g. `TENANT_NOT_FOUND`' },
        message: { type: 'string', description: 'What went wrong, for a person' },
        reasons: {
          type: 'array',
          items: { type: 'string' },
          description: 'VALIDATION_FAILED: every fault found, each prefixed with where it is',
        },
        requestId: { type: 'string', description: '500 and 503: the request to look for in the logs' },
      },
      additionalProperties: true,
    },
  },
};

/**
 * The statuses a route can fail with: 400 when it validates any input, 401 and 403 when it needs
 * credentials (503 too: checking them reads the database), 404 when its path names something, 423
 * on a tenant route of a tenant (one that is not active), 413 and 415 when it takes a body, 429
 * and 500 on every route (the stage is throttled), and the ones the route names itself (409, 503).
 */
export function errorStatusesOf(route: ApiRoute): ErrorStatus[] {
  const statuses = new Set<ErrorStatus>(route.errors ?? []);
  if (Object.values(route.request).some((schema) => schema !== undefined)) {
    statuses.add(400);
  }
  if (route.authorization !== 'none') {
    statuses.add(401).add(403).add(503);
  }
  const parameters = pathParameterNames(route.resource);
  if (parameters.length > 0) {
    statuses.add(404);
  }
  if (route.authorization === 'tenant' && parameters.includes('tenantId')) {
    statuses.add(423);
  }
  if (takesJsonBody(route)) {
    statuses.add(413).add(415);
  }
  statuses.add(429).add(500);
  return [...statuses].sort((a, b) => a - b);
}

/** `postTenantsByTenantIdExecutions`: a stable, unique operation id from method and resource. */
export function operationIdOf(route: Pick<ApiRoute, 'method' | 'resource'>): string {
  const words = route.resource
    .split(/[/.-]/)
    .filter((segment) => segment.length > 0)
    .map((segment) => {
      const parameter = /^\{(\w+)\}$/.exec(segment)?.[1];
      return parameter === undefined ? capitalize(segment) : `By${capitalize(parameter)}`;
    });
  return `${route.method.toLowerCase()}${words.join('')}`;
}

export interface OpenApiOptions {
  /** @default API_ROUTES */
  readonly routes?: readonly ApiRoute[];
  /** @default the version in package.json */
  readonly version?: string;
}

/**
 * The OpenAPI 3.1 document of `routes`: one operation per route, its path and query parameters
 * and JSON body from the route's zod schemas (JSON Schema 2020-12, the request side: what a client
 * sends, defaults not yet applied), its security, its success and the error responses that apply.
 * Pure: the same routes give the same document.
 *
 * @example
 * ```ts
 * const document = buildOpenApiDocument();
 * document.paths['/tenants'].post.requestBody;
 * ```
 */
export function buildOpenApiDocument(options: OpenApiOptions = {}): JsonSchema {
  const routes = options.routes ?? API_ROUTES;
  const schemas: Record<string, JsonSchema> = { Error: ERROR_BODY_SCHEMA };
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const route of routes) {
    const operations = paths[route.resource] ?? {};
    paths[route.resource] = operations;
    const method = route.method.toLowerCase();
    if (operations[method] !== undefined) {
      throw new Error(`${route.method} ${route.resource} is in the route table twice`);
    }
    operations[method] = operationOf(route, schemas);
  }
  const usedStatuses = new Set(routes.flatMap(errorStatusesOf));
  return {
    openapi: '3.1.0',
    info: {
      title: 'tenantflow',
      version: options.version ?? manifest.version,
      description: [
        'Multi-tenant workflows: tenant administration (admin routes) and each tenant’s workflow executions and schedules (tenant routes).',
        'Generated from the route table (`functions/api/routes.ts`) and the zod schemas the handlers validate with (`functions/api/request-schemas.ts`).',
        'Every error answers `{"error": {"code", "message", …}}`, with the codes listed per status.',
      ].join(' '),
    },
    // Relative: the URL this document was fetched from, without `openapi.json`. That keeps the
    // stage (`https://<api-id>.execute-api.<region>.amazonaws.com/<stage>/`) or a custom domain's
    // base path in AWS, and is `http://127.0.0.1:3000/` under `npm start`.
    servers: [{ url: '.', description: 'The URL this document is served at, without openapi.json' }],
    tags: [...new Set(routes.map((route) => route.function))].map((name) => ({ name })),
    paths,
    components: {
      schemas,
      responses: Object.fromEntries(
        [...usedStatuses]
          .sort((a, b) => a - b)
          .map((status) => [
            errorResponseName(status),
            {
              description: ERROR_RESPONSES[status],
              content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
            },
          ]),
      ),
      securitySchemes: {
        tenantApiKey: {
          type: 'http',
          scheme: 'bearer',
          description:
            'A tenant API key (`Authorization: Bearer tfk_…`), from `POST /tenants` or `POST /tenants/{tenantId}/api-key`. It reaches its own tenant’s routes only. Tenant routes take the admin token too, on any tenant.',
        },
        adminToken: {
          type: 'http',
          scheme: 'bearer',
          description:
            'Locally (`npm start`): the admin token (`Authorization: Bearer <admin token>`). In AWS, admin routes use IAM instead: sign each request with SigV4 (service `execute-api`) using credentials allowed `execute-api:Invoke` on them; no admin token exists there.',
        },
      },
    },
  };
}

function operationOf(route: ApiRoute, schemas: Record<string, JsonSchema>): JsonSchema {
  const operationId = operationIdOf(route);
  const { pathParameters, queryStringParameters, body } = route.request;
  const parameters = [
    ...pathParametersOf(route, pathParameters, schemas),
    ...parametersOf('query', queryStringParameters, schemas, operationId),
  ];
  const { status, description } = route.success;
  return {
    operationId,
    summary: route.summary,
    tags: [route.function],
    security: securityOf(route),
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(body === undefined
      ? {}
      : {
          requestBody: {
            required: true,
            content: {
              'application/json': { schema: hoistDefinitions(requestJsonSchema(body), schemas, operationId) },
            },
          },
        }),
    responses: {
      [String(status)]: {
        description,
        ...(status === 204 ? {} : { content: { 'application/json': { schema: { type: 'object' } } } }),
      },
      ...Object.fromEntries(
        errorStatusesOf(route).map((error) => [
          String(error),
          { $ref: `#/components/responses/${errorResponseName(error)}` },
        ]),
      ),
    },
  };
}

function securityOf(route: ApiRoute): Record<string, string[]>[] {
  switch (route.authorization) {
    case 'admin':
      return [{ adminToken: [] }];
    case 'tenant':
      return [{ tenantApiKey: [] }, { adminToken: [] }];
    case 'none':
      return [];
  }
}

/** Every `{param}` of the resource, each with its schema; a placeholder without one, or a schema without a placeholder, is a mistake in the table. */
function pathParametersOf(
  route: ApiRoute,
  schema: z.ZodType | undefined,
  schemas: Record<string, JsonSchema>,
): JsonSchema[] {
  const placeholders = pathParameterNames(route.resource);
  const parameters = parametersOf('path', schema, schemas, operationIdOf(route));
  const named = parameters.map((parameter) => String(parameter.name));
  if ([...placeholders].sort().join() !== [...named].sort().join()) {
    throw new Error(
      `${route.method} ${route.resource}: the path has {${placeholders.join('}, {')}} but its pathParameters schema names ${named.length > 0 ? named.join(', ') : 'none'}`,
    );
  }
  return placeholders.map((name) => parameters.find((parameter) => parameter.name === name) as JsonSchema);
}

/** One parameter per property of an object schema (path parameters are always required). */
function parametersOf(
  location: 'path' | 'query',
  schema: z.ZodType | undefined,
  schemas: Record<string, JsonSchema>,
  operationId: string,
): JsonSchema[] {
  if (schema === undefined) {
    return [];
  }
  const json = hoistDefinitions(requestJsonSchema(schema), schemas, operationId);
  const properties = json.properties as Record<string, JsonSchema> | undefined;
  if (json.type !== 'object' || properties === undefined) {
    throw new Error(`${operationId}: the ${location} schema must be an object of named parameters`);
  }
  const required = new Set((json.required as string[] | undefined) ?? []);
  return Object.entries(properties).map(([name, property]) => ({
    name,
    in: location,
    required: location === 'path' || required.has(name),
    schema: property,
  }));
}

/**
 * A request schema as JSON Schema 2020-12 (OpenAPI 3.1's dialect), the input side: optional and
 * defaulted fields are not required, coerced ones show what a client sends. Refinements (a tenant
 * id's rules, cron expressions) are the handler's, named in its 400; they do not show here.
 */
function requestJsonSchema(schema: z.ZodType): JsonSchema {
  const { $schema: _dialect, ...json } = z.toJSONSchema(schema, {
    target: 'draft-2020-12',
    io: 'input',
    unrepresentable: 'any',
  }) as JsonSchema;
  return json;
}

/**
 * Moves a schema's `$defs` (a recursive part such as `z.json()`) to `components.schemas`, and
 * points its references there: inside the document, `#/$defs/…` would resolve against the document
 * root. The same definition from several routes becomes one component.
 */
function hoistDefinitions(
  schema: JsonSchema,
  schemas: Record<string, JsonSchema>,
  prefix: string,
): JsonSchema {
  const { $defs, ...rest } = schema as { $defs?: Record<string, JsonSchema> };
  if ($defs === undefined) {
    return rest;
  }
  const names = new Map<string, string>();
  for (const [local, definition] of Object.entries($defs)) {
    const canonical = canonicalDefinition(local, definition);
    const existing = Object.entries(schemas).find(
      ([name, known]) => canonicalDefinition(name, known, '#/components/schemas/') === canonical,
    );
    const name =
      existing?.[0] ??
      (canonical === JSON_VALUE_DEFINITION ? 'JsonValue' : `${prefix}_${local.replace(/^_+/, '')}`);
    names.set(local, name);
  }
  const rewrite = (node: unknown): unknown => {
    if (Array.isArray(node)) {
      return node.map(rewrite);
    }
    if (typeof node !== 'object' || node === null) {
      return node;
    }
    return Object.fromEntries(
      Object.entries(node).map(([key, value]) => {
        const local =
          key === '$ref' && typeof value === 'string' ? /^#\/\$defs\/(.+)$/.exec(value)?.[1] : undefined;
        return [
          key,
          local === undefined ? rewrite(value) : `#/components/schemas/${names.get(local) ?? local}`,
        ];
      }),
    );
  };
  for (const [local, definition] of Object.entries($defs)) {
    const name = names.get(local) ?? local;
    schemas[name] ??= rewrite(definition) as JsonSchema;
  }
  return rewrite(rest) as JsonSchema;
}

/** A definition with references to itself made anonymous, to tell the same definition apart under two names. */
function canonicalDefinition(name: string, definition: JsonSchema, base = '#/$defs/'): string {
  return JSON.stringify(definition).replaceAll(JSON.stringify(`${base}${name}`), '"#self"');
}

/** How `z.json()` (any JSON value) comes out, to name it `JsonValue` wherever it is used. */
const JSON_VALUE_DEFINITION = (() => {
  const { $defs = {} } = requestJsonSchema(z.object({ value: z.json() })) as {
    $defs?: Record<string, JsonSchema>;
  };
  const [[local, definition] = ['', {}]] = Object.entries($defs);
  return canonicalDefinition(local, definition);
})();

/**
 * The model API Gateway checks a route's JSON body against (JSON Schema draft-04, which API Gateway
 * models use), from the body schema the handler validates with. The model refuses only what the
 * handler refuses too, so the handler stays the one that answers with the precise 400s: it keeps
 * the shape (types, required fields, fields the route does not take) and drops value checks
 * (lengths, ranges, patterns, formats, enumerations, defaults) and refinements. Each change only
 * loosens the schema:
 * - `integer` becomes `number`: draft-04 validators may refuse `1.0`, which is a whole number in
 *   JSON and to the handler;
 * - a reference (the recursive any-JSON-value of `z.json()`) becomes `{}`, any value;
 * - `oneOf` becomes `anyOf`: loosened branches may overlap.
 *
 * @example
 * ```ts
 * restApi.addModel('StartExecution', { contentType: 'application/json', schema: apiGatewayBodyModel(startExecution.body) });
 * ```
 */
export function apiGatewayBodyModel(body: z.ZodType): JsonSchema {
  const draft4 = z.toJSONSchema(body, {
    target: 'draft-4',
    io: 'input',
    unrepresentable: 'any',
  }) as JsonSchema;
  return loosenToShape(draft4) as JsonSchema;
}

/** The draft-04 keywords a model keeps; every other one is dropped (see `apiGatewayBodyModel`). */
const SHAPE_KEYWORDS = new Set([
  '$schema',
  'title',
  'description',
  'type',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'anyOf',
  'oneOf',
  'allOf',
]);

function loosenToShape(node: unknown): unknown {
  if (typeof node !== 'object' || node === null || Array.isArray(node)) {
    // `additionalProperties: false` and `true`.
    return node;
  }
  if ('$ref' in node) {
    return {};
  }
  const shape: JsonSchema = {};
  for (const [keyword, value] of Object.entries(node)) {
    if (!SHAPE_KEYWORDS.has(keyword)) {
      continue;
    }
    switch (keyword) {
      case 'properties':
        shape.properties = Object.fromEntries(
          Object.entries(value as JsonSchema).map(([name, property]) => [name, loosenToShape(property)]),
        );
        break;
      case 'items':
        shape.items = Array.isArray(value) ? value.map(loosenToShape) : loosenToShape(value);
        break;
      case 'anyOf':
      case 'oneOf':
        shape.anyOf = [
          ...((shape.anyOf as unknown[] | undefined) ?? []),
          ...(value as unknown[]).map(loosenToShape),
        ];
        break;
      case 'allOf': {
        // `{}` constrains nothing: `allOf: [{}]` (a loosened reference) is left out altogether.
        const parts = (value as unknown[]).map(loosenToShape).filter((part) => !isEmptyObject(part));
        if (parts.length > 0) {
          shape.allOf = parts;
        }
        break;
      }
      case 'additionalProperties':
        shape.additionalProperties = loosenToShape(value);
        break;
      case 'type':
        shape.type = Array.isArray(value)
          ? [...new Set(value.map((type) => (type === 'integer' ? 'number' : type)))]
          : value === 'integer'
            ? 'number'
            : value;
        break;
      default:
        shape[keyword] = value;
    }
  }
  return shape;
}

function isEmptyObject(value: unknown): boolean {
  return (
    typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length === 0
  );
}

/** The `{param}` names of a resource path, in order. */
export function pathParameterNames(resource: string): string[] {
  return [...resource.matchAll(/\{([^}]+)\}/g)].map((match) => match[1] ?? '');
}

function errorResponseName(status: ErrorStatus): string {
  return `Error${status}`;
}

function capitalize(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1);
}
