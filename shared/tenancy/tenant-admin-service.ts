import { TenantNotFoundError, TenantStateConflictError } from '../errors.js';
import type { TenantContextSwitch } from './tenant-context.js';
import type { TenantInfo, TenantMetadata, TenantRegistry } from './tenant-registry.js';

export interface RegisterTenantCommand {
  readonly tenantId: string;
  readonly name: string;
  readonly metadata?: TenantMetadata;
}

/**
 * What the admin API does with tenants. It adds the operator-facing rules on top of the context
 * switch: an unknown tenant is a `TenantNotFoundError`, and an active tenant cannot be deleted.
 *
 * @example
 * ```ts
 * const admin = new TenantAdminService(registry, new TenantContextSwitch(registry));
 * await admin.register({ tenantId: 'acme', name: 'Acme Corp' });
 * ```
 */
export class TenantAdminService {
  constructor(
    private readonly registry: TenantRegistry,
    private readonly tenants: TenantContextSwitch,
  ) {}

  register(command: RegisterTenantCommand): Promise<TenantInfo> {
    return this.tenants.registerTenant(command.tenantId, command.name, command.metadata ?? {});
  }

  list(): Promise<TenantInfo[]> {
    return this.tenants.listTenants();
  }

  async get(tenantId: string): Promise<TenantInfo> {
    const tenant = await this.tenants.getTenant(tenantId);
    if (tenant === undefined) {
      throw new TenantNotFoundError(tenantId);
    }
    return tenant;
  }

  activate(tenantId: string): Promise<TenantInfo> {
    return this.tenants.activateTenant(tenantId);
  }

  deactivate(tenantId: string): Promise<TenantInfo> {
    return this.tenants.deactivateTenant(tenantId);
  }

  /**
   * Deletes an inactive tenant. Requiring deactivation first means a tenant is never removed
   * while work may still be running for it; the check and the delete are one statement, so a
   * concurrent reactivation wins rather than being lost.
   */
  async remove(tenantId: string): Promise<void> {
    const outcome = await this.registry.remove(tenantId, 'inactive');
    if (outcome === 'not_found') {
      throw new TenantNotFoundError(tenantId);
    }
    if (outcome === 'status_mismatch') {
      throw new TenantStateConflictError(
        `Tenant '${tenantId}' must be inactive before it can be deleted. ` +
          `Deactivate it first: POST /tenants/${tenantId}/deactivate`,
      );
    }
  }
}
