import {
  compileOffboardingAsl,
  compileOnboardingAsl,
  type Lifecycle,
  lifecycleStateNames,
  NON_RETRYABLE_LIFECYCLE_ERRORS,
  OFFBOARDING,
  ONBOARDING,
  PROXY_POLL_SECONDS,
} from '@tenantflow/shared/lifecycle/lifecycle-asl';
import { OFFBOARDING_STEPS, ONBOARDING_STEPS } from '@tenantflow/shared/provisioning/provisioning-service';
import type { AslDefinition, AslState } from '@tenantflow/shared/workflows/asl';
import { describe, expect, it } from 'vitest';

const ARN = 'arn:aws:lambda:eu-west-1:123456789012:function:tenantflow-dev-provisioning-step';

/** The states an execution passes through when every step succeeds and the proxy is ready at once. */
function happyPath(definition: AslDefinition): string[] {
  const visited: string[] = [];
  let name: string | undefined = definition.StartAt;
  while (name !== undefined && visited.length < 50) {
    visited.push(name);
    const state: AslState | undefined = definition.States[name];
    if (state === undefined || state.End === true || state.Type === 'Fail' || state.Type === 'Succeed') {
      break;
    }
    if (state.Type === 'Choice') {
      name = (state.Choices as Array<{ Next: string }>)[0]?.Next;
    } else {
      name = state.Next as string | undefined;
    }
  }
  return visited;
}

function payloadOf(state: AslState | undefined): Record<string, unknown> {
  const parameters = state?.Parameters as { Payload: Record<string, unknown> } | undefined;
  return parameters?.Payload ?? {};
}

describe.each([
  {
    lifecycle: ONBOARDING as Lifecycle,
    compile: compileOnboardingAsl,
    steps: ONBOARDING_STEPS as readonly string[],
  },
  {
    lifecycle: OFFBOARDING as Lifecycle,
    compile: compileOffboardingAsl,
    steps: OFFBOARDING_STEPS as readonly string[],
  },
])('the $lifecycle state machine', ({ lifecycle, compile, steps }) => {
  const definition = compile({ provisioningStepArn: ARN });
  const stepStates = lifecycleStateNames(lifecycle);

  it('runs one Task state per step, in order, each invoking the provisioning-step Lambda with ids only', () => {
    const path = happyPath(definition).filter((name) => definition.States[name]?.Type === 'Task');
    expect(path).toEqual(stepStates);
    expect(path.map((name) => payloadOf(definition.States[name]).step)).toEqual([...steps]);
    for (const name of path) {
      const state = definition.States[name];
      expect(state?.Resource).toBe('arn:aws:states:::lambda:invoke');
      expect((state?.Parameters as { FunctionName: string } | undefined)?.FunctionName).toBe(ARN);
      expect(payloadOf(state)).toEqual({
        'tenantId.$': '$.tenantId',
        'executionId.$': '$.executionId',
        lifecycle,
        step: payloadOf(state).step,
      });
    }
  });

  it('retries every step, but not errors a retry cannot fix, and records a failure before failing', () => {
    for (const name of stepStates) {
      const state = definition.States[name];
      const retry = state?.Retry as Array<{ ErrorEquals: string[]; MaxAttempts: number }>;
      expect(retry[0]).toEqual({ ErrorEquals: [...NON_RETRYABLE_LIFECYCLE_ERRORS], MaxAttempts: 0 });
      expect(retry.at(-1)?.ErrorEquals).toEqual(['States.ALL']);
      expect(retry.at(-1)?.MaxAttempts).toBeGreaterThan(0);
      expect(state?.Catch).toEqual([
        { ErrorEquals: ['States.ALL'], ResultPath: '$.failure', Next: 'Record failure' },
      ]);
    }
    const record = definition.States['Record failure'];
    expect(payloadOf(record)).toMatchObject({
      step: 'record-failure',
      'error.$': '$.failure.Error',
      'cause.$': '$.failure.Cause',
    });
    expect(definition.States[record?.Next as string]?.Type).toBe('Fail');
  });

  it('waits for the proxy in the state machine: the login step loops through a Wait state until it is done', () => {
    const login = definition.States[stepStates[steps.indexOf('login')] ?? ''];
    expect(login?.ResultSelector).toEqual({ 'done.$': '$.Payload.done' });
    const choice = definition.States[login?.Next as string];
    expect(choice?.Type).toBe('Choice');
    expect(choice?.Choices).toEqual([
      {
        Variable: '$.login.done',
        BooleanEquals: true,
        Next: stepStates[steps.indexOf('login') + 1],
      },
    ]);
    const wait = definition.States[choice?.Default as string];
    expect(wait).toMatchObject({
      Type: 'Wait',
      Seconds: PROXY_POLL_SECONDS,
      Next: stepStates[steps.indexOf('login')],
    });
  });

  it('has an overall timeout, so a proxy that never settles ends the execution for recovery to redrive', () => {
    expect(definition.TimeoutSeconds).toBeGreaterThan(0);
  });
});
