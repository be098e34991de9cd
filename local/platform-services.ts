import type { RDSClient } from '@aws-sdk/client-rds';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { TenantflowConfig } from '@tenantflow/shared/config/config';
import type { TenantMigrationSet } from '@tenantflow/shared/db/migrations';
import type { Failpoints } from '@tenantflow/shared/kernel/failpoints';
import { createAuth } from '@tenantflow/shared/runtime/auth';
import { createPlatformCore, type PlatformCore } from '@tenantflow/shared/runtime/core';
import { createProvisioning, type Provisioning } from '@tenantflow/shared/runtime/provisioning';
import { createSecretStore } from '@tenantflow/shared/runtime/secret-store';
import { createTenantAccess, type TenantAccess } from '@tenantflow/shared/runtime/task-running';
import type { SecretStore } from '@tenantflow/shared/secrets/secret-store';
import { workflows as installedWorkflows } from '../workflows/index.js';

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
}

/**
 * Every capability of the platform on one core, as the local server runs them all in one process
 * (in AWS each function builds only its own). Built by the same factories the Lambda handlers use;
 * one secret store serves provisioning and task running, so a rotation drops the cached
 * connections at once.
 */
export interface PlatformServices extends TenantAccess, Provisioning {
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
 * await platform.tenantAdmin.register({ tenantId: 'acme', name: 'Acme' });
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
    const provisioning = await createProvisioning(core, {
      secrets,
      rdsClient: adapters.rdsClient,
      onCredentialsChanged: (tenantId) => access.tenantConnections.forget(tenantId),
      failpoints: adapters.failpoints,
      tenantMigrations: adapters.tenantMigrations ?? installedWorkflows.tenantMigrations(),
    });
    return {
      ...access,
      ...provisioning,
      ...createAuth(core),
      core,
      config,
      pool: core.pool,
      registry: core.registry,
      close: () => core.close(),
    };
  } catch (error) {
    await core.close();
    throw error;
  }
}
