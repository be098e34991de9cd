import middy from '@middy/core';
import { createLogger, type Logger } from '@tenantflow/shared/logging/logger';
import type { RecoveryProgress, RecoveryService, RecoverySummary } from '@tenantflow/shared/recovery';
import { stepFunctionsOrchestrator } from '@tenantflow/shared/runtime/executions';
import { coreHandler } from '@tenantflow/shared/runtime/lambda';
import { createProvisioning } from '@tenantflow/shared/runtime/provisioning';
import { createRecovery } from '@tenantflow/shared/runtime/recovery';
import { invocationDeadline } from '@tenantflow/shared/util/invocation-deadline';
import { workflows } from '../../workflows/index.js';

/**
 * A pass stops taking new tenants this long before the Lambda's timeout, so it can finish what it
 * started, record where it stopped, and return its summary; the next pass resumes there.
 */
const SAFETY_MARGIN_MS = 30_000;

export interface RecoverHandlerDependencies {
  readonly recovery: Pick<RecoveryService, 'run'>;
  readonly logger: Logger;
  /** Local runs draw a progress bar with this; the Lambda logs only the summary. */
  readonly onProgress?: (progress: RecoveryProgress) => void;
}

/**
 * The recovery job, invoked by the EventBridge schedule (every 5 minutes; locally at start-up and
 * on a timer, and by `npm run recover`). Any event starts one pass over every tenant; the summary
 * (tenants scanned, findings and actions by kind, duration) is logged and returned.
 */
export function createRecoverHandler(deps: RecoverHandlerDependencies) {
  return middy<unknown, RecoverySummary>().handler(async (event, context) => {
    const summary = await deps.recovery.run({
      deadline: invocationDeadline(context, SAFETY_MARGIN_MS),
      onProgress: deps.onProgress,
    });
    deps.logger.info('recovery pass finished', { trigger: describeTrigger(event), ...summary });
    return summary;
  });
}

function describeTrigger(event: unknown): string {
  const fields = (typeof event === 'object' && event !== null ? event : {}) as Record<string, unknown>;
  return typeof fields['detail-type'] === 'string' ? fields['detail-type'] : 'manual';
}

export const handler = coreHandler(async (core) => {
  const logger = createLogger('recovery');
  return createRecoverHandler({
    logger,
    recovery: createRecovery(core, {
      provisioning: await createProvisioning(core, { tenantMigrations: workflows.tenantMigrations() }),
      orchestrator: stepFunctionsOrchestrator(core),
      workflows,
      logger,
    }),
  });
});
