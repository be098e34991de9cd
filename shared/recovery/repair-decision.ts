import { jsonBytes } from '../tenancy/tenant-config.js';
import type { TenantStatus } from '../tenancy/tenant-registry.js';
import type { ExecutionDescription } from '../workflows/orchestrator.js';
import type { ExecutionClaim, StoredInput } from './recovery-store.js';

/*
 * What recovery decides, apart from how it finds things out and how it acts, so every rule can be
 * tested without a database or an orchestrator. Whether an execution is stale at all is not
 * decided here: PostgreSQL compares it with its own `now()` (in the scan and again in the claim),
 * so clock skew between Lambdas can never make a fresh execution look stale.
 */

export interface RepairPolicy {
  /**
   * How many times recovery restarts one execution, or fails to resume one tenant, before it gives
   * up (`TENANTFLOW_RECOVERY_MAX_ATTEMPTS`).
   */
  readonly maxAttempts: number;
}

/** What recovery knows about an execution it has claimed. */
export interface ExecutionObservation {
  readonly tenantId: string;
  /** The tenant's status when its page was read; `undefined` when it was not on the page. */
  readonly tenantStatus: TenantStatus | undefined;
  readonly claim: ExecutionClaim;
  /** Whether `claim.workflow` is deployed in this process. */
  readonly workflowDeployed: boolean;
  /** What the orchestrator says about the execution; absent until it has been asked. */
  readonly seen?: ExecutionDescription | undefined;
}

/** What to do about a claimed execution. */
export type ExecutionRepairPlan =
  /** Nothing, for the reason in `detail`; it is looked at again once quiet for the stale threshold. */
  | { readonly kind: 'leave'; readonly detail: string }
  /** The orchestrator runs it, but its row never recorded the start: record it with this `ref`. */
  | { readonly kind: 'mark_started'; readonly ref: string }
  /** It succeeded but its finalize was lost: finalize it as succeeded. */
  | { readonly kind: 'finalize' }
  /** Fail it for good, as `ABANDONED: <reason>`. */
  | { readonly kind: 'abandon'; readonly reason: string }
  /**
   * Start it again (same name, so idempotent) or redrive it from its failed state, if the tenant's
   * limits allow it now; `reason` is what was seen, for the record.
   */
  | { readonly kind: 'restart'; readonly action: 'start' | 'redrive'; readonly reason: string };

/** The orchestrator must be asked before anything can be decided. */
export interface AskOrchestrator {
  readonly kind: 'ask_orchestrator';
}

/**
 * The reason a row is abandoned when the orchestrator's execution by its name belongs to another
 * tenant or execution (a tenant can write its own rows, so a row may name someone else's
 * execution). It tells nothing of the other execution.
 */
export const FOREIGN_EXECUTION_REASON =
  "the orchestrator's execution by its name is not this tenant's (its input names another tenant or execution); recovery does not act on it";

/**
 * An input whose stored text is longer than this many times `limits.maxInputBytes` is refused
 * without being read. The text of a jsonb is never shorter than the same value as JSON (it adds a
 * space after each `,` and `:`, so it is at most half as long again), so anything the
 * API accepted is read and measured exactly, unless it holds numbers JSON writes with an exponent
 * (1e21 and up), whose digits jsonb spells out. What is read stays bounded by twice the limit.
 */
export const INPUT_READ_FACTOR = 2;

/**
 * What to do about a stuck execution recovery has claimed, from what it has observed so far.
 *
 * Called first without `seen`: an execution that can be settled without the orchestrator (its
 * tenant is not active, its workflow is gone) is, and the orchestrator is never asked about it.
 * Otherwise the answer is `ask_orchestrator`, and the second call, with `seen`, always decides.
 * A restart past `maxAttempts` becomes an abandon, so a poisoned execution is not retried forever;
 * a finalize or a recorded start is never capped, because neither runs anything again.
 *
 * @example
 * ```ts
 * const observed = { tenantId, tenantStatus: 'active', claim, workflowDeployed: true } as const;
 * const first = decideExecutionRepair(observed, { maxAttempts: 3 });
 * const plan =
 *   first.kind === 'ask_orchestrator'
 *     ? decideExecutionRepair({ ...observed, seen: await orchestrator.describe(handle) }, { maxAttempts: 3 })
 *     : first;
 * ```
 */
export function decideExecutionRepair(
  observed: ExecutionObservation & { readonly seen: ExecutionDescription },
  policy: RepairPolicy,
): ExecutionRepairPlan;
export function decideExecutionRepair(
  observed: ExecutionObservation,
  policy: RepairPolicy,
): ExecutionRepairPlan | AskOrchestrator;
export function decideExecutionRepair(
  observed: ExecutionObservation,
  policy: RepairPolicy,
): ExecutionRepairPlan | AskOrchestrator {
  const { tenantId, tenantStatus, claim, seen } = observed;
  if (tenantStatus !== 'active') {
    // Fail closed: no work runs for a tenant that is not active; its executions resume once it is.
    return { kind: 'leave', detail: inactiveTenantDetail(tenantId, tenantStatus) };
  }
  if (!observed.workflowDeployed) {
    return { kind: 'abandon', reason: `workflow '${claim.workflow}' is not deployed any more` };
  }
  if (seen === undefined) {
    return { kind: 'ask_orchestrator' };
  }
  switch (seen.status) {
    case 'foreign':
      return { kind: 'abandon', reason: FOREIGN_EXECUTION_REASON };
    case 'not_found':
      return restartWithinCap(
        'start',
        'it never started (the orchestrator has no execution by its name)',
        claim,
        policy,
      );
    case 'succeeded':
      return { kind: 'finalize' };
    case 'failed':
    case 'timed_out':
    case 'aborted': {
      const what = describeOrchestratorOutcome(seen);
      return seen.redrivable
        ? restartWithinCap('redrive', what, claim, policy)
        : { kind: 'abandon', reason: `${what}, and it cannot be redriven` };
    }
    case 'running':
    case 'pending_redrive':
      if (claim.status === 'pending' && seen.ref !== undefined) {
        // Started, but the process died before recording it.
        return { kind: 'mark_started', ref: seen.ref };
      }
      return {
        kind: 'leave',
        detail: `The orchestrator reports it ${seen.status === 'running' ? 'running' : 'being redriven'}; left alone`,
      };
  }
}

/** What is recorded for an execution left alone because its tenant is not active (or is gone). */
export function inactiveTenantDetail(tenantId: string, status: TenantStatus | undefined): string {
  return `Tenant '${tenantId}' is ${status ?? 'gone'}; its executions are repaired once it is active`;
}

/**
 * Why an execution's input is over the tenant's `maxInputBytes`, measured as the API measures it
 * (the bytes of its JSON), or `undefined` when it is within. `stored` is what the database measured
 * with a read limit of {@link INPUT_READ_FACTOR} times `maxInputBytes`; `undefined` when the row is
 * gone (the restart's admission then finds the claim lost).
 *
 * @example
 * ```ts
 * const stored = await store.storedInput(tenantId, executionId, maxInputBytes * INPUT_READ_FACTOR);
 * const why = inputOverLimit(tenantId, stored, maxInputBytes); // undefined when within
 * ```
 */
export function inputOverLimit(
  tenantId: string,
  stored: StoredInput | undefined,
  maxInputBytes: number,
): string | undefined {
  if (stored === undefined || stored.storedBytes <= maxInputBytes) {
    // JSON is never longer than the stored text, so within as stored is within as JSON.
    return undefined;
  }
  if (!stored.read) {
    return `its input is ${stored.storedBytes} bytes as stored, over twice what tenant '${tenantId}' allows (limits.maxInputBytes = ${maxInputBytes})`;
  }
  const bytes = jsonBytes(stored.input);
  return bytes > maxInputBytes
    ? `its input is ${bytes} bytes as JSON; tenant '${tenantId}' allows at most ${maxInputBytes} (limits.maxInputBytes)`
    : undefined;
}

/** What a tenant stuck in provisioning or deprovisioning looks like to recovery. */
export interface StuckTenantObservation {
  readonly status: TenantStatus;
  /** How often recovery has already failed to resume it since it was created. */
  readonly failedResumes: number;
}

export type TenantRepairPlan =
  /** Its failures are on record and an operator must act; trying again would only add to them. */
  | { readonly kind: 'give_up' }
  | { readonly kind: 'resume_provisioning' }
  | { readonly kind: 'resume_deprovisioning' };

/**
 * What to do about a stuck tenant: resume whichever of provisioning or deprovisioning it is stuck
 * in, through the same idempotent path an operator would use, unless recovery has already failed
 * `maxAttempts` times.
 *
 * @example
 * ```ts
 * decideTenantRepair({ status: 'provisioning', failedResumes: 0 }, { maxAttempts: 3 }); // resume_provisioning
 * ```
 */
export function decideTenantRepair(observed: StuckTenantObservation, policy: RepairPolicy): TenantRepairPlan {
  if (observed.failedResumes >= policy.maxAttempts) {
    return { kind: 'give_up' };
  }
  // Only provisioning and deprovisioning tenants are ever stuck (the page query says so).
  return observed.status === 'provisioning'
    ? { kind: 'resume_provisioning' }
    : { kind: 'resume_deprovisioning' };
}

function restartWithinCap(
  action: 'start' | 'redrive',
  reason: string,
  claim: Pick<ExecutionClaim, 'attempts'>,
  policy: RepairPolicy,
): ExecutionRepairPlan {
  if (claim.attempts >= policy.maxAttempts) {
    return {
      kind: 'abandon',
      reason: `recovery restarted it ${claim.attempts} time(s), its cap (TENANTFLOW_RECOVERY_MAX_ATTEMPTS = ${policy.maxAttempts}); last seen: ${reason}`,
    };
  }
  return { kind: 'restart', action, reason };
}

function describeOrchestratorOutcome(seen: ExecutionDescription): string {
  const status = seen.status === 'timed_out' ? 'timed out' : seen.status;
  const error = [seen.error, seen.cause].filter((part) => part !== undefined && part !== '').join(': ');
  return `the orchestrator reports it ${status}${error === '' ? '' : ` (${error})`}`;
}
