import { TenantAlreadyExistsError } from '../errors.js';
import {
  emptyStatusCounts,
  type NewTenant,
  type RemoveTenantOutcome,
  type TenantInfo,
  type TenantRegistry,
  type TenantStatus,
} from './tenant-registry.js';

/**
 * An in-process {@link TenantRegistry}. Entries are frozen copies, so a caller holding a
 * `TenantInfo` cannot change the registry behind its back.
 *
 * @example
 * ```ts
 * const tenants = new TenantContextSwitch(new MemoryTenantRegistry());
 * ```
 */
export class MemoryTenantRegistry implements TenantRegistry {
  readonly #tenants = new Map<string, TenantInfo>();

  async create(tenant: NewTenant): Promise<TenantInfo> {
    if (this.#tenants.has(tenant.tenantId)) {
      throw new TenantAlreadyExistsError(tenant.tenantId);
    }
    const info = freeze({
      tenantId: tenant.tenantId,
      name: tenant.name,
      status: tenant.status,
      active: tenant.status === 'active',
      createdAt: new Date(),
      metadata: structuredClone(tenant.metadata),
    });
    this.#tenants.set(tenant.tenantId, info);
    return info;
  }

  get(tenantId: string): TenantInfo | undefined {
    return this.#tenants.get(tenantId);
  }

  async list(): Promise<TenantInfo[]> {
    return [...this.#tenants.values()].sort((a, b) => (a.tenantId < b.tenantId ? -1 : 1));
  }

  async setStatus(tenantId: string, status: TenantStatus): Promise<TenantInfo | undefined> {
    const current = this.#tenants.get(tenantId);
    if (current === undefined) {
      return undefined;
    }
    const updated = freeze({ ...current, status, active: status === 'active' });
    this.#tenants.set(tenantId, updated);
    return updated;
  }

  async remove(tenantId: string, onlyIfStatus?: TenantStatus): Promise<RemoveTenantOutcome> {
    const current = this.#tenants.get(tenantId);
    if (current === undefined) {
      return 'not_found';
    }
    if (onlyIfStatus !== undefined && current.status !== onlyIfStatus) {
      return 'status_mismatch';
    }
    this.#tenants.delete(tenantId);
    return 'removed';
  }

  async countByStatus(): Promise<Record<TenantStatus, number>> {
    const counts = emptyStatusCounts();
    for (const tenant of this.#tenants.values()) {
      counts[tenant.status] += 1;
    }
    return counts;
  }
}

function freeze(info: TenantInfo): TenantInfo {
  return Object.freeze({ ...info, metadata: Object.freeze(info.metadata) });
}
