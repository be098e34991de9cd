import type { TenantAdminService } from '@tenantflow/shared/lifecycle/tenant-admin-service';
import { createLogger } from '@tenantflow/shared/logging/logger';
import type { ScheduleService } from '@tenantflow/shared/schedules/schedule-service';
import type { ExecutionService } from '@tenantflow/shared/workflows/execution-service';
import type { WorkflowRegistry } from '@tenantflow/shared/workflows/workflow-registry';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { vi } from 'vitest';
import { createExecutionsApi } from '../../../functions/api/executions.js';
import {
  API_ROUTES,
  type ApiFunctionName,
  type ApiRoute,
  takesJsonBody,
} from '../../../functions/api/routes.js';
import { createSchedulesApi } from '../../../functions/api/schedules.js';
import { createTenantsApi } from '../../../functions/api/tenants.js';
import { restEvent } from '../../support/api-gateway-events.js';

export const ADMIN_TOKEN = 'unit-admin-token-0123456789abcdef';
export const TENANT_ID = 'acme';
const EXECUTION_ID = '00000000-0000-4000-8000-000000000001';
const SCHEDULE_ID = '00000000-0000-4000-8000-000000000002';

/**
 * The real API handlers, with services that only record their calls: what these tests check
 * happens before any service runs, and a call that got through is itself the failure to see.
 */
export function apiWithRecordingServices() {
  const tenant = { tenantId: TENANT_ID, name: 'Acme', status: 'active', active: true, metadata: {} };
  const tenantAdmin = {
    register: vi.fn(async () => ({ tenant, apiKey: 'tfk_acme_key' })),
    list: vi.fn(async () => [tenant]),
    get: vi.fn(async () => tenant),
    update: vi.fn(async () => tenant),
    activate: vi.fn(async () => tenant),
    deactivate: vi.fn(async () => tenant),
    rotateCredentials: vi.fn(async () => ({ tenantId: TENANT_ID, rotatedAt: 'now' })),
    issueApiKey: vi.fn(async () => ({ tenantId: TENANT_ID, apiKey: 'tfk_acme_key', issuedAt: 'now' })),
    remove: vi.fn(async () => {}),
  };
  const executions = {
    start: vi.fn(async () => ({ executionId: EXECUTION_ID, status: 'running' as const })),
    list: vi.fn(async () => ({ executions: [], nextToken: undefined })),
    get: vi.fn(async () => ({ executionId: EXECUTION_ID })),
    metrics: vi.fn(async () => ({})),
  };
  const schedules = {
    create: vi.fn(async () => ({ scheduleId: SCHEDULE_ID })),
    list: vi.fn(async () => ({ schedules: [], next: undefined })),
    get: vi.fn(async () => ({ scheduleId: SCHEDULE_ID })),
    update: vi.fn(async () => ({ scheduleId: SCHEDULE_ID })),
    delete: vi.fn(async () => {}),
  };
  const logger = createLogger('unit-test');
  const handlers: Record<
    ApiFunctionName,
    (event: APIGatewayProxyEvent, context: Context) => Promise<APIGatewayProxyResult>
  > = {
    // Fakes stand in for the services' public methods; the handlers call nothing else on them.
    tenants: createTenantsApi({
      tenantAdmin: tenantAdmin as unknown as TenantAdminService,
      recoveryHistory: { events: async () => ({ events: [], next: undefined }) },
      adminAuth: { adminToken: ADMIN_TOKEN, trustIamIdentity: false },
      logger,
    }),
    executions: createExecutionsApi({
      executions: executions as unknown as ExecutionService,
      workflows: { list: () => [] } as unknown as WorkflowRegistry,
      logger,
    }),
    schedules: createSchedulesApi({ schedules: schedules as unknown as ScheduleService, logger }),
    health: async () => ({ statusCode: 200, body: '{}' }),
  };
  const serviceCalls = () =>
    [...Object.values(tenantAdmin), ...Object.values(executions), ...Object.values(schedules)].reduce(
      (count, method) => count + method.mock.calls.length,
      0,
    );
  return { handlers, tenantAdmin, executions, serviceCalls };
}

export const JSON_BODY_ROUTES: readonly ApiRoute[] = API_ROUTES.filter(takesJsonBody);

/** A valid body for each JSON route, so a test can change one thing about it. */
export function validBodyFor(route: ApiRoute): Record<string, unknown> {
  switch (`${route.method} ${route.resource}`) {
    case 'POST /tenants':
      return { tenantId: TENANT_ID, name: 'Acme', metadata: {} };
    case 'PATCH /tenants/{tenantId}':
      return { metadata: {} };
    case 'POST /tenants/{tenantId}/executions':
      return { workflow: 'echo', input: {} };
    case 'POST /tenants/{tenantId}/schedules':
      return { workflow: 'echo', expression: 'rate(1 hour)', input: {} };
    case 'PATCH /tenants/{tenantId}/schedules/{scheduleId}':
      return { input: {} };
    default:
      throw new Error(`No valid body known for ${route.method} ${route.resource}: add one here`);
  }
}

/** The field of a valid body that takes arbitrary JSON, where a hostile value can hide. */
export function freeformFieldOf(route: ApiRoute): string {
  return route.function === 'executions' || route.function === 'schedules' ? 'input' : 'metadata';
}

/**
 * The event API Gateway sends for `route`, as the right caller: the admin token for admin
 * routes, the tenant's authorizer context for tenant routes.
 */
export function eventFor(
  route: ApiRoute,
  options: { body?: string | null; headers?: Record<string, string>; isBase64Encoded?: boolean } = {},
): APIGatewayProxyEvent {
  const path = route.resource
    .replace('{tenantId}', TENANT_ID)
    .replace('{executionId}', EXECUTION_ID)
    .replace('{scheduleId}', SCHEDULE_ID);
  const pathParameters = route.resource.includes('{tenantId}')
    ? {
        tenantId: TENANT_ID,
        ...(route.resource.includes('{scheduleId}') ? { scheduleId: SCHEDULE_ID } : {}),
      }
    : null;
  const base = restEvent({
    httpMethod: route.method,
    path,
    resource: route.resource,
    pathParameters,
    body: options.body ?? null,
    isBase64Encoded: options.isBase64Encoded ?? false,
    headers: {
      ...(route.authorization === 'admin' ? { Authorization: `Bearer ${ADMIN_TOKEN}` } : {}),
      ...options.headers,
    },
  });
  if (route.authorization === 'tenant') {
    (base.requestContext as { authorizer: unknown }).authorizer = {
      principal: 'tenant',
      tenantId: TENANT_ID,
    };
  }
  return base;
}
