import type { RDSClient } from '@aws-sdk/client-rds';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { TenantflowConfig } from '@tenantflow/shared/config/config';
import type { TenantMigrationSet } from '@tenantflow/shared/db/migrations';
import type { Failpoints } from '@tenantflow/shared/kernel/failpoints';
import {
  compileOffboardingAsl,
  compileOnboardingAsl,
  OFFBOARDING,
  ONBOARDING,
} from '@tenantflow/shared/lifecycle/lifecycle-asl';
import { createLogger } from '@tenantflow/shared/logging/logger';
import { createAuth } from '@tenantflow/shared/runtime/auth';
import { createPlatformCore, type PlatformCore } from '@tenantflow/shared/runtime/core';
import { createLifecycle, type Lifecycle } from '@tenantflow/shared/runtime/lifecycle';
import { createProvisioning, type Provisioning } from '@tenantflow/shared/runtime/provisioning';
import { createScheduleCleanup } from '@tenantflow/shared/runtime/schedules';
import { createSecretStore } from '@tenantflow/shared/runtime/secret-store';
import { createTenantAccess, type TenantAccess } from '@tenantflow/shared/runtime/task-running';
import type { SecretStore } from '@tenantflow/shared/secrets/secret-store';
import { createProvisioningStepHandler } from '../functions/provisioning/step.js';
import { workflows as installedWorkflows } from '../workflows/index.js';
import { LocalOrchestrator } from './local-orchestrator.js';
import { LocalScheduleTrigger, type TriggerClock } from './local-schedule-trigger.js';

/**
 * The adapters a process on one machine may swap in: another secret store (tests), AWS clients
 * pointed at an emulator, and failure injection; and the workflows' tables, when it runs other
 * workflows than the installation's. Everything else is wired as in AWS.
 */
export interface LocalAdapters {
  readonly secrets?: SecretStore | undefined;
  readonly secretsManagerClient?: SecretsManagerClient | undefined;
  readonly rdsClient?: RDSClient | undefined;
  readonly failpoints?: Failpoints | undefined;
  /**
   * The tables of the workflows this process runs.
   * @default the installation's (`workflows/index.ts`)
   */
  readonly tenantMigrations?: readonly TenantMigrationSet[] | undefined;
  /**
   * Where the lifecycle state machines' executions are journaled, so that after a crash recovery
   * can tell which onboarding was lost and redrive it.
   * @default in memory only
   */
  readonly lifecycleJournalDirectory?: string | undefined;
  /** Retry and Wait state waits of the lifecycle state machines, in milliseconds (tests only). */
  readonly lifecycleWaitMs?: number | undefined;
  /** The clock the local schedule timer runs on (tests drive one by hand). @default the system clock */
  readonly scheduleClock?: TriggerClock | undefined;
}

/** How long closing waits for onboardings and offboardings under way. */
const LIFECYCLE_DRAIN_MS = 5_000;

/** The Lambda ARN the local lifecycle state machines invoke, mapped to the in-process step handler. */
export const LOCAL_PROVISIONING_STEP_ARN =
  'arn:aws:lambda:local:000000000000:function:tenantflow-local-provisioning-step';

/**
 * Every capability of the platform on one core, as the local server runs them all in one process
 * (in AWS each function builds only its own). Built by the same factories the Lambda handlers use;
 * one secret store serves provisioning and task running, so a rotation drops the cached
 * connections at once. The onboarding and offboarding state machines run in a local orchestrator
 * whose one Lambda is the provisioning-step handler, as in AWS.
 */
export interface PlatformServices extends TenantAccess, Provisioning, Lifecycle {
  /** Runs the onboarding and offboarding state machines: the same ASL as in AWS, in-process. */
  readonly lifecycleOrchestrator: LocalOrchestrator;
  /** Fires the tenants' schedules: the local stand-in for EventBridge Scheduler. */
  readonly scheduleTrigger: LocalScheduleTrigger;
  readonly core: PlatformCore;
  readonly config: TenantflowConfig;
  readonly pool: PlatformCore['pool'];
  readonly registry: PlatformCore['registry'];
  readonly adminAuth: ReturnType<typeof createAuth>['adminAuth'];
  readonly authorizer: ReturnType<typeof createAuth>['authorizer'];
  close(): Promise<void>;
}

/**
 * @example
 * ```ts
 * const platform = await createPlatformServices(loadConfig({ DATABASE_URL: url, TENANTFLOW_LOCAL: '1' }));
 * await platform.tenantAdmin.register({ tenantId: 'acme', name: 'Acme' }); // onboarding runs in the background
 * await platform.provisioning.provision({ tenantId: 'globex', name: 'Globex' }); // or in one call
 * await platform.close();
 * ```
 */
export async function createPlatformServices(
  config: TenantflowConfig,
  adapters: LocalAdapters = {},
): Promise<PlatformServices> {
  const core = await createPlatformCore(config, { secretsManagerClient: adapters.secretsManagerClient });
  try {
    const secrets = adapters.secrets ?? createSecretStore(core);
    const access = createTenantAccess(core, { secrets });
    const scheduleLogger = createLogger('schedules');
    // Fires once the local server starts it (`start`), with the schedules service it builds.
    const scheduleTrigger = new LocalScheduleTrigger({
      logger: scheduleLogger,
      ...(adapters.scheduleClock === undefined ? {} : { clock: adapters.scheduleClock }),
    });
    const provisioning = await createProvisioning(core, {
      secrets,
      rdsClient: adapters.rdsClient,
      onCredentialsChanged: (tenantId) => access.tenantConnections.forget(tenantId),
      failpoints: adapters.failpoints,
      tenantMigrations: adapters.tenantMigrations ?? installedWorkflows.tenantMigrations(),
      scheduleCleanup: createScheduleCleanup(core, { trigger: scheduleTrigger, logger: scheduleLogger }),
    });
    const stepLogger = createLogger('provisioning-step');
    const lifecycleOrchestrator = new LocalOrchestrator({
      definitions: {
        [ONBOARDING]: compileOnboardingAsl({ provisioningStepArn: LOCAL_PROVISIONING_STEP_ARN }),
        [OFFBOARDING]: compileOffboardingAsl({ provisioningStepArn: LOCAL_PROVISIONING_STEP_ARN }),
      },
      lambdas: {
        [LOCAL_PROVISIONING_STEP_ARN]: createProvisioningStepHandler({
          provisioning: provisioning.provisioning,
          logger: stepLogger,
          metrics: core.metrics,
        }),
      },
      ...(adapters.lifecycleJournalDirectory === undefined
        ? {}
        : { journalDirectory: adapters.lifecycleJournalDirectory }),
      onJournalError: (error) => stepLogger.error('could not write the lifecycle journal', { error }),
      ...(adapters.lifecycleWaitMs === undefined
        ? {}
        : { retryIntervalMs: adapters.lifecycleWaitMs, waitMs: adapters.lifecycleWaitMs }),
    });
    return {
      ...access,
      ...provisioning,
      ...createLifecycle(core, provisioning, {
        orchestrator: lifecycleOrchestrator,
        logger: createLogger('tenant-lifecycle'),
      }),
      ...createAuth(core),
      lifecycleOrchestrator,
      scheduleTrigger,
      core,
      config,
      pool: core.pool,
      registry: core.registry,
      close: async () => {
        // Onboardings under way get a moment to finish before the pool closes; one that does not
        // is journaled as running and redriven by recovery on the next start.
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          lifecycleOrchestrator.drain().catch(() => undefined),
          new Promise<void>((resolveWait) => {
            timer = setTimeout(resolveWait, LIFECYCLE_DRAIN_MS);
          }),
        ]);
        clearTimeout(timer);
        await scheduleTrigger.stop();
        await core.close();
      },
    };
  } catch (error) {
    await core.close();
    throw error;
  }
}
