import type { ExecutionClaim } from '@tenantflow/shared/recovery/recovery-store';
import {
  decideExecutionRepair,
  decideTenantRepair,
  type ExecutionObservation,
  FOREIGN_EXECUTION_REASON,
  inputOverLimit,
} from '@tenantflow/shared/recovery/repair-decision';
import type { ExecutionDescription } from '@tenantflow/shared/workflows/orchestrator';
import { describe, expect, it } from 'vitest';

const policy = { maxAttempts: 3 };

function claim(overrides: Partial<ExecutionClaim> = {}): ExecutionClaim {
  return { workflow: 'report_pipeline', status: 'running', attempts: 0, ...overrides };
}

/** A claimed execution of an active tenant whose workflow is deployed: the orchestrator decides. */
function observed(overrides: Partial<ExecutionObservation> = {}): ExecutionObservation {
  return { tenantId: 'acme', tenantStatus: 'active', claim: claim(), workflowDeployed: true, ...overrides };
}

function seen(overrides: Partial<ExecutionDescription> & Pick<ExecutionDescription, 'status'>) {
  return { redrivable: false, ...overrides } satisfies ExecutionDescription;
}

describe('decideExecutionRepair', () => {
  describe('before the orchestrator is asked', () => {
    it.each([
      ['inactive', "Tenant 'acme' is inactive; its executions are repaired once it is active"],
      ['provisioning', "Tenant 'acme' is provisioning; its executions are repaired once it is active"],
      ['deprovisioning', "Tenant 'acme' is deprovisioning; its executions are repaired once it is active"],
      [undefined, "Tenant 'acme' is gone; its executions are repaired once it is active"],
    ] as const)(
      'leaves the execution of a tenant that is %s alone, without asking',
      (tenantStatus, detail) => {
        // Act
        const plan = decideExecutionRepair(observed({ tenantStatus }), policy);

        // Assert
        expect(plan).toEqual({ kind: 'leave', detail });
      },
    );

    it("leaves an inactive tenant's execution alone even when its workflow is gone (fail closed first)", () => {
      const plan = decideExecutionRepair(
        observed({ tenantStatus: 'inactive', workflowDeployed: false }),
        policy,
      );

      expect(plan.kind).toBe('leave');
    });

    it('abandons an execution whose workflow is not deployed any more, without asking', () => {
      const plan = decideExecutionRepair(
        observed({ claim: claim({ workflow: 'retired_workflow' }), workflowDeployed: false }),
        policy,
      );

      expect(plan).toEqual({
        kind: 'abandon',
        reason: "workflow 'retired_workflow' is not deployed any more",
      });
    });

    it("asks the orchestrator about an active tenant's execution of a deployed workflow", () => {
      expect(decideExecutionRepair(observed(), policy)).toEqual({ kind: 'ask_orchestrator' });
    });

    it("still leaves an inactive tenant's execution alone when what the orchestrator says is known", () => {
      const plan = decideExecutionRepair(
        observed({ tenantStatus: 'inactive', seen: seen({ status: 'not_found' }) }),
        policy,
      );

      expect(plan.kind).toBe('leave');
    });
  });

  describe('from what the orchestrator says', () => {
    it("abandons the row when the execution by its name is someone else's, saying nothing of it", () => {
      const plan = decideExecutionRepair(observed({ seen: seen({ status: 'foreign' }) }), policy);

      expect(plan).toEqual({ kind: 'abandon', reason: FOREIGN_EXECUTION_REASON });
      expect(FOREIGN_EXECUTION_REASON).not.toMatch(/acme/);
    });

    it('starts again an execution that never started', () => {
      const plan = decideExecutionRepair(observed({ seen: seen({ status: 'not_found' }) }), policy);

      expect(plan).toEqual({
        kind: 'restart',
        action: 'start',
        reason: 'it never started (the orchestrator has no execution by its name)',
      });
    });

    it('finalizes an execution that succeeded, whatever its attempts', () => {
      const plan = decideExecutionRepair(
        observed({ claim: claim({ attempts: 7 }), seen: seen({ status: 'succeeded' }) }),
        policy,
      );

      expect(plan).toEqual({ kind: 'finalize' });
    });

    it.each([
      ['failed', 'the orchestrator reports it failed (States.TaskFailed: boom)'],
      ['timed_out', 'the orchestrator reports it timed out (States.TaskFailed: boom)'],
      ['aborted', 'the orchestrator reports it aborted (States.TaskFailed: boom)'],
    ] as const)('redrives a redrivable execution that %s', (status, reason) => {
      const plan = decideExecutionRepair(
        observed({ seen: seen({ status, redrivable: true, error: 'States.TaskFailed', cause: 'boom' }) }),
        policy,
      );

      expect(plan).toEqual({ kind: 'restart', action: 'redrive', reason });
    });

    it.each([
      ['no error or cause', {}, 'the orchestrator reports it failed'],
      ['an empty error and cause', { error: '', cause: '' }, 'the orchestrator reports it failed'],
      [
        'only an error',
        { error: 'Local.ProcessExited' },
        'the orchestrator reports it failed (Local.ProcessExited)',
      ],
      [
        'only a cause',
        { cause: 'the process is gone' },
        'the orchestrator reports it failed (the process is gone)',
      ],
    ])('describes a failure with %s', (_case, parts, reason) => {
      const plan = decideExecutionRepair(
        observed({ seen: seen({ status: 'failed', redrivable: true, ...parts }) }),
        policy,
      );

      expect(plan).toEqual({ kind: 'restart', action: 'redrive', reason });
    });

    it('abandons a failed execution that cannot be redriven, even on its first attempt', () => {
      const plan = decideExecutionRepair(
        observed({ seen: seen({ status: 'failed', redrivable: false, error: 'States.Runtime' }) }),
        policy,
      );

      expect(plan).toEqual({
        kind: 'abandon',
        reason: 'the orchestrator reports it failed (States.Runtime), and it cannot be redriven',
      });
    });

    it('records the start of an execution the orchestrator runs but whose row is still pending', () => {
      const plan = decideExecutionRepair(
        observed({
          claim: claim({ status: 'pending' }),
          seen: seen({ status: 'running', ref: 'arn:exec:1' }),
        }),
        policy,
      );

      expect(plan).toEqual({ kind: 'mark_started', ref: 'arn:exec:1' });
    });

    it('records the start of a pending execution being redriven too', () => {
      const plan = decideExecutionRepair(
        observed({
          claim: claim({ status: 'pending' }),
          seen: seen({ status: 'pending_redrive', ref: 'arn:exec:2' }),
        }),
        policy,
      );

      expect(plan).toEqual({ kind: 'mark_started', ref: 'arn:exec:2' });
    });

    it.each([
      ['running', 'running', 'arn:exec:1', 'The orchestrator reports it running; left alone'],
      ['running', 'pending_redrive', 'arn:exec:1', 'The orchestrator reports it being redriven; left alone'],
      ['pending', 'running', undefined, 'The orchestrator reports it running; left alone'],
    ] as const)(
      'leaves a %s row alone while the orchestrator reports it %s (ref %s)',
      (status, seenStatus, ref, detail) => {
        const plan = decideExecutionRepair(
          observed({ claim: claim({ status }), seen: seen({ status: seenStatus, ref }) }),
          policy,
        );

        expect(plan).toEqual({ kind: 'leave', detail });
      },
    );

    it('never caps leaving alone or recording a start, since neither runs anything again', () => {
      const capped = claim({ status: 'pending', attempts: 3 });

      expect(
        decideExecutionRepair(
          observed({ claim: capped, seen: seen({ status: 'running', ref: 'r' }) }),
          policy,
        ).kind,
      ).toBe('mark_started');
      expect(
        decideExecutionRepair(
          observed({ claim: { ...capped, status: 'running' }, seen: seen({ status: 'running' }) }),
          policy,
        ).kind,
      ).toBe('leave');
    });
  });

  describe('the attempt cap', () => {
    it('restarts an execution one attempt below the cap', () => {
      const plan = decideExecutionRepair(
        observed({ claim: claim({ attempts: 2 }), seen: seen({ status: 'not_found' }) }),
        policy,
      );

      expect(plan).toMatchObject({ kind: 'restart', action: 'start' });
    });

    it('abandons an execution exactly at the cap, with the reason and what was last seen', () => {
      const plan = decideExecutionRepair(
        observed({ claim: claim({ attempts: 3 }), seen: seen({ status: 'not_found' }) }),
        policy,
      );

      expect(plan).toEqual({
        kind: 'abandon',
        reason:
          'recovery restarted it 3 time(s), its cap (TENANTFLOW_RECOVERY_MAX_ATTEMPTS = 3); last seen: it never started (the orchestrator has no execution by its name)',
      });
    });

    it('abandons a redrivable execution at the cap rather than redriving it', () => {
      const plan = decideExecutionRepair(
        observed({
          claim: claim({ attempts: 3 }),
          seen: seen({ status: 'timed_out', redrivable: true }),
        }),
        policy,
      );

      expect(plan).toEqual({
        kind: 'abandon',
        reason:
          'recovery restarted it 3 time(s), its cap (TENANTFLOW_RECOVERY_MAX_ATTEMPTS = 3); last seen: the orchestrator reports it timed out',
      });
    });

    it('abandons an execution past the cap (the cap was lowered since)', () => {
      const plan = decideExecutionRepair(
        observed({ claim: claim({ attempts: 5 }), seen: seen({ status: 'not_found' }) }),
        policy,
      );

      expect(plan.kind).toBe('abandon');
    });

    it('restarts nothing with a cap of 0', () => {
      const plan = decideExecutionRepair(observed({ seen: seen({ status: 'not_found' }) }), {
        maxAttempts: 0,
      });

      expect(plan).toMatchObject({
        kind: 'abandon',
        reason: expect.stringMatching(/^recovery restarted it 0 time/),
      });
    });
  });
});

describe('inputOverLimit', () => {
  it('lets through an input whose row is gone (the admission then finds the claim lost)', () => {
    expect(inputOverLimit('acme', undefined, 100)).toBeUndefined();
  });

  it('lets through an input exactly at the limit as stored, without measuring its JSON', () => {
    // `input` is deliberately larger as JSON: within as stored must settle it, since JSON is never longer.
    const stored = { storedBytes: 100, read: true, input: 'x'.repeat(500) };

    expect(inputOverLimit('acme', stored, 100)).toBeUndefined();
  });

  it('refuses an input too large to be read, from its stored size', () => {
    const stored = { storedBytes: 201, read: false, input: undefined };

    expect(inputOverLimit('acme', stored, 100)).toBe(
      "its input is 201 bytes as stored, over twice what tenant 'acme' allows (limits.maxInputBytes = 100)",
    );
  });

  it('lets through an input longer as stored than its JSON, when its JSON is exactly at the limit', () => {
    // '{"a":1,"b":2}' is 13 bytes as JSON; PostgreSQL stores it as '{"a": 1, "b": 2}', 16 bytes.
    const stored = { storedBytes: 16, read: true, input: { a: 1, b: 2 } };

    expect(inputOverLimit('acme', stored, 13)).toBeUndefined();
  });

  it('refuses an input one byte over the limit as JSON', () => {
    const stored = { storedBytes: 16, read: true, input: { a: 1, b: 2 } };

    expect(inputOverLimit('acme', stored, 12)).toBe(
      "its input is 13 bytes as JSON; tenant 'acme' allows at most 12 (limits.maxInputBytes)",
    );
  });
});

describe('decideTenantRepair', () => {
  it.each([
    ['provisioning', 'resume_provisioning'],
    ['deprovisioning', 'resume_deprovisioning'],
  ] as const)('resumes a tenant stuck in %s', (status, kind) => {
    expect(decideTenantRepair({ status, failedResumes: 0 }, policy)).toEqual({ kind });
  });

  it('resumes a tenant one failure below the cap', () => {
    expect(decideTenantRepair({ status: 'provisioning', failedResumes: 2 }, policy)).toEqual({
      kind: 'resume_provisioning',
    });
  });

  it.each([3, 4])('gives up on a tenant after %i failed resumes (cap 3)', (failedResumes) => {
    expect(decideTenantRepair({ status: 'deprovisioning', failedResumes }, policy)).toEqual({
      kind: 'give_up',
    });
  });
});
