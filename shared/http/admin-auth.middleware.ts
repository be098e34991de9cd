import type middy from '@middy/core';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { UnauthenticatedError } from '../kernel/errors.js';
import { adminTokenMatcher } from './admin-token.js';
import { bearerCredential } from './bearer.js';
import { getHeader } from './responses.js';

export interface AdminAuthOptions {
  /** The bearer token that proves an admin. `undefined` disables bearer auth. */
  readonly adminToken: string | undefined;
  /**
   * Accept an IAM caller identity on the event as an admin. Only API Gateway can set it, after it
   * verified a SigV4 signature on an IAM-authorised route, so this is on in AWS and off locally.
   */
  readonly trustIamIdentity: boolean;
}

/**
 * Lets a request through only if it comes from an admin: a verified IAM identity (AWS), or
 * `Authorization: Bearer <admin token>`. Anything else is a 401 that says what to send.
 *
 * @example
 * ```ts
 * middy().use(httpErrorMapper({ logger })).use(requireAdmin({ adminToken, trustIamIdentity: false }));
 * ```
 */
export function requireAdmin(
  options: AdminAuthOptions,
): middy.MiddlewareObj<APIGatewayProxyEvent, APIGatewayProxyResult> {
  const isAdminToken = adminTokenMatcher(options.adminToken);
  return {
    before: async function authenticateAdmin(request) {
      const { event } = request;
      if (options.trustIamIdentity && typeof event.requestContext?.identity?.userArn === 'string') {
        return;
      }
      const header = getHeader(event.headers, 'authorization');
      if (header === undefined || header.length === 0) {
        throw new UnauthenticatedError(
          'Missing Authorization header. Send "Authorization: Bearer <admin token>".',
        );
      }
      const credential = bearerCredential(header);
      if (credential === undefined) {
        throw new UnauthenticatedError(
          'The Authorization header must be exactly "Bearer <admin token>": the word Bearer, one space, the token.',
        );
      }
      if (!isAdminToken(credential)) {
        throw new UnauthenticatedError('The admin token is not valid.');
      }
    },
  };
}
