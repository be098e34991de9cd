import { TenantInactiveError } from '../kernel/errors.js';
import type { TenantConfig, TenantConfigPatch } from './tenant-config.js';

/**
 * Lifecycle of a tenant in the registry. `provisioning` and `deprovisioning` are the resumable
 * in-between states of onboarding and offboarding; only `active` tenants may run work.
 */
export type TenantStatus = 'provisioning' | 'active' | 'inactive' | 'deprovisioning';

export const TENANT_STATUSES = [
  'provisioning',
  'active',
  'inactive',
  'deprovisioning',
] as const satisfies readonly TenantStatus[];

export type TenantMetadata = Record<string, unknown>;

export type { TenantConfig } from './tenant-config.js';

/** What the platform knows about one tenant. */
export interface TenantInfo {
  readonly tenantId: string;
  readonly name: string;
  /** `true` exactly when `status === 'active'`. */
  readonly active: boolean;
  readonly status: TenantStatus;
  readonly createdAt: Date;
  readonly metadata: TenantMetadata;
  /** Settings, features and limits; every task sees them as `ctx.tenant.config`. */
  readonly config: TenantConfig;
  /** Why the last provisioning or deprovisioning attempt failed; cleared when one succeeds. */
  readonly lastError?: string | undefined;
  /**
   * While onboarding or offboarding: the step running now, or the one it stopped at (with
   * `lastError`). Absent once the tenant is active.
   */
  readonly currentStep?: string | undefined;
}

export interface NewTenant {
  readonly tenantId: string;
  readonly name: string;
  readonly metadata: TenantMetadata;
  /** Defaults to empty settings, features and limits. */
  readonly config?: TenantConfig | undefined;
  readonly status: TenantStatus;
  /** The hash of the API key minted at registration; it authenticates once the tenant is active. */
  readonly apiKeyHash?: string | undefined;
}

/**
 * A change to a tenant's profile. `name` replaces; `metadata` and `config` are JSON Merge Patches
 * (RFC 7396): `null` removes a key, absent keys are kept.
 */
export interface TenantProfilePatch {
  readonly name?: string | undefined;
  readonly metadata?: Record<string, unknown> | undefined;
  readonly config?: TenantConfigPatch | undefined;
}

export type RemoveTenantOutcome = 'removed' | 'not_found' | 'status_mismatch';

/** The outcome of a change that applies only while the tenant is in an expected status. */
export type StatusChange =
  | { readonly kind: 'updated'; readonly tenant: TenantInfo }
  | { readonly kind: 'not_found' }
  | { readonly kind: 'status_mismatch'; readonly tenant: TenantInfo };

/** Which page of tenants {@link TenantRegistry.listPage} reads. */
export interface TenantPageQuery {
  /** Only tenants in this status; all of them when absent. */
  readonly status?: TenantStatus | undefined;
  /** At most this many tenants (the API allows 1–100). */
  readonly limit: number;
  /** The last tenant id of the previous page: this page starts after it. Absent for the first page. */
  readonly after?: string | undefined;
}

/** One page of tenants, ordered by id. */
export interface TenantPage {
  readonly tenants: TenantInfo[];
  /** The id to pass as `after` for the next page; `undefined` on the last page. */
  readonly next: string | undefined;
}

/** A claim on a tenant for one provisioning or deprovisioning run. */
export interface ClaimRequest {
  /** Who claims: unique per run, so a run that lost its lease cannot finish another run's work. */
  readonly owner: string;
  /** The status the tenant must be in. */
  readonly status: TenantStatus;
  /** After this long the claim lapses, so a crashed run never blocks a retry for good. */
  readonly leaseMs: number;
  /** The step the run is about to take, recorded as the tenant's `currentStep`. */
  readonly step?: string | undefined;
}

/** What a run records when it releases its claim. `null` clears a field; absent leaves it. */
export interface ClaimResult {
  readonly status?: TenantStatus;
  readonly lastError?: string | null;
  readonly secretRef?: string | null;
  readonly apiKeyHash?: string | null;
  readonly currentStep?: string | null;
}

/**
 * Where tenants are kept. Adapters: {@link MemoryTenantRegistry} for the library and unit tests,
 * {@link PgTenantRegistry} (the `tenantflow` control schema) for Lambdas and the local platform.
 *
 * Adapters store and fetch; the rules (validation, who may be removed) live in the services
 * that use them.
 */
export interface TenantRegistry {
  /** Inserts a tenant; throws `TenantAlreadyExistsError` when the id is taken. */
  create(tenant: NewTenant): Promise<TenantInfo>;
  /**
   * The tenant, or `undefined`. May answer synchronously (the memory adapter does), which keeps
   * `switch()` cheap; callers simply `await` it either way.
   */
  get(tenantId: string): Promise<TenantInfo | undefined> | TenantInfo | undefined;
  /** All tenants, ordered by id (internal callers; the admin API pages with {@link listPage}). */
  list(): Promise<TenantInfo[]>;
  /**
   * One page of tenants ordered by id, optionally of one status: keyset pagination on the id (the
   * ids after `query.after`), so a page costs the same however deep it is, and a tenant registered
   * or removed between two pages shifts no other tenant onto or off a page.
   *
   * @example
   * ```ts
   * const first = await registry.listPage({ status: 'active', limit: 50 });
   * if (first.next !== undefined) {
   *   const second = await registry.listPage({ status: 'active', limit: 50, after: first.next });
   * }
   * ```
   */
  listPage(query: TenantPageQuery): Promise<TenantPage>;
  /**
   * Sets the status, but only from one of `allowedFrom` when given: the check and the update are
   * one step, so two concurrent changes cannot both win.
   */
  setStatus(
    tenantId: string,
    status: TenantStatus,
    allowedFrom?: readonly TenantStatus[],
  ): Promise<StatusChange>;
  /**
   * Claims the tenant for a run if it is in `request.status` and nobody else holds a live claim
   * (compare-and-set, no locks held). Returns the tenant, or `undefined` when it cannot be claimed.
   */
  claim(tenantId: string, request: ClaimRequest): Promise<TenantInfo | undefined>;
  /**
   * Records `result` and releases the claim, only if `owner` still holds it. Returns the tenant,
   * or `undefined` when the claim was lost (expired and taken by another run).
   */
  releaseClaim(tenantId: string, owner: string, result: ClaimResult): Promise<TenantInfo | undefined>;
  /**
   * Replaces the tenant's API-key hash, but only while it is in one of `allowedFrom`: the check
   * and the write are one step, so a tenant that starts deprovisioning meanwhile never gets a key.
   * The previous hash is gone afterwards, so the previous key stops authenticating at once.
   * Returns `status_mismatch` (hash untouched) when the tenant is in another status.
   *
   * @example
   * ```ts
   * const change = await registry.replaceApiKeyHash('acme', hashApiKey(apiKey), ['active', 'inactive']);
   * ```
   */
  replaceApiKeyHash(
    tenantId: string,
    apiKeyHash: string,
    allowedFrom: readonly TenantStatus[],
  ): Promise<StatusChange>;
  /** The stored API-key hash and secret reference; never part of `TenantInfo`. */
  getCredentialRefs(
    tenantId: string,
  ): Promise<{ apiKeyHash: string | undefined; secretRef: string | undefined } | undefined>;
  /**
   * Deletes a tenant. With `onlyIfStatus`, the delete happens only if the tenant is in that status
   * at the moment of the delete, so a concurrent reactivation cannot be lost.
   */
  remove(tenantId: string, onlyIfStatus?: TenantStatus): Promise<RemoveTenantOutcome>;
  countByStatus(): Promise<Record<TenantStatus, number>>;
  /** Applies `patch` in one atomic step; `undefined` when the tenant does not exist. */
  updateProfile(tenantId: string, patch: TenantProfilePatch): Promise<TenantInfo | undefined>;
  /** The tenant whose API key hashes to `apiKeyHash`, if any. */
  findByApiKeyHash(apiKeyHash: string): Promise<TenantInfo | undefined>;
}

export function emptyStatusCounts(): Record<TenantStatus, number> {
  return { provisioning: 0, active: 0, inactive: 0, deprovisioning: 0 };
}

/**
 * The one rule for running work: the tenant must be active. Refuses a deactivated tenant, and one
 * still being provisioned or deprovisioned, with {@link TenantInactiveError}'s message.
 */
export function assertTenantActive(tenant: { readonly tenantId: string; readonly status: string }): void {
  if (tenant.status !== 'active') {
    throw new TenantInactiveError(tenant.tenantId, tenant.status);
  }
}
