import middy from '@middy/core';
import { ValidationError } from '@tenantflow/shared/kernel/errors';
import { createLogger, type Logger } from '@tenantflow/shared/logging/logger';
import type { RecoveryProgress, RecoveryService, RecoverySummary } from '@tenantflow/shared/recovery';
import { coreHandler } from '@tenantflow/shared/runtime/lambda';
import { createLifecycleResumer } from '@tenantflow/shared/runtime/lifecycle';
import { createTenantLogins } from '@tenantflow/shared/runtime/provisioning';
import { createRecovery } from '@tenantflow/shared/runtime/recovery';
import { stepFunctionsOrchestrator } from '@tenantflow/shared/runtime/step-functions';
import { invocationDeadline } from '@tenantflow/shared/util/invocation-deadline';
import { workflows } from '../../workflows/index.js';

/**
 * A pass stops taking new tenants this long before the Lambda's timeout, so it can finish what it
 * started, record where it stopped, and return its summary; the next pass resumes there.
 */
const SAFETY_MARGIN_MS = 30_000;

export interface RecoverHandlerDependencies {
  readonly recovery: Pick<RecoveryService, 'run' | 'reconcileLogins'>;
  readonly logger: Logger;
  /** Local runs draw a progress bar with this; the Lambda logs only the summary. */
  readonly onProgress?: (progress: RecoveryProgress) => void;
}

/** What an invocation asks for, read from its event by {@link parseRecoverEvent}. */
export type RecoverRequest =
  | { readonly scope: 'pass'; readonly trigger: string }
  | { readonly scope: 'logins'; readonly trigger: string };

/**
 * The events the recovery function takes:
 * - an EventBridge event (it has a `detail-type`: the schedule's, every 5 minutes), or
 *   `{"reconcile": "all"}`: one pass over every tenant;
 * - `{"reconcile": "logins"}`: the tenant logins on the RDS Proxy auth list only;
 * - no event at all (`{}`): the same, since that is how the deployment's CDK trigger invokes the
 *   function (it sends no payload), right after the proxy may have been updated.
 *
 * Anything else is refused rather than guessed at.
 */
export function parseRecoverEvent(event: unknown): RecoverRequest {
  if (event === undefined || event === null) {
    return { scope: 'logins', trigger: 'deployment' };
  }
  if (typeof event !== 'object' || Array.isArray(event)) {
    throw new ValidationError('The recovery event must be a JSON object');
  }
  const fields = event as Record<string, unknown>;
  if (typeof fields['detail-type'] === 'string') {
    return { scope: 'pass', trigger: fields['detail-type'] };
  }
  const keys = Object.keys(fields);
  if (keys.length === 0) {
    return { scope: 'logins', trigger: 'deployment' };
  }
  const { reconcile } = fields;
  if (keys.length === 1 && (reconcile === 'logins' || reconcile === 'all')) {
    return { scope: reconcile === 'logins' ? 'logins' : 'pass', trigger: 'manual' };
  }
  throw new ValidationError('Unknown recovery event', [
    `expected an EventBridge event, {"reconcile": "all"}, {"reconcile": "logins"} or {}; got keys ${JSON.stringify(keys)}`,
  ]);
}

/**
 * The recovery job, invoked by the EventBridge schedule (every 5 minutes; locally at start-up and
 * on a timer, and by `npm run recover`), and by each deployment to put the tenant logins back on
 * the RDS Proxy auth list (see {@link parseRecoverEvent}). The summary (tenants scanned, findings
 * and actions by kind, duration) is logged and returned.
 */
export function createRecoverHandler(deps: RecoverHandlerDependencies) {
  return middy<unknown, RecoverySummary>().handler(async (event, context) => {
    const request = parseRecoverEvent(event);
    if (request.scope === 'logins') {
      const summary = await deps.recovery.reconcileLogins();
      deps.logger.info('recovery logins reconciled', { trigger: request.trigger, ...summary });
      return summary;
    }
    const summary = await deps.recovery.run({
      deadline: invocationDeadline(context, SAFETY_MARGIN_MS),
      onProgress: deps.onProgress,
    });
    deps.logger.info('recovery pass finished', { trigger: request.trigger, ...summary });
    return summary;
  });
}

const logger = createLogger('recovery');

export const handler = coreHandler(
  async (core) => {
    return createRecoverHandler({
      logger,
      recovery: createRecovery(core, {
        // The proxy's auth list and the lifecycle executions only: recovery runs no DDL and reads no
        // tenant secret, so it is given neither the admin login nor the tenant secrets.
        provisioning: { tenantLogins: await createTenantLogins(core) },
        lifecycle: createLifecycleResumer(core),
        orchestrator: stepFunctionsOrchestrator(core),
        workflows,
        logger,
      }),
    });
  },
  { logger },
);
