import { randomUUID } from 'node:crypto';
import { SQLSTATE, sqlState } from '../db/sql.js';
import {
  ConflictError,
  ForeignExecutionError,
  TenantNotFoundError,
  TenantStateConflictError,
} from '../errors.js';
import type { Logger } from '../logging/logger.js';
import {
  ProvisioningInProgressError,
  type ProvisioningService,
} from '../provisioning/provisioning-service.js';
import type { LoginReconciliation, TenantLogins } from '../provisioning/tenant-logins.js';
import { effectiveLimits, jsonBytes } from '../tenancy/tenant-config.js';
import type { TenantRegistry } from '../tenancy/tenant-registry.js';
import { forEachConcurrently } from '../util/concurrency.js';
import type { ExecutionStore } from '../workflows/execution-store.js';
import type { ExecutionDescription, ExecutionHandle, Orchestrator } from '../workflows/orchestrator.js';
import type { WorkflowRegistry } from '../workflows/workflow-registry.js';
import type {
  ExecutionClaim,
  RecoveryOutcome,
  RecoveryStore,
  RecoveryTargetType,
  ScannedTenant,
  StuckExecution,
} from './recovery-store.js';

/** What a pass can find. */
export const FINDING_KINDS = [
  'stale_pending',
  'stale_running',
  'stale_heartbeat',
  'stuck_provisioning',
  'stuck_deprovisioning',
  'scan_failed',
  'login_missing',
  'login_orphaned',
] as const;
export type FindingKind = (typeof FINDING_KINDS)[number];

/** What a pass can do about a finding; `none` is a deliberate non-action (left alone, skipped). */
export const ACTION_KINDS = [
  'start',
  'redrive',
  'finalize',
  'abandon',
  'mark_started',
  'mark_task_lost',
  'resume_provisioning',
  'resume_deprovisioning',
  'admit_login',
  'revoke_login',
  /** Left for a later pass: restarting it now would exceed the tenant's concurrency limit. */
  'defer',
  'none',
] as const;
export type ActionKind = (typeof ACTION_KINDS)[number];

export interface RecoverySummary {
  readonly runId: string;
  readonly tenantsScanned: number;
  /** Stuck executions this pass claimed and examined (a claim lost to another pass is not counted). */
  readonly executionsExamined: number;
  readonly findings: Record<FindingKind, number>;
  /** Actions that were carried out (`done`), by kind. */
  readonly actions: Record<ActionKind, number>;
  readonly outcomes: Record<RecoveryOutcome, number>;
  /** False when the pass ran out of time; the next pass resumes after `resumeAfter`. */
  readonly complete: boolean;
  readonly resumeAfter?: string | undefined;
  readonly durationMs: number;
}

export interface RecoveryOptions {
  readonly staleAfterSeconds: number;
  readonly heartbeatStaleAfterSeconds: number;
  readonly maxAttempts: number;
  readonly concurrency: number;
  readonly retentionDays: number;
  /** How long a claim on an execution lasts; longer than any one repair takes. Default 120 s. */
  readonly claimSeconds?: number;
  /** Tenants read per page. Default 200. */
  readonly pageSize?: number;
  /** Tenants whose executions are scanned in one statement. Default 50. */
  readonly scanBatchSize?: number;
  /** Stuck executions handled per tenant per pass. Default 100. */
  readonly perTenantLimit?: number;
}

export interface RecoveryDependencies {
  readonly store: RecoveryStore;
  readonly executions: Pick<ExecutionStore, 'finalize' | 'markStarted'>;
  /**
   * Where each tenant's limits come from before recovery restarts one of its executions: the
   * registry, which no tenant role can write (never the execution row, which it may).
   */
  readonly registry: Pick<TenantRegistry, 'get'>;
  readonly orchestrator: Orchestrator;
  readonly workflows: Pick<WorkflowRegistry, 'get'>;
  readonly provisioning: Pick<ProvisioningService, 'resumeProvisioning' | 'deprovision'>;
  /**
   * Checked on every pass against the registry (the RDS Proxy auth list in AWS).
   * @default nothing to check
   */
  readonly logins?: Pick<TenantLogins, 'reconcile' | 'description'>;
  readonly logger: Logger;
  readonly options: RecoveryOptions;
}

export interface RecoveryProgress {
  readonly tenantsScanned: number;
  readonly tenantsTotal: number;
}

export interface RunRecoveryOptions {
  /** Epoch milliseconds after which no new page is started (a Lambda's remaining time). */
  readonly deadline?: number | undefined;
  readonly onProgress?: ((progress: RecoveryProgress) => void) | undefined;
}

/**
 * An input whose stored text is longer than this many times `limits.maxInputBytes` is refused
 * without being read. The text of a jsonb is never shorter than the same value as JSON (it adds a
 * space after each `,` and `:`, so it is at most half as long again), so anything the
 * API accepted is read and measured exactly, unless it holds numbers JSON writes with an exponent
 * (1e21 and up), whose digits jsonb spells out. What is read stays bounded by twice the limit.
 */
const INPUT_READ_FACTOR = 2;

/** What one repair did, for its event and the summary. */
interface Repair {
  readonly action: ActionKind;
  readonly outcome: RecoveryOutcome;
  readonly detail: string;
  /** The execution was repaired or seen alive: quiet again only after the stale threshold. */
  readonly progressed: boolean;
}

/**
 * The recovery job: one pass over **every** tenant, repairing what crashed.
 *
 * - Executions pending or running without progress past the threshold are claimed (compare-and-set
 *   on the row) and the orchestrator is asked what really happened: never started → start again
 *   (same name, so idempotent); failed, timed out or aborted and redrivable → redrive; succeeded →
 *   finalize; running → left alone; past the attempt cap, or not redrivable → failed as
 *   `ABANDONED: <reason>`.
 * - Nothing a tenant could have written is trusted. The rows only name executions: the
 *   orchestrator checks that the execution by that name carries this tenant and execution id, and
 *   one that does not (`foreign`) is never acted on; the row that named it is abandoned. Before a
 *   restart, the tenant's limits are read from the registry: an input over `limits.maxInputBytes`
 *   is failed, and a restart that would exceed `limits.maxConcurrentExecutions` is deferred.
 * - Tasks whose heartbeat stopped are marked failed, so no dead attempt reads as running.
 * - Tenants stuck in provisioning or deprovisioning are resumed through the idempotent path.
 *
 * Every action is recorded in `tenantflow.recovery_events`. Two passes at once never act twice on
 * one item, and a pass that crashes halfway is simply run again: nothing it did is half-done in a
 * way the next pass cannot see.
 *
 * @example
 * ```ts
 * const summary = await recovery.run({ deadline: Date.now() + 60_000 });
 * ```
 */
export class RecoveryService {
  readonly #deps: RecoveryDependencies;
  readonly #options: Required<RecoveryOptions>;

  constructor(deps: RecoveryDependencies) {
    this.#deps = deps;
    this.#options = {
      claimSeconds: 120,
      pageSize: 200,
      scanBatchSize: 50,
      perTenantLimit: 100,
      ...deps.options,
    };
  }

  async run(options: RunRecoveryOptions = {}): Promise<RecoverySummary> {
    const started = performance.now();
    const { store } = this.#deps;
    const pass = new Pass(randomUUID());
    const { resumeAfter } = await store.beginRun(pass.runId);
    const tenantsTotal = await store.countTenants();
    // A pass that resumes where the previous one ran out of time covers (cursor, end], then the
    // beginning up to the cursor, so every tenant is reached once per full cycle.
    const ranges: { after: string | undefined; upTo: string | undefined }[] =
      resumeAfter === undefined
        ? [{ after: undefined, upTo: undefined }]
        : [
            { after: resumeAfter, upTo: undefined },
            { after: undefined, upTo: resumeAfter },
          ];
    let complete = true;
    let lastTenant: string | undefined;
    scanning: for (const range of ranges) {
      let after = range.after;
      for (;;) {
        // At least one page per pass, however short the deadline, so successive passes always advance.
        if (options.deadline !== undefined && pass.tenantsScanned > 0 && Date.now() >= options.deadline) {
          complete = false;
          break scanning;
        }
        const page = await store.tenantPage({
          after,
          upTo: range.upTo,
          limit: this.#options.pageSize,
          staleAfterSeconds: this.#options.staleAfterSeconds,
        });
        if (page.length === 0) {
          break;
        }
        await this.#recoverPage(pass, page);
        pass.tenantsScanned += page.length;
        after = page.at(-1)?.tenantId;
        lastTenant = after;
        options.onProgress?.({ tenantsScanned: pass.tenantsScanned, tenantsTotal });
        if (page.length < this.#options.pageSize) {
          break;
        }
      }
    }
    await this.#reconcileLogins(pass);
    const summary = pass.summary({
      complete,
      resumeAfter: complete ? undefined : lastTenant,
      durationMs: performance.now() - started,
    });
    await store.finishRun(pass.runId, { complete, resumeAfter: summary.resumeAfter, summary });
    await store.prune(this.#options.retentionDays);
    return summary;
  }

  async #recoverPage(pass: Pass, page: readonly ScannedTenant[]): Promise<void> {
    const { concurrency, scanBatchSize } = this.#options;
    const tenantsById = new Map(page.map((tenant) => [tenant.tenantId, tenant]));
    // Only active tenants are scanned: no work runs for an inactive one (fail closed), so its
    // executions wait, untouched and unrecorded, until it is active again; a provisioning tenant may
    // not have its tables yet, and a deprovisioning one is being dropped.
    const activeTenantIds = page
      .filter((tenant) => tenant.status === 'active')
      .map((tenant) => tenant.tenantId);
    const batches: string[][] = [];
    for (let index = 0; index < activeTenantIds.length; index += scanBatchSize) {
      batches.push(activeTenantIds.slice(index, index + scanBatchSize));
    }
    const stuck: StuckExecution[] = [];
    await forEachConcurrently(batches, concurrency, async (batch) => {
      stuck.push(...(await this.#scan(pass, batch)));
    });
    const stuckTenants = page.filter((tenant) => tenant.stuck);
    await forEachConcurrently(
      [
        ...stuckTenants.map((tenant) => () => this.#recoverTenant(pass, tenant)),
        ...stuck.map(
          (execution) => () =>
            this.#recoverExecution(pass, execution, tenantsById.get(execution.tenantId)?.status),
        ),
      ],
      concurrency,
      (repair) => repair(),
    );
  }

  /**
   * Scans a batch in one statement; if that fails (a schema dropped meanwhile, one not migrated),
   * each tenant is scanned on its own so one broken tenant never hides the others.
   */
  async #scan(pass: Pass, tenantIds: readonly string[]): Promise<StuckExecution[]> {
    const { store } = this.#deps;
    const thresholds = this.#options;
    try {
      return await store.findStuckExecutions(tenantIds, thresholds, this.#options.perTenantLimit);
    } catch (batchError) {
      if (tenantIds.length === 1) {
        const [tenantId] = tenantIds as [string];
        pass.finding('scan_failed');
        await this.#record(pass, {
          tenantId,
          targetType: 'tenant',
          targetId: tenantId,
          finding: 'scan_failed',
          repair: { action: 'none', outcome: 'failed', detail: scanFailure(batchError), progressed: false },
        });
        return [];
      }
      const found: StuckExecution[] = [];
      for (const tenantId of tenantIds) {
        found.push(...(await this.#scan(pass, [tenantId])));
      }
      return found;
    }
  }

  async #recoverExecution(
    pass: Pass,
    execution: StuckExecution,
    tenantStatus: ScannedTenant['status'] | undefined,
  ): Promise<void> {
    const { store } = this.#deps;
    const { tenantId, executionId } = execution;
    try {
      if (execution.staleTaskRuns.length > 0) {
        const lost = await store.markTaskRunsLost(
          tenantId,
          executionId,
          this.#options.heartbeatStaleAfterSeconds,
        );
        for (const taskId of lost) {
          pass.finding('stale_heartbeat');
          await this.#record(pass, {
            tenantId,
            targetType: 'task_run',
            targetId: `${executionId}/${taskId}`,
            finding: 'stale_heartbeat',
            repair: {
              action: 'mark_task_lost',
              outcome: 'done',
              detail: `Task '${taskId}' had no heartbeat for over ${this.#options.heartbeatStaleAfterSeconds} s; marked failed`,
              progressed: false,
            },
          });
        }
      }
      if (!execution.stale) {
        return;
      }
      const finding: FindingKind = execution.status === 'pending' ? 'stale_pending' : 'stale_running';
      pass.finding(finding);
      const claim = await store.claimExecution(tenantId, executionId, pass.runId, {
        claimSeconds: this.#options.claimSeconds,
        staleAfterSeconds: this.#options.staleAfterSeconds,
      });
      if (claim === undefined) {
        // Another pass holds it, or it moved on since the scan: not ours to touch.
        return;
      }
      pass.executionsExamined += 1;
      let repair: Repair;
      try {
        repair = await this.#repairExecution(pass.runId, execution, claim, tenantStatus);
      } catch (error) {
        repair = { action: 'none', outcome: 'failed', detail: describeError(error), progressed: false };
      }
      await store.releaseExecution(tenantId, executionId, pass.runId, repair.progressed);
      await this.#record(pass, { tenantId, targetType: 'execution', targetId: executionId, finding, repair });
    } catch (error) {
      // The database itself failed under us; the next pass sees the same state and tries again.
      this.#deps.logger.error('recovery of an execution failed', { tenantId, executionId, error });
      pass.outcome('failed');
    }
  }

  /** Decides from what the orchestrator says, and acts; the caller holds the claim. */
  async #repairExecution(
    owner: string,
    execution: StuckExecution,
    claim: ExecutionClaim,
    tenantStatus: ScannedTenant['status'] | undefined,
  ): Promise<Repair> {
    const { orchestrator, workflows, executions, store, registry } = this.#deps;
    const { tenantId, executionId } = execution;
    if (tenantStatus !== 'active') {
      // Deactivated since its page was read. Fail closed: its executions resume once it is active.
      return {
        action: 'none',
        outcome: 'skipped',
        detail: `Tenant '${tenantId}' is ${tenantStatus ?? 'gone'}; its executions are repaired once it is active`,
        progressed: true,
      };
    }
    const abandon = async (reason: string): Promise<Repair> => {
      const finalized = await executions.finalize(tenantId, executionId, 'failed', `ABANDONED: ${reason}`);
      return {
        action: 'abandon',
        outcome: finalized ? 'done' : 'skipped',
        detail: finalized ? reason : `It finished before it could be abandoned (${reason})`,
        progressed: true,
      };
    };
    if (workflows.get(claim.workflow) === undefined) {
      return abandon(`workflow '${claim.workflow}' is not deployed any more`);
    }
    const handle: ExecutionHandle = { workflow: claim.workflow, tenantId, executionId };
    // The orchestrator's execution by this name carries another tenant or execution id: the row
    // named someone else's execution (a tenant can write its rows). It is never touched; the row
    // can never run under that name, and the reason it is given tells nothing of the other one.
    const foreign = () =>
      abandon(
        "the orchestrator's execution by its name is not this tenant's (its input names another tenant or execution); recovery does not act on it",
      );
    const restart = async (action: 'start' | 'redrive', reason: string): Promise<Repair> => {
      const { maxAttempts } = this.#options;
      if (claim.attempts >= maxAttempts) {
        return abandon(
          `recovery restarted it ${claim.attempts} time(s), its cap (TENANTFLOW_RECOVERY_MAX_ATTEMPTS = ${maxAttempts}); last seen: ${reason}`,
        );
      }
      // The limits in force now, from the registry; read again here, so a tenant deactivated since
      // the page was read gets nothing restarted either.
      const tenant = await registry.get(tenantId);
      if (tenant === undefined || !tenant.active) {
        return {
          action: 'none',
          outcome: 'skipped',
          detail: `Tenant '${tenantId}' is ${tenant?.status ?? 'gone'}; its executions are repaired once it is active`,
          progressed: true,
        };
      }
      const limits = effectiveLimits(tenant.config);
      const oversized = await this.#inputOverLimit(tenantId, executionId, limits.maxInputBytes);
      if (oversized !== undefined) {
        // The same rule the API applies at start, and as final: no later pass will find it smaller.
        return abandon(`${action === 'start' ? 'not started' : 'not redriven'}: ${oversized}`);
      }
      const admission = await store.admitRestart(
        tenantId,
        executionId,
        owner,
        limits.maxConcurrentExecutions,
      );
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
      const { attempt } = admission;
      if (action === 'start') {
        let started: Awaited<ReturnType<Orchestrator['start']>>;
        try {
          started = await orchestrator.start(handle);
        } catch (error) {
          if (error instanceof ForeignExecutionError) {
            // Someone else's execution took the name between describe and start.
            return foreign();
          }
          throw error;
        }
        await executions.markStarted(tenantId, executionId, started.ref);
      } else {
        let redriven: Awaited<ReturnType<Orchestrator['redrive']>>;
        try {
          redriven = await orchestrator.redrive(handle);
        } catch (error) {
          if (error instanceof ForeignExecutionError) {
            return foreign();
          }
          throw error;
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
      return {
        action,
        outcome: 'done',
        detail: `${reason}; recovery attempt ${attempt} of ${maxAttempts}`,
        progressed: true,
      };
    };

    const seen = await orchestrator.describe(handle);
    switch (seen.status) {
      case 'foreign':
        return foreign();
      case 'not_found':
        return restart('start', 'it never started (the orchestrator has no execution by its name)');
      case 'succeeded': {
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
      case 'failed':
      case 'timed_out':
      case 'aborted': {
        const what = describeOutcome(seen);
        return seen.redrivable ? restart('redrive', what) : abandon(`${what}, and it cannot be redriven`);
      }
      case 'running':
      case 'pending_redrive':
        if (claim.status === 'pending' && seen.ref !== undefined) {
          // Started, but the process died before recording it.
          await executions.markStarted(tenantId, executionId, seen.ref);
          return {
            action: 'mark_started',
            outcome: 'done',
            detail: 'The orchestrator runs it; its start had not been recorded',
            progressed: true,
          };
        }
        return {
          action: 'none',
          outcome: 'skipped',
          detail: `The orchestrator reports it ${seen.status === 'running' ? 'running' : 'being redriven'}; left alone`,
          progressed: true,
        };
    }
  }

  /**
   * Why the execution's input is over the tenant's `maxInputBytes`, measured as the API measures it
   * (the bytes of its JSON), or `undefined` when it is within. The row is the tenant's to write, so
   * the database measures it first and it is read only when that cannot settle it: an input of
   * any size costs this process at most {@link INPUT_READ_FACTOR} times the limit.
   */
  async #inputOverLimit(
    tenantId: string,
    executionId: string,
    maxInputBytes: number,
  ): Promise<string | undefined> {
    const stored = await this.#deps.store.storedInput(
      tenantId,
      executionId,
      maxInputBytes * INPUT_READ_FACTOR,
    );
    if (stored === undefined || stored.storedBytes <= maxInputBytes) {
      // Gone (admission then finds the claim lost), or within: JSON is never longer than the text.
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

  async #recoverTenant(pass: Pass, tenant: ScannedTenant): Promise<void> {
    const { store, provisioning, logger } = this.#deps;
    const { tenantId } = tenant;
    const finding: FindingKind =
      tenant.status === 'provisioning' ? 'stuck_provisioning' : 'stuck_deprovisioning';
    const action: ActionKind =
      tenant.status === 'provisioning' ? 'resume_provisioning' : 'resume_deprovisioning';
    pass.finding(finding);
    try {
      const failures = await store.failedTenantResumes(tenantId);
      if (failures >= this.#options.maxAttempts) {
        // Not recorded again on every pass: the failures are on record, and an operator must act.
        logger.warn('recovery gave up on a stuck tenant', { tenantId, status: tenant.status, failures });
        pass.outcome('skipped');
        return;
      }
      let repair: Repair;
      try {
        if (tenant.status === 'provisioning') {
          // The API key minted here reaches nobody: the operator issues one (POST /tenants/{id}/api-key).
          await provisioning.resumeProvisioning(tenantId);
          repair = {
            action,
            outcome: 'done',
            detail: `Provisioning completed; the tenant is active. Its API key was never delivered: issue one with POST /tenants/${tenantId}/api-key`,
            progressed: true,
          };
        } else {
          await provisioning.deprovision(tenantId);
          repair = {
            action,
            outcome: 'done',
            detail: 'Deprovisioning completed; the tenant is gone',
            progressed: true,
          };
        }
      } catch (error) {
        const someoneElse =
          error instanceof ProvisioningInProgressError ||
          error instanceof TenantStateConflictError ||
          error instanceof TenantNotFoundError;
        repair = {
          action,
          outcome: someoneElse ? 'skipped' : 'failed',
          detail: someoneElse
            ? `Not resumed: ${error.message}`
            : `${describeError(error)}${tenant.lastError === null ? '' : ` (previous error: ${tenant.lastError})`}`,
          progressed: false,
        };
      }
      await this.#record(pass, { tenantId, targetType: 'tenant', targetId: tenantId, finding, repair });
    } catch (error) {
      logger.error('recovery of a tenant failed', { tenantId, error });
      pass.outcome('failed');
    }
  }

  /**
   * Puts back the tenant logins a stack update dropped from the RDS Proxy auth list, and removes
   * those of deleted tenants. Every pass, whatever its tenant cursor: the list is one read. A busy
   * list (an onboarding holds it) is left for the next pass.
   */
  async #reconcileLogins(pass: Pass): Promise<void> {
    const { logins, logger, store } = this.#deps;
    if (logins === undefined) {
      return;
    }
    let result: LoginReconciliation;
    try {
      result = await logins.reconcile(() => store.tenantLoginRecords());
    } catch (error) {
      const busy = error instanceof ConflictError;
      (busy ? logger.info : logger.error).call(logger, 'recovery could not check tenant logins', {
        runId: pass.runId,
        logins: logins.description,
        error: describeError(error),
      });
      if (!busy) {
        pass.outcome('failed');
      }
      return;
    }
    const changes = [
      ...result.added.map((tenantId) => ({
        tenantId,
        finding: 'login_missing' as const,
        action: 'admit_login' as const,
      })),
      ...result.removed.map((tenantId) => ({
        tenantId,
        finding: 'login_orphaned' as const,
        action: 'revoke_login' as const,
      })),
    ];
    for (const change of changes) {
      pass.finding(change.finding);
      await this.#record(pass, {
        tenantId: change.tenantId,
        targetType: 'tenant',
        targetId: change.tenantId,
        finding: change.finding,
        repair: {
          action: change.action,
          outcome: 'done',
          detail:
            change.action === 'admit_login'
              ? `the tenant's secret was missing from ${logins.description} (a stack update resets its auth list) and was added back`
              : `${logins.description} admitted the secret of a tenant that no longer exists; removed`,
          progressed: true,
        },
      });
    }
  }

  async #record(
    pass: Pass,
    event: {
      tenantId: string;
      targetType: RecoveryTargetType;
      targetId: string;
      finding: FindingKind;
      repair: Repair;
    },
  ): Promise<void> {
    const { repair } = event;
    pass.outcome(repair.outcome);
    if (repair.outcome === 'done') {
      pass.action(repair.action);
    }
    const log = repair.outcome === 'failed' ? this.#deps.logger.error : this.#deps.logger.info;
    log.call(this.#deps.logger, 'recovery acted', {
      runId: pass.runId,
      tenantId: event.tenantId,
      target: event.targetId,
      finding: event.finding,
      action: repair.action,
      outcome: repair.outcome,
      detail: repair.detail,
    });
    await this.#deps.store.recordEvent({
      runId: pass.runId,
      tenantId: event.tenantId,
      targetType: event.targetType,
      targetId: event.targetId,
      finding: event.finding,
      action: repair.action,
      outcome: repair.outcome,
      detail: repair.detail,
    });
  }
}

/** The counters of one pass. */
class Pass {
  tenantsScanned = 0;
  executionsExamined = 0;
  readonly #findings = zeroCounts(FINDING_KINDS);
  readonly #actions = zeroCounts(ACTION_KINDS);
  readonly #outcomes = zeroCounts(['done', 'skipped', 'failed'] as const);

  constructor(readonly runId: string) {}

  finding(kind: FindingKind): void {
    this.#findings[kind] += 1;
  }

  action(kind: ActionKind): void {
    this.#actions[kind] += 1;
  }

  outcome(kind: RecoveryOutcome): void {
    this.#outcomes[kind] += 1;
  }

  summary(end: { complete: boolean; resumeAfter: string | undefined; durationMs: number }): RecoverySummary {
    return {
      runId: this.runId,
      tenantsScanned: this.tenantsScanned,
      executionsExamined: this.executionsExamined,
      findings: { ...this.#findings },
      actions: { ...this.#actions },
      outcomes: { ...this.#outcomes },
      complete: end.complete,
      ...(end.resumeAfter === undefined ? {} : { resumeAfter: end.resumeAfter }),
      durationMs: Math.round(end.durationMs),
    };
  }
}

function zeroCounts<K extends string>(kinds: readonly K[]): Record<K, number> {
  return Object.fromEntries(kinds.map((kind) => [kind, 0])) as Record<K, number>;
}

/** An error as recorded: name and message, never a stack or a secret. */
function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

function describeOutcome(seen: ExecutionDescription): string {
  const status = seen.status === 'timed_out' ? 'timed out' : seen.status;
  const error = [seen.error, seen.cause].filter((part) => part !== undefined && part !== '').join(': ');
  return `the orchestrator reports it ${status}${error === '' ? '' : ` (${error})`}`;
}

function scanFailure(error: unknown): string {
  const state = sqlState(error);
  if (state === SQLSTATE.undefinedTable || state === '42703' || state === '3F000') {
    return `${describeError(error)}. The tenant's schema is not at the current migration: run the tenant migrations (npm run migrate)`;
  }
  return describeError(error);
}
