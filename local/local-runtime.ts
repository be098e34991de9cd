import { join } from 'node:path';
import type { Context } from 'aws-lambda';
import { createRecoverHandler } from '../functions/recovery/recover.js';
import { createFinalizeHandler } from '../functions/workflow/finalize.js';
import { createRunTaskHandler } from '../functions/workflow/run-task.js';
import type { TenantflowConfig } from '../shared/config/config.js';
import { createLogger, type Logger } from '../shared/logging/logger.js';
import { createPlatform, type Platform, type PlatformOverrides } from '../shared/platform.js';
import {
  type RecoveryOptions,
  type RecoveryProgress,
  RecoveryService,
  RecoveryStore,
  type RecoverySummary,
} from '../shared/recovery/index.js';
import { compileToAsl } from '../shared/workflows/asl.js';
import { ExecutionFinalizer, type FinalizeCommand } from '../shared/workflows/execution-finalizer.js';
import { ExecutionService } from '../shared/workflows/execution-service.js';
import { ExecutionStore } from '../shared/workflows/execution-store.js';
import { TaskRunner, type TaskRunnerDependencies } from '../shared/workflows/task-runner.js';
import type { WorkflowRegistry } from '../shared/workflows/workflow-registry.js';
import { failpointHooks, parseFailpoints } from './failpoints.js';
import { type LocalLambda, LocalOrchestrator } from './local-orchestrator.js';

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
 * The Lambdas the local state machines invoke: the same run-task and finalize handlers as in AWS,
 * in-process, keyed by the {@link LOCAL_TARGETS} ARNs. Shared by the local runtime and the tests
 * that build a LocalOrchestrator of their own.
 */
export function localLambdas(deps: {
  readonly platform: Pick<Platform, 'tenants' | 'tenantConnections'>;
  readonly workflows: WorkflowRegistry;
  readonly store: ExecutionStore;
  readonly logger?: Logger;
  readonly failpoints?: {
    readonly task: TaskRunnerDependencies['failpoint'];
    readonly beforeFinalize: (command: FinalizeCommand) => void;
  };
}): Record<string, LocalLambda> {
  const runTaskLogger = deps.logger ?? createLogger('run-task');
  const finalizeLogger = deps.logger ?? createLogger('finalize');
  return {
    [LOCAL_TARGETS.taskRunnerArn]: createRunTaskHandler({
      logger: runTaskLogger,
      runner: new TaskRunner({
        tenants: deps.platform.tenants,
        workflows: deps.workflows,
        store: deps.store,
        tenantConnections: deps.platform.tenantConnections,
        logger: runTaskLogger,
        ...(deps.failpoints?.task === undefined ? {} : { failpoint: deps.failpoints.task }),
      }),
    }),
    [LOCAL_TARGETS.finalizeArn]: createFinalizeHandler({
      logger: finalizeLogger,
      finalizer: new ExecutionFinalizer(
        deps.store,
        finalizeLogger,
        deps.failpoints === undefined ? {} : { failpoint: deps.failpoints.beforeFinalize },
      ),
    }),
  };
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
    lambdas: localLambdas({
      platform,
      workflows,
      store,
      ...(armed ? { failpoints: { task: hooks.task, beforeFinalize: hooks.beforeFinalize } } : {}),
    }),
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
          registry: platform.registry,
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
