import { TenantNotFoundError } from '../kernel/errors.js';
import type { TenantRegistration } from '../tenancy/tenant-context.js';
import type { TenantRegistry } from '../tenancy/tenant-registry.js';

/**
 * Registration that writes the registry directly: the tenant is active at once, with no schema,
 * role or secret. For the in-memory registry (tests, the library's in-memory use) and for tests of
 * the context switch over PostgreSQL; a deployment registers through provisioning
 * (`ProvisioningRegistration`), never this.
 *
 * @example
 * ```ts
 * const registry = new MemoryTenantRegistry();
 * const tenants = new TenantContextSwitch(registry, directRegistration(registry));
 * await tenants.registerTenant('acme', 'Acme');
 * ```
 */
export function directRegistration(registry: Pick<TenantRegistry, 'create' | 'remove'>): TenantRegistration {
  return {
    register: (tenant) => registry.create({ ...tenant, status: 'active' }),
    unregister: async (tenantId) => {
      if ((await registry.remove(tenantId)) === 'not_found') {
        throw new TenantNotFoundError(tenantId);
      }
    },
  };
}
