import type { OffboardingStep, OnboardingStep } from '../provisioning/provisioning-service.js';
import type { AslDefinition, AslState } from '../workflows/asl.js';
import { LAMBDA_SERVICE_ERRORS } from '../workflows/state-errors.js';

/** The two lifecycle state machines, as the orchestrator knows them. */
export const ONBOARDING = 'onboarding';
export const OFFBOARDING = 'offboarding';
export type Lifecycle = typeof ONBOARDING | typeof OFFBOARDING;

export interface LifecycleTargets {
  /** ARN of the provisioning-step Lambda (`functions/provisioning/step.ts`). */
  readonly provisioningStepArn: string;
}

/** What the provisioning-step Lambda is invoked with (see `functions/provisioning/step.ts`). */
export interface LifecycleStepPayload {
  readonly tenantId: string;
  readonly executionId: string;
  readonly lifecycle: Lifecycle;
  /** A step of the lifecycle, or `record-failure` from the failure state. */
  readonly step: string;
  /** With `record-failure`: the caught error's name and cause. */
  readonly error?: string;
  readonly cause?: string;
}

/**
 * Errors a retry cannot fix (their `code`s): the tenant is gone or in another status, the proxy's
 * auth list is full, the id is taken, the request or the deployment is wrong.
 */
export const NON_RETRYABLE_LIFECYCLE_ERRORS = [
  'TENANT_NOT_FOUND',
  'TENANT_STATE_CONFLICT',
  'TENANT_ID_UNAVAILABLE',
  'PROXY_AUTH_LIST_FULL',
  'VALIDATION_FAILED',
  'CONFIGURATION_INVALID',
] as const;

/** Between two looks at a proxy that has not taken the tenant's login yet. */
export const PROXY_POLL_SECONDS = 5;

/**
 * A whole onboarding or offboarding may take this long; the proxy loop is the only part that can
 * run long. An execution that times out is redriven by recovery like a failed one.
 */
export const LIFECYCLE_TIMEOUT_SECONDS = 3600;

/** One step may run this long (migrations on a large set of tables) before Step Functions gives up on it. */
export const STEP_TIMEOUT_SECONDS = 300;

/**
 * Each step's retries: a few seconds apart, doubling, for about three minutes in all, which
 * outlasts a crashed run's claim on the tenant (2 minutes by default).
 */
const STEP_RETRY = {
  ErrorEquals: ['States.ALL'],
  IntervalSeconds: 3,
  MaxAttempts: 6,
  BackoffRate: 2,
} as const;

const LAMBDA_SERVICE_RETRY = {
  ErrorEquals: [...LAMBDA_SERVICE_ERRORS],
  IntervalSeconds: 1,
  MaxAttempts: 3,
  BackoffRate: 2,
} as const;

const FAILURE_PATH = '$.failure';
const LOGIN_PATH = '$.login';

interface StepSpec<S extends string> {
  readonly step: S;
  readonly state: string;
  readonly comment: string;
}

const ONBOARDING_STATES: readonly StepSpec<OnboardingStep>[] = [
  {
    step: 'schema-and-role',
    state: 'Create schema and role',
    comment: "The tenant's schema and its login role, which can reach that schema only",
  },
  {
    step: 'credentials',
    state: 'Store credentials',
    comment: "The role's password, in the tenant's secret",
  },
  {
    step: 'login',
    state: 'Admit login',
    comment: "Puts the tenant's secret on the proxy's auth list; done once the proxy is available with it",
  },
  {
    step: 'migrations',
    state: 'Apply migrations',
    comment: "Grants, the role's search_path and the tenant migrations",
  },
  {
    step: 'activate',
    state: 'Activate',
    comment: 'The tenant becomes active: its API key works from now on',
  },
];

const OFFBOARDING_STATES: readonly StepSpec<OffboardingStep>[] = [
  {
    step: 'schedules',
    state: 'Delete schedules',
    comment: "Deletes the tenant's schedules and their triggers, so nothing fires for it any more",
  },
  {
    step: 'schema-and-role',
    state: 'Drop schema and role',
    comment: "Ends the tenant's sessions, then drops its schema and its role",
  },
  {
    step: 'login',
    state: 'Revoke login',
    comment:
      "Takes the tenant's secret off the proxy's auth list; done once the proxy is available without it",
  },
  { step: 'secret', state: 'Delete secret', comment: "Deletes the tenant's secret" },
  { step: 'registry', state: 'Remove tenant', comment: 'Removes the tenant from the registry' },
];

/**
 * The onboarding state machine: one Task state per step of `ProvisioningService.onboardingStep`,
 * each invoking the provisioning-step Lambda with ids only, with retries; the proxy's auth list is
 * a Wait/poll loop (`Admit login` → `Proxy ready?` → `Wait for the proxy` → `Admit login`), so no
 * Lambda sleeps on it; a failure is recorded on the tenant and ends in a Fail state. CDK deploys
 * it and the local orchestrator runs it, as with workflows.
 *
 * @example
 * ```ts
 * const asl = compileOnboardingAsl({ provisioningStepArn });
 * ```
 */
export function compileOnboardingAsl(targets: LifecycleTargets): AslDefinition {
  return compileLifecycle(ONBOARDING, ONBOARDING_STATES, targets, {
    comment: 'tenantflow onboarding: a new tenant becomes active',
    pollStep: 'login',
    pollWaitState: 'Wait for the proxy',
    pollChoiceState: 'Proxy ready?',
  });
}

/** The offboarding state machine, built as {@link compileOnboardingAsl} builds onboarding's. */
export function compileOffboardingAsl(targets: LifecycleTargets): AslDefinition {
  return compileLifecycle(OFFBOARDING, OFFBOARDING_STATES, targets, {
    comment: 'tenantflow offboarding: an inactive tenant and everything it owns are removed',
    pollStep: 'login',
    pollWaitState: 'Wait for the proxy',
    pollChoiceState: 'Proxy released?',
  });
}

/** The state names of a lifecycle's steps, in order: what the console shows. */
export function lifecycleStateNames(lifecycle: Lifecycle): string[] {
  return (lifecycle === ONBOARDING ? ONBOARDING_STATES : OFFBOARDING_STATES).map((spec) => spec.state);
}

const RECORD_FAILURE = 'Record failure';
const SUCCEEDED = 'Done';

function compileLifecycle<S extends string>(
  lifecycle: Lifecycle,
  specs: readonly StepSpec<S>[],
  targets: LifecycleTargets,
  options: {
    readonly comment: string;
    readonly pollStep: S;
    readonly pollWaitState: string;
    readonly pollChoiceState: string;
  },
): AslDefinition {
  const failed = lifecycle === ONBOARDING ? 'Onboarding failed' : 'Offboarding failed';
  const states: Record<string, AslState> = {};
  const catchToFailure = [{ ErrorEquals: ['States.ALL'], ResultPath: FAILURE_PATH, Next: RECORD_FAILURE }];
  specs.forEach((spec, index) => {
    const next = specs[index + 1]?.state;
    const task: Record<string, unknown> = {
      ...stepTask(lifecycle, spec.step, targets),
      Comment: spec.comment,
      Catch: catchToFailure,
    };
    if (spec.step !== options.pollStep) {
      states[spec.state] =
        next === undefined ? { ...task, Type: 'Task', End: true } : { ...task, Type: 'Task', Next: next };
      return;
    }
    // The poll: the step answers `{ done }`; until it is done, wait and run it again.
    states[spec.state] = {
      ...task,
      Type: 'Task',
      ResultSelector: { 'done.$': '$.Payload.done' },
      ResultPath: LOGIN_PATH,
      Next: options.pollChoiceState,
    };
    states[options.pollChoiceState] = {
      Type: 'Choice',
      Comment: 'Has the proxy taken the change?',
      Choices: [{ Variable: `${LOGIN_PATH}.done`, BooleanEquals: true, Next: next ?? SUCCEEDED }],
      Default: options.pollWaitState,
    };
    states[options.pollWaitState] = {
      Type: 'Wait',
      Comment: 'The proxy is being modified; look again shortly',
      Seconds: PROXY_POLL_SECONDS,
      Next: spec.state,
    };
  });
  if (specs.at(-1)?.step === options.pollStep) {
    states[SUCCEEDED] = { Type: 'Succeed' };
  }
  states[RECORD_FAILURE] = {
    ...stepTask(lifecycle, 'record-failure', targets, {
      'error.$': `${FAILURE_PATH}.Error`,
      'cause.$': `${FAILURE_PATH}.Cause`,
    }),
    Type: 'Task',
    Comment: 'Records on the tenant which step failed and why; recovery redrives the execution',
    Next: failed,
  };
  states[failed] = {
    Type: 'Fail',
    Error: lifecycle === ONBOARDING ? 'OnboardingFailed' : 'OffboardingFailed',
    Cause: 'A step failed for good; GET /tenants/{tenantId} shows the step and its error',
  };
  return {
    Comment: options.comment,
    StartAt: specs[0]?.state ?? failed,
    TimeoutSeconds: LIFECYCLE_TIMEOUT_SECONDS,
    States: states,
  };
}

function stepTask(
  lifecycle: Lifecycle,
  step: string,
  targets: LifecycleTargets,
  extra: Record<string, string> = {},
): Record<string, unknown> {
  return {
    Resource: 'arn:aws:states:::lambda:invoke',
    Parameters: {
      FunctionName: targets.provisioningStepArn,
      Payload: {
        'tenantId.$': '$.tenantId',
        'executionId.$': '$.executionId',
        lifecycle,
        step,
        ...extra,
      },
    },
    ResultPath: null,
    TimeoutSeconds: STEP_TIMEOUT_SECONDS,
    Retry: [
      { ErrorEquals: [...NON_RETRYABLE_LIFECYCLE_ERRORS], MaxAttempts: 0 },
      LAMBDA_SERVICE_RETRY,
      STEP_RETRY,
    ],
  };
}
