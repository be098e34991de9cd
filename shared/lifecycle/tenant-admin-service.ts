import { TenantNotFoundError } from '../kernel/errors.js';
import { assertValidTenantId } from '../kernel/tenant-id.js';
import type {
  IssuedApiKey,
  ProvisioningService,
  ProvisionResult,
} from '../provisioning/provisioning-service.js';
import type { TenantConfig } from '../tenancy/tenant-config.js';
import type { TenantContextSwitch } from '../tenancy/tenant-context.js';
import type {
  TenantInfo,
  TenantMetadata,
  TenantPage,
  TenantPageQuery,
  TenantProfilePatch,
  TenantRegistry,
} from '../tenancy/tenant-registry.js';
import type { TenantLifecycle } from './tenant-lifecycle.js';

export interface RegisterTenantCommand {
  readonly tenantId: string;
  readonly name: string;
  readonly metadata?: TenantMetadata | undefined;
  readonly config?: TenantConfig | undefined;
}

/**
 * What the admin API does with tenants. Registration starts onboarding and deletion starts
 * offboarding, each a state machine (see {@link TenantLifecycle}), and both answer before it
 * ends; the rest reads and flips the registry through the context switch.
 *
 * @example
 * ```ts
 * const admin = new TenantAdminService(tenants, provisioning, lifecycle, registry);
 * const { tenant, apiKey } = await admin.register({ tenantId: 'acme', name: 'Acme Corp' }); // 'provisioning'
 * ```
 */
export class TenantAdminService {
  constructor(
    private readonly tenants: TenantContextSwitch,
    private readonly provisioning: Pick<ProvisioningService, 'rotateCredentials' | 'issueApiKey'>,
    private readonly lifecycle: Pick<TenantLifecycle, 'onboard' | 'offboard'>,
    private readonly registry: TenantRegistry,
  ) {}

  /**
   * Registers the tenant (`provisioning`, its API key minted and returned once) and starts its
   * onboarding; the key works once the tenant is `active`.
   */
  register(command: RegisterTenantCommand): Promise<ProvisionResult> {
    return this.lifecycle.onboard({
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

  /**
   * One page of tenants ordered by id, of one status or all; `next` is the id the following page
   * starts after (the API hands it out as an opaque `nextToken`).
   *
   * @example
   * ```ts
   * const { tenants, next } = await admin.list({ status: 'active', limit: 50 });
   * ```
   */
  list(query: TenantPageQuery): Promise<TenantPage> {
    if (query.after !== undefined) {
      // Only ever compared with ids, but a string that is no tenant id has no business in SQL.
      assertValidTenantId(query.after);
    }
    return this.registry.listPage(query);
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

  /**
   * Starts offboarding an inactive tenant (never one that may still have work running); answers
   * it as `deprovisioning`. It is gone once the offboarding state machine ends.
   */
  remove(tenantId: string): Promise<TenantInfo> {
    assertValidTenantId(tenantId);
    return this.lifecycle.offboard(tenantId);
  }

  rotateCredentials(tenantId: string): Promise<{ tenantId: string; rotatedAt: Date }> {
    return this.provisioning.rotateCredentials(tenantId);
  }

  /** A new API key for the tenant, returned once; the previous key stops working. */
  issueApiKey(tenantId: string): Promise<IssuedApiKey> {
    return this.provisioning.issueApiKey(tenantId);
  }
}
