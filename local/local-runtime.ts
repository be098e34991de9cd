import { join } from 'node:path';
import type { TenantflowConfig } from '@tenantflow/shared/config/config';
import type { Failpoints } from '@tenantflow/shared/kernel/failpoints';
import { createLogger, type Logger } from '@tenantflow/shared/logging/logger';
import type { RecoveryOptions, RecoveryProgress, RecoverySummary } from '@tenantflow/shared/recovery';
import type { PlatformCore } from '@tenantflow/shared/runtime/core';
import { createExecutions, createFinalizer } from '@tenantflow/shared/runtime/executions';
import { createRecovery } from '@tenantflow/shared/runtime/recovery';
import { createTaskRunner, type TenantAccess } from '@tenantflow/shared/runtime/task-running';
import { compileToAsl } from '@tenantflow/shared/workflows/asl';
import type { ExecutionService } from '@tenantflow/shared/workflows/execution-service';
import type { WorkflowRegistry } from '@tenantflow/shared/workflows/workflow-registry';
import type { Context } from 'aws-lambda';
import { createRecoverHandler } from '../functions/recovery/recover.js';
import { createFinalizeHandler } from '../functions/workflow/finalize.js';
import { createRunTaskHandler } from '../functions/workflow/run-task.js';
import { exitingFailpoints, parseFailpoints } from './failpoints.js';
import { type LocalLambda, LocalOrchestrator } from './local-orchestrator.js';
import { createPlatformServices, type LocalAdapters, type PlatformServices } from './platform-services.js';

/** The Lambda ARNs the local state machines invoke, mapped to the in-process handlers. */
export const LOCAL_TARGETS = {
  taskRunnerArn: 'arn:aws:lambda:local:000000000000:function:tenantflow-local-run-task',
  finalizeArn: 'arn:aws:lambda:local:000000000000:function:tenantflow-local-finalize',
} as const;

export interface LocalRuntimeOptions {
  readonly config: TenantflowConfig;
  /** Where the local orchestrators keep their journals (`<home>/orchestrator`, `<home>/lifecycle`). */
  readonly home: string;
  readonly workflows: WorkflowRegistry;
  readonly adapters?: LocalAdapters | undefined;
  /** Retry waits in milliseconds instead of the definitions' seconds (tests and benchmarks). */
  readonly retryIntervalMs?: number | undefined;
}

export interface LocalRuntime {
  readonly platform: PlatformServices;
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
  readonly core: Pick<PlatformCore, 'pool'>;
  readonly access: Pick<TenantAccess, 'tenants' | 'tenantConnections'>;
  readonly workflows: WorkflowRegistry;
  readonly logger?: Logger;
  readonly failpoints?: Failpoints | undefined;
}): Record<string, LocalLambda> {
  const runTaskLogger = deps.logger ?? createLogger('run-task');
  const finalizeLogger = deps.logger ?? createLogger('finalize');
  return {
    [LOCAL_TARGETS.taskRunnerArn]: createRunTaskHandler({
      logger: runTaskLogger,
      runner: createTaskRunner(deps.core, deps.access, {
        workflows: deps.workflows,
        logger: runTaskLogger,
        failpoints: deps.failpoints,
      }),
    }),
    [LOCAL_TARGETS.finalizeArn]: createFinalizeHandler({
      logger: finalizeLogger,
      finalizer: createFinalizer(deps.core, { logger: finalizeLogger, failpoints: deps.failpoints }),
    }),
  };
}

/**
 * The services of the local platform, built by the factories the Lambdas use, in one process:
 * only the orchestrator (the same ASL run in-process, with a journal under `home` so it can tell
 * after a crash which executions it lost) and the secret store differ from AWS. `npm start` serves
 * HTTP on top of it; `npm run recover` runs one pass.
 */
export async function createLocalRuntime(options: LocalRuntimeOptions): Promise<LocalRuntime> {
  const { config, workflows } = options;
  const failpoints = options.adapters?.failpoints ?? exitingFailpoints(parseFailpoints(config.failpoints));
  const platform = await createPlatformServices(config, {
    lifecycleJournalDirectory: join(options.home, 'lifecycle'),
    ...options.adapters,
    failpoints,
    tenantMigrations: workflows.tenantMigrations(),
  });
  const { core } = platform;
  const orchestratorLogger = createLogger('local-orchestrator');
  const orchestrator = new LocalOrchestrator({
    definitions: Object.fromEntries(
      workflows.list().map((workflow) => [workflow.name, compileToAsl(workflow, LOCAL_TARGETS)]),
    ),
    lambdas: localLambdas({ core, access: platform, workflows, failpoints }),
    journalDirectory: join(options.home, 'orchestrator'),
    onJournalError: (error) =>
      orchestratorLogger.error('could not write the orchestrator journal', { error }),
    ...(options.retryIntervalMs === undefined ? {} : { retryIntervalMs: options.retryIntervalMs }),
  });
  const executions = createExecutions(core, {
    workflows,
    orchestrator,
    logger: createLogger('workflows'),
    failpoints,
  });
  const recoveryLogger = createLogger('recovery');
  return {
    platform,
    orchestrator,
    executions,
    recover: async (pass = {}) => {
      const handler = createRecoverHandler({
        logger: recoveryLogger,
        recovery: createRecovery(core, {
          provisioning: platform,
          lifecycle: platform.lifecycle,
          orchestrator,
          workflows,
          logger: recoveryLogger,
          options: pass.recovery,
        }),
        ...(pass.onProgress === undefined ? {} : { onProgress: pass.onProgress }),
      });
      // No Lambda deadline locally: the pass covers every tenant.
      return handler({ 'detail-type': pass.trigger ?? 'Local recovery' }, {} as Context);
    },
  };
}
