import { SchedulerClient } from '@aws-sdk/client-scheduler';
import { ConfigurationError } from '../kernel/errors.js';
import { traced } from '../logging/tracer.js';
import { EventBridgeScheduleTrigger } from '../schedules/eventbridge-schedule-trigger.js';
import type { PlatformCore } from './core.js';

export interface EventBridgeScheduleTriggerOptions {
  /** @default new SchedulerClient({}) */
  readonly client?: SchedulerClient | undefined;
}

/**
 * The EventBridge Scheduler trigger of the schedules CDK deployed: the stage's group
 * (`TENANTFLOW_SCHEDULE_GROUP`), the schedule-firing function (`TENANTFLOW_SCHEDULE_TARGET_ARN`),
 * the role Scheduler invokes it with (`TENANTFLOW_SCHEDULER_ROLE_ARN`) and the dead-letter queue
 * (`TENANTFLOW_SCHEDULE_DEAD_LETTER_ARN`, optional). Throws a `ConfigurationError` naming each
 * missing variable, so a function built without them fails when its handler is built, not at the
 * first schedule it writes.
 *
 * @example
 * ```ts
 * const trigger = eventBridgeScheduleTrigger(core);
 * await trigger.delete('acme', 'nightly');
 * ```
 */
export function eventBridgeScheduleTrigger(
  core: Pick<PlatformCore, 'config'>,
  options: EventBridgeScheduleTriggerOptions = {},
): EventBridgeScheduleTrigger {
  const { groupName, targetArn, roleArn, deadLetterArn } = core.config.schedules;
  const missing = [
    ...(targetArn === undefined ? ['TENANTFLOW_SCHEDULE_TARGET_ARN (the schedule-firing function)'] : []),
    ...(roleArn === undefined ? ['TENANTFLOW_SCHEDULER_ROLE_ARN (the role Scheduler invokes it with)'] : []),
  ];
  if (targetArn === undefined || roleArn === undefined) {
    throw new ConfigurationError(
      `Invalid tenantflow configuration: EventBridge Scheduler schedules need ${missing.join(' and ')}`,
    );
  }
  return new EventBridgeScheduleTrigger({
    client: options.client ?? traced(new SchedulerClient({})),
    groupName,
    targetArn,
    roleArn,
    deadLetterArn,
  });
}
