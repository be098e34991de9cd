import { ConflictError } from '../kernel/errors.js';
import type { Logger } from '../logging/logger.js';
import type { LoginReconciliation, TenantLogins } from '../provisioning/tenant-logins.js';
import { describeError, type RecoveryJournal } from './recovery-journal.js';
import type { RecoveryStore } from './recovery-store.js';

export interface TenantLoginRepairerDependencies {
  /** The RDS Proxy auth list in AWS. */
  readonly logins: Pick<TenantLogins, 'reconcile' | 'description'>;
  readonly store: Pick<RecoveryStore, 'tenantLoginRecords'>;
  readonly logger: Pick<Logger, 'info' | 'error'>;
}

/** The part of a pass's journal a repairer writes to. */
type Journal = Pick<RecoveryJournal, 'runId' | 'found' | 'record' | 'countUnrecorded'>;

/**
 * Puts back the tenant logins a stack update dropped from the RDS Proxy auth list, and removes
 * those of deleted tenants. Run once per pass, whatever its tenant cursor (the list is one read),
 * and on its own after each deployment (`RecoveryService.reconcileLogins`). Each entry put back is
 * logged as `recovery acted` with `finding: login_missing`, which the platform's alarm counts.
 *
 * @example
 * ```ts
 * const repairer = new TenantLoginRepairer({ logins: tenantLogins, store, logger });
 * await repairer.repair(journal);
 * ```
 */
export class TenantLoginRepairer {
  readonly #deps: TenantLoginRepairerDependencies;

  constructor(deps: TenantLoginRepairerDependencies) {
    this.#deps = deps;
  }

  /** A list that cannot be read is logged and counted, not thrown: the next pass checks again. */
  async repair(journal: Journal): Promise<void> {
    const { logins, logger, store } = this.#deps;
    let result: LoginReconciliation;
    try {
      result = await logins.reconcile(() => store.tenantLoginRecords());
    } catch (error) {
      const fields = { runId: journal.runId, logins: logins.description, error: describeError(error) };
      if (error instanceof ConflictError) {
        // Busy: an onboarding holds the list. Nothing is wrong; the next pass checks again.
        logger.info('recovery could not check tenant logins', fields);
      } else {
        logger.error('recovery could not check tenant logins', fields);
        journal.countUnrecorded('failed');
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
      journal.found(change.finding);
      await journal.record({
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
}
