import { databaseTls } from '../config/database-credentials.js';
import type { Failpoints } from '../kernel/failpoints.js';
import type { Logger } from '../logging/logger.js';
import type { SecretStore } from '../secrets/secret-store.js';
import { PgTenantRegistry } from '../tenancy/pg-tenant-registry.js';
import { TenantConnections } from '../tenancy/tenant-connections.js';
import { TenantContextSwitch } from '../tenancy/tenant-context.js';
import { ExecutionStore } from '../workflows/execution-store.js';
import { TaskRunner } from '../workflows/task-runner.js';
import type { WorkflowRegistry } from '../workflows/workflow-registry.js';
import type { PlatformCore } from './core.js';
import { createSecretStore } from './secret-store.js';

export interface TaskRunningOptions {
  readonly workflows: WorkflowRegistry;
  readonly logger: Logger;
  /** @default the store the configuration names ({@link createSecretStore}) */
  readonly secrets?: SecretStore | undefined;
  readonly failpoints?: Failpoints | undefined;
}

/** What reaching a tenant's own data takes: the context switch, its secret, its role's connections. */
export interface TenantAccess {
  readonly tenants: TenantContextSwitch;
  /** Tenant-role connections for task code, closed with the core. */
  readonly tenantConnections: TenantConnections;
  readonly secrets: SecretStore;
}

export interface TaskRunning extends TenantAccess {
  readonly runner: TaskRunner;
}

/**
 * Running workflow tasks: the tenant context switch, tenant-role connections (each tenant's own
 * login, read from its secret) and the task runner. The run-task Lambda builds this and nothing
 * else; it is never given the admin login.
 *
 * @example
 * ```ts
 * const { runner } = createTaskRunning(core, { workflows, logger });
 * await runner.run({ tenantId: 'acme', executionId, taskId: 'extract' });
 * ```
 */
export function createTaskRunning(core: PlatformCore, options: TaskRunningOptions): TaskRunning {
  const access = createTenantAccess(core, options);
  return { ...access, runner: createTaskRunner(core, access, options) };
}

/** The tenant side of task running, without a runner (the local server builds its runners on it). */
export function createTenantAccess(
  core: PlatformCore,
  options: Pick<TaskRunningOptions, 'secrets'> = {},
): TenantAccess {
  const { config } = core;
  const secrets = options.secrets ?? createSecretStore(core);
  const tenantConnections = new TenantConnections({
    secrets,
    // Tenant roles connect through the same proxy as the platform, so with the same TLS.
    ssl: databaseTls(config.database.ssl),
    // A Lambda sandbox serves one invocation at a time, so a few tenants' pools suffice; the local
    // server runs every tenant's tasks in one process (32 × 2 stays under PostgreSQL's default 100).
    maxTenants: config.local ? 32 : 8,
    ...(hasInvalidate(secrets)
      ? { invalidateSecret: (tenantId: string) => secrets.invalidate(tenantId) }
      : {}),
  });
  core.closeWith(() => tenantConnections.close());
  // A task trusts a tenant found active for a few seconds: a burst of tasks costs one registry read,
  // and the completion reads the registry again, so a deactivated tenant's work never commits.
  const tenants = new TenantContextSwitch(core.registry, undefined, {
    trustActiveForMs: config.taskTenantCacheSeconds * 1000,
  });
  // A change made in this process (the local server's API) reaches the next task at once.
  if (core.registry instanceof PgTenantRegistry) {
    const unsubscribe = core.registry.onChange((tenantId) => tenants.forget(tenantId));
    core.closeWith(async () => unsubscribe());
  }
  return { tenants, tenantConnections, secrets };
}

/** A task runner over a tenant access, for one set of workflows. */
export function createTaskRunner(
  core: Pick<PlatformCore, 'pool'> & Partial<Pick<PlatformCore, 'metrics'>>,
  access: Pick<TenantAccess, 'tenants' | 'tenantConnections'>,
  options: Omit<TaskRunningOptions, 'secrets'>,
): TaskRunner {
  return new TaskRunner({
    tenants: access.tenants,
    workflows: options.workflows,
    store: new ExecutionStore(core.pool),
    tenantConnections: access.tenantConnections,
    logger: options.logger,
    metrics: core.metrics,
    ...(options.failpoints === undefined ? {} : { failpoints: options.failpoints }),
  });
}

function hasInvalidate(store: SecretStore): store is SecretStore & { invalidate(tenantId: string): void } {
  return typeof (store as { invalidate?: unknown }).invalidate === 'function';
}
