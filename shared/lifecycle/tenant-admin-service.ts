import { TenantNotFoundError } from '../kernel/errors.js';
import { assertValidTenantId } from '../kernel/tenant-id.js';
import type { TenantConfig } from '../tenancy/tenant-config.js';
import type { TenantContextSwitch } from '../tenancy/tenant-context.js';
import type {
  TenantInfo,
  TenantMetadata,
  TenantProfilePatch,
  TenantRegistry,
} from '../tenancy/tenant-registry.js';
import type { IssuedApiKey, ProvisioningService, ProvisionResult } from './provisioning-service.js';

export interface RegisterTenantCommand {
  readonly tenantId: string;
  readonly name: string;
  readonly metadata?: TenantMetadata | undefined;
  readonly config?: TenantConfig | undefined;
}

/**
 * What the admin API does with tenants. Registration provisions (schema, role, secret,
 * migrations) and deletion deprovisions; the rest reads and flips the registry through the
 * context switch.
 *
 * @example
 * ```ts
 * const admin = new TenantAdminService(tenants, provisioning, registry);
 * const { tenant, apiKey } = await admin.register({ tenantId: 'acme', name: 'Acme Corp' });
 * ```
 */
export class TenantAdminService {
  constructor(
    private readonly tenants: TenantContextSwitch,
    private readonly provisioning: ProvisioningService,
    private readonly registry: TenantRegistry,
  ) {}

  register(command: RegisterTenantCommand): Promise<ProvisionResult> {
    return this.provisioning.provision({
      tenantId: command.tenantId,
      name: command.name,
      metadata: command.metadata ?? {},
      ...(command.config === undefined ? {} : { config: command.config }),
    });
  }

  /** Renames a tenant, or merge-patches its metadata or config; the next task sees the change. */
  async update(tenantId: string, patch: TenantProfilePatch): Promise<TenantInfo> {
    assertValidTenantId(tenantId);
    const updated = await this.registry.updateProfile(tenantId, patch);
    if (updated === undefined) {
      throw new TenantNotFoundError(tenantId);
    }
    return updated;
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

  /** A new API key for the tenant, returned once; the previous key stops working. */
  issueApiKey(tenantId: string): Promise<IssuedApiKey> {
    return this.provisioning.issueApiKey(tenantId);
  }
}
