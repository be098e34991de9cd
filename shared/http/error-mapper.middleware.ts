import type middy from '@middy/core';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { isDatabaseUnavailable } from '../kernel/database-unavailable.js';
import { TenantflowError } from '../kernel/errors.js';
import type { Logger } from '../logging/logger.js';
import { jsonResponse } from './responses.js';

export interface ErrorMapperOptions {
  readonly logger: Pick<Logger, 'error' | 'warn'>;
}

/**
 * Seconds a client is told to wait (`Retry-After`) when the database is unavailable: about what a
 * restart or an Aurora failover takes, and short enough that clients come back soon after.
 */
export const DATABASE_UNAVAILABLE_RETRY_AFTER_SECONDS = 5;

/** The body every error response has: `{ error: { code, message, ...details } }`. */
export interface ErrorBody {
  readonly error: { readonly code: string; readonly message: string; readonly [detail: string]: unknown };
}

/**
 * The one place errors become HTTP responses. Must be the first middleware, so it sees errors
 * from every other middleware and from the handler.
 *
 * - A `TenantflowError` below 500 becomes its status, code, public message and details.
 * - A middy `createError` below 500 (e.g. the router's 404) keeps its status and message.
 * - The database being unreachable (refused, cut, shutting down, out of connections) is a 503 with
 *   `Retry-After`: the request was fine and will work again, with nothing to change, once it is back.
 * - Anything else is a 500 with a generic message; the cause is logged, never returned.
 *
 * @example
 * ```ts
 * middy().use(httpErrorMapper({ logger })).handler(routes);
 * ```
 */
export function httpErrorMapper(
  options: ErrorMapperOptions,
): middy.MiddlewareObj<APIGatewayProxyEvent, APIGatewayProxyResult> {
  const { logger } = options;
  return {
    onError: async function mapErrorToHttpResponse(request) {
      const { error } = request;
      const requestId = request.context.awsRequestId;
      if (error instanceof TenantflowError && error.expose) {
        logger.warn('request rejected', {
          code: error.code,
          statusCode: error.statusCode,
          // Powertools reserves the `message` key for the log line itself.
          reason: error.message,
        });
        request.response = jsonResponse(error.statusCode, {
          error: { code: error.code, message: error.publicMessage, ...error.details() },
        } satisfies ErrorBody);
        return;
      }
      if (isExposedHttpError(error)) {
        request.response = jsonResponse(error.statusCode, {
          error: { code: httpErrorCode(error.statusCode), message: error.message },
        } satisfies ErrorBody);
        return;
      }
      if (isDatabaseUnavailable(error)) {
        logger.warn('request failed: the database is unavailable', { error, requestId });
        const response = jsonResponse(503, {
          error: {
            code: 'SERVICE_UNAVAILABLE',
            message: `The database is unavailable; retry in ${DATABASE_UNAVAILABLE_RETRY_AFTER_SECONDS} seconds.`,
            requestId,
          },
        } satisfies ErrorBody);
        request.response = {
          ...response,
          headers: { ...response.headers, 'retry-after': String(DATABASE_UNAVAILABLE_RETRY_AFTER_SECONDS) },
        };
        return;
      }
      logger.error('request failed', { error, requestId });
      request.response = jsonResponse(500, {
        error: { code: 'INTERNAL_ERROR', message: 'Internal server error', requestId },
      } satisfies ErrorBody);
    },
  };
}

/** An error made by `@middy/util`'s `createError` with a client-facing status. */
function isExposedHttpError(error: unknown): error is Error & { statusCode: number } {
  return (
    error instanceof Error &&
    'statusCode' in error &&
    typeof error.statusCode === 'number' &&
    error.statusCode >= 400 &&
    error.statusCode < 500 &&
    'expose' in error &&
    error.expose === true
  );
}

function httpErrorCode(statusCode: number): string {
  switch (statusCode) {
    case 404:
      return 'ROUTE_NOT_FOUND';
    case 405:
      return 'METHOD_NOT_ALLOWED';
    case 415:
      return 'UNSUPPORTED_MEDIA_TYPE';
    default:
      return 'BAD_REQUEST';
  }
}
