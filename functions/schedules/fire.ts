import middy from '@middy/core';
import { createLogger, type Logger } from '@tenantflow/shared/logging/logger';
import { coreHandler } from '@tenantflow/shared/runtime/lambda';
import { createSchedules } from '@tenantflow/shared/runtime/schedules';
import { stepFunctionsOrchestrator } from '@tenantflow/shared/runtime/step-functions';
import { scheduleFiringEventSchema } from '@tenantflow/shared/schedules/eventbridge-schedule-trigger';
import type { ScheduleFiring, ScheduleTrigger } from '@tenantflow/shared/schedules/schedule-trigger';
import { workflows } from '../../workflows/index.js';

/** What the handler needs of the schedules service. */
export interface ScheduleFirer {
  fire(firing: ScheduleFiring): Promise<unknown>;
}

/** What the handler answers: Scheduler invokes it asynchronously, so this is for logs and tests. */
export type FiringOutcome =
  | { readonly fired: true }
  | { readonly fired: false; readonly reason: 'malformed' };

/**
 * The Lambda EventBridge Scheduler invokes at each time of a tenant's schedule, with
 * `{ tenantId, scheduleId, scheduledTime }` (the target input `firingInputFor` wrote). A malformed
 * event is logged and dropped: retrying it could never succeed. A failure of `fire` (the database
 * unreachable) is thrown, so Lambda's asynchronous retries deliver the firing again; `fire` is
 * idempotent per scheduled time, so a repeat starts nothing twice.
 */
export function createScheduleFiringHandler(deps: {
  readonly schedules: ScheduleFirer;
  readonly logger: Logger;
}) {
  return middy<unknown, FiringOutcome>().handler(async function fireSchedule(event) {
    const parsed = scheduleFiringEventSchema.safeParse(event);
    if (!parsed.success) {
      deps.logger.error('malformed schedule firing dropped', {
        issues: parsed.error.issues.map((issue) => `${issue.path.join('.') || '(event)'}: ${issue.message}`),
      });
      return { fired: false, reason: 'malformed' };
    }
    await deps.schedules.fire(parsed.data);
    return { fired: true };
  });
}

/**
 * Firing changes no schedule: the trigger is the one thing `createSchedules` is given that this
 * function never uses, so it has no Scheduler permission and no trigger configuration either.
 */
const noTriggerChanges: ScheduleTrigger = {
  put: async () => {
    throw new Error('The schedule-firing function does not create or update schedules');
  },
  delete: async () => {
    throw new Error('The schedule-firing function does not delete schedules');
  },
};

const logger = createLogger('schedule-fire');

/** Lambda entry point: starts the schedule's workflow on its Step Functions state machine. */
export const handler = coreHandler(
  (core) => {
    const { schedules } = createSchedules(core, {
      workflows,
      orchestrator: stepFunctionsOrchestrator(core),
      trigger: noTriggerChanges,
      logger,
    });
    return createScheduleFiringHandler({ schedules, logger });
  },
  { logger },
);
