import middy from '@middy/core';
import { createLogger, type Logger } from '@tenantflow/shared/logging/logger';
import { coreHandler } from '@tenantflow/shared/runtime/lambda';
import { createTaskRunning } from '@tenantflow/shared/runtime/task-running';
import { parseInvocation, taskInvocationSchema } from '@tenantflow/shared/workflows/invocations';
import { stateErrorNaming } from '@tenantflow/shared/workflows/state-error.middleware';
import type { TaskRunner, TaskRunOutcome } from '@tenantflow/shared/workflows/task-runner';
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

const logger = createLogger('run-task');

/** Lambda entry point: tenant-role connections and the task runner; no admin login. */
export const handler = coreHandler(
  (core) => createRunTaskHandler({ logger, runner: createTaskRunning(core, { workflows, logger }).runner }),
  { logger },
);
