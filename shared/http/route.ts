import middy from '@middy/core';
import httpRouterHandler, { type Route } from '@middy/http-router';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import type { Logger } from '../logging/logger.js';
import { httpErrorMapper } from './error-mapper.middleware.js';
import { type RequestSchemas, validateRequest } from './validation.middleware.js';

export type RouteHandler = (event: APIGatewayProxyEvent) => Promise<APIGatewayProxyResult>;

/**
 * One route of a routed API handler: who may call it (`access`) is checked first, then its input
 * is validated, then `handler` runs. Checking access before validation means an unauthorised
 * caller learns nothing about what a valid request looks like.
 *
 * @example
 * ```ts
 * const route = guardedRoute(requireAdmin(auth), { pathParameters }, async (event) => jsonResponse(200, {}));
 * ```
 */
export function guardedRoute<S extends RequestSchemas>(
  access: middy.MiddlewareObj<APIGatewayProxyEvent, APIGatewayProxyResult>,
  schemas: S,
  handler: RouteHandler,
) {
  return middy<APIGatewayProxyEvent, APIGatewayProxyResult>()
    .use(access)
    .use(validateRequest(schemas))
    .handler(handler);
}

/**
 * The handler of an API Gateway function that serves several routes: errors mapped to HTTP once,
 * for every route, then the route matched by method and path (an unknown one is a 404, a known
 * path with another method a 405).
 *
 * @example
 * ```ts
 * export const api = routedApi({ logger }, [{ method: 'GET', path: '/tenants', handler: listTenants }]);
 * ```
 */
export function routedApi(
  deps: { readonly logger: Logger },
  routes: Route<APIGatewayProxyEvent, APIGatewayProxyResult>[],
) {
  return middy<APIGatewayProxyEvent, APIGatewayProxyResult>()
    .use(httpErrorMapper({ logger: deps.logger }))
    .handler(httpRouterHandler(routes));
}
