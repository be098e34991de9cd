import {
  type AdminAuthOptions,
  getValidatedInput,
  guardedRoute,
  jsonResponse,
  type RequestSchemas,
  type RouteHandler,
  requireAdmin,
  routedApi,
} from '@tenantflow/shared/http';
import { tenantIdSchema } from '@tenantflow/shared/kernel/tenant-id.schema';
import { z } from '@tenantflow/shared/kernel/zod';
import type { TenantAdminService } from '@tenantflow/shared/lifecycle/tenant-admin-service';
import { createLogger, type Logger } from '@tenantflow/shared/logging/logger';
import { createAuth } from '@tenantflow/shared/runtime/auth';
import { coreHandler } from '@tenantflow/shared/runtime/lambda';
import { createLifecycle } from '@tenantflow/shared/runtime/lifecycle';
import { createProvisioning } from '@tenantflow/shared/runtime/provisioning';
import {
  jsonBytes,
  MAX_METADATA_BYTES,
  tenantConfigPatchSchema,
  tenantConfigSchema,
} from '@tenantflow/shared/tenancy/tenant-config';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { tenantMigrations } from '../../workflows/tables.js';

const tenantPath = { pathParameters: z.object({ tenantId: tenantIdSchema }) } satisfies RequestSchemas;

const tenantName = z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters');
const tenantMetadata = z
  .record(z.string(), z.unknown())
  .refine((metadata) => jsonBytes(metadata) <= MAX_METADATA_BYTES, {
    message: `must be at most ${MAX_METADATA_BYTES} bytes as JSON`,
  });

const registerTenant = {
  body: z.strictObject({
    tenantId: tenantIdSchema,
    name: tenantName,
    metadata: tenantMetadata.optional(),
    config: tenantConfigSchema.optional(),
  }),
} satisfies RequestSchemas;

const updateTenant = {
  ...tenantPath,
  body: z
    .strictObject({
      name: tenantName.optional(),
      metadata: tenantMetadata.optional(),
      config: tenantConfigPatchSchema.optional(),
    })
    .refine((patch) => Object.keys(patch).length > 0, {
      message: 'must change at least one of name, metadata, config',
    }),
} satisfies RequestSchemas;

export interface TenantsApiDependencies {
  readonly tenantAdmin: TenantAdminService;
  readonly adminAuth: AdminAuthOptions;
  readonly logger: Logger;
}

/**
 * The admin tenant routes, behind one Lambda: API Gateway (REST, Lambda proxy) sends
 * `/tenants` and `/tenants/{tenantId}...` here, and the router picks the route.
 */
export function createTenantsApi(deps: TenantsApiDependencies) {
  const { tenantAdmin } = deps;
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
      handler: adminRoute({}, async () => jsonResponse(200, { tenants: await tenantAdmin.list() })),
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

/**
 * Lambda entry point: registration and deletion start the lifecycle state machines (Step
 * Functions); rotation and API keys need the admin login; the admin check.
 */
export const handler = coreHandler(async (core) => {
  const logger = createLogger('tenants-api');
  const provisioning = await createProvisioning(core, { tenantMigrations });
  return createTenantsApi({
    tenantAdmin: createLifecycle(core, provisioning, { logger }).tenantAdmin,
    adminAuth: createAuth(core).adminAuth,
    logger,
  });
});
