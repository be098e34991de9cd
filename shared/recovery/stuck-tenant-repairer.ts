import type { TenantLifecycle } from '../lifecycle/tenant-lifecycle.js';
import type { Logger } from '../logging/logger.js';
import type { PlatformMetrics } from '../logging/metrics.js';
import { describeError, type FindingKind, type RecoveryJournal, type Repair } from './recovery-journal.js';
import type { RecoveryStore, ScannedTenant } from './recovery-store.js';
import { decideTenantRepair } from './repair-decision.js';

export interface StuckTenantRepairerDependencies {
  readonly store: Pick<RecoveryStore, 'failedTenantResumes'>;
  readonly lifecycle: Pick<TenantLifecycle, 'resume'>;
  readonly logger: Pick<Logger, 'warn' | 'error'>;
  readonly options: { readonly maxAttempts: number };
  /** Counts each pass that finds a tenant given up on, which the abandonment alarm watches. @default none */
  readonly metrics?: Pick<PlatformMetrics, 'recoveryAbandoned'> | undefined;
}

/** The part of a pass's journal a repairer writes to. */
type Journal = Pick<RecoveryJournal, 'found' | 'record' | 'countUnrecorded'>;

/**
 * Gets a tenant stuck in provisioning or deprovisioning (no live claim, and no change for the stale
 * threshold) going again through its state machine: starts the onboarding or offboarding execution
 * if it never started, redrives it from its failed step if it failed, and leaves it alone while it
 * runs. It never runs a step itself. Gives up after `maxAttempts` failed resumes, whose errors
 * stay on record.
 *
 * @example
 * ```ts
 * const repairer = new StuckTenantRepairer({ store, lifecycle, logger, options: { maxAttempts: 3 } });
 * await repairer.repair(journal, scannedTenant);
 * ```
 */
export class StuckTenantRepairer {
  readonly #deps: StuckTenantRepairerDependencies;

  constructor(deps: StuckTenantRepairerDependencies) {
    this.#deps = deps;
  }

  /** Never throws: a failure is logged and counted, and the next pass tries again. */
  async repair(journal: Journal, tenant: ScannedTenant): Promise<void> {
    const { store, logger, options } = this.#deps;
    const { tenantId } = tenant;
    const finding: FindingKind =
      tenant.status === 'provisioning' ? 'stuck_provisioning' : 'stuck_deprovisioning';
    journal.found(finding);
    try {
      const failures = await store.failedTenantResumes(tenantId);
      const plan = decideTenantRepair({ status: tenant.status, failedResumes: failures }, options);
      if (plan.kind === 'give_up') {
        // Not recorded again on every pass: the failures are on record, and an operator must act.
        logger.warn('recovery gave up on a stuck tenant', { tenantId, status: tenant.status, failures });
        this.#deps.metrics?.recoveryAbandoned({ tenantId, target: 'tenant', attempts: failures });
        journal.countUnrecorded('skipped');
        return;
      }
      const action = plan.kind;
      let repair: Repair;
      try {
        const resumed = await this.#deps.lifecycle.resume(tenant);
        repair = {
          action,
          // Still running is someone else's progress, not a failure, so not counted towards giving up.
          outcome:
            resumed.kind === 'running' ? 'skipped' : resumed.kind === 'not_resumable' ? 'failed' : 'done',
          detail:
            resumed.kind === 'not_resumable' && tenant.lastError !== null
              ? `${resumed.detail} (last error: ${tenant.lastError})`
              : resumed.detail,
          progressed: resumed.kind === 'started' || resumed.kind === 'redriven',
        };
      } catch (error) {
        repair = {
          action,
          outcome: 'failed',
          detail: `${describeError(error)}${tenant.lastError === null ? '' : ` (previous error: ${tenant.lastError})`}`,
          progressed: false,
        };
      }
      await journal.record({ tenantId, targetType: 'tenant', targetId: tenantId, finding, repair });
    } catch (error) {
      logger.error('recovery of a tenant failed', { tenantId, error });
      journal.countUnrecorded('failed');
    }
  }
}
