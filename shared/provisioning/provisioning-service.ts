import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type pg from 'pg';
import { ConflictError, TenantNotFoundError, TenantStateConflictError } from '../kernel/errors.js';
import type { Failpoints } from '../kernel/failpoints.js';
import { assertValidTenantId } from '../kernel/tenant-id.js';
import type { SecretStore, TenantSecret } from '../secrets/secret-store.js';
import { generateApiKey, hashApiKey } from '../tenancy/api-keys.js';
import { emptyTenantConfig, type TenantConfig } from '../tenancy/tenant-config.js';
import type { TenantInfo, TenantMetadata, TenantRegistry } from '../tenancy/tenant-registry.js';
import { type DatabaseAdmin, tenantRoleName } from './database-admin.js';
import { generatePassword } from './passwords.js';
import { DirectTenantLogins, type TenantLogins } from './tenant-logins.js';

/** The steps of onboarding, in order. Each is idempotent; a run can stop after any of them. */
export const PROVISIONING_STEPS = [
  'lock-down',
  'schema',
  'role',
  'secret',
  'login',
  'grants',
  'search-path',
  'migrations',
  'activate',
] as const;
export type ProvisioningStep = (typeof PROVISIONING_STEPS)[number];

/** The steps of offboarding, in order. */
export const DEPROVISIONING_STEPS = [
  'terminate-sessions',
  'schema',
  'role',
  'login',
  'secret',
  'registry',
] as const;
export type DeprovisioningStep = (typeof DEPROVISIONING_STEPS)[number];

/** Where the tenant role connects: the RDS Proxy endpoint in AWS, the local server locally. */
export interface TenantEndpoint {
  readonly host: string;
  readonly port: number;
  readonly database: string;
}

export interface ProvisioningServiceDependencies {
  readonly registry: TenantRegistry;
  readonly admin: DatabaseAdmin;
  readonly secrets: SecretStore;
  readonly endpoint: TenantEndpoint;
  /**
   * What else must admit the tenant role's logins: the RDS Proxy auth list in AWS.
   * @default DirectTenantLogins (nothing: the role logs in to PostgreSQL directly)
   */
  readonly logins?: TenantLogins;
  /** Told when a tenant's credentials change, so cached connections are dropped. */
  readonly onCredentialsChanged?: (tenantId: string) => void | Promise<void>;
  /** Reached as `after-provisioning-step` after each step (crash tests, the step timer); none in production. */
  readonly failpoints?: Failpoints | undefined;
  /** How long a run's claim on a tenant lasts before another run may take over. Default 2 min. */
  readonly leaseMs?: number;
}

export interface ProvisionRequest {
  readonly tenantId: string;
  readonly name: string;
  readonly metadata?: TenantMetadata;
  /** Settings, features and limits; empty when not given. */
  readonly config?: TenantConfig;
}

export interface ProvisionResult {
  readonly tenant: TenantInfo;
  /** Shown once: only its hash is stored. */
  readonly apiKey: string;
}

/** A freshly issued tenant API key. */
export interface IssuedApiKey {
  readonly tenantId: string;
  /** Shown once: only its hash is stored. Never log it. */
  readonly apiKey: string;
  readonly issuedAt: Date;
}

/** Raised when another run holds the tenant's claim right now. */
export class ProvisioningInProgressError extends ConflictError {
  override readonly code: string = 'PROVISIONING_IN_PROGRESS';
}

/**
 * Onboards and offboards tenants: a schema, a login role that can touch only that schema, its
 * credentials in the SecretStore, the tenant migrations, and the registry entry that ties them
 * together.
 *
 * Resumable: the registry row is written first (`provisioning`), each step is idempotent, a
 * failure records the error on the row and leaves it `provisioning`, and calling `provision` again
 * with the same request completes it. Offboarding goes through `deprovisioning` the same way.
 * Runs claim the tenant with a lease (compare-and-set, no lock held), so two runs never interleave.
 *
 * @example
 * ```ts
 * const { tenant, apiKey } = await provisioning.provision({ tenantId: 'acme', name: 'Acme' });
 * ```
 */
export class ProvisioningService {
  readonly #deps: ProvisioningServiceDependencies;
  readonly #leaseMs: number;
  readonly #logins: TenantLogins;

  constructor(deps: ProvisioningServiceDependencies) {
    this.#deps = deps;
    this.#leaseMs = deps.leaseMs ?? 120_000;
    this.#logins = deps.logins ?? new DirectTenantLogins();
  }

  /**
   * Provisions a new tenant, or completes one left in `provisioning` by an earlier run (same
   * name and metadata). A tenant that is already provisioned is a `TenantAlreadyExistsError`.
   */
  async provision(request: ProvisionRequest): Promise<ProvisionResult> {
    const { registry } = this.#deps;
    assertValidTenantId(request.tenantId);
    const metadata = request.metadata ?? {};
    const config = request.config ?? emptyTenantConfig();
    if ((await registry.get(request.tenantId)) === undefined) {
      // Refuse a tenant that could never log in, or whose id names a role, schema or database that
      // already exists, before anything is created for it.
      await this.#logins.assertRoomForNewTenant();
      await this.#deps.admin.assertTenantIdAvailable(request.tenantId);
    }
    let tenant: TenantInfo;
    try {
      tenant = await registry.create({
        tenantId: request.tenantId,
        name: request.name,
        metadata,
        config,
        status: 'provisioning',
      });
    } catch (error) {
      const existing = await registry.get(request.tenantId);
      if (existing === undefined || existing.status !== 'provisioning') {
        throw error; // TenantAlreadyExistsError for a provisioned tenant
      }
      if (
        existing.name !== request.name ||
        !isDeepStrictEqual(existing.metadata, metadata) ||
        !isDeepStrictEqual(existing.config, config)
      ) {
        throw new TenantStateConflictError(
          `Tenant '${request.tenantId}' is being provisioned with a different name, metadata or config; ` +
            'retry with the original request, or wait for it to finish',
        );
      }
      tenant = existing;
    }
    return this.#runProvisioning(tenant.tenantId);
  }

  /** Completes provisioning of a tenant stuck in `provisioning` (used by recovery). */
  async resumeProvisioning(tenantId: string): Promise<ProvisionResult> {
    return this.#runProvisioning(tenantId);
  }

  /**
   * Offboards an inactive tenant (or resumes offboarding one left in `deprovisioning`): its
   * sessions, schema, role, secret and registry entry. Any failure is reported, never swallowed,
   * and leaves the tenant `deprovisioning` with the error recorded.
   */
  async deprovision(tenantId: string): Promise<void> {
    const { registry } = this.#deps;
    const change = await registry.setStatus(tenantId, 'deprovisioning', ['inactive', 'deprovisioning']);
    if (change.kind === 'not_found') {
      throw new TenantNotFoundError(tenantId);
    }
    if (change.kind === 'status_mismatch') {
      throw new TenantStateConflictError(
        change.tenant.status === 'active'
          ? `Tenant '${tenantId}' must be inactive before it can be deleted. Deactivate it first: POST /tenants/${tenantId}/deactivate`
          : `Tenant '${tenantId}' is ${change.tenant.status}; it can be deleted once that finishes`,
      );
    }
    // The secret's reference as provisioning recorded it; the login is also found by name without it.
    const secretRef = (await registry.getCredentialRefs(tenantId))?.secretRef;
    const owner = await this.#claim(tenantId, 'deprovisioning');
    try {
      await this.#deps.admin.withConnection(async (client) => {
        await this.#step('terminate-sessions', tenantId, () =>
          this.#deps.admin.terminateTenantSessions(client, tenantId),
        );
        await this.#step('schema', tenantId, () => this.#deps.admin.dropSchema(client, tenantId));
        await this.#step('role', tenantId, () => this.#deps.admin.dropRole(client, tenantId));
      });
      await this.#step('login', tenantId, () => this.#logins.revoke(tenantId, secretRef));
      await this.#step('secret', tenantId, async () => {
        await this.#deps.secrets.delete(tenantId);
        await this.#deps.onCredentialsChanged?.(tenantId);
      });
      await this.#step('registry', tenantId, async () => {
        await registry.remove(tenantId, 'deprovisioning');
      });
    } catch (error) {
      await registry.releaseClaim(tenantId, owner, { lastError: describeFailure(error) });
      throw error;
    }
  }

  /**
   * Gives the tenant role a new password and stores it. Connections opened afterwards use the new
   * one; a run that fails between the two writes is healed by rotating again.
   */
  async rotateCredentials(tenantId: string): Promise<{ tenantId: string; rotatedAt: Date }> {
    const tenant = await this.#deps.registry.get(tenantId);
    if (tenant === undefined) {
      throw new TenantNotFoundError(tenantId);
    }
    if (tenant.status !== 'active' && tenant.status !== 'inactive') {
      throw new TenantStateConflictError(
        `Tenant '${tenantId}' is ${tenant.status}; rotate its credentials once that finishes`,
      );
    }
    const password = generatePassword();
    await this.#deps.admin.withConnection((client) =>
      this.#deps.admin.setPassword(client, tenantId, password),
    );
    await this.#deps.secrets.put(tenantId, this.#secretFor(tenantId, password));
    await this.#deps.onCredentialsChanged?.(tenantId);
    return { tenantId, rotatedAt: new Date() };
  }

  /**
   * Issues a new API key for an active or inactive tenant and stores only its hash. The previous
   * key stops authenticating at once. This is how a tenant whose key was never received (its
   * provisioning was completed by recovery) or has leaked gets a working one.
   *
   * @example
   * ```ts
   * const { apiKey } = await provisioning.issueApiKey('acme'); // hand it over once; never log it
   * ```
   */
  async issueApiKey(tenantId: string): Promise<IssuedApiKey> {
    assertValidTenantId(tenantId);
    const apiKey = generateApiKey(tenantId);
    const change = await this.#deps.registry.replaceApiKeyHash(tenantId, hashApiKey(apiKey), [
      'active',
      'inactive',
    ]);
    if (change.kind === 'not_found') {
      throw new TenantNotFoundError(tenantId);
    }
    if (change.kind === 'status_mismatch') {
      throw new TenantStateConflictError(
        change.tenant.status === 'provisioning'
          ? `Tenant '${tenantId}' is still provisioning; wait for provisioning to finish (retry POST /tenants with the original request, or let recovery complete it), then issue a new API key`
          : `Tenant '${tenantId}' is ${change.tenant.status}; it can no longer be given an API key`,
      );
    }
    return { tenantId, apiKey, issuedAt: new Date() };
  }

  async #runProvisioning(tenantId: string): Promise<ProvisionResult> {
    const { registry, admin, secrets } = this.#deps;
    const owner = await this.#claim(tenantId, 'provisioning');
    try {
      let secretRef = '';
      await admin.withConnection(async (client: pg.Client) => {
        await this.#step('lock-down', tenantId, () => admin.lockDown(client));
        await this.#step('schema', tenantId, () => admin.ensureSchema(client, tenantId));
        // The stored secret, if an earlier run got that far, is the password to keep: the role is
        // (re)set to it, so role and secret always end up agreeing.
        const stored = await secrets.get(tenantId);
        const password = stored?.password ?? generatePassword();
        await this.#step('role', tenantId, () => admin.ensureRole(client, tenantId, password));
        await this.#step('secret', tenantId, async () => {
          secretRef = await secrets.put(tenantId, this.#secretFor(tenantId, password));
          await this.#deps.onCredentialsChanged?.(tenantId);
        });
        await this.#step('login', tenantId, () => this.#logins.admit(tenantId, secretRef));
        await this.#step('grants', tenantId, () => admin.grantTenantAccess(client, tenantId));
        await this.#step('search-path', tenantId, () => admin.pinSearchPath(client, tenantId));
        await this.#step('migrations', tenantId, async () => {
          await admin.migrateTenant(client, tenantId, { alwaysProtectHistory: true });
        });
      });
      const apiKey = generateApiKey(tenantId);
      let tenant: TenantInfo | undefined;
      await this.#step('activate', tenantId, async () => {
        tenant = await registry.releaseClaim(tenantId, owner, {
          status: 'active',
          lastError: null,
          secretRef,
          apiKeyHash: hashApiKey(apiKey),
        });
        if (tenant === undefined) {
          throw new ProvisioningInProgressError(
            `Provisioning of tenant '${tenantId}' took longer than its lease and another run took over`,
          );
        }
      });
      return { tenant: tenant as TenantInfo, apiKey };
    } catch (error) {
      await registry
        .releaseClaim(tenantId, owner, { lastError: describeFailure(error) })
        .catch(() => undefined);
      throw error;
    }
  }

  async #claim(tenantId: string, status: 'provisioning' | 'deprovisioning'): Promise<string> {
    const owner = randomUUID();
    const claimed = await this.#deps.registry.claim(tenantId, { owner, status, leaseMs: this.#leaseMs });
    if (claimed === undefined) {
      const current = await this.#deps.registry.get(tenantId);
      if (current === undefined) {
        throw new TenantNotFoundError(tenantId);
      }
      if (current.status !== status) {
        throw new TenantStateConflictError(`Tenant '${tenantId}' is ${current.status}, not ${status}`);
      }
      throw new ProvisioningInProgressError(
        `${status === 'provisioning' ? 'Provisioning' : 'Deprovisioning'} of tenant '${tenantId}' is already in progress; retry in a moment`,
      );
    }
    return owner;
  }

  async #step(
    step: ProvisioningStep | DeprovisioningStep,
    tenantId: string,
    work: () => Promise<void>,
  ): Promise<void> {
    await work();
    await this.#deps.failpoints?.reach('after-provisioning-step', { tenantId, name: step });
  }

  #secretFor(tenantId: string, password: string): TenantSecret {
    const { endpoint } = this.#deps;
    return {
      engine: 'postgres',
      host: endpoint.host,
      port: endpoint.port,
      username: tenantRoleName(tenantId),
      password,
      dbname: endpoint.database,
      schema: tenantId,
    };
  }
}

/** What is recorded on the tenant: the error's name and message, which never carry a password. */
function describeFailure(error: unknown): string {
  if (error instanceof Error) {
    return `${error.name}: ${error.message}`.slice(0, 2000);
  }
  return 'Unknown error';
}
