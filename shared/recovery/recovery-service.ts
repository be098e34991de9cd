import { randomUUID } from 'node:crypto';
import { SQLSTATE, sqlState } from '../db/sql.js';
import type { TenantLifecycle } from '../lifecycle/tenant-lifecycle.js';
import type { Logger } from '../logging/logger.js';
import { NO_METRICS, type PlatformMetrics } from '../logging/metrics.js';
import type { TenantLogins } from '../provisioning/tenant-logins.js';
import type { TenantRegistry } from '../tenancy/tenant-registry.js';
import { forEachConcurrently } from '../util/concurrency.js';
import type { ExecutionStore } from '../workflows/execution-store.js';
import type { Orchestrator } from '../workflows/orchestrator.js';
import type { WorkflowRegistry } from '../workflows/workflow-registry.js';
import {
  describeError,
  RecoveryJournal,
  type RecoveryJournalDependencies,
  type RecoverySummary,
} from './recovery-journal.js';
import type { RecoveryStore, ScannedTenant, StuckExecution } from './recovery-store.js';
import { StuckExecutionRepairer } from './stuck-execution-repairer.js';
import { StuckTenantRepairer } from './stuck-tenant-repairer.js';
import { TenantLoginRepairer } from './tenant-login-repairer.js';

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
  readonly executions: Pick<ExecutionStore, 'finalize' | 'markStarted' | 'isCancelled' | 'markCancelStopped'>;
  /**
   * Where each tenant's limits come from before recovery restarts one of its executions: the
   * registry, which no tenant role can write (never the execution row, which it may).
   */
  readonly registry: Pick<TenantRegistry, 'get'>;
  readonly orchestrator: Orchestrator;
  readonly workflows: Pick<WorkflowRegistry, 'get'>;
  /** Starts or redrives the onboarding or offboarding execution of a stuck tenant. */
  readonly lifecycle: Pick<TenantLifecycle, 'resume'>;
  /**
   * Checked on every pass against the registry (the RDS Proxy auth list in AWS).
   * @default nothing to check
   */
  readonly logins?: Pick<TenantLogins, 'reconcile' | 'description'>;
  readonly logger: Logger;
  readonly options: RecoveryOptions;
  /** Recovery's actions by kind, and the executions and tenants it gave up on. @default NO_METRICS */
  readonly metrics?: PlatformMetrics | undefined;
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
 * The recovery job: one pass over **every** tenant, repairing what crashed. This class schedules
 * the pass (pages of tenants, batched scans, bounded concurrency, the deadline and where the next
 * pass resumes); what is done about each finding is up to its repairer:
 *
 * - {@link StuckExecutionRepairer}: executions pending or running without progress past the
 *   threshold are claimed and the orchestrator is asked what really happened (never started →
 *   start again; failed, timed out or aborted and redrivable → redrive; succeeded → finalize;
 *   running → left alone; past the attempt cap, not redrivable, or someone else's → failed as
 *   `ABANDONED: <reason>`); tasks whose heartbeat stopped are marked failed.
 * - {@link StuckTenantRepairer}: tenants stuck in provisioning or deprovisioning are resumed through
 *   the idempotent path.
 * - {@link TenantLoginRepairer}: tenant secrets missing from (or left on) the RDS Proxy auth list;
 *   also run on its own by {@link RecoveryService.reconcileLogins}, after each deployment.
 *
 * Every action is recorded in `tenantflow.recovery_events` ({@link RecoveryJournal}). Two passes at
 * once never act twice on one item, and a pass that crashes halfway is simply run again: nothing it
 * did is half-done in a way the next pass cannot see.
 *
 * @example
 * ```ts
 * const summary = await recovery.run({ deadline: Date.now() + 60_000 });
 * ```
 */
export class RecoveryService {
  readonly #store: RecoveryStore;
  readonly #options: Required<RecoveryOptions>;
  readonly #executions: StuckExecutionRepairer;
  readonly #tenants: StuckTenantRepairer;
  readonly #logins: TenantLoginRepairer | undefined;
  /** What each pass's journal writes to: the events, the log, the metrics. */
  readonly #journal: RecoveryJournalDependencies;

  constructor(deps: RecoveryDependencies) {
    const { store, logger } = deps;
    this.#store = store;
    this.#options = {
      claimSeconds: 120,
      pageSize: 200,
      scanBatchSize: 50,
      perTenantLimit: 100,
      ...deps.options,
    };
    const options = this.#options;
    this.#executions = new StuckExecutionRepairer({
      store,
      executions: deps.executions,
      registry: deps.registry,
      orchestrator: deps.orchestrator,
      workflows: deps.workflows,
      logger,
      options,
    });
    const metrics = deps.metrics ?? NO_METRICS;
    this.#journal = { store, logger, metrics };
    this.#tenants = new StuckTenantRepairer({ store, lifecycle: deps.lifecycle, logger, options, metrics });
    this.#logins =
      deps.logins === undefined ? undefined : new TenantLoginRepairer({ logins: deps.logins, store, logger });
  }

  async run(options: RunRecoveryOptions = {}): Promise<RecoverySummary> {
    const started = performance.now();
    const store = this.#store;
    const journal = new RecoveryJournal(randomUUID(), this.#journal);
    const { resumeAfter } = await store.beginRun(journal.runId);
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
        if (options.deadline !== undefined && journal.tenantsScanned > 0 && Date.now() >= options.deadline) {
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
        await this.#recoverPage(journal, page);
        journal.scanned(page.length);
        after = page.at(-1)?.tenantId;
        lastTenant = after;
        options.onProgress?.({ tenantsScanned: journal.tenantsScanned, tenantsTotal });
        if (page.length < this.#options.pageSize) {
          break;
        }
      }
    }
    await this.#logins?.repair(journal);
    const summary = journal.summary({
      complete,
      resumeAfter: complete ? undefined : lastTenant,
      durationMs: performance.now() - started,
    });
    await store.finishRun(journal.runId, { complete, resumeAfter: summary.resumeAfter, summary });
    await store.prune(this.#options.retentionDays);
    return summary;
  }

  /**
   * Only the tenant logins: puts back the tenants' secrets missing from the RDS Proxy auth list,
   * and removes those of deleted tenants, as every pass does, without scanning a tenant. For right
   * after a deployment: CloudFormation writes the template's auth list (the admin and platform
   * secrets alone) on any update of the proxy, and tenants cannot log in until their entries are
   * back. Recorded like a pass (`tenantflow.recovery_runs`, and an event per entry put back or
   * removed), but it leaves the cursor of the passes where it was.
   *
   * @example
   * ```ts
   * const summary = await recovery.reconcileLogins();
   * summary.findings.login_missing; // entries the proxy had lost, now back
   * ```
   */
  async reconcileLogins(): Promise<RecoverySummary> {
    const started = performance.now();
    const store = this.#store;
    const journal = new RecoveryJournal(randomUUID(), this.#journal);
    await store.beginLoginsRun(journal.runId);
    await this.#logins?.repair(journal);
    const summary = journal.summary({
      scope: 'logins',
      complete: true,
      resumeAfter: undefined,
      durationMs: performance.now() - started,
    });
    await store.finishRun(journal.runId, { complete: undefined, resumeAfter: undefined, summary });
    return summary;
  }

  async #recoverPage(journal: RecoveryJournal, page: readonly ScannedTenant[]): Promise<void> {
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
      stuck.push(...(await this.#scan(journal, batch)));
    });
    const stuckTenants = page.filter((tenant) => tenant.stuck);
    // Repairers never throw, so one broken item never stops the others.
    await forEachConcurrently(
      [
        ...stuckTenants.map((tenant) => () => this.#tenants.repair(journal, tenant)),
        ...stuck.map(
          (execution) => () =>
            this.#executions.repair(journal, execution, tenantsById.get(execution.tenantId)?.status),
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
  async #scan(journal: RecoveryJournal, tenantIds: readonly string[]): Promise<StuckExecution[]> {
    try {
      return await this.#store.findStuckExecutions(tenantIds, this.#options, this.#options.perTenantLimit);
    } catch (batchError) {
      if (tenantIds.length === 1) {
        const [tenantId] = tenantIds as [string];
        journal.found('scan_failed');
        await journal.record({
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
        found.push(...(await this.#scan(journal, [tenantId])));
      }
      return found;
    }
  }
}

/** Why a tenant could not be scanned; a schema behind the current migration says what to run. */
function scanFailure(error: unknown): string {
  const state = sqlState(error);
  if (
    state === SQLSTATE.undefinedTable ||
    state === SQLSTATE.undefinedColumn ||
    state === SQLSTATE.invalidSchemaName
  ) {
    return `${describeError(error)}. The tenant's schema is not at the current migration: run the tenant migrations (npm run migrate)`;
  }
  return describeError(error);
}
