import middy from '@middy/core';
import { createLogger, type Logger } from '@tenantflow/shared/logging/logger';
import { createFinalizer } from '@tenantflow/shared/runtime/executions';
import { coreHandler } from '@tenantflow/shared/runtime/lambda';
import type { ExecutionFinalizer } from '@tenantflow/shared/workflows/execution-finalizer';
import { finalizeInvocationSchema, parseInvocation } from '@tenantflow/shared/workflows/invocations';
import { stateErrorNaming } from '@tenantflow/shared/workflows/state-error.middleware';

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

const logger = createLogger('finalize');

export const handler = coreHandler(
  (core) => createFinalizeHandler({ logger, finalizer: createFinalizer(core, { logger }) }),
  { logger },
);
