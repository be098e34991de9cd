/**
 * The REST API's routes, in one table that both the local server and (later) the CDK API read,
 * so the two cannot disagree about what exists and who may call it.
 */
export type ApiFunctionName = 'tenants' | 'health';

export interface ApiRoute {
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** API Gateway resource path, with `{param}` placeholders. */
  readonly resource: string;
  /** Which Lambda handler serves the route (`functions/api/<name>.ts`). */
  readonly function: ApiFunctionName;
  /** `admin`: IAM (SigV4) in AWS, the bearer admin token locally. `none`: open. */
  readonly authorization: 'admin' | 'none';
}

export const API_ROUTES: readonly ApiRoute[] = [
  { method: 'GET', resource: '/health', function: 'health', authorization: 'none' },
  { method: 'POST', resource: '/tenants', function: 'tenants', authorization: 'admin' },
  { method: 'GET', resource: '/tenants', function: 'tenants', authorization: 'admin' },
  { method: 'GET', resource: '/tenants/{tenantId}', function: 'tenants', authorization: 'admin' },
  { method: 'PATCH', resource: '/tenants/{tenantId}', function: 'tenants', authorization: 'admin' },
  { method: 'DELETE', resource: '/tenants/{tenantId}', function: 'tenants', authorization: 'admin' },
  { method: 'POST', resource: '/tenants/{tenantId}/activate', function: 'tenants', authorization: 'admin' },
  { method: 'POST', resource: '/tenants/{tenantId}/deactivate', function: 'tenants', authorization: 'admin' },
  {
    method: 'POST',
    resource: '/tenants/{tenantId}/rotate-credentials',
    function: 'tenants',
    authorization: 'admin',
  },
];
