import type middy from '@middy/core';
import type { Logger } from '../logging/logger.js';
import { toStateError } from './state-errors.js';

/**
 * For handlers Step Functions invokes: logs the failure, then rethrows it named by its stable
 * code, which is what the state's `Retry` and `Catch` match on.
 *
 * @example
 * ```ts
 * middy().use(stateErrorNaming({ logger })).handler(async (event) => runner.run(event));
 * ```
 */
export function stateErrorNaming<E, R>(options: { logger: Logger }): middy.MiddlewareObj<E, R> {
  return {
    onError: async function nameErrorForStepFunctions(request) {
      const stateError = toStateError(request.error);
      // The cause was logged in full where it happened; here only what Step Functions will see.
      options.logger.warn('invocation failed', {
        errorName: stateError.name,
        errorMessage: stateError.message,
      });
      request.error = stateError;
    },
  };
}
