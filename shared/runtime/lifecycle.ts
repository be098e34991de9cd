import { TenantAdminService } from '../lifecycle/tenant-admin-service.js';
import { type LifecycleResumption, resumeLifecycle, TenantLifecycle } from '../lifecycle/tenant-lifecycle.js';
import type { Logger } from '../logging/logger.js';
import { ProvisioningRegistration } from '../provisioning/provisioning-registration.js';
import { TenantContextSwitch } from '../tenancy/tenant-context.js';
import type { TenantInfo } from '../tenancy/tenant-registry.js';
import type { Orchestrator } from '../workflows/orchestrator.js';
import type { PlatformCore } from './core.js';
import type { Provisioning } from './provisioning.js';
import { stepFunctionsOrchestrator } from './step-functions.js';

export interface LifecycleOptions {
  /**
   * What runs the `onboarding` and `offboarding` state machines.
   * @default Step Functions, with the ARNs CDK set (`TENANTFLOW_LIFECYCLE_STATE_MACHINE_ARNS`)
   */
  readonly orchestrator?: Orchestrator | undefined;
  readonly logger: Logger;
}

export interface Lifecycle {
  readonly lifecycle: TenantLifecycle;
  /** The admin API's service: onboarding and offboarding through the lifecycle state machines. */
  readonly tenantAdmin: TenantAdminService;
}

/**
 * Onboarding and offboarding as state machines, over provisioning: the admin API's service and
 * the lifecycle that starts, runs the steps of, and resumes the executions.
 *
 * @example
 * ```ts
 * const provisioning = await createProvisioning(core);
 * const { tenantAdmin } = createLifecycle(core, provisioning, { logger });
 * await tenantAdmin.register({ tenantId: 'acme', name: 'Acme' }); // 'provisioning'; the state machine does the rest
 * ```
 */
export function createLifecycle(
  core: Pick<PlatformCore, 'config' | 'registry'>,
  provisioning: Pick<Provisioning, 'provisioning'>,
  options: LifecycleOptions,
): Lifecycle {
  const lifecycle = new TenantLifecycle({
    provisioning: provisioning.provisioning,
    registry: core.registry,
    orchestrator:
      options.orchestrator ?? stepFunctionsOrchestrator(core, core.config.lifecycleStateMachineArns),
    logger: options.logger,
  });
  return {
    lifecycle,
    tenantAdmin: new TenantAdminService(
      new TenantContextSwitch(core.registry, new ProvisioningRegistration(provisioning.provisioning)),
      provisioning.provisioning,
      lifecycle,
      core.registry,
    ),
  };
}

/**
 * Recovery's part of the lifecycle: starting and redriving the executions of stuck tenants, over
 * Step Functions unless `orchestrator` is given. It builds no provisioning, so the recovery
 * function needs neither the admin login nor the tenant secrets.
 */
export function createLifecycleResumer(
  core: Pick<PlatformCore, 'config'>,
  orchestrator?: Orchestrator,
): { resume(tenant: Pick<TenantInfo, 'tenantId' | 'status' | 'createdAt'>): Promise<LifecycleResumption> } {
  const lifecycleOrchestrator =
    orchestrator ?? stepFunctionsOrchestrator(core, core.config.lifecycleStateMachineArns);
  return { resume: (tenant) => resumeLifecycle(lifecycleOrchestrator, tenant) };
}
