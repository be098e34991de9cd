import type middy from '@middy/core';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { ForbiddenError, UnauthenticatedError } from '../kernel/errors.js';
import type { Principal } from './request-authorizer.js';

/**
 * The caller the authorizer established, from `requestContext.authorizer`. A route behind the
 * authorizer that finds none fails closed (401): it means the route was wired without it.
 */
export function principalOf(event: APIGatewayProxyEvent): Principal {
  const context = event.requestContext?.authorizer as Record<string, unknown> | null | undefined;
  if (context?.principal === 'admin') {
    return { kind: 'admin' };
  }
  if (
    context?.principal === 'tenant' &&
    typeof context.tenantId === 'string' &&
    context.tenantId.length > 0
  ) {
    return { kind: 'tenant', tenantId: context.tenantId };
  }
  throw new UnauthenticatedError(
    'The request carries no authorized caller. Send "Authorization: Bearer <tenant API key>".',
  );
}

/**
 * Lets a request on `/tenants/{tenantId}/...` through only for that tenant's own key or an admin.
 * API Gateway's policy already refuses other tenants' paths; this check makes the handler safe
 * on its own too (defence in depth), and runs before any tenant data is read.
 *
 * @example
 * ```ts
 * middy().use(httpErrorMapper({ logger })).use(requireTenantAccess()).handler(...);
 * ```
 */
export function requireTenantAccess(): middy.MiddlewareObj<APIGatewayProxyEvent, APIGatewayProxyResult> {
  return {
    before: async function checkTenantAccess(request) {
      const principal = principalOf(request.event);
      const pathTenant = request.event.pathParameters?.tenantId;
      if (principal.kind === 'tenant' && pathTenant !== undefined && pathTenant !== principal.tenantId) {
        throw new ForbiddenError(`This API key does not grant access to tenant '${pathTenant}'`);
      }
    },
  };
}
