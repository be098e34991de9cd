import type { Logger } from '../logging/logger.js';
import { removeTenantSchedules, ScheduleService } from '../schedules/schedule-service.js';
import { ScheduleStore } from '../schedules/schedule-store.js';
import type { ScheduleTrigger } from '../schedules/schedule-trigger.js';
import type { Orchestrator } from '../workflows/orchestrator.js';
import type { WorkflowRegistry } from '../workflows/workflow-registry.js';
import type { PlatformCore } from './core.js';
import { createExecutions } from './executions.js';

export interface SchedulesOptions {
  readonly workflows: WorkflowRegistry;
  /** Where fired executions run: Step Functions in AWS, the local orchestrator under `npm start`. */
  readonly orchestrator: Orchestrator;
  /** What fires the schedules: EventBridge Scheduler in AWS, the local timer under `npm start`. */
  readonly trigger: ScheduleTrigger;
  readonly logger: Logger;
}

export interface Schedules {
  readonly schedules: ScheduleService;
}

/**
 * A tenant's schedules: the API's service and what a trigger's firing calls, over the same
 * ExecutionService as the executions API (its limits and records).
 *
 * @example
 * ```ts
 * const { schedules } = createSchedules(core, { workflows, orchestrator, trigger, logger });
 * await schedules.fire({ tenantId: 'acme', scheduleId, scheduledTime: new Date(event.time) });
 * ```
 */
export function createSchedules(
  core: Pick<PlatformCore, 'pool' | 'registry'>,
  options: SchedulesOptions,
): Schedules {
  return {
    schedules: new ScheduleService({
      registry: core.registry,
      workflows: options.workflows,
      store: new ScheduleStore(core.pool),
      executions: createExecutions(core, {
        workflows: options.workflows,
        orchestrator: options.orchestrator,
        logger: options.logger,
      }),
      trigger: options.trigger,
      logger: options.logger,
    }),
  };
}

/**
 * Offboarding's part of schedules: deleting a tenant's schedules, their triggers first. Needs no
 * workflows or orchestrator, so the provisioning-step function builds only this.
 *
 * @example
 * ```ts
 * const cleanup = createScheduleCleanup(core, { trigger, logger });
 * await cleanup.removeTenantSchedules('acme');
 * ```
 */
export function createScheduleCleanup(
  core: Pick<PlatformCore, 'pool'>,
  options: { readonly trigger: ScheduleTrigger; readonly logger: Pick<Logger, 'info' | 'warn' | 'error'> },
): { removeTenantSchedules(tenantId: string): Promise<number> } {
  const deps = { store: new ScheduleStore(core.pool), trigger: options.trigger, logger: options.logger };
  return { removeTenantSchedules: (tenantId) => removeTenantSchedules(deps, tenantId) };
}
