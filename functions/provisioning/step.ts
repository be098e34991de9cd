import middy from '@middy/core';
import { lifecycleStepSchema, runLifecycleStep } from '@tenantflow/shared/lifecycle/tenant-lifecycle';
import { createLogger, type Logger } from '@tenantflow/shared/logging/logger';
import type { ProvisioningService, StepOutcome } from '@tenantflow/shared/provisioning/provisioning-service';
import { coreHandler } from '@tenantflow/shared/runtime/lambda';
import { createProvisioning } from '@tenantflow/shared/runtime/provisioning';
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
}) {
  return middy<unknown, StepOutcome>()
    .use(stateErrorNaming({ logger: deps.logger }))
    .handler(async (payload) =>
      runLifecycleStep(deps.provisioning, parseInvocation(lifecycleStepSchema, payload)),
    );
}

/** Lambda entry point: provisioning (the admin login, tenant secrets, the proxy's auth list) and the workflows' tables. */
export const handler = coreHandler(async (core) => {
  const logger = createLogger('provisioning-step');
  const { provisioning } = await createProvisioning(core, { tenantMigrations });
  return createProvisioningStepHandler({ logger, provisioning });
});
