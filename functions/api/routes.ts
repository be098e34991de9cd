/**
 * The REST API's routes, in one table that both the local server (`local/local-platform.ts`) and
 * the CDK API (`cdk/constructs/tenantflow-api.ts`) are built from, so the two cannot disagree about
 * what exists and who may call it.
 */
export type ApiFunctionName = 'tenants' | 'executions' | 'health';

export interface ApiRoute {
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** API Gateway resource path, with `{param}` placeholders. */
  readonly resource: string;
  /** Which Lambda handler serves the route (`functions/api/<name>.ts`). */
  readonly function: ApiFunctionName;
  /**
   * `admin`: IAM (SigV4) in AWS, the bearer admin token locally. `tenant`: the Lambda REQUEST
   * authorizer (`authorizer.ts`), which takes a tenant API key or the admin token. `none`: open.
   */
  readonly authorization: 'admin' | 'tenant' | 'none';
  /**
   * `json`: the request carries a JSON object body, which API Gateway checks is an object before
   * the handler validates it. Absent: no body is expected (a model there would refuse the empty
   * body clients send).
   */
  readonly body?: 'json';
}

export const API_ROUTES: readonly ApiRoute[] = [
  { method: 'GET', resource: '/health', function: 'health', authorization: 'none' },
  { method: 'POST', resource: '/tenants', function: 'tenants', authorization: 'admin', body: 'json' },
  { method: 'GET', resource: '/tenants', function: 'tenants', authorization: 'admin' },
  { method: 'GET', resource: '/tenants/{tenantId}', function: 'tenants', authorization: 'admin' },
  {
    method: 'PATCH',
    resource: '/tenants/{tenantId}',
    function: 'tenants',
    authorization: 'admin',
    body: 'json',
  },
  { method: 'DELETE', resource: '/tenants/{tenantId}', function: 'tenants', authorization: 'admin' },
  { method: 'POST', resource: '/tenants/{tenantId}/activate', function: 'tenants', authorization: 'admin' },
  { method: 'POST', resource: '/tenants/{tenantId}/deactivate', function: 'tenants', authorization: 'admin' },
  {
    method: 'POST',
    resource: '/tenants/{tenantId}/rotate-credentials',
    function: 'tenants',
    authorization: 'admin',
  },
  { method: 'POST', resource: '/tenants/{tenantId}/api-key', function: 'tenants', authorization: 'admin' },
  { method: 'GET', resource: '/recovery-events', function: 'tenants', authorization: 'admin' },
  { method: 'GET', resource: '/workflows', function: 'executions', authorization: 'tenant' },
  {
    method: 'POST',
    resource: '/tenants/{tenantId}/executions',
    function: 'executions',
    authorization: 'tenant',
    body: 'json',
  },
  {
    method: 'GET',
    resource: '/tenants/{tenantId}/executions',
    function: 'executions',
    authorization: 'tenant',
  },
  {
    method: 'GET',
    resource: '/tenants/{tenantId}/executions/{executionId}',
    function: 'executions',
    authorization: 'tenant',
  },
  { method: 'GET', resource: '/tenants/{tenantId}/metrics', function: 'executions', authorization: 'tenant' },
];

/**
 * The bodies API Gateway itself answers with when the authorizer refuses a request (its "gateway
 * responses"), shaped like every other tenantflow error. CDK installs them; the local server uses
 * them too.
 */
export const GATEWAY_RESPONSES = {
  UNAUTHORIZED: {
    statusCode: 401,
    body: {
      error: {
        code: 'UNAUTHENTICATED',
        message: 'Missing or invalid credentials. Send "Authorization: Bearer <tenant API key>".',
      },
    },
  },
  ACCESS_DENIED: {
    statusCode: 403,
    body: {
      error: { code: 'FORBIDDEN', message: 'These credentials do not grant access to this resource.' },
    },
  },
} as const;
