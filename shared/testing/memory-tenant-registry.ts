import { TenantAlreadyExistsError } from '../kernel/errors.js';
import {
  applyMergePatch,
  emptyTenantConfig,
  jsonBytes,
  MAX_CONFIG_BYTES,
  MAX_METADATA_BYTES,
  profileTooLarge,
  type TenantConfig,
} from '../tenancy/tenant-config.js';
import {
  type ClaimRequest,
  type ClaimResult,
  emptyStatusCounts,
  type NewTenant,
  type RemoveTenantOutcome,
  type StatusChange,
  type TenantInfo,
  type TenantMetadata,
  type TenantPage,
  type TenantPageQuery,
  type TenantProfilePatch,
  type TenantRegistry,
  type TenantStatus,
} from '../tenancy/tenant-registry.js';

/**
 * An in-process {@link TenantRegistry}. Entries are frozen copies, so a caller holding a
 * `TenantInfo` cannot change the registry behind its back.
 *
 * @example
 * ```ts
 * const registry = new MemoryTenantRegistry();
 * const tenants = new TenantContextSwitch(registry, directRegistration(registry));
 * ```
 */
interface Private {
  leaseOwner?: string | undefined;
  leaseExpiresAt?: number | undefined;
  secretRef?: string | undefined;
  apiKeyHash?: string | undefined;
}

export class MemoryTenantRegistry implements TenantRegistry {
  readonly #tenants = new Map<string, TenantInfo>();
  readonly #private = new Map<string, Private>();

  constructor(private readonly now: () => number = Date.now) {}

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
      config: structuredClone(tenant.config ?? emptyTenantConfig()),
    });
    this.#tenants.set(tenant.tenantId, info);
    this.#private.set(
      tenant.tenantId,
      tenant.apiKeyHash === undefined ? {} : { apiKeyHash: tenant.apiKeyHash },
    );
    return info;
  }

  get(tenantId: string): TenantInfo | undefined {
    return this.#tenants.get(tenantId);
  }

  async list(): Promise<TenantInfo[]> {
    return [...this.#tenants.values()].sort((a, b) => (a.tenantId < b.tenantId ? -1 : 1));
  }

  async listPage(query: TenantPageQuery): Promise<TenantPage> {
    const { after, status } = query;
    const matching = (await this.list()).filter(
      (tenant) =>
        (after === undefined || tenant.tenantId > after) &&
        (status === undefined || tenant.status === status),
    );
    const tenants = matching.slice(0, query.limit);
    return { tenants, next: matching.length > query.limit ? tenants.at(-1)?.tenantId : undefined };
  }

  async setStatus(
    tenantId: string,
    status: TenantStatus,
    allowedFrom?: readonly TenantStatus[],
  ): Promise<StatusChange> {
    const current = this.#tenants.get(tenantId);
    if (current === undefined) {
      return { kind: 'not_found' };
    }
    if (allowedFrom !== undefined && !allowedFrom.includes(current.status)) {
      return { kind: 'status_mismatch', tenant: current };
    }
    const updated = freeze({ ...current, status, active: status === 'active' });
    this.#tenants.set(tenantId, updated);
    return { kind: 'updated', tenant: updated };
  }

  async claim(tenantId: string, request: ClaimRequest): Promise<TenantInfo | undefined> {
    const current = this.#tenants.get(tenantId);
    const hidden = this.#private.get(tenantId);
    if (current === undefined || hidden === undefined || current.status !== request.status) {
      return undefined;
    }
    const held = hidden.leaseOwner !== undefined && (hidden.leaseExpiresAt ?? 0) > this.now();
    if (held && hidden.leaseOwner !== request.owner) {
      return undefined;
    }
    hidden.leaseOwner = request.owner;
    hidden.leaseExpiresAt = this.now() + request.leaseMs;
    if (request.step === undefined) {
      return current;
    }
    const stepped = freeze({ ...current, currentStep: request.step });
    this.#tenants.set(tenantId, stepped);
    return stepped;
  }

  async releaseClaim(tenantId: string, owner: string, result: ClaimResult): Promise<TenantInfo | undefined> {
    const current = this.#tenants.get(tenantId);
    const hidden = this.#private.get(tenantId);
    if (current === undefined || hidden === undefined || hidden.leaseOwner !== owner) {
      return undefined;
    }
    hidden.leaseOwner = undefined;
    hidden.leaseExpiresAt = undefined;
    if (result.secretRef !== undefined) {
      hidden.secretRef = result.secretRef ?? undefined;
    }
    if (result.apiKeyHash !== undefined) {
      hidden.apiKeyHash = result.apiKeyHash ?? undefined;
    }
    const status = result.status ?? current.status;
    const lastError = result.lastError === undefined ? current.lastError : (result.lastError ?? undefined);
    const currentStep =
      result.currentStep === undefined ? current.currentStep : (result.currentStep ?? undefined);
    const updated = freeze({ ...current, status, active: status === 'active', lastError, currentStep });
    this.#tenants.set(tenantId, updated);
    return updated;
  }

  async replaceApiKeyHash(
    tenantId: string,
    apiKeyHash: string,
    allowedFrom: readonly TenantStatus[],
  ): Promise<StatusChange> {
    const current = this.#tenants.get(tenantId);
    const hidden = this.#private.get(tenantId);
    if (current === undefined || hidden === undefined) {
      return { kind: 'not_found' };
    }
    if (!allowedFrom.includes(current.status)) {
      return { kind: 'status_mismatch', tenant: current };
    }
    hidden.apiKeyHash = apiKeyHash;
    return { kind: 'updated', tenant: current };
  }

  async getCredentialRefs(tenantId: string) {
    const hidden = this.#private.get(tenantId);
    return hidden === undefined ? undefined : { apiKeyHash: hidden.apiKeyHash, secretRef: hidden.secretRef };
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
    this.#private.delete(tenantId);
    return 'removed';
  }

  async updateProfile(tenantId: string, patch: TenantProfilePatch): Promise<TenantInfo | undefined> {
    const current = this.#tenants.get(tenantId);
    if (current === undefined) {
      return undefined;
    }
    const metadata = applyMergePatch(current.metadata, patch.metadata ?? {}) as TenantMetadata;
    const config = applyMergePatch(current.config, patch.config ?? {}) as TenantConfig;
    if (jsonBytes(metadata) > MAX_METADATA_BYTES || jsonBytes(config) > MAX_CONFIG_BYTES) {
      throw profileTooLarge();
    }
    const updated = freeze({ ...current, name: patch.name ?? current.name, metadata, config });
    this.#tenants.set(tenantId, updated);
    return updated;
  }

  async findByApiKeyHash(apiKeyHash: string): Promise<TenantInfo | undefined> {
    for (const [tenantId, hidden] of this.#private) {
      if (hidden.apiKeyHash === apiKeyHash) {
        return this.#tenants.get(tenantId);
      }
    }
    return undefined;
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
  return Object.freeze({
    ...info,
    metadata: Object.freeze(info.metadata),
    config: Object.freeze({
      settings: Object.freeze(info.config.settings),
      features: Object.freeze(info.config.features),
      limits: Object.freeze(info.config.limits),
    }),
  });
}
