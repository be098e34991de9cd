import middy from '@middy/core';
import { lazyHandler } from '../../shared/http/lazy-handler.js';
import { createLogger, type Logger } from '../../shared/logging/logger.js';
import { getPlatform } from '../../shared/platform.js';
import { ExecutionStore } from '../../shared/workflows/execution-store.js';
import { parseInvocation, taskInvocationSchema } from '../../shared/workflows/invocations.js';
import { stateErrorNaming } from '../../shared/workflows/state-error.middleware.js';
import { TaskRunner, type TaskRunOutcome } from '../../shared/workflows/task-runner.js';
import { workflows } from '../../workflows/index.js';

/**
 * The Lambda every Task state of every workflow invokes, with `{ tenantId, executionId, taskId }`.
 * It runs the task in the tenant's context on the tenant's own database role (see `TaskRunner`);
 * a failure is rethrown named by its code, so the state's Retry and Catch can tell what happened.
 */
export function createRunTaskHandler(deps: { runner: Pick<TaskRunner, 'run'>; logger: Logger }) {
  return middy<unknown, TaskRunOutcome>()
    .use(stateErrorNaming({ logger: deps.logger }))
    .handler(async (payload) => deps.runner.run(parseInvocation(taskInvocationSchema, payload)));
}

export const handler = lazyHandler(async () => {
  const platform = await getPlatform();
  const logger = createLogger('run-task');
  return createRunTaskHandler({
    logger,
    runner: new TaskRunner({
      tenants: platform.tenants,
      workflows,
      store: new ExecutionStore(platform.pool),
      tenantConnections: platform.tenantConnections,
      logger,
    }),
  });
});
