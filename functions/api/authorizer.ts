import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { UnauthenticatedError } from '../../shared/errors.js';
import { lazyHandler } from '../../shared/http/lazy-handler.js';
import { policyFor, RequestAuthorizer } from '../../shared/http/request-authorizer.js';
import { getHeader } from '../../shared/http/responses.js';
import { createLogger, type Logger } from '../../shared/logging/logger.js';
import { getPlatform } from '../../shared/platform.js';

/**
 * The Lambda REQUEST authorizer of the tenant routes. API Gateway's contract: return a policy to
 * let the request in, throw `Error('Unauthorized')` for a 401. Any other failure is a 500 from API
 * Gateway, so an outage of the registry never turns into an allow.
 */
export function createAuthorizerHandler(deps: {
  authorizer: Pick<RequestAuthorizer, 'authenticate'>;
  logger: Logger;
}) {
  return async function authorize(
    event: APIGatewayRequestAuthorizerEvent,
  ): Promise<APIGatewayAuthorizerResult> {
    try {
      const principal = await deps.authorizer.authenticate(getHeader(event.headers, 'authorization'));
      return policyFor(principal, event.methodArn);
    } catch (error) {
      if (error instanceof UnauthenticatedError) {
        deps.logger.info('request not authenticated', { reason: error.message, path: event.path });
        throw new Error('Unauthorized');
      }
      throw error;
    }
  };
}

export const handler = lazyHandler(async () => {
  const platform = await getPlatform();
  return createAuthorizerHandler({
    authorizer: new RequestAuthorizer({
      registry: platform.registry,
      adminToken: platform.config.adminToken,
    }),
    logger: createLogger('authorizer'),
  });
});
