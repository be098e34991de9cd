import { isUtf8 } from 'node:buffer';
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type {
  APIGatewayAuthorizerResult,
  APIGatewayProxyEvent,
  APIGatewayProxyResult,
  APIGatewayRequestAuthorizerEvent,
  Context,
} from 'aws-lambda';
import { createLambdaContext } from './lambda-context.js';

export type ProxyHandler = (event: APIGatewayProxyEvent, context: Context) => Promise<APIGatewayProxyResult>;

/** A Lambda REQUEST authorizer, as API Gateway invokes it. */
export type RequestAuthorizerHandler = (
  event: APIGatewayRequestAuthorizerEvent,
  context: Context,
) => Promise<APIGatewayAuthorizerResult>;

/** One answer API Gateway gives itself (a gateway response). */
export interface GatewayResponse {
  readonly statusCode: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body: unknown;
}

/** What API Gateway answers itself when the authorizer refuses or fails (its gateway responses). */
export interface GatewayResponses {
  readonly UNAUTHORIZED: GatewayResponse;
  readonly ACCESS_DENIED: GatewayResponse;
  /** The authorizer threw something other than `Unauthorized`. @default API Gateway's 500 */
  readonly AUTHORIZER_FAILURE?: GatewayResponse;
}

export interface LocalRoute {
  readonly method: string;
  /** API Gateway resource path, e.g. `/tenants/{tenantId}`. */
  readonly resource: string;
  readonly functionName: string;
  readonly handler: ProxyHandler;
  /** Runs before the handler, as a REQUEST authorizer with `Authorization` as identity source. */
  readonly authorizer?: RequestAuthorizerHandler;
}

export interface LocalApiServerOptions {
  readonly routes: readonly LocalRoute[];
  readonly stage?: string;
  /** API Gateway's own payload limit is 10 MB; locally we refuse earlier to keep memory bounded. */
  readonly maxBodyBytes?: number;
  readonly onHandlerCrash?: (error: unknown) => void;
  readonly gatewayResponses?: GatewayResponses;
}

/** How long an idle kept-alive connection stays open: longer than any client keeps one. */
export const KEEP_ALIVE_TIMEOUT_MS = 65_000;

const serverDefaults = {
  stage: 'local',
  maxBodyBytes: 1024 * 1024,
  onHandlerCrash: () => {},
  gatewayResponses: {
    UNAUTHORIZED: { statusCode: 401, body: { message: 'Unauthorized' } },
    ACCESS_DENIED: { statusCode: 403, body: { message: 'User is not authorized to access this resource' } },
  } as GatewayResponses,
};

/**
 * An HTTP server that does locally what API Gateway (REST, Lambda proxy integration) does in AWS:
 * it matches the route, turns the request into an `APIGatewayProxyEvent`, invokes the very same
 * handler the Lambda runs, and turns the result back into a response.
 *
 * @example
 * ```ts
 * const server = createLocalApiServer({ routes: [{ method: 'GET', resource: '/health', functionName: 'health', handler }] });
 * server.listen(3000);
 * ```
 */
export function createLocalApiServer(options: LocalApiServerOptions): Server {
  const settings = { ...serverDefaults, ...options };
  const compiled = settings.routes.map((route) => ({ ...route, match: compileResource(route.resource) }));

  async function serveLikeApiGateway(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = requestUrl(req.url ?? '/');
    if (url === undefined) {
      return sendJson(res, 400, {
        error: { code: 'BAD_REQUEST', message: 'The request target is not a valid URL path' },
      });
    }
    const path = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, '') : url.pathname;
    const method = (req.method ?? 'GET').toUpperCase();
    const onPath = compiled
      .map((route) => ({ route, params: route.match(path) }))
      .filter((candidate) => candidate.params !== undefined);
    const hit = onPath.find((candidate) => candidate.route.method === method);
    if (hit === undefined || hit.params === undefined) {
      if (onPath.length > 0) {
        const allow = [...new Set(onPath.map((candidate) => candidate.route.method))].join(', ');
        return sendJson(
          res,
          405,
          { error: { code: 'METHOD_NOT_ALLOWED', message: `${method} is not allowed on ${path}` } },
          { allow },
        );
      }
      return sendJson(res, 404, {
        error: { code: 'ROUTE_NOT_FOUND', message: `No route for ${method} ${path}` },
      });
    }

    let body: Buffer;
    try {
      body = await readBody(req, settings.maxBodyBytes);
    } catch {
      return sendJson(res, 413, {
        error: { code: 'PAYLOAD_TOO_LARGE', message: `Request body exceeds ${settings.maxBodyBytes} bytes` },
      });
    }

    const requestId = randomUUID();
    const event = toApiGatewayEvent(req, {
      url,
      path,
      method,
      resource: hit.route.resource,
      pathParameters: hit.params,
      body,
      requestId,
      stage: settings.stage,
    });
    if (hit.route.authorizer !== undefined) {
      const refusal = await authorizeLikeApiGateway(
        hit.route.authorizer,
        event,
        settings.gatewayResponses,
        (error) => settings.onHandlerCrash(error),
      );
      if (refusal !== undefined) {
        return sendJson(res, refusal.statusCode, refusal.body, { ...refusal.headers });
      }
    }
    try {
      const result = await hit.route.handler(event, apiLambdaContext(hit.route.functionName, requestId));
      sendResult(res, result);
    } catch (error) {
      // A handler that throws past its error middleware: API Gateway answers 502 in that case too.
      settings.onHandlerCrash(error);
      sendJson(res, 502, { message: 'Internal server error' });
    }
  }

  const server = createServer(function serveRequest(req, res) {
    // A listener's rejected promise is unhandled, and an unhandled rejection ends the process: one
    // odd request must cost a 500, never the whole local stack.
    serveLikeApiGateway(req, res).catch((error: unknown) => {
      settings.onHandlerCrash(error);
      if (res.headersSent) {
        res.destroy();
      } else {
        sendJson(res, 500, { message: 'Internal server error' });
      }
    });
  });
  // Node closes an idle kept-alive connection after 5 s. A client that sends on it just as that
  // happens gets ECONNRESET, and a server that was paused (SIGSTOP, a laptop asleep, a debugger)
  // longer than that closes every such connection the moment it resumes, under requests already
  // sent. Keeping idle connections longer than clients do (undici keeps its idle sockets 4 s,
  // load balancers 60 s) leaves the closing to them.
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.headersTimeout = KEEP_ALIVE_TIMEOUT_MS + 1_000;
  return server;
}

/**
 * The request target as a URL, or `undefined` when it is none (`http://[`, `*`). An origin-form
 * target (`/path?query`) is always read as a path, even one starting with `//`, which
 * `new URL(target, base)` would take for a host name.
 */
function requestUrl(target: string): URL | undefined {
  try {
    return target.startsWith('/') ? new URL(`http://localhost${target}`) : new URL(target);
  } catch {
    return undefined;
  }
}

/**
 * What API Gateway does for a route with a Lambda REQUEST authorizer: no `Authorization` header
 * (the identity source) is a 401 without calling it; `Error('Unauthorized')` is a 401; a policy
 * that does not allow `execute-api:Invoke` on this method ARN is a 403; otherwise the authorizer's
 * context lands in `requestContext.authorizer`. Returns the refusal, or `undefined` to go on.
 */
async function authorizeLikeApiGateway(
  authorizer: RequestAuthorizerHandler,
  event: APIGatewayProxyEvent,
  responses: GatewayResponses,
  onCrash: (error: unknown) => void,
): Promise<GatewayResponse | undefined> {
  const authorization = Object.entries(event.headers).find(
    ([name]) => name.toLowerCase() === 'authorization',
  )?.[1];
  if (authorization === undefined || authorization.length === 0) {
    return responses.UNAUTHORIZED;
  }
  const { requestContext } = event;
  const methodArn = `arn:aws:execute-api:local:${requestContext.accountId}:${requestContext.apiId}/${requestContext.stage}/${event.httpMethod}${event.path}`;
  let result: APIGatewayAuthorizerResult;
  try {
    result = await authorizer(
      {
        type: 'REQUEST',
        methodArn,
        resource: event.resource,
        path: event.path,
        httpMethod: event.httpMethod,
        headers: event.headers,
        multiValueHeaders: event.multiValueHeaders,
        pathParameters: event.pathParameters,
        queryStringParameters: event.queryStringParameters,
        multiValueQueryStringParameters: event.multiValueQueryStringParameters,
        stageVariables: event.stageVariables,
        requestContext: { ...event.requestContext, authorizer: undefined },
      },
      apiLambdaContext('authorizer', requestContext.requestId),
    );
  } catch (error) {
    if (error instanceof Error && error.message === 'Unauthorized') {
      return responses.UNAUTHORIZED;
    }
    onCrash(error);
    return responses.AUTHORIZER_FAILURE ?? { statusCode: 500, body: { message: null } };
  }
  if (!allows(result, methodArn)) {
    return responses.ACCESS_DENIED;
  }
  (event.requestContext as { authorizer: unknown }).authorizer = {
    ...result.context,
    principalId: result.principalId,
  };
  return undefined;
}

/** IAM evaluation, for the statements an authorizer returns: an explicit Deny wins, then any Allow. */
function allows(result: APIGatewayAuthorizerResult, methodArn: string): boolean {
  const matching = (effect: string) =>
    result.policyDocument.Statement.some((statement) => {
      const { Effect } = statement;
      const action = 'Action' in statement ? statement.Action : undefined;
      const resource = 'Resource' in statement ? statement.Resource : undefined;
      const actions = [action ?? []].flat();
      const resources = [resource ?? []].flat();
      return (
        Effect === effect &&
        actions.some((a) => a === '*' || a === 'execute-api:*' || a === 'execute-api:Invoke') &&
        resources.some((pattern) => wildcardMatch(pattern, methodArn))
      );
    });
  return !matching('Deny') && matching('Allow');
}

/** IAM resource matching: `*` matches any run of characters (slashes included), `?` any one. */
function wildcardMatch(pattern: string, value: string): boolean {
  const regex = pattern
    .split('')
    .map((char) => (char === '*' ? '.*' : char === '?' ? '.' : char.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${regex}$`).test(value);
}

/** `/tenants/{tenantId}` → a matcher returning decoded path parameters, or undefined. */
function compileResource(resource: string): (path: string) => Record<string, string> | undefined {
  const names: string[] = [];
  const pattern = resource
    .split('/')
    .map((segment) => {
      const param = /^\{(\w+)\}$/.exec(segment);
      if (param?.[1] !== undefined) {
        names.push(param[1]);
        return '([^/]+)';
      }
      return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('/');
  const regex = new RegExp(`^${pattern}$`);
  return (path) => {
    const match = regex.exec(path);
    if (match === null) {
      return undefined;
    }
    const params: Record<string, string> = {};
    names.forEach((name, index) => {
      params[name] = safeDecode(match[index + 1] ?? '');
    });
    return params;
  };
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

interface EventParts {
  readonly url: URL;
  readonly path: string;
  readonly method: string;
  readonly resource: string;
  readonly pathParameters: Record<string, string>;
  readonly body: Buffer;
  readonly requestId: string;
  readonly stage: string;
}

/** Builds the REST (v1) proxy event API Gateway would send for this request. */
export function toApiGatewayEvent(req: IncomingMessage, parts: EventParts): APIGatewayProxyEvent {
  // Maps, not plain objects: a client's header or parameter named `constructor` or `__proto__` would
  // otherwise read a value off Object.prototype. Object.fromEntries makes them own properties.
  const headers = new Map<string, string>();
  const multiValueHeaders = new Map<string, string[]>();
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i] ?? '';
    const value = req.rawHeaders[i + 1] ?? '';
    const earlier = headers.get(name);
    headers.set(name, earlier === undefined ? value : `${earlier},${value}`);
    multiValueHeaders.set(name, [...(multiValueHeaders.get(name) ?? []), value]);
  }
  const query = new Map<string, string>();
  const multiQuery = new Map<string, string[]>();
  for (const [key, value] of parts.url.searchParams) {
    query.set(key, value);
    multiQuery.set(key, [...(multiQuery.get(key) ?? []), value]);
  }
  const hasQuery = query.size > 0;
  // Bytes that are not UTF-8 go to the handler base64-encoded, as API Gateway hands over a binary
  // media type, rather than decoded with U+FFFD in place of each bad byte: the handler can then
  // refuse them (400) instead of storing text the client never sent.
  const textBody = isUtf8(parts.body);
  const now = Date.now();
  return {
    resource: parts.resource,
    path: parts.path,
    httpMethod: parts.method,
    headers: Object.fromEntries(headers),
    multiValueHeaders: Object.fromEntries(multiValueHeaders),
    queryStringParameters: hasQuery ? Object.fromEntries(query) : null,
    multiValueQueryStringParameters: hasQuery ? Object.fromEntries(multiQuery) : null,
    pathParameters: Object.keys(parts.pathParameters).length > 0 ? parts.pathParameters : null,
    stageVariables: null,
    body: parts.body.length === 0 ? null : parts.body.toString(textBody ? 'utf8' : 'base64'),
    isBase64Encoded: parts.body.length > 0 && !textBody,
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      authorizer: null,
      protocol: `HTTP/${req.httpVersion}`,
      httpMethod: parts.method,
      path: `/${parts.stage}${parts.path}`,
      stage: parts.stage,
      requestId: parts.requestId,
      requestTimeEpoch: now,
      resourceId: 'local',
      resourcePath: parts.resource,
      // Never an IAM identity: locally, admin rights come only from the bearer token.
      identity: anonymousIdentity(req.socket.remoteAddress ?? '127.0.0.1', req.headers['user-agent'] ?? null),
    },
  };
}

/**
 * The caller identity API Gateway sets on a request that carries no AWS credentials: every field
 * null but the source address and user agent. Never an IAM identity, so admin rights can only come
 * from a verified token.
 */
export function anonymousIdentity(
  sourceIp: string,
  userAgent: string | null,
): APIGatewayProxyEvent['requestContext']['identity'] {
  return {
    accessKey: null,
    accountId: null,
    apiKey: null,
    apiKeyId: null,
    caller: null,
    clientCert: null,
    cognitoAuthenticationProvider: null,
    cognitoAuthenticationType: null,
    cognitoIdentityId: null,
    cognitoIdentityPoolId: null,
    principalOrgId: null,
    sourceIp,
    user: null,
    userAgent,
    userArn: null,
  };
}

/** Locally every API function gets the deployed defaults of a TenantFunction: 512 MB, 30 s. */
function apiLambdaContext(functionName: string, requestId: string): Context {
  return createLambdaContext({
    functionName: `tenantflow-local-${functionName}`,
    awsRequestId: requestId,
    timeoutMs: 30_000,
    memoryLimitInMB: 512,
  });
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(new Error('body too large'));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function sendResult(res: ServerResponse, result: APIGatewayProxyResult): void {
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(result.headers ?? {})) {
    headers[name] = String(value);
  }
  for (const [name, values] of Object.entries(result.multiValueHeaders ?? {})) {
    headers[name] = values.map(String);
  }
  res.writeHead(result.statusCode, headers);
  res.end(result.isBase64Encoded ? Buffer.from(result.body, 'base64') : result.body);
}

function sendJson(
  res: ServerResponse,
  statusCode: number,
  body: unknown,
  extraHeaders: Record<string, string> = {},
): void {
  res.writeHead(statusCode, { 'content-type': 'application/json; charset=utf-8', ...extraHeaders });
  res.end(JSON.stringify(body));
}
