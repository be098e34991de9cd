import type { TenantStatus } from '../tenancy/tenant-registry.js';

/** A tenant as the login check needs it: its status and where its credentials are. */
export interface TenantLoginRecord {
  readonly tenantId: string;
  readonly status: TenantStatus;
  readonly secretRef: string | undefined;
}

/** What a reconciliation changed, by tenant id. */
export interface LoginReconciliation {
  readonly added: readonly string[];
  readonly removed: readonly string[];
}

/**
 * Who lets a tenant's database role log in, beyond PostgreSQL itself.
 *
 * Locally, and in AWS when tenant roles connect straight to the cluster (`direct` mode), the role
 * and its password are all it takes: {@link DirectTenantLogins}. Through RDS Proxy, the proxy
 * accepts only logins whose secret is on its auth list, so provisioning must add the tenant's
 * secret there and deprovisioning remove it: `RdsProxyTenantLogins`.
 */
export interface TenantLogins {
  /** What this deployment does, for logs and errors: `direct`, `rds-proxy:<name>`. */
  readonly description: string;
  /**
   * Fails with a clear error when no further tenant could be admitted (the proxy's auth list is
   * full), so a new tenant is refused before anything is created for it.
   */
  assertRoomForNewTenant(): Promise<void>;
  /** Lets the tenant's role log in with the credentials in `secretRef`. Idempotent. */
  admit(tenantId: string, secretRef: string): Promise<void>;
  /**
   * One look, never a wait: makes the change {@link admit} makes if the proxy can take it now, and
   * answers whether the tenant is admitted (the proxy is available with the entry on its list).
   * `false` means "look again later": the proxy is being modified (by this change, or a stack
   * update), or another onboarding holds the auth list. The onboarding state machine polls this in
   * a Wait loop, so no Lambda sleeps on the proxy. Idempotent.
   */
  tryAdmit(tenantId: string, secretRef: string): Promise<boolean>;
  /** {@link revoke}'s change as one look, like {@link tryAdmit}: `true` once the entry is gone. */
  tryRevoke(tenantId: string, secretRef: string | undefined): Promise<boolean>;
  /**
   * Stops admitting the tenant's credentials: the entry for `secretRef`, or, when it is not known,
   * any entry for the tenant's secret name. Idempotent.
   */
  revoke(tenantId: string, secretRef: string | undefined): Promise<void>;
  /**
   * Brings the logins in line with the registry: every active or inactive tenant's secret is
   * admitted, and tenants that no longer exist are not. `tenants` is called only when there is
   * something to compare (never in direct mode). The recovery job runs this on every pass.
   */
  reconcile(tenants: () => Promise<readonly TenantLoginRecord[]>): Promise<LoginReconciliation>;
}

/** Tenant roles log in to PostgreSQL directly: nothing besides the role itself to set up. */
export class DirectTenantLogins implements TenantLogins {
  readonly description = 'direct';

  async assertRoomForNewTenant(): Promise<void> {}

  async admit(): Promise<void> {}

  async revoke(): Promise<void> {}

  async tryAdmit(): Promise<boolean> {
    return true;
  }

  async tryRevoke(): Promise<boolean> {
    return true;
  }

  async reconcile(): Promise<LoginReconciliation> {
    return { added: [], removed: [] };
  }
}
