import { TenantNotFoundError, TenantStateConflictError } from '../kernel/errors.js';
import type { Logger } from '../logging/logger.js';
import {
  ProvisioningInProgressError,
  type ProvisioningService,
} from '../provisioning/provisioning-service.js';
import { describeError, type FindingKind, type RecoveryJournal, type Repair } from './recovery-journal.js';
import type { RecoveryStore, ScannedTenant } from './recovery-store.js';
import { decideTenantRepair } from './repair-decision.js';

export interface StuckTenantRepairerDependencies {
  readonly store: Pick<RecoveryStore, 'failedTenantResumes'>;
  readonly provisioning: Pick<ProvisioningService, 'resumeProvisioning' | 'deprovision'>;
  readonly logger: Pick<Logger, 'warn' | 'error'>;
  readonly options: { readonly maxAttempts: number };
}

/** The part of a pass's journal a repairer writes to. */
type Journal = Pick<RecoveryJournal, 'found' | 'record' | 'countUnrecorded'>;

/**
 * Resumes a tenant stuck in provisioning or deprovisioning (its run is gone: no live claim, and no
 * change for the stale threshold) through the same idempotent path an operator would use, and gives
 * up after `maxAttempts` failed resumes, whose errors stay on record.
 *
 * @example
 * ```ts
 * const repairer = new StuckTenantRepairer({ store, provisioning, logger, options: { maxAttempts: 3 } });
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
        journal.countUnrecorded('skipped');
        return;
      }
      const action = plan.kind;
      let repair: Repair;
      try {
        repair = await this.#resume(action, tenantId);
      } catch (error) {
        // Another run holds the tenant or already moved it on: not a failure, so not counted towards
        // giving up.
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
      await journal.record({ tenantId, targetType: 'tenant', targetId: tenantId, finding, repair });
    } catch (error) {
      logger.error('recovery of a tenant failed', { tenantId, error });
      journal.countUnrecorded('failed');
    }
  }

  async #resume(action: 'resume_provisioning' | 'resume_deprovisioning', tenantId: string): Promise<Repair> {
    const { provisioning } = this.#deps;
    if (action === 'resume_provisioning') {
      // The API key minted here reaches nobody: the operator issues one (POST /tenants/{id}/api-key).
      await provisioning.resumeProvisioning(tenantId);
      return {
        action,
        outcome: 'done',
        detail: `Provisioning completed; the tenant is active. Its API key was never delivered: issue one with POST /tenants/${tenantId}/api-key`,
        progressed: true,
      };
    }
    await provisioning.deprovision(tenantId);
    return {
      action,
      outcome: 'done',
      detail: 'Deprovisioning completed; the tenant is gone',
      progressed: true,
    };
  }
}
