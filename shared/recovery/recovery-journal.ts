import type { Logger } from '../logging/logger.js';
import type { PlatformMetrics } from '../logging/metrics.js';
import type { RecoveryOutcome, RecoveryStore, RecoveryTargetType } from './recovery-store.js';

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

const OUTCOME_KINDS = ['done', 'skipped', 'failed'] as const satisfies readonly RecoveryOutcome[];

/**
 * What a run covers: `pass`, every tenant and the tenant logins (the schedule's runs); `logins`, the
 * tenant logins alone (the run each deployment starts once the proxy may have been updated).
 */
export type RecoveryScope = 'pass' | 'logins';

export interface RecoverySummary {
  readonly runId: string;
  readonly scope: RecoveryScope;
  readonly tenantsScanned: number;
  /** Stuck executions this pass claimed and examined (a claim lost to another pass is not counted). */
  readonly executionsExamined: number;
  readonly findings: Record<FindingKind, number>;
  /** Actions that were carried out (`done`), by kind. */
  readonly actions: Record<ActionKind, number>;
  readonly outcomes: Record<RecoveryOutcome, number>;
  /**
   * False when the pass ran out of time; the next pass resumes after `resumeAfter`. Always true for
   * a `logins` run, which has no tenants to page through.
   */
  readonly complete: boolean;
  readonly resumeAfter?: string | undefined;
  readonly durationMs: number;
}

/** What one repair did, for its event and the summary. */
export interface Repair {
  readonly action: ActionKind;
  readonly outcome: RecoveryOutcome;
  readonly detail: string;
  /** The execution was repaired or seen alive: quiet again only after the stale threshold. */
  readonly progressed: boolean;
}

/** One finding and what was done about it, as it is recorded. */
export interface RecoveryEntry {
  readonly tenantId: string;
  readonly targetType: RecoveryTargetType;
  readonly targetId: string;
  readonly finding: FindingKind;
  readonly repair: Repair;
}

export interface RecoveryJournalDependencies {
  readonly store: Pick<RecoveryStore, 'recordEvent'>;
  readonly logger: Pick<Logger, 'info' | 'error'>;
  /** Counts each action carried out, by kind (an abandon also as an abandonment). @default none */
  readonly metrics?: Pick<PlatformMetrics, 'recoveryActed'> | undefined;
}

/**
 * What one recovery pass found and did: every entry goes to the log and to
 * `tenantflow.recovery_events` (so an operator can read an execution's history after the pass is
 * long gone), and is counted for the pass's {@link RecoverySummary}. One journal per pass, shared by
 * its repairers.
 *
 * @example
 * ```ts
 * const journal = new RecoveryJournal(randomUUID(), { store, logger });
 * journal.found('stale_running');
 * await journal.record({ tenantId, targetType: 'execution', targetId: executionId, finding: 'stale_running', repair });
 * const summary = journal.summary({ complete: true, resumeAfter: undefined, durationMs: 12 });
 * ```
 */
export class RecoveryJournal {
  readonly runId: string;
  readonly #deps: RecoveryJournalDependencies;
  #tenantsScanned = 0;
  #executionsExamined = 0;
  readonly #findings = zeroCounts(FINDING_KINDS);
  readonly #actions = zeroCounts(ACTION_KINDS);
  readonly #outcomes = zeroCounts(OUTCOME_KINDS);

  constructor(runId: string, deps: RecoveryJournalDependencies) {
    this.runId = runId;
    this.#deps = deps;
  }

  get tenantsScanned(): number {
    return this.#tenantsScanned;
  }

  scanned(tenants: number): void {
    this.#tenantsScanned += tenants;
  }

  /** An execution this pass claimed; one whose claim another pass won is not counted. */
  examined(): void {
    this.#executionsExamined += 1;
  }

  /**
   * Counted when found, before anything is tried, so a finding whose repair then fails on the
   * database still shows in the summary.
   */
  found(kind: FindingKind): void {
    this.#findings[kind] += 1;
  }

  /**
   * An outcome with no event: the database failed under a repair (so no event could be written
   * either), or a tenant was given up on (its failures are already on record, and recording it again
   * on every pass would only bury them).
   */
  countUnrecorded(outcome: RecoveryOutcome): void {
    this.#outcomes[outcome] += 1;
  }

  async record(entry: RecoveryEntry): Promise<void> {
    const { repair } = entry;
    const { logger, store } = this.#deps;
    this.#outcomes[repair.outcome] += 1;
    // Only what was carried out counts as an action: a skipped or failed one changed nothing.
    if (repair.outcome === 'done') {
      this.#actions[repair.action] += 1;
      this.#deps.metrics?.recoveryActed({ ...entry, action: repair.action });
    }
    const fields = {
      runId: this.runId,
      tenantId: entry.tenantId,
      target: entry.targetId,
      finding: entry.finding,
      action: repair.action,
      outcome: repair.outcome,
      detail: repair.detail,
    };
    if (repair.outcome === 'failed') {
      logger.error('recovery acted', fields);
    } else {
      logger.info('recovery acted', fields);
    }
    await store.recordEvent({
      runId: this.runId,
      tenantId: entry.tenantId,
      targetType: entry.targetType,
      targetId: entry.targetId,
      finding: entry.finding,
      action: repair.action,
      outcome: repair.outcome,
      detail: repair.detail,
    });
  }

  summary(end: {
    complete: boolean;
    resumeAfter: string | undefined;
    durationMs: number;
    /** @default 'pass' */
    scope?: RecoveryScope;
  }): RecoverySummary {
    return {
      runId: this.runId,
      scope: end.scope ?? 'pass',
      tenantsScanned: this.#tenantsScanned,
      executionsExamined: this.#executionsExamined,
      findings: { ...this.#findings },
      actions: { ...this.#actions },
      outcomes: { ...this.#outcomes },
      complete: end.complete,
      ...(end.resumeAfter === undefined ? {} : { resumeAfter: end.resumeAfter }),
      durationMs: Math.round(end.durationMs),
    };
  }
}

/** An error as recorded: name and message, never a stack or a secret. */
export function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

function zeroCounts<K extends string>(kinds: readonly K[]): Record<K, number> {
  return Object.fromEntries(kinds.map((kind) => [kind, 0])) as Record<K, number>;
}
