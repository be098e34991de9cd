import type { Failpoints } from '../kernel/failpoints.js';
import type { Logger } from '../logging/logger.js';
import { ExecutionFinalizer } from '../workflows/execution-finalizer.js';
import { ExecutionService } from '../workflows/execution-service.js';
import { ExecutionStore } from '../workflows/execution-store.js';
import type { Orchestrator } from '../workflows/orchestrator.js';
import type { WorkflowRegistry } from '../workflows/workflow-registry.js';
import type { PlatformCore } from './core.js';

export interface ExecutionsOptions {
  readonly workflows: WorkflowRegistry;
  /** Where executions run: {@link stepFunctionsOrchestrator} in AWS, the local one under `npm start`. */
  readonly orchestrator: Orchestrator;
  readonly logger: Logger;
  readonly failpoints?: Failpoints | undefined;
}

/**
 * Starting and reading workflow executions, on the platform pool: what the executions API needs.
 *
 * @example
 * ```ts
 * const executions = createExecutions(core, { workflows, orchestrator: stepFunctionsOrchestrator(core), logger });
 * const { executionId } = await executions.start('acme', { workflow: 'report', input: {} });
 * ```
 */
export function createExecutions(
  core: Pick<PlatformCore, 'pool' | 'registry'> & Partial<Pick<PlatformCore, 'metrics'>>,
  options: ExecutionsOptions,
) {
  return new ExecutionService({
    registry: core.registry,
    workflows: options.workflows,
    store: new ExecutionStore(core.pool),
    orchestrator: options.orchestrator,
    logger: options.logger,
    metrics: core.metrics,
    ...(options.failpoints === undefined ? {} : { failpoints: options.failpoints }),
  });
}

/** Recording an execution's end, as a workflow's last state does. */
export function createFinalizer(
  core: Pick<PlatformCore, 'pool'> & Partial<Pick<PlatformCore, 'metrics'>>,
  options: { readonly logger: Logger; readonly failpoints?: Failpoints | undefined },
): ExecutionFinalizer {
  return new ExecutionFinalizer(new ExecutionStore(core.pool), options.logger, {
    metrics: core.metrics,
    ...(options.failpoints === undefined ? {} : { failpoints: options.failpoints }),
  });
}
