/**
 * The REST API's routes, in one table that the local server (`local/local-platform.ts`), the CDK
 * API (`cdk/constructs/tenantflow-api.ts`) and the OpenAPI document (`openapi.ts`, served at
 * `GET /openapi.json`) are all built from, so they cannot disagree about what exists, who may call
 * it and what it accepts.
 */
import type { RequestSchemas } from '@tenantflow/shared/http';
import {
  cancelExecution,
  createSchedule,
  executionPath,
  listExecutions,
  listRecoveryEvents,
  listSchedules,
  listTenants,
  noInput,
  registerTenant,
  rerunExecution,
  schedulePath,
  startExecution,
  tenantPath,
  updateSchedule,
  updateTenant,
} from './request-schemas.js';

export type ApiFunctionName = 'tenants' | 'executions' | 'schedules' | 'health';

/**
 * The refusals a route names for itself, beyond those its authorization, parameters and body
 * imply (`errorStatusesOf` in `openapi.ts` adds those): `409` a state conflict, `503` an open route
 * that answers it when the database is unreachable.
 */
export type RouteSpecificErrorStatus = 409 | 503;

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
   * What the route accepts: the very schemas its handler validates with (`request-schemas.ts`),
   * `noInput` for one that reads nothing. A `body` schema makes it a JSON-body route: API Gateway
   * gets a model of that body (`cdk/constructs/tenantflow-api.ts`); one without takes no body (a
   * model there would refuse the empty body clients send).
   */
  readonly request: RequestSchemas;
  /** One line saying what the route does, for the API description. */
  readonly summary: string;
  /** The status a success answers with, and what its body holds. */
  readonly success: { readonly status: 200 | 201 | 202 | 204; readonly description: string };
  /** @default none */
  readonly errors?: readonly RouteSpecificErrorStatus[];
}

/** Whether the route takes a JSON body: it has a body schema. */
export function takesJsonBody(route: Pick<ApiRoute, 'request'>): boolean {
  return route.request.body !== undefined;
}

export const API_ROUTES: readonly ApiRoute[] = [
  {
    method: 'GET',
    resource: '/health',
    function: 'health',
    authorization: 'none',
    request: noInput,
    summary: 'Liveness, with a database round trip',
    errors: [503],
    success: {
      status: 200,
      description: '`{status: "ok", stage, checks: {database}}`; 503 when the database is unreachable',
    },
  },
  {
    method: 'GET',
    resource: '/openapi.json',
    function: 'health',
    authorization: 'none',
    request: noInput,
    summary: 'This API described as an OpenAPI 3.1 document, generated from the route table',
    success: { status: 200, description: 'The OpenAPI document' },
  },
  {
    method: 'POST',
    resource: '/tenants',
    function: 'tenants',
    authorization: 'admin',
    request: registerTenant,
    summary: 'Register a tenant and start its onboarding',
    success: {
      status: 202,
      description:
        'The tenant (`status: "provisioning"`) and its `apiKey`, shown once; `Location: tenants/{tenantId}`',
    },
    errors: [409],
  },
  {
    method: 'GET',
    resource: '/tenants',
    function: 'tenants',
    authorization: 'admin',
    request: listTenants,
    summary: 'List tenants, a page at a time',
    success: { status: 200, description: '`{tenants: [...], nextToken?}`' },
  },
  {
    method: 'GET',
    resource: '/tenants/{tenantId}',
    function: 'tenants',
    authorization: 'admin',
    request: tenantPath,
    summary: 'Read a tenant',
    success: { status: 200, description: 'The tenant' },
  },
  {
    method: 'PATCH',
    resource: '/tenants/{tenantId}',
    function: 'tenants',
    authorization: 'admin',
    request: updateTenant,
    summary: "Change a tenant's name, metadata or config (JSON Merge Patches)",
    success: { status: 200, description: 'The tenant' },
    errors: [409],
  },
  {
    method: 'DELETE',
    resource: '/tenants/{tenantId}',
    function: 'tenants',
    authorization: 'admin',
    request: tenantPath,
    summary: 'Remove a deactivated tenant: start its offboarding',
    success: { status: 202, description: 'The tenant (`status: "deprovisioning"`), with its `Location`' },
    errors: [409],
  },
  {
    method: 'POST',
    resource: '/tenants/{tenantId}/activate',
    function: 'tenants',
    authorization: 'admin',
    request: tenantPath,
    summary: 'Activate a tenant',
    success: { status: 200, description: 'The tenant' },
    errors: [409],
  },
  {
    method: 'POST',
    resource: '/tenants/{tenantId}/deactivate',
    function: 'tenants',
    authorization: 'admin',
    request: tenantPath,
    summary: 'Deactivate a tenant: no work runs for it until it is activated again',
    success: { status: 200, description: 'The tenant' },
    errors: [409],
  },
  {
    method: 'POST',
    resource: '/tenants/{tenantId}/rotate-credentials',
    function: 'tenants',
    authorization: 'admin',
    request: tenantPath,
    summary: "Rotate the tenant's database password",
    success: { status: 200, description: '`{tenantId, rotatedAt}`; the password is stored, never returned' },
    errors: [409],
  },
  {
    method: 'POST',
    resource: '/tenants/{tenantId}/api-key',
    function: 'tenants',
    authorization: 'admin',
    request: tenantPath,
    summary: 'Issue a new tenant API key; the previous one stops working',
    success: { status: 201, description: '`{tenantId, apiKey, issuedAt}`; the key is shown once' },
    errors: [409],
  },
  {
    method: 'GET',
    resource: '/recovery-events',
    function: 'tenants',
    authorization: 'admin',
    request: listRecoveryEvents,
    summary: 'What the recovery job did and why, newest first',
    success: { status: 200, description: '`{events: [...], nextToken?}`' },
  },
  {
    method: 'GET',
    resource: '/workflows',
    function: 'executions',
    authorization: 'tenant',
    request: noInput,
    summary: 'The registered workflows, with the JSON Schema of their input',
    success: { status: 200, description: '`{workflows: [{name, description, inputSchema, tasks}]}`' },
  },
  {
    method: 'POST',
    resource: '/tenants/{tenantId}/executions',
    function: 'executions',
    authorization: 'tenant',
    request: startExecution,
    summary: 'Start a workflow execution',
    success: { status: 202, description: '`{executionId, status}`' },
    errors: [409],
  },
  {
    method: 'GET',
    resource: '/tenants/{tenantId}/executions',
    function: 'executions',
    authorization: 'tenant',
    request: listExecutions,
    summary: "List the tenant's executions, a page at a time",
    success: { status: 200, description: '`{executions: [...], nextToken?}`' },
  },
  {
    method: 'GET',
    resource: '/tenants/{tenantId}/executions/{executionId}',
    function: 'executions',
    authorization: 'tenant',
    request: executionPath,
    summary: 'Read an execution, with its tasks',
    success: { status: 200, description: 'The execution' },
  },
  {
    method: 'POST',
    resource: '/tenants/{tenantId}/executions/{executionId}/cancel',
    function: 'executions',
    authorization: 'tenant',
    request: cancelExecution,
    summary: 'Cancel a pending or running execution: it ends aborted, and the orchestrator stops it',
    success: {
      status: 202,
      description: '`{executionId, status: "aborted", cancelledAt, cancelledBy, alreadyCancelled}`',
    },
    errors: [409],
  },
  {
    method: 'POST',
    resource: '/tenants/{tenantId}/executions/{executionId}/rerun',
    function: 'executions',
    authorization: 'tenant',
    request: rerunExecution,
    summary: 'Rerun a failed execution from its failed task, keeping the tasks it committed',
    success: { status: 202, description: '`{executionId, status: "running", rerunCount}`' },
    errors: [409],
  },
  {
    method: 'GET',
    resource: '/tenants/{tenantId}/metrics',
    function: 'executions',
    authorization: 'tenant',
    request: tenantPath,
    summary: "The tenant's execution counts and durations",
    success: { status: 200, description: 'The metrics' },
  },
  {
    method: 'POST',
    resource: '/tenants/{tenantId}/schedules',
    function: 'schedules',
    authorization: 'tenant',
    request: createSchedule,
    summary: 'Create a schedule that starts a workflow on a cron() or rate() expression',
    success: { status: 201, description: 'The schedule' },
  },
  {
    method: 'GET',
    resource: '/tenants/{tenantId}/schedules',
    function: 'schedules',
    authorization: 'tenant',
    request: listSchedules,
    summary: "List the tenant's schedules, a page at a time",
    success: { status: 200, description: '`{schedules: [...], nextToken?}`' },
  },
  {
    method: 'GET',
    resource: '/tenants/{tenantId}/schedules/{scheduleId}',
    function: 'schedules',
    authorization: 'tenant',
    request: schedulePath,
    summary: 'Read a schedule',
    success: { status: 200, description: 'The schedule' },
  },
  {
    method: 'PATCH',
    resource: '/tenants/{tenantId}/schedules/{scheduleId}',
    function: 'schedules',
    authorization: 'tenant',
    request: updateSchedule,
    summary: "Change a schedule's workflow, expression, time zone, input or state",
    success: { status: 200, description: 'The schedule' },
  },
  {
    method: 'DELETE',
    resource: '/tenants/{tenantId}/schedules/{scheduleId}',
    function: 'schedules',
    authorization: 'tenant',
    request: schedulePath,
    summary: 'Delete a schedule',
    success: { status: 204, description: 'Deleted; no body' },
  },
];

/**
 * The bodies API Gateway itself answers with when it refuses a request before the handler runs
 * (its "gateway responses"), shaped like every other tenantflow error. CDK installs them; the local
 * server uses those of the authorizer (it has no request models, so its handlers answer every
 * body themselves).
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
  // The request model refused the body: a field of the wrong type, a required one missing, or one
  // the route does not take. The model checks only what the handler refuses too, so this is never
  // a body the handler would have accepted.
  BAD_REQUEST_BODY: {
    statusCode: 400,
    body: {
      error: {
        code: 'VALIDATION_FAILED',
        message:
          'The request body does not have the fields and types this route takes (GET /openapi.json describes them).',
      },
    },
  },
  // The authorizer failed rather than refused (it throws for a 401; anything else is this): in
  // practice the registry it reads is unreachable. A retry after the database is back succeeds.
  AUTHORIZER_FAILURE: {
    statusCode: 503,
    headers: { 'Retry-After': '5' },
    body: {
      error: {
        code: 'SERVICE_UNAVAILABLE',
        message: 'Credentials could not be checked right now; retry in 5 seconds.',
      },
    },
  },
  // API Gateway's own throttling (the stage's rate and burst limits).
  THROTTLED: {
    statusCode: 429,
    body: {
      error: { code: 'LIMIT_EXCEEDED', message: 'Too many requests for this API stage; retry with backoff.' },
    },
  },
  // Past API Gateway's 10 MB payload limit, before any handler sees it.
  REQUEST_TOO_LARGE: {
    statusCode: 413,
    body: {
      error: {
        code: 'PAYLOAD_TOO_LARGE',
        message: 'The request is larger than API Gateway accepts (10 MB).',
      },
    },
  },
} as const;
