import { TenantStateConflictError, ValidationError } from '../kernel/errors.js';
import { tenantIdSchema } from '../kernel/tenant-id.schema.js';
import { z } from '../kernel/zod.js';
import type { Logger } from '../logging/logger.js';
import {
  describeFailure,
  lifecycleExecutionName,
  OFFBOARDING_STEPS,
  ONBOARDING_STEPS,
  type ProvisioningService,
  type ProvisionRequest,
  type ProvisionResult,
  type StepOutcome,
} from '../provisioning/provisioning-service.js';
import type { TenantInfo, TenantRegistry } from '../tenancy/tenant-registry.js';
import type { ExecutionHandle, Orchestrator } from '../workflows/orchestrator.js';
import { type Lifecycle, OFFBOARDING, ONBOARDING } from './lifecycle-asl.js';

const STEPS = [...new Set<string>([...ONBOARDING_STEPS, ...OFFBOARDING_STEPS, 'record-failure'])] as [
  string,
  ...string[],
];

/** The payload of every state of the lifecycle state machines (see `compileOnboardingAsl`). */
export const lifecycleStepSchema = z.object({
  tenantId: tenantIdSchema,
  executionId: z.string().min(1).max(80),
  lifecycle: z.enum([ONBOARDING, OFFBOARDING]),
  step: z.enum(STEPS),
  error: z.string().max(256).optional(),
  cause: z.string().max(32_768).optional(),
});
export type LifecycleStep = z.output<typeof lifecycleStepSchema>;

/** What recovery did about a tenant stuck in provisioning or deprovisioning. */
export type LifecycleResumption =
  | { readonly kind: 'started' | 'redriven'; readonly detail: string }
  | { readonly kind: 'running' | 'not_resumable'; readonly detail: string };

export interface TenantLifecycleDependencies {
  readonly provisioning: Pick<
    ProvisioningService,
    'register' | 'beginDeprovisioning' | 'onboardingStep' | 'offboardingStep' | 'recordFailure'
  >;
  readonly registry: Pick<TenantRegistry, 'get'>;
  /** Runs the `onboarding` and `offboarding` state machines: Step Functions in AWS, the local orchestrator locally. */
  readonly orchestrator: Orchestrator;
  readonly logger: Pick<Logger, 'warn' | 'error'>;
}

/**
 * Onboarding and offboarding as state machines. `onboard` registers the tenant (status
 * `provisioning`, its API key minted) and starts the onboarding execution; `offboard` moves an
 * inactive tenant to `deprovisioning` and starts the offboarding one. Both answer at once: the
 * steps run in the state machine, one Lambda invocation each (`runStep`), however long the proxy
 * takes. `resume` is recovery's: it starts or redrives a stuck tenant's execution, never running a
 * step itself.
 *
 * Each tenant's executions are named {@link lifecycleExecutionName} (its id and registration time),
 * so a repeated start is refused by the orchestrator and never runs twice.
 *
 * @example
 * ```ts
 * const lifecycle = new TenantLifecycle({ provisioning, registry, orchestrator, logger });
 * const { tenant, apiKey } = await lifecycle.onboard({ tenantId: 'acme', name: 'Acme' }); // status 'provisioning'
 * ```
 */
export class TenantLifecycle {
  readonly #deps: TenantLifecycleDependencies;

  constructor(deps: TenantLifecycleDependencies) {
    this.#deps = deps;
  }

  /**
   * Registers the tenant and starts its onboarding. When the start itself fails (the orchestrator
   * is unreachable), the tenant stays registered with the error recorded and recovery starts it
   * later, so the API key returned here is never lost to a retry.
   */
  async onboard(request: ProvisionRequest): Promise<ProvisionResult> {
    const { tenant, apiKey } = await this.#deps.provisioning.register(request);
    const started = await this.#start(ONBOARDING, tenant);
    return { tenant: started, apiKey };
  }

  /**
   * Starts offboarding an inactive tenant (or one already offboarding); answers its
   * `deprovisioning` entry. A tenant whose onboarding stopped for good (its execution failed, or
   * never started) may be offboarded too, which removes whatever the onboarding created; one whose
   * onboarding is still running may not.
   */
  async offboard(tenantId: string): Promise<TenantInfo> {
    const { provisioning, registry, orchestrator } = this.#deps;
    const current = await registry.get(tenantId);
    if (current?.status !== 'provisioning') {
      return this.#start(OFFBOARDING, await provisioning.beginDeprovisioning(tenantId));
    }
    const onboarding = await orchestrator.describe(executionHandle(ONBOARDING, current));
    if (onboarding.status === 'running' || onboarding.status === 'pending_redrive') {
      throw new TenantStateConflictError(
        `Tenant '${tenantId}' is still being onboarded${current.currentStep === undefined ? '' : ` (step: ${current.currentStep})`}; it can be deleted once its onboarding has finished or stopped`,
      );
    }
    // Stopped for good, or never started: an onboarding redriven meanwhile fails at its next step,
    // which finds the tenant no longer provisioning.
    return this.#start(
      OFFBOARDING,
      await provisioning.beginDeprovisioning(tenantId, { abandonOnboarding: true }),
    );
  }

  /** Runs one state's step: what the provisioning-step Lambda does with its payload. */
  runStep(payload: LifecycleStep): Promise<StepOutcome> {
    return runLifecycleStep(this.#deps.provisioning, payload);
  }

  /**
   * Gets a stuck tenant's execution going again: starts it when it never started, redrives it
   * from its failed step when it failed, timed out or was aborted, and leaves it alone while it
   * runs ({@link resumeLifecycle}).
   */
  resume(tenant: Pick<TenantInfo, 'tenantId' | 'status' | 'createdAt'>): Promise<LifecycleResumption> {
    return resumeLifecycle(this.#deps.orchestrator, tenant);
  }

  async #start(lifecycle: Lifecycle, tenant: TenantInfo): Promise<TenantInfo> {
    const handle = executionHandle(lifecycle, tenant);
    try {
      await this.#deps.orchestrator.start(handle);
      return tenant;
    } catch (error) {
      // The tenant is registered (or marked for deletion) either way; recovery starts the
      // execution on a later pass. Recorded so that GET /tenants/{id} says why nothing moves yet.
      this.#deps.logger.error(`could not start the ${lifecycle} execution`, {
        tenantId: tenant.tenantId,
        executionId: handle.executionId,
        error,
      });
      const failure = `Could not start the ${lifecycle} state machine (${describeFailure(error)}); recovery starts it within a few minutes`;
      await this.#deps.provisioning
        .recordFailure(
          tenant.tenantId,
          tenant.status === 'provisioning' ? 'provisioning' : 'deprovisioning',
          failure,
        )
        .catch(() => undefined);
      return (await this.#deps.registry.get(tenant.tenantId)) ?? tenant;
    }
  }
}

/**
 * Runs one step of a lifecycle state machine: what the provisioning-step Lambda does with its
 * payload (`record-failure` records the caught error on the tenant).
 */
export async function runLifecycleStep(
  provisioning: Pick<ProvisioningService, 'onboardingStep' | 'offboardingStep' | 'recordFailure'>,
  payload: LifecycleStep,
): Promise<StepOutcome> {
  const options = { executionId: payload.executionId };
  if (payload.step === 'record-failure') {
    await provisioning.recordFailure(
      payload.tenantId,
      payload.lifecycle === ONBOARDING ? 'provisioning' : 'deprovisioning',
      `${payload.error ?? 'Error'}: ${payload.cause ?? 'no cause given'}`,
      options,
    );
    return { done: true };
  }
  if (payload.lifecycle === ONBOARDING && isOneOf(ONBOARDING_STEPS, payload.step)) {
    return provisioning.onboardingStep(payload.tenantId, payload.step, options);
  }
  if (payload.lifecycle === OFFBOARDING && isOneOf(OFFBOARDING_STEPS, payload.step)) {
    return provisioning.offboardingStep(payload.tenantId, payload.step, options);
  }
  throw new ValidationError('Invalid invocation payload', [
    `step: '${payload.step}' is not a step of ${payload.lifecycle}`,
  ]);
}

/**
 * Recovery's part of the lifecycle: gets a tenant stuck in provisioning or deprovisioning going
 * again through its state machine, never running a step itself. Starts the execution when it never
 * started, redrives it from its failed step when it failed, timed out or was aborted, and leaves it
 * alone while it runs. Needs only the orchestrator: no admin login, no tenant secrets.
 *
 * @example
 * ```ts
 * const { kind } = await resumeLifecycle(orchestrator, tenant); // 'started' | 'redriven' | 'running' | 'not_resumable'
 * ```
 */
export async function resumeLifecycle(
  orchestrator: Orchestrator,
  tenant: Pick<TenantInfo, 'tenantId' | 'status' | 'createdAt'>,
): Promise<LifecycleResumption> {
  const lifecycle = lifecycleOf(tenant.status);
  if (lifecycle === undefined) {
    return {
      kind: 'not_resumable',
      detail: `Tenant '${tenant.tenantId}' is ${tenant.status}; nothing to resume`,
    };
  }
  const handle = executionHandle(lifecycle, tenant);
  const described = await orchestrator.describe(handle);
  switch (described.status) {
    case 'not_found':
      await orchestrator.start(handle);
      return {
        kind: 'started',
        detail: `Started the ${lifecycle} execution '${handle.executionId}', which never started`,
      };
    case 'running':
      return {
        kind: 'running',
        detail: `The ${lifecycle} execution '${handle.executionId}' is still running`,
      };
    case 'failed':
    case 'timed_out':
    case 'aborted': {
      if (!described.redrivable) {
        return {
          kind: 'not_resumable',
          detail: `The ${lifecycle} execution '${handle.executionId}' is ${described.status} and can no longer be redriven`,
        };
      }
      const outcome = await orchestrator.redrive(handle);
      return outcome.kind === 'redriven'
        ? {
            kind: 'redriven',
            detail: `Redrove the ${lifecycle} execution '${handle.executionId}' from its failed step (it was ${described.status}${described.error === undefined ? '' : `: ${described.error}`})`,
          }
        : { kind: 'not_resumable', detail: outcome.reason };
    }
    default:
      return {
        kind: 'not_resumable',
        detail: `The ${lifecycle} execution '${handle.executionId}' is ${described.status}, yet the tenant is still ${tenant.status}`,
      };
  }
}

/** The execution of a tenant's onboarding or offboarding: named after the tenant and its registration. */
export function executionHandle(
  lifecycle: Lifecycle,
  tenant: Pick<TenantInfo, 'tenantId' | 'createdAt'>,
): ExecutionHandle {
  return {
    workflow: lifecycle,
    tenantId: tenant.tenantId,
    executionId: lifecycleExecutionName(tenant.tenantId, tenant.createdAt),
  };
}

function isOneOf<T extends string>(steps: readonly T[], step: string): step is T {
  return (steps as readonly string[]).includes(step);
}

function lifecycleOf(status: TenantInfo['status']): Lifecycle | undefined {
  if (status === 'provisioning') {
    return ONBOARDING;
  }
  return status === 'deprovisioning' ? OFFBOARDING : undefined;
}
