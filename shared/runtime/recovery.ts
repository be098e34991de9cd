import type { TenantLifecycle } from '../lifecycle/tenant-lifecycle.js';
import type { Logger } from '../logging/logger.js';
import { type RecoveryOptions, RecoveryService } from '../recovery/recovery-service.js';
import { RecoveryStore } from '../recovery/recovery-store.js';
import { ExecutionStore } from '../workflows/execution-store.js';
import type { Orchestrator } from '../workflows/orchestrator.js';
import type { WorkflowRegistry } from '../workflows/workflow-registry.js';
import type { PlatformCore } from './core.js';
import type { Provisioning } from './provisioning.js';

export interface RecoveryCapabilityOptions {
  /** Recovery puts back proxy logins a stack update dropped. */
  readonly provisioning: Pick<Provisioning, 'tenantLogins'>;
  /** Recovery starts or redrives the onboarding and offboarding executions of stuck tenants. */
  readonly lifecycle: Pick<TenantLifecycle, 'resume'>;
  /** Where executions run, to redrive or restart them. */
  readonly orchestrator: Orchestrator;
  readonly workflows: WorkflowRegistry;
  readonly logger: Logger;
  /** Overrides of the configured thresholds (the local start-up pass uses a stale threshold of 0). */
  readonly options?: Partial<RecoveryOptions> | undefined;
}

/**
 * The recovery job: one pass over every tenant repairs stuck executions, resumes interrupted
 * provisioning and restores proxy logins; `reconcileLogins` restores the proxy logins alone (each
 * deployment runs it).
 *
 * @example
 * ```ts
 * const provisioning = await createProvisioning(core);
 * const { lifecycle } = createLifecycle(core, provisioning, { logger });
 * const recovery = createRecovery(core, { provisioning, lifecycle, orchestrator, workflows, logger });
 * const summary = await recovery.run();
 * const afterDeploy = await recovery.reconcileLogins();
 * ```
 */
export function createRecovery(core: PlatformCore, options: RecoveryCapabilityOptions): RecoveryService {
  return new RecoveryService({
    store: new RecoveryStore(core.pool),
    executions: new ExecutionStore(core.pool),
    registry: core.registry,
    orchestrator: options.orchestrator,
    workflows: options.workflows,
    lifecycle: options.lifecycle,
    logins: options.provisioning.tenantLogins,
    logger: options.logger,
    metrics: core.metrics,
    options: { ...core.config.recovery, ...options.options },
  });
}
