import { policyFor, type RequestAuthorizer } from '@tenantflow/shared/http/request-authorizer';
import { getHeader } from '@tenantflow/shared/http/responses';
import { UnauthenticatedError } from '@tenantflow/shared/kernel/errors';
import { createLogger, type Logger } from '@tenantflow/shared/logging/logger';
import { createAuth } from '@tenantflow/shared/runtime/auth';
import { coreHandler } from '@tenantflow/shared/runtime/lambda';
import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';

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

const logger = createLogger('authorizer');

export const handler = coreHandler(
  (core) => createAuthorizerHandler({ authorizer: createAuth(core).authorizer, logger }),
  { logger },
);
