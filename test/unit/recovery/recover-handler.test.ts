import { ValidationError } from '@tenantflow/shared/kernel/errors';
import { createLogger } from '@tenantflow/shared/logging/logger';
import { RecoveryJournal, type RecoverySummary } from '@tenantflow/shared/recovery/recovery-journal';
import type { Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { createRecoverHandler, parseRecoverEvent } from '../../../functions/recovery/recover.js';

/** A summary as the service returns it, for the scope asked. */
function summaryOf(scope: 'pass' | 'logins'): RecoverySummary {
  const journal = new RecoveryJournal(`run-${scope}`, {
    store: { recordEvent: async () => {} },
    logger: { info: () => {}, error: () => {} },
  });
  return journal.summary({ scope, complete: true, resumeAfter: undefined, durationMs: 1 });
}

/** The handler over a recovery service that only records which run it was asked for. */
function handlerWithFakeRecovery() {
  const calls: string[] = [];
  const handler = createRecoverHandler({
    logger: createLogger('recover-handler-test'),
    recovery: {
      run: async () => {
        calls.push('pass');
        return summaryOf('pass');
      },
      reconcileLogins: async () => {
        calls.push('logins');
        return summaryOf('logins');
      },
    },
  });
  const context = { getRemainingTimeInMillis: () => 300_000 } as Context;
  return { calls, invoke: (event: unknown) => handler(event, context) };
}

describe('parseRecoverEvent', () => {
  it("runs a pass for the schedule's EventBridge event, named by its detail-type", () => {
    expect(parseRecoverEvent({ 'detail-type': 'Scheduled Event', source: 'aws.events', detail: {} })).toEqual(
      {
        scope: 'pass',
        trigger: 'Scheduled Event',
      },
    );
  });

  it('reconciles the logins only for an empty event, which is how the deployment trigger invokes', () => {
    expect(parseRecoverEvent({})).toEqual({ scope: 'logins', trigger: 'deployment' });
    expect(parseRecoverEvent(null)).toEqual({ scope: 'logins', trigger: 'deployment' });
    expect(parseRecoverEvent(undefined)).toEqual({ scope: 'logins', trigger: 'deployment' });
  });

  it('takes an explicit {"reconcile": "logins"} or {"reconcile": "all"} by hand', () => {
    expect(parseRecoverEvent({ reconcile: 'logins' })).toEqual({ scope: 'logins', trigger: 'manual' });
    expect(parseRecoverEvent({ reconcile: 'all' })).toEqual({ scope: 'pass', trigger: 'manual' });
  });

  it('refuses an event it does not know instead of guessing what was meant', () => {
    expect(() => parseRecoverEvent({ reconcile: 'login' })).toThrow(ValidationError);
    expect(() => parseRecoverEvent({ reconcile: 'logins', extra: 1 })).toThrow(/Unknown recovery event/);
    expect(() => parseRecoverEvent('logins')).toThrow(ValidationError);
    expect(() => parseRecoverEvent([])).toThrow(ValidationError);
  });
});

describe('the recovery handler', () => {
  it('calls reconcileLogins alone for the deployment trigger, and returns its summary', async () => {
    // Prepare
    const { calls, invoke } = handlerWithFakeRecovery();

    // Act
    const summary = await invoke({});

    // Assert
    expect(calls).toEqual(['logins']);
    expect(summary).toMatchObject({ runId: 'run-logins', scope: 'logins', tenantsScanned: 0 });
  });

  it('runs a whole pass for the schedule', async () => {
    // Prepare
    const { calls, invoke } = handlerWithFakeRecovery();

    // Act
    const summary = await invoke({ 'detail-type': 'Scheduled Event', source: 'aws.events' });

    // Assert
    expect(calls).toEqual(['pass']);
    expect(summary.scope).toBe('pass');
  });

  it('fails on an unknown event without running anything', async () => {
    // Prepare
    const { calls, invoke } = handlerWithFakeRecovery();

    // Act + Assert
    await expect(invoke({ reconcile: 'everything' })).rejects.toThrow(ValidationError);
    expect(calls).toEqual([]);
  });
});
