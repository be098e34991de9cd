import { RecoveryHistory } from '../recovery/recovery-history.js';
import { RecoveryStore } from '../recovery/recovery-store.js';
import type { PlatformCore } from './core.js';

/**
 * The read side of recovery, for the admin API: what the passes did, from the control table on the
 * platform pool. Its own factory, apart from `createRecovery`, so the tenants API builds neither
 * the repairers nor an orchestrator to read a table.
 *
 * @example
 * ```ts
 * const history = createRecoveryHistory(core);
 * const { events } = await history.events({ tenantId: 'acme', limit: 20 });
 * ```
 */
export function createRecoveryHistory(core: Pick<PlatformCore, 'pool'>): RecoveryHistory {
  return new RecoveryHistory(new RecoveryStore(core.pool));
}
