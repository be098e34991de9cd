/**
 * Lifecycle of a tenant in the registry. `provisioning` and `deprovisioning` are the resumable
 * in-between states of onboarding and offboarding; only `active` tenants may run work.
 */
export type TenantStatus = 'provisioning' | 'active' | 'inactive' | 'deprovisioning';

export const TENANT_STATUSES: readonly TenantStatus[] = [
  'provisioning',
  'active',
  'inactive',
  'deprovisioning',
];

export type TenantMetadata = Record<string, unknown>;

/** What the platform knows about one tenant. */
export interface TenantInfo {
  readonly tenantId: string;
  readonly name: string;
  /** `true` exactly when `status === 'active'`. */
  readonly active: boolean;
  readonly status: TenantStatus;
  readonly createdAt: Date;
  readonly metadata: TenantMetadata;
}

export interface NewTenant {
  readonly tenantId: string;
  readonly name: string;
  readonly metadata: TenantMetadata;
  readonly status: TenantStatus;
}

export type RemoveTenantOutcome = 'removed' | 'not_found' | 'status_mismatch';

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
  /** All tenants, ordered by id. */
  list(): Promise<TenantInfo[]>;
  /** Sets the status; returns the updated tenant, or `undefined` when it does not exist. */
  setStatus(tenantId: string, status: TenantStatus): Promise<TenantInfo | undefined>;
  /**
   * Deletes a tenant. With `onlyIfStatus`, the delete happens only if the tenant is in that status
   * at the moment of the delete, so a concurrent reactivation cannot be lost.
   */
  remove(tenantId: string, onlyIfStatus?: TenantStatus): Promise<RemoveTenantOutcome>;
  countByStatus(): Promise<Record<TenantStatus, number>>;
}

export function emptyStatusCounts(): Record<TenantStatus, number> {
  return { provisioning: 0, active: 0, inactive: 0, deprovisioning: 0 };
}
