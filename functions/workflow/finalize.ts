import middy from '@middy/core';
import { lazyHandler } from '../../shared/http/lazy-handler.js';
import { createLogger, type Logger } from '../../shared/logging/logger.js';
import { getPlatform } from '../../shared/platform.js';
import { ExecutionFinalizer } from '../../shared/workflows/execution-finalizer.js';
import { ExecutionStore } from '../../shared/workflows/execution-store.js';
import { finalizeInvocationSchema, parseInvocation } from '../../shared/workflows/invocations.js';
import { stateErrorNaming } from '../../shared/workflows/state-error.middleware.js';

/**
 * The Lambda of a workflow's last state ("Finalize execution", or "Record failure" after a Catch):
 * it records the final status and updates the tenant's counters, exactly once per execution.
 */
export function createFinalizeHandler(deps: {
  finalizer: Pick<ExecutionFinalizer, 'finalize'>;
  logger: Logger;
}) {
  return middy<unknown, { finalized: boolean }>()
    .use(stateErrorNaming({ logger: deps.logger }))
    .handler(async (payload) => deps.finalizer.finalize(parseInvocation(finalizeInvocationSchema, payload)));
}

export const handler = lazyHandler(async () => {
  const platform = await getPlatform();
  const logger = createLogger('finalize');
  return createFinalizeHandler({
    logger,
    finalizer: new ExecutionFinalizer(new ExecutionStore(platform.pool), logger),
  });
});
