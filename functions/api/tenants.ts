import {
  type AdminAuthOptions,
  encodePageToken,
  getValidatedInput,
  guardedRoute,
  jsonResponse,
  type RequestSchemas,
  type RouteHandler,
  requireAdmin,
  routedApi,
} from '@tenantflow/shared/http';
import type { TenantAdminService } from '@tenantflow/shared/lifecycle/tenant-admin-service';
import { createLogger, type Logger } from '@tenantflow/shared/logging/logger';
import type { RecoveryHistory } from '@tenantflow/shared/recovery/recovery-history';
import { createAuth } from '@tenantflow/shared/runtime/auth';
import { coreHandler } from '@tenantflow/shared/runtime/lambda';
import { createLifecycle } from '@tenantflow/shared/runtime/lifecycle';
import { createProvisioning } from '@tenantflow/shared/runtime/provisioning';
import { createRecoveryHistory } from '@tenantflow/shared/runtime/recovery-history';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { tenantMigrations } from '../../workflows/tables.js';
import {
  listRecoveryEvents,
  listTenants,
  registerTenant,
  tenantPath,
  updateTenant,
} from './request-schemas.js';

export interface TenantsApiDependencies {
  readonly tenantAdmin: TenantAdminService;
  /**
   * What the recovery job did, for `GET /recovery-events`. Both composition roots (this module's
   * `handler`, the local platform) give it; a handler built without it answers that route with a
   * logged 500, never with an empty history.
   * @default none
   */
  readonly recoveryHistory: Pick<RecoveryHistory, 'events'>;
  readonly adminAuth: AdminAuthOptions;
  readonly logger: Logger;
}

/**
 * The admin routes, behind one Lambda: API Gateway (REST, Lambda proxy) sends `/tenants`,
 * `/tenants/{tenantId}...` and `/recovery-events` here, and the router picks the route.
 */
export function createTenantsApi(deps: TenantsApiDependencies) {
  const { tenantAdmin, recoveryHistory } = deps;
  const adminRoute = <S extends RequestSchemas>(schemas: S, fn: RouteHandler) =>
    guardedRoute(requireAdmin(deps.adminAuth), schemas, fn);

  return routedApi(deps, [
    {
      method: 'POST',
      path: '/tenants',
      handler: adminRoute(registerTenant, async (event) => {
        const { body } = getValidatedInput(event, registerTenant);
        const { tenant, apiKey } = await tenantAdmin.register(body);
        // Accepted: the onboarding state machine creates the tenant's schema, role, secret and
        // login, and activates it; the Location shows its progress. The API key is returned here
        // once and never again (only its hash is stored); it works once the tenant is active.
        return accepted(event, tenant.tenantId, { ...tenant, apiKey });
      }),
    },
    {
      method: 'GET',
      path: '/tenants',
      handler: adminRoute(listTenants, async (event) => {
        const { queryStringParameters: query } = getValidatedInput(event, listTenants);
        const page = await tenantAdmin.list({
          status: query.status,
          limit: query.limit,
          after: query.nextToken,
        });
        return jsonResponse(200, { tenants: page.tenants, nextToken: encodePageToken(page.next) });
      }),
    },
    {
      method: 'GET',
      path: '/tenants/{tenantId}',
      handler: adminRoute(tenantPath, async (event) => {
        const { pathParameters } = getValidatedInput(event, tenantPath);
        return jsonResponse(200, await tenantAdmin.get(pathParameters.tenantId));
      }),
    },
    {
      method: 'PATCH',
      path: '/tenants/{tenantId}',
      handler: adminRoute(updateTenant, async (event) => {
        const { pathParameters, body } = getValidatedInput(event, updateTenant);
        return jsonResponse(200, await tenantAdmin.update(pathParameters.tenantId, body));
      }),
    },
    {
      method: 'POST',
      path: '/tenants/{tenantId}/activate',
      handler: adminRoute(tenantPath, async (event) => {
        const { pathParameters } = getValidatedInput(event, tenantPath);
        return jsonResponse(200, await tenantAdmin.activate(pathParameters.tenantId));
      }),
    },
    {
      method: 'POST',
      path: '/tenants/{tenantId}/deactivate',
      handler: adminRoute(tenantPath, async (event) => {
        const { pathParameters } = getValidatedInput(event, tenantPath);
        return jsonResponse(200, await tenantAdmin.deactivate(pathParameters.tenantId));
      }),
    },
    {
      method: 'POST',
      path: '/tenants/{tenantId}/rotate-credentials',
      handler: adminRoute(tenantPath, async (event) => {
        const { pathParameters } = getValidatedInput(event, tenantPath);
        return jsonResponse(200, await tenantAdmin.rotateCredentials(pathParameters.tenantId));
      }),
    },
    {
      method: 'POST',
      path: '/tenants/{tenantId}/api-key',
      handler: adminRoute(tenantPath, async (event) => {
        const { pathParameters } = getValidatedInput(event, tenantPath);
        // The new key is returned here once and never again: only its hash is stored.
        return jsonResponse(201, await tenantAdmin.issueApiKey(pathParameters.tenantId));
      }),
    },
    {
      method: 'DELETE',
      path: '/tenants/{tenantId}',
      handler: adminRoute(tenantPath, async (event) => {
        const { pathParameters } = getValidatedInput(event, tenantPath);
        // Accepted: the offboarding state machine removes everything the tenant owns; the
        // Location answers 404 once it is gone.
        const tenant = await tenantAdmin.remove(pathParameters.tenantId);
        return accepted(event, tenant.tenantId, tenant);
      }),
    },
    {
      method: 'GET',
      path: '/recovery-events',
      handler: adminRoute(listRecoveryEvents, async (event) => {
        const { queryStringParameters: query } = getValidatedInput(event, listRecoveryEvents);
        const page = await recoveryHistory.events({
          tenantId: query.tenantId,
          limit: query.limit,
          after: query.nextToken,
        });
        return jsonResponse(200, { events: page.events, nextToken: encodePageToken(page.next) });
      }),
    },
  ]);
}

/**
 * 202 with the tenant's URL as a reference relative to the request's (RFC 9110 allows it): behind
 * API Gateway the path starts with the stage, or a custom domain's base path, which the handler
 * cannot tell apart, and the client's own URL resolves it right in every case. `tenants/acme`
 * against `…/tenants` (POST), `acme` against `…/tenants/acme` (DELETE).
 */
function accepted(event: APIGatewayProxyEvent, tenantId: string, body: unknown): APIGatewayProxyResult {
  const location = event.httpMethod === 'POST' ? `tenants/${tenantId}` : tenantId;
  const response = jsonResponse(202, body);
  return { ...response, headers: { ...response.headers, location } };
}

const logger = createLogger('tenants-api');

/**
 * Lambda entry point: registration and deletion start the lifecycle state machines (Step
 * Functions); rotation and API keys need the admin login; the recovery events are read on the
 * platform pool; the admin check.
 */
export const handler = coreHandler(
  async (core) => {
    const provisioning = await createProvisioning(core, { tenantMigrations });
    return createTenantsApi({
      tenantAdmin: createLifecycle(core, provisioning, { logger }).tenantAdmin,
      recoveryHistory: createRecoveryHistory(core),
      adminAuth: createAuth(core).adminAuth,
      logger,
    });
  },
  { logger },
);
