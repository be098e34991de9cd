import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type pg from 'pg';
import {
  ConflictError,
  TenantAlreadyExistsError,
  TenantNotFoundError,
  TenantStateConflictError,
} from '../kernel/errors.js';
import type { Failpoints } from '../kernel/failpoints.js';
import { assertValidTenantId } from '../kernel/tenant-id.js';
import { NO_METRICS, type PlatformMetrics } from '../logging/metrics.js';
import type { SecretStore, TenantSecret } from '../secrets/secret-store.js';
import { generateApiKey, hashApiKey } from '../tenancy/api-keys.js';
import { emptyTenantConfig, type TenantConfig } from '../tenancy/tenant-config.js';
import type { ClaimResult, TenantInfo, TenantMetadata, TenantRegistry } from '../tenancy/tenant-registry.js';
import { type DatabaseAdmin, tenantRoleName } from './database-admin.js';
import { generatePassword } from './passwords.js';
import { DirectTenantLogins, type TenantLogins } from './tenant-logins.js';

/**
 * The fine-grained steps of onboarding, in order: each is reached as the `after-provisioning-step`
 * failpoint once done. Each is idempotent; a run can stop after any of them.
 */
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

/** The fine-grained steps of offboarding, in order. */
export const DEPROVISIONING_STEPS = [
  'terminate-sessions',
  'schema',
  'role',
  'login',
  'secret',
  'registry',
] as const;
export type DeprovisioningStep = (typeof DEPROVISIONING_STEPS)[number];

/**
 * The steps of onboarding as the state machine runs them: one state each (see `lifecycle-asl.ts`),
 * each taking one or more of {@link PROVISIONING_STEPS}. A step is what `currentStep` shows.
 */
export const ONBOARDING_STEPS = [
  'schema-and-role',
  'credentials',
  'login',
  'migrations',
  'activate',
] as const;
export type OnboardingStep = (typeof ONBOARDING_STEPS)[number];

/** The steps of offboarding as the state machine runs them, each taking some of {@link DEPROVISIONING_STEPS}. */
export const OFFBOARDING_STEPS = ['schedules', 'schema-and-role', 'login', 'secret', 'registry'] as const;
export type OffboardingStep = (typeof OFFBOARDING_STEPS)[number];

/** What one step of a state machine did. */
export interface StepOutcome {
  /**
   * `false` only from `login`: the proxy has not taken the change yet (it is `modifying`, or
   * another onboarding holds its auth list). The state machine waits and runs the step again.
   */
  readonly done: boolean;
}

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
  /**
   * Deletes the tenant's schedules (their triggers, then their rows): offboarding's first step, so
   * nothing fires for a tenant whose schema is going.
   * @default none: the rows go with the registry entry (a foreign key), and no trigger is deleted
   */
  readonly scheduleCleanup?: TenantScheduleCleanup | undefined;
  /** Times each onboarding, from registration to activation. @default NO_METRICS */
  readonly metrics?: Pick<PlatformMetrics, 'provisioningTook'> | undefined;
}

/** What offboarding calls to delete a tenant's schedules; idempotent (see `createScheduleCleanup`). */
export interface TenantScheduleCleanup {
  removeTenantSchedules(tenantId: string): Promise<unknown>;
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
 * Two ways in, one set of steps:
 * - `register` + `onboardingStep` (and `beginDeprovisioning` + `offboardingStep`): what the
 *   onboarding and offboarding state machines call, one step per Lambda invocation, so nothing
 *   waits on the proxy inside a Lambda (see `TenantLifecycle`);
 * - `provision` and `deprovision`: the same steps in one call, in-process (the library, benchmarks
 *   and tests), waiting on the proxy where the state machine would loop.
 *
 * Resumable: the registry row is written first (`provisioning`), each step is idempotent, a
 * failure records the error and the step on the row and leaves it `provisioning`, and running the
 * step again completes it. Offboarding goes through `deprovisioning` the same way. Each step claims
 * the tenant with a lease (compare-and-set, no lock held), so two runs never interleave.
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
   * Registers a new tenant as `provisioning` with a freshly minted API key (only its hash is
   * stored; the key authenticates once the tenant is active). Nothing is created in the database
   * yet: the onboarding steps do that. A tenant id already registered, in whatever status, is a
   * `TenantAlreadyExistsError` that names its status.
   */
  async register(request: ProvisionRequest): Promise<ProvisionResult> {
    assertValidTenantId(request.tenantId);
    const existing = await this.#deps.registry.get(request.tenantId);
    if (existing !== undefined) {
      throw alreadyRegistered(existing);
    }
    await this.#assertRoomFor(request.tenantId);
    const apiKey = generateApiKey(request.tenantId);
    try {
      const tenant = await this.#deps.registry.create({
        tenantId: request.tenantId,
        name: request.name,
        metadata: request.metadata ?? {},
        config: request.config ?? emptyTenantConfig(),
        status: 'provisioning',
        apiKeyHash: hashApiKey(apiKey),
      });
      return { tenant, apiKey };
    } catch (error) {
      const raced = await this.#deps.registry.get(request.tenantId);
      throw raced === undefined ? error : alreadyRegistered(raced);
    }
  }

  /**
   * Provisions a new tenant in one call, or completes one left in `provisioning` by an earlier run
   * (same name and metadata). A tenant that is already provisioned is a `TenantAlreadyExistsError`.
   * The API key is minted at the end, replacing any minted at registration.
   */
  async provision(request: ProvisionRequest): Promise<ProvisionResult> {
    const { registry } = this.#deps;
    assertValidTenantId(request.tenantId);
    const metadata = request.metadata ?? {};
    const config = request.config ?? emptyTenantConfig();
    try {
      await this.#assertRoomFor(request.tenantId);
    } catch (error) {
      // A run left in `provisioning` has created some of what the check refuses: it is resumed
      // below. Looked up only when the check fails, so a new tenant costs no registry read here.
      if ((await registry.get(request.tenantId)) === undefined) {
        throw error;
      }
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
    return this.resumeProvisioning(tenant.tenantId);
  }

  /**
   * Runs every onboarding step of a tenant in `provisioning`, in-process, and activates it with a
   * new API key. The same steps as the state machine's, under one claim and on one admin
   * connection: the claim is taken once and released once (as `active`, or with the error and the
   * step it stopped at), and renewed between steps only when a third of its lease has gone. The
   * password the role is created with is the one stored, so it is set once.
   */
  async resumeProvisioning(tenantId: string): Promise<ProvisionResult> {
    const { admin, secrets, registry } = this.#deps;
    let step: OnboardingStep = ONBOARDING_STEPS[0];
    const owner = await this.#claim(tenantId, 'provisioning', step);
    let claimedAt = Date.now();
    const enter = async (next: OnboardingStep): Promise<void> => {
      step = next;
      if (Date.now() - claimedAt < this.#leaseMs / 3) {
        return;
      }
      const renewed = await registry.claim(tenantId, {
        owner,
        status: 'provisioning',
        leaseMs: this.#leaseMs,
        step: next,
      });
      if (renewed === undefined) {
        throw new ProvisioningInProgressError(
          `Provisioning of tenant '${tenantId}' took longer than its lease and another run took over`,
        );
      }
      claimedAt = Date.now();
    };
    const apiKey = generateApiKey(tenantId);
    let secretRef: string | undefined;
    let tenant: TenantInfo | undefined;
    try {
      await admin.withConnection(async (client: pg.Client) => {
        // schema-and-role, with the stored password if an earlier run got that far.
        const stored = await secrets.get(tenantId);
        const password = stored?.password ?? generatePassword();
        await this.#reached('lock-down', tenantId, () => admin.lockDown(client));
        await this.#reached('schema', tenantId, () => admin.ensureSchema(client, tenantId));
        let defaultsPinned = false;
        await this.#reached('role', tenantId, async () => {
          ({ defaultsPinned } = await admin.ensureRole(client, tenantId, password));
        });
        // credentials: the role has this password now, so storing it is all that is left.
        await enter('credentials');
        await this.#reached('secret', tenantId, async () => {
          secretRef = await secrets.put(tenantId, this.#secretFor(tenantId, password));
          await this.#deps.onCredentialsChanged?.(tenantId);
        });
        await enter('login');
        await this.#logins.admit(tenantId, secretRef as string);
        await this.#reached('login', tenantId, async () => {});
        await enter('migrations');
        await this.#reached('grants', tenantId, () => admin.grantTenantAccess(client, tenantId));
        await this.#reached('search-path', tenantId, async () => {
          // Stored with the role when this run created it; a role an earlier run created gets them now.
          if (!defaultsPinned) {
            await admin.pinSearchPath(client, tenantId);
          }
        });
        await this.#reached('migrations', tenantId, async () => {
          await admin.migrateTenant(client, tenantId, { alwaysProtectHistory: true });
        });
      });
      step = 'activate';
      await this.#reached('activate', tenantId, async () => {
        tenant = await registry.releaseClaim(tenantId, owner, {
          status: 'active',
          lastError: null,
          currentStep: null,
          apiKeyHash: hashApiKey(apiKey),
          ...(secretRef === undefined ? {} : { secretRef }),
        });
        if (tenant === undefined) {
          throw new ProvisioningInProgressError(
            `Provisioning of tenant '${tenantId}' took longer than its lease and another run took over`,
          );
        }
      });
    } catch (error) {
      await registry
        .releaseClaim(tenantId, owner, {
          lastError: describeFailure(error),
          currentStep: step,
          ...(secretRef === undefined ? {} : { secretRef }),
        })
        .catch(() => undefined);
      throw error;
    }
    const onboarded = tenant as TenantInfo;
    const durationMs = Date.now() - onboarded.createdAt.getTime();
    (this.#deps.metrics ?? NO_METRICS).provisioningTook({ tenantId, lifecycle: 'onboarding', durationMs });
    return { tenant: onboarded, apiKey };
  }

  /**
   * Runs one onboarding step for a tenant in `provisioning`: what each Task state of the onboarding
   * state machine invokes. `login` never waits on the proxy: it answers `done: false` until the
   * proxy is available with the tenant's secret on its list. `activate` keeps the API key minted
   * at registration. With `executionId`, a step of another generation's execution (the tenant was
   * deleted and registered again meanwhile) is refused.
   */
  async onboardingStep(
    tenantId: string,
    step: OnboardingStep,
    options: { readonly executionId?: string | undefined } = {},
  ): Promise<StepOutcome> {
    if (step === 'activate') {
      await this.#activate(tenantId, undefined, options.executionId);
      return { done: true };
    }
    return this.#onboardingStep(tenantId, step, { waitForProxy: false, executionId: options.executionId });
  }

  /**
   * Moves an inactive tenant to `deprovisioning` (a tenant already there stays), ready for the
   * offboarding steps. An active tenant must be deactivated first: never one that may still have
   * work running.
   */
  async beginDeprovisioning(
    tenantId: string,
    options: {
      /**
       * Also from `provisioning`: an onboarding that stopped for good (its execution failed and is
       * not running), so that what it created can be removed. The caller checks that it stopped.
       */
      readonly abandonOnboarding?: boolean;
    } = {},
  ): Promise<TenantInfo> {
    const change = await this.#deps.registry.setStatus(tenantId, 'deprovisioning', [
      'inactive',
      'deprovisioning',
      ...(options.abandonOnboarding === true ? (['provisioning'] as const) : []),
    ]);
    if (change.kind === 'not_found') {
      throw new TenantNotFoundError(tenantId);
    }
    if (change.kind === 'status_mismatch') {
      throw new TenantStateConflictError(
        change.tenant.status === 'active'
          ? `Tenant '${tenantId}' must be inactive before it can be deleted. Deactivate it first: POST /tenants/${tenantId}/deactivate`
          : `Tenant '${tenantId}' is ${change.tenant.status}; it can be deleted once that finishes or stops`,
      );
    }
    return change.tenant;
  }

  /**
   * Offboards an inactive tenant in one call (or resumes offboarding one left in `deprovisioning`):
   * its sessions, schema, role, secret and registry entry. Any failure is reported, never
   * swallowed, and leaves the tenant `deprovisioning` with the error recorded.
   */
  async deprovision(tenantId: string): Promise<void> {
    await this.beginDeprovisioning(tenantId);
    for (const step of OFFBOARDING_STEPS) {
      await this.#offboardingStep(tenantId, step, { waitForProxy: true });
    }
  }

  /** Runs one offboarding step for a tenant in `deprovisioning`, as {@link onboardingStep} does. */
  offboardingStep(
    tenantId: string,
    step: OffboardingStep,
    options: { readonly executionId?: string | undefined } = {},
  ): Promise<StepOutcome> {
    return this.#offboardingStep(tenantId, step, { waitForProxy: false, executionId: options.executionId });
  }

  /**
   * Records on the tenant why its onboarding or offboarding stopped (the state machine's failure
   * state), keeping the step it stopped at. Left alone while another run holds the tenant, or once
   * the tenant has moved on.
   */
  async recordFailure(
    tenantId: string,
    status: 'provisioning' | 'deprovisioning',
    failure: string,
    options: { readonly executionId?: string | undefined } = {},
  ): Promise<void> {
    let owner: string;
    try {
      owner = await this.#claim(tenantId, status, undefined, options.executionId);
    } catch (error) {
      if (error instanceof ProvisioningInProgressError || error instanceof TenantStateConflictError) {
        return;
      }
      if (error instanceof TenantNotFoundError) {
        return;
      }
      throw error;
    }
    await this.#deps.registry.releaseClaim(tenantId, owner, { lastError: failure.slice(0, 2000) });
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
   * key stops authenticating at once. This is how a tenant whose key was lost or has leaked gets a
   * working one.
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
          ? `Tenant '${tenantId}' is still provisioning; the key returned by POST /tenants works once it is active (GET /tenants/${tenantId} shows its progress). Issue a new key after that if it was lost`
          : `Tenant '${tenantId}' is ${change.tenant.status}; it can no longer be given an API key`,
      );
    }
    return { tenantId, apiKey, issuedAt: new Date() };
  }

  /** Refuses a tenant that could never log in, or whose id names a role, schema or database that exists. */
  async #assertRoomFor(tenantId: string): Promise<void> {
    await this.#logins.assertRoomForNewTenant();
    await this.#deps.admin.assertTenantIdAvailable(tenantId);
  }

  async #onboardingStep(
    tenantId: string,
    step: Exclude<OnboardingStep, 'activate'>,
    mode: { readonly waitForProxy: boolean; readonly executionId?: string | undefined },
  ): Promise<StepOutcome> {
    const { admin, secrets, registry } = this.#deps;
    return this.#claimed(tenantId, 'provisioning', step, mode.executionId, async () => {
      switch (step) {
        case 'schema-and-role':
          await admin.withConnection(async (client: pg.Client) => {
            await this.#reached('lock-down', tenantId, () => admin.lockDown(client));
            await this.#reached('schema', tenantId, () => admin.ensureSchema(client, tenantId));
            // The stored password, if an earlier run got that far; `credentials` sets it otherwise.
            const password = (await secrets.get(tenantId))?.password ?? generatePassword();
            await this.#reached('role', tenantId, async () => {
              await admin.ensureRole(client, tenantId, password);
            });
          });
          return { done: true, release: {} };
        case 'credentials': {
          let secretRef = '';
          await this.#reached('secret', tenantId, async () => {
            // The stored secret is the password to keep, and the role already has it; a new one is
            // given to the role first, so role and secret always end up agreeing.
            const stored = await secrets.get(tenantId);
            const password = stored?.password ?? generatePassword();
            if (stored === undefined) {
              await admin.withConnection((client) => admin.setPassword(client, tenantId, password));
            }
            secretRef = await secrets.put(tenantId, this.#secretFor(tenantId, password));
            await this.#deps.onCredentialsChanged?.(tenantId);
          });
          return { done: true, release: { secretRef } };
        }
        case 'login': {
          const secretRef = (await registry.getCredentialRefs(tenantId))?.secretRef;
          if (secretRef === undefined) {
            throw new TenantStateConflictError(
              `Tenant '${tenantId}' has no stored credentials yet; the credentials step must run before its login is admitted`,
            );
          }
          let done = true;
          if (mode.waitForProxy) {
            await this.#logins.admit(tenantId, secretRef);
          } else {
            done = await this.#logins.tryAdmit(tenantId, secretRef);
          }
          if (done) {
            await this.#reached('login', tenantId, async () => {});
          }
          return { done, release: {} };
        }
        case 'migrations':
          await admin.withConnection(async (client: pg.Client) => {
            await this.#reached('grants', tenantId, () => admin.grantTenantAccess(client, tenantId));
            await this.#reached('search-path', tenantId, () => admin.pinSearchPath(client, tenantId));
            await this.#reached('migrations', tenantId, async () => {
              await admin.migrateTenant(client, tenantId, { alwaysProtectHistory: true });
            });
          });
          return { done: true, release: {} };
      }
    });
  }

  async #offboardingStep(
    tenantId: string,
    step: OffboardingStep,
    mode: { readonly waitForProxy: boolean; readonly executionId?: string | undefined },
  ): Promise<StepOutcome> {
    const { admin, secrets, registry } = this.#deps;
    return this.#claimed(tenantId, 'deprovisioning', step, mode.executionId, async () => {
      switch (step) {
        case 'schedules':
          await this.#deps.scheduleCleanup?.removeTenantSchedules(tenantId);
          return { done: true, release: {} };
        case 'schema-and-role':
          await admin.withConnection(async (client) => {
            await this.#reached('terminate-sessions', tenantId, () =>
              admin.terminateTenantSessions(client, tenantId),
            );
            await this.#reached('schema', tenantId, () => admin.dropSchema(client, tenantId));
            await this.#reached('role', tenantId, () => admin.dropRole(client, tenantId));
          });
          return { done: true, release: {} };
        case 'login': {
          // The secret's reference as provisioning recorded it; the entry is also found by name without it.
          const secretRef = (await registry.getCredentialRefs(tenantId))?.secretRef;
          let done = true;
          if (mode.waitForProxy) {
            await this.#logins.revoke(tenantId, secretRef);
          } else {
            done = await this.#logins.tryRevoke(tenantId, secretRef);
          }
          if (done) {
            await this.#reached('login', tenantId, async () => {});
          }
          return { done, release: {} };
        }
        case 'secret':
          await this.#reached('secret', tenantId, async () => {
            await secrets.delete(tenantId);
            await this.#deps.onCredentialsChanged?.(tenantId);
          });
          return { done: true, release: {} };
        case 'registry':
          await this.#reached('registry', tenantId, async () => {
            await registry.remove(tenantId, 'deprovisioning');
          });
          return { done: true, release: undefined };
      }
    });
  }

  /**
   * Activates the tenant: the last step, which releases the claim as `active`. With `apiKeyHash`
   * (in-process provisioning), the key minted now replaces the one minted at registration.
   */
  async #activate(
    tenantId: string,
    apiKeyHash: string | undefined,
    executionId?: string,
  ): Promise<TenantInfo> {
    const owner = await this.#claim(tenantId, 'provisioning', 'activate', executionId);
    let tenant: TenantInfo | undefined;
    try {
      await this.#reached('activate', tenantId, async () => {
        tenant = await this.#deps.registry.releaseClaim(tenantId, owner, {
          status: 'active',
          lastError: null,
          currentStep: null,
          ...(apiKeyHash === undefined ? {} : { apiKeyHash }),
        });
        if (tenant === undefined) {
          throw new ProvisioningInProgressError(
            `Provisioning of tenant '${tenantId}' took longer than its lease and another run took over`,
          );
        }
      });
    } catch (error) {
      await this.#deps.registry
        .releaseClaim(tenantId, owner, { lastError: describeFailure(error) })
        .catch(() => undefined);
      throw error;
    }
    const onboarded = tenant as TenantInfo;
    const durationMs = Date.now() - onboarded.createdAt.getTime();
    (this.#deps.metrics ?? NO_METRICS).provisioningTook({ tenantId, lifecycle: 'onboarding', durationMs });
    return onboarded;
  }

  /**
   * Runs `work` under a claim on the tenant recording `step` as its current step. On success the
   * claim is released with what `work` returns (`release: undefined`: the row is gone) and the
   * error of an earlier try cleared; on failure the error is recorded and rethrown.
   */
  async #claimed(
    tenantId: string,
    status: 'provisioning' | 'deprovisioning',
    step: OnboardingStep | OffboardingStep,
    executionId: string | undefined,
    work: () => Promise<{ done: boolean; release: ClaimResult | undefined }>,
  ): Promise<StepOutcome> {
    const owner = await this.#claim(tenantId, status, step, executionId);
    try {
      const { done, release } = await work();
      if (release !== undefined) {
        await this.#deps.registry.releaseClaim(tenantId, owner, { ...release, lastError: null });
      }
      return { done };
    } catch (error) {
      await this.#deps.registry
        .releaseClaim(tenantId, owner, { lastError: describeFailure(error) })
        .catch(() => undefined);
      throw error;
    }
  }

  async #claim(
    tenantId: string,
    status: 'provisioning' | 'deprovisioning',
    step: OnboardingStep | OffboardingStep | undefined,
    executionId?: string,
  ): Promise<string> {
    if (executionId !== undefined) {
      // An execution of an earlier registration of this id (deleted and registered again since)
      // must not act on this one. A row's creation time never changes, so reading it first is safe.
      const current = await this.#deps.registry.get(tenantId);
      if (current !== undefined && executionId !== lifecycleExecutionName(tenantId, current.createdAt)) {
        throw new TenantStateConflictError(
          `Execution '${executionId}' belongs to an earlier registration of tenant '${tenantId}'; it changes nothing`,
        );
      }
    }
    const owner = randomUUID();
    const claimed = await this.#deps.registry.claim(tenantId, {
      owner,
      status,
      leaseMs: this.#leaseMs,
      ...(step === undefined ? {} : { step }),
    });
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

  async #reached(
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

/**
 * The name of a tenant's onboarding and offboarding executions: its id and when it was registered.
 * A retried start is refused by the orchestrator (names are unique per state machine), while a
 * tenant registered again under the same id after a deletion gets new names. At most 68
 * characters: Step Functions allows 80.
 *
 * @example
 * ```ts
 * lifecycleExecutionName('acme', new Date(1_700_000_000_000)); // 'acme-loyw3v28'
 * ```
 */
export function lifecycleExecutionName(tenantId: string, registeredAt: Date): string {
  return `${tenantId}-${registeredAt.getTime().toString(36)}`;
}

/** The 409 for an id already registered: it says what the tenant is doing and where to look. */
function alreadyRegistered(tenant: TenantInfo): TenantAlreadyExistsError {
  const progress =
    tenant.status === 'provisioning' || tenant.status === 'deprovisioning'
      ? ` and is ${tenant.status}${tenant.currentStep === undefined ? '' : ` (step: ${tenant.currentStep})`}; GET /tenants/${tenant.tenantId} shows its progress`
      : ` and is ${tenant.status}`;
  return new TenantAlreadyExistsError(tenant.tenantId, {
    message: `Tenant '${tenant.tenantId}' is already registered${progress}`,
  });
}

/** What is recorded for a failure: the error's name and message, which never carry a password. */
export function describeFailure(error: unknown): string {
  if (error instanceof Error) {
    return `${error.name}: ${error.message}`.slice(0, 2000);
  }
  return 'Unknown error';
}
