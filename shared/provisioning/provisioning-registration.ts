import type { TenantRegistration } from '../tenancy/tenant-context.js';
import type { TenantInfo } from '../tenancy/tenant-registry.js';
import type { ProvisioningService } from './provisioning-service.js';

/**
 * The context switch's registration in a deployment: `registerTenant` provisions (schema, role,
 * secret, migrations, then active) and `unregisterTenant` deprovisions, which, as through the admin
 * API, needs the tenant deactivated first. The API key provisioning issues is not returned here:
 * issue one with `issueApiKey` (`POST /tenants/{tenantId}/api-key`).
 *
 * @example
 * ```ts
 * const tenants = new TenantContextSwitch(registry, new ProvisioningRegistration(provisioning));
 * await tenants.registerTenant('acme', 'Acme');
 * ```
 */
export class ProvisioningRegistration implements TenantRegistration {
  constructor(private readonly provisioning: Pick<ProvisioningService, 'provision' | 'deprovision'>) {}

  async register(tenant: Parameters<TenantRegistration['register']>[0]): Promise<TenantInfo> {
    return (await this.provisioning.provision(tenant)).tenant;
  }

  unregister(tenantId: string): Promise<void> {
    return this.provisioning.deprovision(tenantId);
  }
}
