import { RecoveryJournal, type Repair } from '@tenantflow/shared/recovery/recovery-journal';
import type { RecoveryEvent } from '@tenantflow/shared/recovery/recovery-store';
import { describe, expect, it } from 'vitest';

/** A journal over an in-memory event table and a logger that remembers its levels. */
function journal() {
  const events: RecoveryEvent[] = [];
  const logged: { level: 'info' | 'error'; message: unknown; fields: unknown }[] = [];
  const recovery = new RecoveryJournal('run-1', {
    store: {
      recordEvent: async (event) => {
        events.push(event);
      },
    },
    logger: {
      info: (message, ...fields) => {
        logged.push({ level: 'info', message, fields });
      },
      error: (message, ...fields) => {
        logged.push({ level: 'error', message, fields });
      },
    },
  });
  return { recovery, events, logged };
}

const redriven: Repair = { action: 'redrive', outcome: 'done', detail: 'redriven', progressed: true };

describe('RecoveryJournal', () => {
  it('records each entry as an event of its pass, and logs a failure as an error', async () => {
    // Prepare
    const { recovery, events, logged } = journal();

    // Act
    await recovery.record({
      tenantId: 'acme',
      targetType: 'execution',
      targetId: 'e-1',
      finding: 'stale_running',
      repair: redriven,
    });
    await recovery.record({
      tenantId: 'acme',
      targetType: 'tenant',
      targetId: 'acme',
      finding: 'scan_failed',
      repair: { action: 'none', outcome: 'failed', detail: 'no schema', progressed: false },
    });

    // Assert
    expect(events).toEqual([
      {
        runId: 'run-1',
        tenantId: 'acme',
        targetType: 'execution',
        targetId: 'e-1',
        finding: 'stale_running',
        action: 'redrive',
        outcome: 'done',
        detail: 'redriven',
      },
      {
        runId: 'run-1',
        tenantId: 'acme',
        targetType: 'tenant',
        targetId: 'acme',
        finding: 'scan_failed',
        action: 'none',
        outcome: 'failed',
        detail: 'no schema',
      },
    ]);
    expect(logged.map((entry) => entry.level)).toEqual(['info', 'error']);
  });

  it('counts as actions only what was done, and outcomes with or without an event', async () => {
    // Prepare
    const { recovery } = journal();

    // Act
    recovery.found('stale_pending');
    recovery.found('stale_pending');
    recovery.examined();
    await recovery.record({
      tenantId: 'acme',
      targetType: 'execution',
      targetId: 'e-1',
      finding: 'stale_pending',
      repair: redriven,
    });
    await recovery.record({
      tenantId: 'acme',
      targetType: 'execution',
      targetId: 'e-2',
      finding: 'stale_pending',
      repair: { action: 'start', outcome: 'skipped', detail: 'claim lost', progressed: false },
    });
    recovery.countUnrecorded('failed');
    recovery.scanned(200);
    recovery.scanned(7);
    const summary = recovery.summary({ complete: true, resumeAfter: undefined, durationMs: 12.6 });

    // Assert
    expect(summary).toMatchObject({
      runId: 'run-1',
      tenantsScanned: 207,
      executionsExamined: 1,
      complete: true,
      durationMs: 13,
    });
    expect(summary.findings).toMatchObject({ stale_pending: 2, stale_running: 0 });
    expect(summary.actions).toMatchObject({ redrive: 1, start: 0 });
    expect(summary.outcomes).toEqual({ done: 1, skipped: 1, failed: 1 });
    expect(summary).not.toHaveProperty('resumeAfter');
  });

  it('tells a pass from a logins-only run, a pass by default', () => {
    const { recovery } = journal();

    const pass = recovery.summary({ complete: true, resumeAfter: undefined, durationMs: 0 });
    const logins = recovery.summary({
      scope: 'logins',
      complete: true,
      resumeAfter: undefined,
      durationMs: 0,
    });

    expect(pass.scope).toBe('pass');
    expect(logins.scope).toBe('logins');
  });

  it('says where an incomplete pass stopped', () => {
    const { recovery } = journal();

    const summary = recovery.summary({ complete: false, resumeAfter: 'tenant_0042', durationMs: 0 });

    expect(summary).toMatchObject({ complete: false, resumeAfter: 'tenant_0042' });
  });

  it('starts every count at zero, so a summary always has every kind', () => {
    const summary = journal().recovery.summary({ complete: true, resumeAfter: undefined, durationMs: 0 });

    expect(Object.values(summary.findings).every((count) => count === 0)).toBe(true);
    expect(Object.keys(summary.findings)).toContain('login_orphaned');
    expect(Object.keys(summary.actions)).toContain('defer');
  });
});
