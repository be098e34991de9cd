import type { Logger } from '../logging/logger.js';
import type { Platform } from '../platform.js';
import { ExecutionStore } from '../workflows/execution-store.js';
import type { Orchestrator } from '../workflows/orchestrator.js';
import type { WorkflowRegistry } from '../workflows/workflow-registry.js';
import { RecoveryService } from './recovery-service.js';
import { RecoveryStore } from './recovery-store.js';

export * from './recovery-service.js';
export * from './recovery-store.js';

/**
 * The recovery service of a platform, with the orchestrator of where it runs (Step Functions in
 * AWS, the local one under `npm start`) and the options from its configuration.
 */
export function createRecoveryService(
  platform: Pick<Platform, 'pool' | 'registry' | 'provisioning' | 'config' | 'tenantLogins'>,
  orchestrator: Orchestrator,
  workflows: WorkflowRegistry,
  logger: Logger,
): RecoveryService {
  return new RecoveryService({
    store: new RecoveryStore(platform.pool),
    executions: new ExecutionStore(platform.pool),
    registry: platform.registry,
    orchestrator,
    workflows,
    provisioning: platform.provisioning,
    logins: platform.tenantLogins,
    logger,
    options: platform.config.recovery,
  });
}
