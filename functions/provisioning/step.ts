import middy from '@middy/core';
import { lifecycleStepSchema, runLifecycleStep } from '@tenantflow/shared/lifecycle/tenant-lifecycle';
import { createLogger, type Logger } from '@tenantflow/shared/logging/logger';
import { NO_METRICS, type PlatformMetrics } from '@tenantflow/shared/logging/metrics';
import type { ProvisioningService, StepOutcome } from '@tenantflow/shared/provisioning/provisioning-service';
import { coreHandler } from '@tenantflow/shared/runtime/lambda';
import { createProvisioning } from '@tenantflow/shared/runtime/provisioning';
import { eventBridgeScheduleTrigger } from '@tenantflow/shared/runtime/schedule-trigger';
import { createScheduleCleanup } from '@tenantflow/shared/runtime/schedules';
import { parseInvocation } from '@tenantflow/shared/workflows/invocations';
import { stateErrorNaming } from '@tenantflow/shared/workflows/state-error.middleware';
import { tenantMigrations } from '../../workflows/tables.js';

/**
 * The Lambda every state of the onboarding and offboarding state machines invokes, with
 * `{ tenantId, executionId, lifecycle, step }`: it runs that one step (see
 * `ProvisioningService.onboardingStep`) and answers `{ done }`, which the proxy's Wait loop reads.
 * A failure is rethrown named by its code, so the state's Retry and Catch can tell what happened.
 */
export function createProvisioningStepHandler(deps: {
  readonly provisioning: Pick<ProvisioningService, 'onboardingStep' | 'offboardingStep' | 'recordFailure'>;
  readonly logger: Logger;
  /** Times each step. @default NO_METRICS */
  readonly metrics?: Pick<PlatformMetrics, 'provisioningStepTook'> | undefined;
}) {
  const metrics = deps.metrics ?? NO_METRICS;
  return middy<unknown, StepOutcome>()
    .use(stateErrorNaming({ logger: deps.logger }))
    .handler(async function runStep(payload) {
      const step = parseInvocation(lifecycleStepSchema, payload);
      const started = performance.now();
      const outcome = await runLifecycleStep(deps.provisioning, step);
      metrics.provisioningStepTook({ ...step, durationMs: performance.now() - started });
      return outcome;
    });
}

const logger = createLogger('provisioning-step');

/** Lambda entry point: provisioning (the admin login, tenant secrets, the proxy's auth list), the workflows' tables and the tenants' schedules. */
export const handler = coreHandler(
  async (core) => {
    const { provisioning } = await createProvisioning(core, {
      tenantMigrations,
      // Offboarding's first step deletes the tenant's schedules from EventBridge Scheduler.
      scheduleCleanup: createScheduleCleanup(core, { trigger: eventBridgeScheduleTrigger(core), logger }),
    });
    return createProvisioningStepHandler({ logger, provisioning, metrics: core.metrics });
  },
  { logger },
);
