import {
  compileOffboardingAsl,
  compileOnboardingAsl,
  type Lifecycle,
  OFFBOARDING,
  ONBOARDING,
} from '@tenantflow/shared/lifecycle/lifecycle-asl';
import type { AslDefinition } from '@tenantflow/shared/workflows/asl';
import type { RemovalPolicy } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { StandardStateMachine, stateMachineNameOf } from './standard-state-machine.js';

/** The tenant lifecycle's state machines, in the order a tenant goes through them. */
export const LIFECYCLES: readonly Lifecycle[] = [ONBOARDING, OFFBOARDING];

export interface TenantLifecycleStateMachinesProps {
  readonly stage: string;
  /** The provisioning-step Lambda (`functions/provisioning/step.ts`) every Task state invokes. */
  readonly provisioningStep: lambda.IFunction;
  readonly logRetentionDays: number;
  /** @default RemovalPolicy.DESTROY */
  readonly logRemovalPolicy?: RemovalPolicy;
}

/**
 * Onboarding and offboarding a tenant, as two Standard state machines named
 * `tenantflow-<stage>-onboarding` and `tenantflow-<stage>-offboarding`. Their definitions are
 * exactly what `compileOnboardingAsl` and `compileOffboardingAsl` emit (the same JSON the local
 * orchestrator runs), with the provisioning-step function's ARN as a deploy-time token.
 *
 * Logged, traced and confined as every {@link StandardStateMachine}: each role may invoke the
 * provisioning-step function, by its unqualified ARN as the definitions name it, and nothing else
 * besides log delivery and tracing. The functions that start or resume them are given them with
 * `TenantFunction.bindLifecycle`.
 *
 * The names are the platform's: a workflow named `onboarding` or `offboarding` would collide with
 * them, and the PlatformStack refuses to install one ({@link lifecycleStateMachineNames}).
 *
 * @example
 * ```ts
 * const lifecycle = new TenantLifecycleStateMachines(this, 'Lifecycle', {
 *   stage: 'prod', provisioningStep, logRetentionDays: 30,
 * });
 * tenantsApi.bindLifecycle(lifecycle);
 * lifecycle.onboarding.stateMachine.stateMachineArn;
 * ```
 */
export class TenantLifecycleStateMachines extends Construct {
  readonly onboarding: StandardStateMachine;
  readonly offboarding: StandardStateMachine;
  /** Both, by lifecycle (`onboarding`, `offboarding`): the keys of `TENANTFLOW_LIFECYCLE_STATE_MACHINE_ARNS`. */
  readonly machines: Readonly<Record<Lifecycle, StandardStateMachine>>;

  constructor(scope: Construct, id: string, props: TenantLifecycleStateMachinesProps) {
    super(scope, id);
    const targets = { provisioningStepArn: props.provisioningStep.functionArn };
    const machine = (machineId: string, lifecycle: Lifecycle, definition: AslDefinition) =>
      new StandardStateMachine(this, machineId, {
        stateMachineName: stateMachineNameOf(props.stage, lifecycle),
        definition,
        invokes: { sid: 'InvokeProvisioningStep', functions: [props.provisioningStep] },
        logRetentionDays: props.logRetentionDays,
        logRemovalPolicy: props.logRemovalPolicy,
      });
    this.onboarding = machine('Onboarding', ONBOARDING, compileOnboardingAsl(targets));
    this.offboarding = machine('Offboarding', OFFBOARDING, compileOffboardingAsl(targets));
    this.machines = { [ONBOARDING]: this.onboarding, [OFFBOARDING]: this.offboarding };
  }
}

/**
 * The names the lifecycle's state machines take in `stage`: no workflow's state machine may take
 * one of them.
 *
 * @example
 * ```ts
 * lifecycleStateMachineNames('prod'); // ['tenantflow-prod-onboarding', 'tenantflow-prod-offboarding']
 * ```
 */
export function lifecycleStateMachineNames(stage: string): string[] {
  return LIFECYCLES.map((lifecycle) => stateMachineNameOf(stage, lifecycle));
}
