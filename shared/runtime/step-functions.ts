import { SFNClient } from '@aws-sdk/client-sfn';
import { traced } from '../logging/tracer.js';
import { StepFunctionsOrchestrator } from '../workflows/step-functions-orchestrator.js';
import type { PlatformCore } from './core.js';

/**
 * The Step Functions orchestrator of the state machines CDK deployed: the workflows'
 * (`TENANTFLOW_STATE_MACHINE_ARNS`) unless other ARNs are given (the lifecycle's).
 */
export function stepFunctionsOrchestrator(
  core: Pick<PlatformCore, 'config'>,
  stateMachineArns: Readonly<Record<string, string>> = core.config.stateMachineArns,
): StepFunctionsOrchestrator {
  return new StepFunctionsOrchestrator({ client: traced(new SFNClient({})), stateMachineArns });
}
