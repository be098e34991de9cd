import { join } from 'node:path';
import type { Context } from 'aws-lambda';
import { createRecoverHandler } from '../functions/recovery/recover.js';
import { createFinalizeHandler } from '../functions/workflow/finalize.js';
import { createRunTaskHandler } from '../functions/workflow/run-task.js';
import type { TenantflowConfig } from '../shared/config/config.js';
import { createLogger } from '../shared/logging/logger.js';
import { createPlatform, type Platform, type PlatformOverrides } from '../shared/platform.js';
import {
  type RecoveryOptions,
  type RecoveryProgress,
  RecoveryService,
  RecoveryStore,
  type RecoverySummary,
} from '../shared/recovery/index.js';
import { compileToAsl } from '../shared/workflows/asl.js';
import { ExecutionFinalizer } from '../shared/workflows/execution-finalizer.js';
import { ExecutionService } from '../shared/workflows/execution-service.js';
import { ExecutionStore } from '../shared/workflows/execution-store.js';
import { TaskRunner } from '../shared/workflows/task-runner.js';
import type { WorkflowRegistry } from '../shared/workflows/workflow-registry.js';
import { failpointHooks, parseFailpoints } from './failpoints.js';
import { LocalOrchestrator } from './local-orchestrator.js';

/** The Lambda ARNs the local state machines invoke, mapped to the in-process handlers. */
export const LOCAL_TARGETS = {
  taskRunnerArn: 'arn:aws:lambda:local:000000000000:function:tenantflow-local-run-task',
  finalizeArn: 'arn:aws:lambda:local:000000000000:function:tenantflow-local-finalize',
} as const;

export interface LocalRuntimeOptions {
  readonly config: TenantflowConfig;
  /** Where the local orchestrator keeps its journal (`<home>/orchestrator`). */
  readonly home: string;
  readonly workflows: WorkflowRegistry;
  readonly overrides?: PlatformOverrides | undefined;
  /** Retry waits in milliseconds instead of the definitions' seconds (tests and benchmarks). */
  readonly retryIntervalMs?: number | undefined;
}

export interface LocalRuntime {
  readonly platform: Platform;
  readonly orchestrator: LocalOrchestrator;
  readonly executions: ExecutionService;
  /**
   * One recovery pass through the same handler the EventBridge schedule invokes in AWS.
   * `options` overrides the configured thresholds (the start-up pass uses a stale threshold of 0).
   */
  recover(options?: {
    readonly trigger?: string;
    readonly onProgress?: (progress: RecoveryProgress) => void;
    readonly recovery?: Partial<RecoveryOptions>;
  }): Promise<RecoverySummary>;
}

/**
 * The services of the local platform, wired as the Lambdas wire them but in one process: the
 * platform, the local orchestrator (the same ASL, with a journal under `home` so it can tell after
 * a crash which executions it lost), the run-task and finalize handlers, the execution service and
 * the recovery handler. `npm start` serves HTTP on top of it; `npm run recover` runs one pass.
 */
export async function createLocalRuntime(options: LocalRuntimeOptions): Promise<LocalRuntime> {
  const { config, workflows } = options;
  const hooks = failpointHooks(parseFailpoints(config.failpoints));
  const armed = config.failpoints !== undefined;
  const platform = await createPlatform(config, {
    ...options.overrides,
    ...(armed ? { afterProvisioningStep: hooks.provisioningStep } : {}),
  });
  const store = new ExecutionStore(platform.pool);
  const orchestratorLogger = createLogger('local-orchestrator');
  const orchestrator = new LocalOrchestrator({
    definitions: Object.fromEntries(
      workflows.list().map((workflow) => [workflow.name, compileToAsl(workflow, LOCAL_TARGETS)]),
    ),
    lambdas: {
      [LOCAL_TARGETS.taskRunnerArn]: createRunTaskHandler({
        logger: createLogger('run-task'),
        runner: new TaskRunner({
          tenants: platform.tenants,
          workflows,
          store,
          tenantConnections: platform.tenantConnections,
          logger: createLogger('run-task'),
          ...(armed ? { failpoint: hooks.task } : {}),
        }),
      }),
      [LOCAL_TARGETS.finalizeArn]: createFinalizeHandler({
        logger: createLogger('finalize'),
        finalizer: new ExecutionFinalizer(
          store,
          createLogger('finalize'),
          armed ? { failpoint: hooks.beforeFinalize } : {},
        ),
      }),
    },
    journalDirectory: join(options.home, 'orchestrator'),
    onJournalError: (error) =>
      orchestratorLogger.error('could not write the orchestrator journal', { error }),
    ...(options.retryIntervalMs === undefined ? {} : { retryIntervalMs: options.retryIntervalMs }),
  });
  const executions = new ExecutionService({
    registry: platform.registry,
    workflows,
    store,
    orchestrator,
    logger: createLogger('workflows'),
    ...(armed ? { failpoint: hooks.afterInsert } : {}),
  });
  const recoveryLogger = createLogger('recovery');
  return {
    platform,
    orchestrator,
    executions,
    recover: async (pass = {}) => {
      const handler = createRecoverHandler({
        logger: recoveryLogger,
        recovery: new RecoveryService({
          store: new RecoveryStore(platform.pool),
          executions: store,
          orchestrator,
          workflows,
          provisioning: platform.provisioning,
          logger: recoveryLogger,
          options: { ...config.recovery, ...pass.recovery },
        }),
        ...(pass.onProgress === undefined ? {} : { onProgress: pass.onProgress }),
      });
      // No Lambda deadline locally: the pass covers every tenant.
      return handler({ 'detail-type': pass.trigger ?? 'Local recovery' }, {} as Context);
    },
  };
}
