import {
  type DBProxy,
  DescribeDBProxiesCommand,
  ModifyDBProxyCommand,
  type RDSClient,
  type UserAuthConfig,
} from '@aws-sdk/client-rds';
import { LeaseBusyError, type LeaseClock, type PlatformLeases, realClock } from '../db/platform-leases.js';
import { ConfigurationError, ConflictError } from '../kernel/errors.js';
import { NO_METRICS, type PlatformMetrics } from '../logging/metrics.js';
import { tenantSecretName, tenantSecretPrefix } from '../secrets/secrets-manager-secret-store.js';
import type { LoginReconciliation, TenantLoginRecord, TenantLogins } from './tenant-logins.js';

/** RDS Proxy accepts at most this many secrets in its auth list (an RDS quota). */
export const RDS_PROXY_MAX_SECRETS = 200;

/** The proxy's auth list has no room for another tenant's secret. */
export class ProxyAuthListFullError extends ConflictError {
  override readonly code: string = 'PROXY_AUTH_LIST_FULL';
}

/** The proxy stayed busy (being modified) or its auth list's lease stayed taken; retrying later helps. */
export class ProxyAuthListBusyError extends ConflictError {
  override readonly code: string = 'PROXY_AUTH_LIST_BUSY';
}

export interface RdsProxyTenantLoginsOptions {
  readonly client: RDSClient;
  readonly proxyName: string;
  /** Serializes the read-modify-write of the auth list across Lambdas. */
  readonly leases: PlatformLeases;
  /** The deployment stage: tenant secrets are named `tenantflow/<stage>/tenants/<tenantId>`. */
  readonly stage: string;
  /** @default RDS_PROXY_MAX_SECRETS */
  readonly maxSecrets?: number;
  /** How long one update may hold the auth list. @default 60 s */
  readonly leaseMs?: number;
  /** How long to wait for another update's lease, and for the proxy to leave `modifying`. @default 30 s */
  readonly waitMs?: number;
  /** Between two looks at a `modifying` proxy. @default 2 s */
  readonly pollMs?: number;
  readonly clock?: LeaseClock;
  /** Told the list's size each time it is read, to watch it against the limit. @default NO_METRICS */
  readonly metrics?: Pick<PlatformMetrics, 'proxyAuthListSize'> | undefined;
}

/** What ModifyDBProxy accepts of an auth entry that DescribeDBProxies returned. */
type AuthEntry = UserAuthConfig;

const AVAILABLE = 'available';

/**
 * Admits tenant roles through RDS Proxy by keeping their secrets on the proxy's auth list.
 *
 * `ModifyDBProxy` takes the WHOLE list, so adding one secret is a read-modify-write. Two
 * onboardings doing it at once would each write the list they read, and the later write would drop
 * the earlier one's entry: that tenant could then not log in. Every change therefore runs under one
 * {@link PlatformLeases} lease per proxy, confirmed right before the write; waits for the proxy to be
 * `available` first (it refuses a change while `modifying`); and keeps every entry it did not come
 * to change, the admin and platform secrets included, as it read it.
 *
 * The list holds at most 200 secrets ({@link RDS_PROXY_MAX_SECRETS}, an RDS quota), one of them the
 * platform's. Past that, deploy with tenant roles connecting to the cluster directly (CDK context
 * `tenantDatabaseAccess=direct`, see the README), where {@link DirectTenantLogins} applies.
 *
 * Caveat: any CloudFormation update of the proxy resource (a tag, a timeout, a security group, not
 * only its `Auth` property) writes the template's list (the admin and platform secrets alone) over
 * this one. `reconcile` puts the tenants back; the platform stack runs it after every deploy, and
 * every recovery pass runs it too.
 *
 * @example
 * ```ts
 * const logins = new RdsProxyTenantLogins({ client: new RDSClient({}), proxyName, leases, stage: 'prod' });
 * await logins.admit('acme', secretArn);
 * ```
 */
export class RdsProxyTenantLogins implements TenantLogins {
  readonly description: string;
  readonly #client: RDSClient;
  readonly #proxyName: string;
  readonly #leases: PlatformLeases;
  readonly #stage: string;
  readonly #maxSecrets: number;
  readonly #leaseMs: number;
  readonly #waitMs: number;
  readonly #pollMs: number;
  readonly #clock: LeaseClock;
  readonly #metrics: Pick<PlatformMetrics, 'proxyAuthListSize'>;

  constructor(options: RdsProxyTenantLoginsOptions) {
    this.#client = options.client;
    this.#proxyName = options.proxyName;
    this.#leases = options.leases;
    this.#stage = options.stage;
    this.#maxSecrets = options.maxSecrets ?? RDS_PROXY_MAX_SECRETS;
    this.#leaseMs = options.leaseMs ?? 60_000;
    this.#waitMs = options.waitMs ?? 30_000;
    this.#pollMs = options.pollMs ?? 2_000;
    this.#clock = options.clock ?? realClock;
    this.#metrics = options.metrics ?? NO_METRICS;
    this.description = `rds-proxy:${options.proxyName}`;
  }

  async assertRoomForNewTenant(): Promise<void> {
    const auth = (await this.#describe()).Auth ?? [];
    if (auth.length >= this.#maxSecrets) {
      throw this.#fullError(auth.length);
    }
  }

  async admit(tenantId: string, secretRef: string): Promise<void> {
    await this.#change(this.#admission(tenantId, secretRef));
  }

  async revoke(tenantId: string, secretRef: string | undefined): Promise<void> {
    await this.#change(this.#revocation(tenantId, secretRef));
  }

  tryAdmit(tenantId: string, secretRef: string): Promise<boolean> {
    return this.#tryChange(this.#admission(tenantId, secretRef));
  }

  tryRevoke(tenantId: string, secretRef: string | undefined): Promise<boolean> {
    return this.#tryChange(this.#revocation(tenantId, secretRef));
  }

  #admission(tenantId: string, secretRef: string): (auth: AuthEntry[]) => AuthEntry[] | undefined {
    return (auth) => {
      if (auth.some((entry) => entry.SecretArn === secretRef)) {
        return undefined;
      }
      if (auth.length >= this.#maxSecrets) {
        throw this.#fullError(auth.length);
      }
      return [...auth, tenantEntry(tenantId, secretRef, auth)];
    };
  }

  #revocation(
    tenantId: string,
    secretRef: string | undefined,
  ): (auth: AuthEntry[]) => AuthEntry[] | undefined {
    const name = tenantSecretName(this.#stage, tenantId);
    return (auth) => {
      const kept = auth.filter(
        (entry) =>
          !(
            entry.SecretArn !== undefined &&
            (entry.SecretArn === secretRef || secretNameOf(entry.SecretArn) === name)
          ),
      );
      return kept.length === auth.length ? undefined : kept;
    };
  }

  /**
   * Re-adds the secrets of active and inactive tenants that are missing (a stack update reset the
   * list, say) and removes this stage's tenant secrets whose tenant no longer exists at all. A
   * tenant still provisioning or deprovisioning is left as it is: its own run adds or removes it.
   * Entries that are not this stage's tenant secrets (the platform's) are never touched.
   */
  async reconcile(tenants: () => Promise<readonly TenantLoginRecord[]>): Promise<LoginReconciliation> {
    const records = await tenants();
    const admitted = new Map(
      records
        .filter((tenant) => (tenant.status === 'active' || tenant.status === 'inactive') && tenant.secretRef)
        .map((tenant) => [tenant.tenantId, tenant.secretRef as string]),
    );
    return this.#reconcile(admitted, new Set(records.map((tenant) => tenant.tenantId)));
  }

  async #reconcile(
    admitted: ReadonlyMap<string, string>,
    known: ReadonlySet<string>,
  ): Promise<LoginReconciliation> {
    const added: string[] = [];
    const removed: string[] = [];
    const prefix = tenantSecretPrefix(this.#stage);
    await this.#change((auth) => {
      added.length = 0;
      removed.length = 0;
      const kept = auth.filter((entry) => {
        const name = entry.SecretArn === undefined ? undefined : secretNameOf(entry.SecretArn);
        if (name === undefined || !name.startsWith(prefix)) {
          return true;
        }
        const tenantId = name.slice(prefix.length);
        if (known.has(tenantId)) {
          return true;
        }
        removed.push(tenantId);
        return false;
      });
      const present = new Set(kept.map((entry) => entry.SecretArn));
      for (const [tenantId, secretRef] of admitted) {
        if (present.has(secretRef) || kept.length >= this.#maxSecrets) {
          continue;
        }
        added.push(tenantId);
        kept.push(tenantEntry(tenantId, secretRef, auth));
      }
      return added.length === 0 && removed.length === 0 ? undefined : kept;
    });
    return { added, removed };
  }

  /**
   * The serialized read-modify-write: under the lease, wait for `available`, read the list, let
   * `edit` compute the new one (`undefined`: nothing to change), confirm the lease, write.
   */
  async #change(edit: (auth: AuthEntry[]) => AuthEntry[] | undefined): Promise<void> {
    await this.#leases.withLease(
      `rds-proxy-auth:${this.#proxyName}`,
      {
        durationMs: this.#leaseMs,
        waitMs: this.#waitMs,
        busyHint: 'another tenant is being onboarded or offboarded; retry in a moment',
      },
      async (lease) => {
        const proxy = await this.#waitUntilAvailable();
        const next = edit((proxy.Auth ?? []).map(toAuthConfig));
        if (next === undefined) {
          return;
        }
        await lease.confirm();
        try {
          await this.#client.send(new ModifyDBProxyCommand({ DBProxyName: this.#proxyName, Auth: next }));
        } catch (error) {
          if (isNamed(error, 'InvalidDBProxyStateFault')) {
            throw new ProxyAuthListBusyError(
              `RDS Proxy '${this.#proxyName}' refused the auth list change because it is being modified (a stack update?); retry in a moment`,
            );
          }
          throw error;
        }
      },
    );
  }

  /**
   * The same read-modify-write as {@link #change}, but one look: `true` when the proxy is available
   * and already as `edit` wants it; `false` when it is busy, the lease is taken, or this call just
   * wrote the change (the proxy is `modifying` until it applies it, so the next look confirms it).
   */
  async #tryChange(edit: (auth: AuthEntry[]) => AuthEntry[] | undefined): Promise<boolean> {
    try {
      return await this.#leases.withLease(
        `rds-proxy-auth:${this.#proxyName}`,
        { durationMs: this.#leaseMs, waitMs: 0 },
        async (lease) => {
          const proxy = await this.#describe();
          if (proxy.Status !== AVAILABLE) {
            return false;
          }
          const next = edit((proxy.Auth ?? []).map(toAuthConfig));
          if (next === undefined) {
            return true;
          }
          await lease.confirm();
          await this.#client.send(new ModifyDBProxyCommand({ DBProxyName: this.#proxyName, Auth: next }));
          return false;
        },
      );
    } catch (error) {
      if (error instanceof LeaseBusyError || isNamed(error, 'InvalidDBProxyStateFault')) {
        return false;
      }
      throw error;
    }
  }

  async #waitUntilAvailable(): Promise<DBProxy> {
    const deadline = this.#clock.now() + this.#waitMs;
    for (;;) {
      const proxy = await this.#describe();
      if (proxy.Status === AVAILABLE) {
        return proxy;
      }
      if (this.#clock.now() + this.#pollMs > deadline) {
        throw new ProxyAuthListBusyError(
          `RDS Proxy '${this.#proxyName}' is '${proxy.Status ?? 'unknown'}', not available, after ${Math.round(this.#waitMs / 1000)} s; retry in a moment`,
        );
      }
      await this.#clock.sleep(this.#pollMs);
    }
  }

  async #describe(): Promise<DBProxy> {
    try {
      const { DBProxies = [] } = await this.#client.send(
        new DescribeDBProxiesCommand({ DBProxyName: this.#proxyName }),
      );
      const [proxy] = DBProxies;
      if (proxy !== undefined) {
        this.#metrics.proxyAuthListSize({ entries: proxy.Auth?.length ?? 0 });
        return proxy;
      }
    } catch (error) {
      if (!isNamed(error, 'DBProxyNotFoundFault')) {
        throw error;
      }
    }
    throw new ConfigurationError(
      `RDS Proxy '${this.#proxyName}' (TENANTFLOW_DB_PROXY_NAME) does not exist in this account and region`,
    );
  }

  #fullError(size: number): ProxyAuthListFullError {
    return new ProxyAuthListFullError(
      `RDS Proxy '${this.#proxyName}' admits at most ${this.#maxSecrets} secrets and already holds ${size} ` +
        '(the admin and platform secrets and one per tenant), so no new tenant can be onboarded through it. ' +
        'Deploy with tenant roles connecting to the cluster directly (cdk deploy -c tenantDatabaseAccess=direct) to go past it',
    );
  }
}

/** A tenant's entry: its secret, password logins, negotiated as the platform's entry (set by CDK) is. */
function tenantEntry(tenantId: string, secretRef: string, auth: readonly AuthEntry[]): AuthEntry {
  const template = auth.find((entry) => entry.AuthScheme === 'SECRETS');
  return {
    AuthScheme: 'SECRETS',
    SecretArn: secretRef,
    IAMAuth: 'DISABLED',
    ...(template?.ClientPasswordAuthType === undefined
      ? {}
      : { ClientPasswordAuthType: template.ClientPasswordAuthType }),
    Description: `tenantflow tenant ${tenantId}`,
  };
}

/** An auth entry as read, reduced to what ModifyDBProxy accepts back, unchanged. */
function toAuthConfig(entry: NonNullable<DBProxy['Auth']>[number]): AuthEntry {
  const config: AuthEntry = {};
  if (entry.Description !== undefined) config.Description = entry.Description;
  if (entry.UserName !== undefined) config.UserName = entry.UserName;
  if (entry.AuthScheme !== undefined) config.AuthScheme = entry.AuthScheme;
  if (entry.SecretArn !== undefined) config.SecretArn = entry.SecretArn;
  if (entry.IAMAuth !== undefined) config.IAMAuth = entry.IAMAuth;
  if (entry.ClientPasswordAuthType !== undefined)
    config.ClientPasswordAuthType = entry.ClientPasswordAuthType;
  return config;
}

/** `arn:…:secret:tenantflow/prod/tenants/acme-AbCdEf` → `tenantflow/prod/tenants/acme`. */
export function secretNameOf(secretArn: string): string | undefined {
  const marker = ':secret:';
  const at = secretArn.indexOf(marker);
  if (at < 0) {
    return undefined;
  }
  // Secrets Manager appends '-' and six random characters to the name in the ARN.
  return secretArn.slice(at + marker.length).replace(/-[A-Za-z0-9]{6}$/, '');
}

function isNamed(error: unknown, name: string): boolean {
  return error instanceof Error && error.name === name;
}
