import middy from '@middy/core';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
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
