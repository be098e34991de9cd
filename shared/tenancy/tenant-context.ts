import { AsyncLocalStorage } from 'node:async_hooks';
import {
  ConfigurationError,
  TenantContextRequiredError,
  TenantNotFoundError,
  TenantStateConflictError,
  ValidationError,
} from '../kernel/errors.js';
import { assertValidTenantId } from '../kernel/tenant-id.js';
import {
  assertTenantActive,
  type TenantInfo,
  type TenantMetadata,
  type TenantRegistry,
} from './tenant-registry.js';

/**
 * The current tenant id, per async call chain. It is module-level on purpose: every
 * `TenantContextSwitch` in a process shares one notion of "current tenant" (a task that switches
 * through one instance is seen as that tenant by code holding another), while each keeps its own
 * registry. AsyncLocalStorage gives each invocation its own value, so
 * concurrent invocations in one Lambda process never see each other's tenant.
 */
const currentTenantStorage = new AsyncLocalStorage<string>();

/** Active tenants a switch remembers at most (the least recently found go first). */
const MAX_REMEMBERED_TENANTS = 1000;

export interface TenantContextSwitchOptions {
  /**
   * How long `switch()` may trust that a tenant it found active still is, without reading the
   * registry again. 0 (the default) reads it on every switch. The task runner uses a few seconds:
   * a task of a tenant deactivated meanwhile may then start, but `tenantflow_api.finish_task`
   * checks the registry again at the commit, so none of its work lands.
   */
  readonly trustActiveForMs?: number;
  /** The clock, for tests. @default Date.now */
  readonly now?: () => number;
}

/** How many unknown-tenant ids an error message lists before summarising. */
const MAX_TENANTS_IN_MESSAGE = 20;

/**
 * The current tenant id, or `undefined` outside any `switch()`.
 *
 * @example
 * ```ts
 * await tenants.switch('acme', async () => getCurrentTenantId()); // 'acme'
 * ```
 */
export function getCurrentTenantId(): string | undefined {
  return currentTenantStorage.getStore();
}

/**
 * How {@link TenantContextSwitch.registerTenant} and `unregisterTenant` take effect. In a deployment
 * it is provisioning (`ProvisioningRegistration`): a registered tenant has its schema, role and
 * secret before it is active, and unregistering drops them. The in-memory registry, for tests and
 * the library's in-memory use, writes the registry directly (`directRegistration` in
 * `shared/testing/`). A switch built without one cannot register: it only switches.
 */
export interface TenantRegistration {
  register(tenant: { tenantId: string; name: string; metadata: TenantMetadata }): Promise<TenantInfo>;
  unregister(tenantId: string): Promise<void>;
}

export interface TenantContextStats {
  readonly totalTenants: number;
  readonly activeTenants: number;
  /** Successful `switch()` entries since this instance was created. */
  readonly totalSwitches: number;
  /** `switch()` blocks open right now on this instance (nested and concurrent ones included). */
  readonly activeSwitches: number;
  readonly currentTenant: string | undefined;
}

/**
 * Registers tenants and runs code inside one tenant's context. Its methods are async because the
 * registry may be a database. `switch()` refuses unknown and inactive tenants, restores the
 * previous tenant when the callback returns or throws, and nests. Failing closed is the rule: {@link requireTenant} throws
 * rather than fall back to any default.
 *
 * @example
 * ```ts
 * const registry = new MemoryTenantRegistry();
 * const tenants = new TenantContextSwitch(registry, directRegistration(registry));
 * await tenants.registerTenant('acme', 'Acme Corporation', { plan: 'enterprise' });
 * await tenants.switch('acme', async (tenant) => {
 *   tenants.requireTenant(); // 'acme'
 *   return tenant.name;      // 'Acme Corporation'
 * });
 * ```
 */
export class TenantContextSwitch {
  #totalSwitches = 0;
  #activeSwitches = 0;

  readonly #trustActiveForMs: number;
  readonly #now: () => number;
  /** Tenants found active, and until when a switch may trust that without reading the registry. */
  readonly #recentlyActive = new Map<string, { readonly tenant: TenantInfo; readonly until: number }>();

  constructor(
    private readonly registry: TenantRegistry,
    private readonly registration?: TenantRegistration,
    options: TenantContextSwitchOptions = {},
  ) {
    this.#trustActiveForMs = options.trustActiveForMs ?? 0;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Registers a tenant through this switch's {@link TenantRegistration} (provisioning, in a
   * deployment) and returns it, active. Rejects an invalid id (listing every reason) and a
   * duplicate (`Tenant 'x' is already registered`).
   */
  async registerTenant(tenantId: string, name: string, metadata: TenantMetadata = {}): Promise<TenantInfo> {
    assertValidTenantId(tenantId);
    if (typeof name !== 'string' || name.trim().length === 0) {
      throw new ValidationError('Invalid tenant name', ['name must be a non-empty string']);
    }
    return this.#registration().register({ tenantId, name, metadata });
  }

  /**
   * Removes a tenant from the registry. Refuses the caller's current tenant: the code running in
   * that context would otherwise be left pointing at a tenant that no longer exists.
   */
  async unregisterTenant(tenantId: string): Promise<void> {
    if (getCurrentTenantId() === tenantId) {
      throw new TenantStateConflictError(
        `Cannot unregister tenant '${tenantId}' while it is the active context`,
      );
    }
    await this.#registration().unregister(tenantId);
  }

  #registration(): TenantRegistration {
    if (this.registration === undefined) {
      // Fail closed: writing the registry here would make an active tenant with no schema, role or secret.
      throw new ConfigurationError(
        'This tenant context switch was built without a registration: register tenants through provisioning (POST /tenants)',
      );
    }
    return this.registration;
  }

  /** The tenant, or `undefined` when it is not registered. */
  async getTenant(tenantId: string): Promise<TenantInfo | undefined> {
    return this.registry.get(tenantId);
  }

  async listTenants(): Promise<TenantInfo[]> {
    return this.registry.list();
  }

  async isTenantRegistered(tenantId: string): Promise<boolean> {
    return (await this.registry.get(tenantId)) !== undefined;
  }

  async isTenantActive(tenantId: string): Promise<boolean> {
    return (await this.registry.get(tenantId))?.active === true;
  }

  /** Reactivates a deactivated tenant; throws `TenantNotFoundError` if it is not registered. */
  async activateTenant(tenantId: string): Promise<TenantInfo> {
    return this.#setActive(tenantId, true);
  }

  /** Deactivates a tenant: it stays registered, but `switch()` to it is refused until reactivated. */
  async deactivateTenant(tenantId: string): Promise<TenantInfo> {
    return this.#setActive(tenantId, false);
  }

  /**
   * Runs `fn` with `tenantId` as the current tenant and returns its result. The previous tenant
   * (or none) is current again once `fn` settles, whether it returned or threw.
   *
   * Rejects with `TenantNotFoundError` when the tenant is not registered (the message lists those that
   * are), and with `TenantInactiveError` when it is deactivated; `fn` does not run in either case.
   */
  switch<T>(tenantId: string, fn: (tenant: TenantInfo) => T | Promise<T>): Promise<T> {
    // Written without async/await on purpose: every promise costs extra while AsyncLocalStorage
    // is in use, and the switch sits on the path of every task. A registry that answers
    // synchronously (the memory adapter) costs no promise at all for the lookup.
    const recent = this.#recentlyActive.get(tenantId);
    if (recent !== undefined && recent.until > this.#now()) {
      return this.#enter(tenantId, recent.tenant, fn);
    }
    const lookup = this.registry.get(tenantId);
    if (isPromiseLike(lookup)) {
      return Promise.resolve(lookup).then((tenant) =>
        this.#enter(tenantId, this.#remember(tenantId, tenant), fn),
      );
    }
    return this.#enter(tenantId, this.#remember(tenantId, lookup), fn);
  }

  /** Reads the registry at the next `switch()` to `tenantId` (its status or config changed). */
  forget(tenantId: string): void {
    this.#recentlyActive.delete(tenantId);
  }

  /** Keeps an active tenant for {@link TenantContextSwitchOptions.trustActiveForMs}; forgets any other answer. */
  #remember(tenantId: string, tenant: TenantInfo | undefined): TenantInfo | undefined {
    if (this.#trustActiveForMs <= 0) {
      return tenant;
    }
    this.#recentlyActive.delete(tenantId);
    if (tenant?.status === 'active') {
      this.#recentlyActive.set(tenantId, { tenant, until: this.#now() + this.#trustActiveForMs });
      if (this.#recentlyActive.size > MAX_REMEMBERED_TENANTS) {
        const [oldest] = this.#recentlyActive.keys();
        if (oldest !== undefined) {
          this.#recentlyActive.delete(oldest);
        }
      }
    }
    return tenant;
  }

  #enter<T>(
    tenantId: string,
    tenant: TenantInfo | undefined,
    fn: (tenant: TenantInfo) => T | Promise<T>,
  ): Promise<T> {
    if (tenant === undefined) {
      return this.#unknownTenantMessage(tenantId).then((message) => {
        throw new TenantNotFoundError(tenantId, message);
      });
    }
    try {
      assertTenantActive(tenant);
    } catch (error) {
      return Promise.reject(error);
    }
    this.#totalSwitches += 1;
    this.#activeSwitches += 1;
    let result: T | Promise<T>;
    try {
      result = currentTenantStorage.run(tenantId, fn, tenant);
    } catch (error) {
      this.#activeSwitches -= 1;
      return Promise.reject(error);
    }
    if (!isPromiseLike(result)) {
      this.#activeSwitches -= 1;
      return Promise.resolve(result);
    }
    // The callback's continuations keep `tenantId` through AsyncLocalStorage; the block counts as
    // open until its promise settles.
    return Promise.resolve(result).then(
      (value) => {
        this.#activeSwitches -= 1;
        return value;
      },
      (error: unknown) => {
        this.#activeSwitches -= 1;
        throw error;
      },
    );
  }

  /** The current tenant id, or `undefined` outside any `switch()`. */
  getCurrentTenant(): string | undefined {
    return getCurrentTenantId();
  }

  /** The current tenant id; throws when no tenant is current. Never falls back to a default. */
  requireTenant(): string {
    const tenantId = getCurrentTenantId();
    if (tenantId === undefined) {
      throw new TenantContextRequiredError(
        "No tenant context is active. Use 'tenants.switch(tenantId, fn)' to run code in a tenant context.",
      );
    }
    return tenantId;
  }

  async getStats(): Promise<TenantContextStats> {
    const counts = await this.registry.countByStatus();
    return {
      totalTenants: counts.provisioning + counts.active + counts.inactive + counts.deprovisioning,
      activeTenants: counts.active,
      totalSwitches: this.#totalSwitches,
      activeSwitches: this.#activeSwitches,
      currentTenant: getCurrentTenantId(),
    };
  }

  async #setActive(tenantId: string, active: boolean): Promise<TenantInfo> {
    this.#recentlyActive.delete(tenantId);
    // Only between active and inactive: a tenant still being provisioned or deprovisioned is not
    // the operator's to flip, or a half-built tenant could be put to work.
    const change = await this.registry.setStatus(tenantId, active ? 'active' : 'inactive', [
      'active',
      'inactive',
    ]);
    if (change.kind === 'not_found') {
      throw new TenantNotFoundError(tenantId);
    }
    if (change.kind === 'status_mismatch') {
      throw new TenantStateConflictError(
        `Tenant '${tenantId}' is ${change.tenant.status}; it can be ${active ? 'activated' : 'deactivated'} only once that finishes`,
      );
    }
    return change.tenant;
  }

  async #unknownTenantMessage(tenantId: string): Promise<string> {
    const ids = (await this.registry.list()).map((tenant) => tenant.tenantId);
    const shown = ids.slice(0, MAX_TENANTS_IN_MESSAGE).map((id) => `'${id}'`);
    const more =
      ids.length > MAX_TENANTS_IN_MESSAGE ? `, and ${ids.length - MAX_TENANTS_IN_MESSAGE} more` : '';
    return (
      `Tenant '${tenantId}' is not registered. Available tenants: [${shown.join(', ')}${more}]. ` +
      'Use registerTenant() (POST /tenants) to register this tenant first.'
    );
  }
}

function isPromiseLike<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as PromiseLike<T> | undefined)?.then === 'function';
}
