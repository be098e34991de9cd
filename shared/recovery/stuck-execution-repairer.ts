import { ForeignExecutionError } from '../kernel/errors.js';
import type { Logger } from '../logging/logger.js';
import { effectiveLimits } from '../tenancy/tenant-config.js';
import type { TenantRegistry, TenantStatus } from '../tenancy/tenant-registry.js';
import type { ExecutionStore } from '../workflows/execution-store.js';
import type { ExecutionHandle, Orchestrator } from '../workflows/orchestrator.js';
import type { WorkflowRegistry } from '../workflows/workflow-registry.js';
import { describeError, type FindingKind, type RecoveryJournal, type Repair } from './recovery-journal.js';
import type { ExecutionClaim, RecoveryStore, StuckExecution } from './recovery-store.js';
import {
  decideExecutionRepair,
  type ExecutionRepairPlan,
  FOREIGN_EXECUTION_REASON,
  INPUT_READ_FACTOR,
  inactiveTenantDetail,
  inputOverLimit,
} from './repair-decision.js';

export interface StuckExecutionRepairerDependencies {
  readonly store: Pick<
    RecoveryStore,
    'markTaskRunsLost' | 'claimExecution' | 'releaseExecution' | 'storedInput' | 'admitRestart'
  >;
  readonly executions: Pick<ExecutionStore, 'finalize' | 'markStarted' | 'isCancelled' | 'markCancelStopped'>;
  /**
   * Where the tenant's limits come from before a restart: the registry, which no tenant role can
   * write (never the execution row, which it may).
   */
  readonly registry: Pick<TenantRegistry, 'get'>;
  readonly orchestrator: Pick<Orchestrator, 'describe' | 'start' | 'redrive' | 'stop'>;
  readonly workflows: Pick<WorkflowRegistry, 'get'>;
  readonly logger: Pick<Logger, 'error'>;
  readonly options: {
    readonly staleAfterSeconds: number;
    readonly heartbeatStaleAfterSeconds: number;
    readonly maxAttempts: number;
    readonly claimSeconds: number;
  };
}

/** The part of a pass's journal a repairer writes to. */
type Journal = Pick<RecoveryJournal, 'runId' | 'found' | 'examined' | 'record' | 'countUnrecorded'>;

/**
 * Repairs one execution a scan found: marks its tasks whose heartbeat stopped as failed, then, if the
 * execution itself is stale and this pass wins the claim on its row, asks the orchestrator what
 * really happened and acts on {@link decideExecutionRepair}'s plan.
 *
 * The claim is a compare-and-set on the row, never a session lock, so two passes at once act on it
 * once, behind RDS Proxy too. Nothing a tenant could have written is trusted: the row only names the
 * execution, the orchestrator checks that it is this tenant's, and the limits a restart must respect
 * are read again from the registry.
 *
 * @example
 * ```ts
 * const repairer = new StuckExecutionRepairer({ store, executions, registry, orchestrator, workflows, logger, options });
 * await repairer.repair(journal, stuckExecution, 'active');
 * ```
 */
export class StuckExecutionRepairer {
  readonly #deps: StuckExecutionRepairerDependencies;

  constructor(deps: StuckExecutionRepairerDependencies) {
    this.#deps = deps;
  }

  /** Never throws: a failure is logged and counted, and the next pass sees the same state again. */
  async repair(
    journal: Journal,
    execution: StuckExecution,
    tenantStatus: TenantStatus | undefined,
  ): Promise<void> {
    const { store, logger, options } = this.#deps;
    const { tenantId, executionId } = execution;
    try {
      if (execution.staleTaskRuns.length > 0) {
        await this.#markTaskRunsLost(journal, execution);
      }
      if (!execution.stale) {
        return;
      }
      const finding: FindingKind = execution.status === 'pending' ? 'stale_pending' : 'stale_running';
      journal.found(finding);
      const claim = await store.claimExecution(tenantId, executionId, journal.runId, {
        claimSeconds: options.claimSeconds,
        staleAfterSeconds: options.staleAfterSeconds,
      });
      if (claim === undefined) {
        // Another pass holds it, or it moved on since the scan: not ours to touch.
        return;
      }
      journal.examined();
      let repair: Repair;
      try {
        repair = await this.#repairClaimed(journal.runId, execution, claim, tenantStatus);
      } catch (error) {
        repair = { action: 'none', outcome: 'failed', detail: describeError(error), progressed: false };
      }
      await store.releaseExecution(tenantId, executionId, journal.runId, repair.progressed);
      await journal.record({ tenantId, targetType: 'execution', targetId: executionId, finding, repair });
    } catch (error) {
      // The database itself failed under us; the next pass sees the same state and tries again.
      logger.error('recovery of an execution failed', { tenantId, executionId, error });
      journal.countUnrecorded('failed');
    }
  }

  async #markTaskRunsLost(journal: Journal, execution: StuckExecution): Promise<void> {
    const { store, options } = this.#deps;
    const { tenantId, executionId } = execution;
    const lost = await store.markTaskRunsLost(tenantId, executionId, options.heartbeatStaleAfterSeconds);
    for (const taskId of lost) {
      journal.found('stale_heartbeat');
      await journal.record({
        tenantId,
        targetType: 'task_run',
        targetId: `${executionId}/${taskId}`,
        finding: 'stale_heartbeat',
        repair: {
          action: 'mark_task_lost',
          outcome: 'done',
          detail: `Task '${taskId}' had no heartbeat for over ${options.heartbeatStaleAfterSeconds} s; marked failed`,
          progressed: false,
        },
      });
    }
  }

  /** Decides, asking the orchestrator only when that is needed, and acts; the caller holds the claim. */
  async #repairClaimed(
    owner: string,
    execution: StuckExecution,
    claim: ExecutionClaim,
    tenantStatus: TenantStatus | undefined,
  ): Promise<Repair> {
    const { orchestrator, workflows, executions, options } = this.#deps;
    const { tenantId, executionId } = execution;
    const handle: ExecutionHandle = { workflow: claim.workflow, tenantId, executionId };
    const observed = {
      tenantId,
      tenantStatus,
      claim,
      workflowDeployed: workflows.get(claim.workflow) !== undefined,
    };
    const first = decideExecutionRepair(observed, options);
    const plan: ExecutionRepairPlan =
      first.kind === 'ask_orchestrator'
        ? decideExecutionRepair({ ...observed, seen: await orchestrator.describe(handle) }, options)
        : first;
    switch (plan.kind) {
      case 'leave':
        return leftAlone(plan.detail);
      case 'mark_started':
        await executions.markStarted(tenantId, executionId, plan.ref);
        return {
          action: 'mark_started',
          outcome: 'done',
          detail: 'The orchestrator runs it; its start had not been recorded',
          progressed: true,
        };
      case 'finalize': {
        const finalized = await executions.finalize(tenantId, executionId, 'succeeded', null);
        return {
          action: 'finalize',
          outcome: finalized ? 'done' : 'skipped',
          detail: finalized
            ? 'The orchestrator reports it succeeded; its finalize was lost'
            : 'The orchestrator reports it succeeded, and it was finalized meanwhile',
          progressed: true,
        };
      }
      case 'abandon':
        return this.#abandon(handle, plan.reason);
      case 'restart':
        return this.#restart(owner, handle, claim, plan);
    }
  }

  /**
   * Starts or redrives the execution, if the tenant's limits as they are now allow it: the tenant is
   * still active, the input is within `maxInputBytes`, and a slot is free under
   * `maxConcurrentExecutions` (the admission also counts the attempt).
   */
  async #restart(
    owner: string,
    handle: ExecutionHandle,
    claim: ExecutionClaim,
    plan: Extract<ExecutionRepairPlan, { kind: 'restart' }>,
  ): Promise<Repair> {
    const { registry, store, orchestrator, executions, options } = this.#deps;
    const { tenantId, executionId } = handle;
    const { action, reason } = plan;
    // Read again here, not taken from the page, so a tenant deactivated since gets nothing restarted.
    const tenant = await registry.get(tenantId);
    if (tenant === undefined || !tenant.active) {
      return leftAlone(inactiveTenantDetail(tenantId, tenant?.status));
    }
    const limits = effectiveLimits(tenant.config);
    // The row is the tenant's to write, so the database measures the input first, and this process
    // reads it only when that cannot settle it.
    const stored = await store.storedInput(tenantId, executionId, limits.maxInputBytes * INPUT_READ_FACTOR);
    const oversized = inputOverLimit(tenantId, stored, limits.maxInputBytes);
    if (oversized !== undefined) {
      // The same rule the API applies at start, and as final: no later pass will find it smaller.
      return this.#abandon(handle, `${action === 'start' ? 'not started' : 'not redriven'}: ${oversized}`);
    }
    const admission = await store.admitRestart(tenantId, executionId, owner, limits.maxConcurrentExecutions);
    if (admission.kind === 'claim_lost') {
      return { action, outcome: 'skipped', detail: 'The claim ran out before acting', progressed: false };
    }
    if (admission.kind === 'at_limit') {
      // Deferred, not failed: the limit may have been lowered after the API admitted it, and a slot
      // frees up as running executions end. `progressed` leaves it alone for a stale threshold,
      // so a crowded tenant is looked at once per threshold, not on every pass; the attempt is
      // not counted, so waiting never abandons it.
      return {
        action: 'defer',
        outcome: 'skipped',
        detail: `Tenant '${tenantId}' has ${admission.running} execution(s) running, its limit (limits.maxConcurrentExecutions = ${limits.maxConcurrentExecutions}); left ${claim.status} for a later pass (${reason})`,
        progressed: true,
      };
    }
    if (action === 'start') {
      const started = await unlessForeign(() => orchestrator.start(handle));
      if (started === undefined) {
        // Someone else's execution took the name between describe and start.
        return this.#abandon(handle, FOREIGN_EXECUTION_REASON);
      }
      await executions.markStarted(tenantId, executionId, started.ref);
    } else {
      const redriven = await unlessForeign(() => orchestrator.redrive(handle));
      if (redriven === undefined) {
        return this.#abandon(handle, FOREIGN_EXECUTION_REASON);
      }
      if (redriven.kind === 'not_redrivable') {
        return {
          action,
          outcome: 'failed',
          detail: `${reason}; the redrive was refused: ${redriven.reason}`,
          progressed: false,
        };
      }
    }
    if (await executions.isCancelled(tenantId, executionId)) {
      // A client cancelled it after the admission and before the orchestrator call: the row is
      // aborted (no task can commit), and the run just restarted is stopped again, so a cancelled
      // execution is never left running.
      await orchestrator.stop(handle, { error: 'Cancelled', cause: 'Cancelled while recovery restarted it' });
      await executions.markCancelStopped(tenantId, executionId);
      return {
        action,
        outcome: 'skipped',
        detail: `${reason}; cancelled meanwhile, so the restarted run was stopped`,
        progressed: true,
      };
    }
    return {
      action,
      outcome: 'done',
      detail: `${reason}; recovery attempt ${admission.attempt} of ${options.maxAttempts}`,
      progressed: true,
    };
  }

  async #abandon(handle: ExecutionHandle, reason: string): Promise<Repair> {
    const { tenantId, executionId } = handle;
    const finalized = await this.#deps.executions.finalize(
      tenantId,
      executionId,
      'failed',
      `ABANDONED: ${reason}`,
    );
    return {
      action: 'abandon',
      outcome: finalized ? 'done' : 'skipped',
      detail: finalized ? reason : `It finished before it could be abandoned (${reason})`,
      progressed: true,
    };
  }
}

function leftAlone(detail: string): Repair {
  return { action: 'none', outcome: 'skipped', detail, progressed: true };
}

/**
 * The orchestrator's answer, or `undefined` when it refused because the execution by that name is
 * another tenant's or another execution's; any other failure propagates.
 */
async function unlessForeign<T>(call: () => Promise<T>): Promise<T | undefined> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof ForeignExecutionError) {
      return undefined;
    }
    throw error;
  }
}
