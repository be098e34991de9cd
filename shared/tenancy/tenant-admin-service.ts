import { TenantNotFoundError } from '../errors.js';
import type { ProvisioningService, ProvisionResult } from '../provisioning/provisioning-service.js';
import type { TenantContextSwitch } from './tenant-context.js';
import { assertValidTenantId } from './tenant-id.js';
import type { TenantInfo, TenantMetadata } from './tenant-registry.js';

export interface RegisterTenantCommand {
  readonly tenantId: string;
  readonly name: string;
  readonly metadata?: TenantMetadata | undefined;
}

/**
 * What the admin API does with tenants. Registration provisions (schema, role, secret,
 * migrations) and deletion deprovisions; the rest reads and flips the registry through the
 * context switch.
 *
 * @example
 * ```ts
 * const admin = new TenantAdminService(tenants, provisioning);
 * const { tenant, apiKey } = await admin.register({ tenantId: 'acme', name: 'Acme Corp' });
 * ```
 */
export class TenantAdminService {
  constructor(
    private readonly tenants: TenantContextSwitch,
    private readonly provisioning: ProvisioningService,
  ) {}

  register(command: RegisterTenantCommand): Promise<ProvisionResult> {
    return this.provisioning.provision({
      tenantId: command.tenantId,
      name: command.name,
      metadata: command.metadata ?? {},
    });
  }

  list(): Promise<TenantInfo[]> {
    return this.tenants.listTenants();
  }

  async get(tenantId: string): Promise<TenantInfo> {
    assertValidTenantId(tenantId);
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

  /** Deprovisions an inactive tenant: never one that may still have work running. */
  remove(tenantId: string): Promise<void> {
    return this.provisioning.deprovision(tenantId);
  }

  rotateCredentials(tenantId: string): Promise<{ tenantId: string; rotatedAt: Date }> {
    return this.provisioning.rotateCredentials(tenantId);
  }
}
