import { createLogger } from '@tenantflow/shared/logging/logger';
import { type AslDefinition, compileToAsl } from '@tenantflow/shared/workflows/asl';
import { ExecutionService, type ExecutionView } from '@tenantflow/shared/workflows/execution-service';
import { ExecutionStore } from '@tenantflow/shared/workflows/execution-store';
import { type CfnElement, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalOrchestrator } from '../../../local/local-orchestrator.js';
import { LOCAL_TARGETS, localLambdas } from '../../../local/local-runtime.js';
import { workflows } from '../../../workflows/index.js';
import { buildPlatform } from '../../cdk/platform-fixture.js';
import { synthesizedDefinitions } from '../../cdk/synthesized-definitions.js';
import { createTestPlatform, type TestPlatform } from '../../support/platform.js';

/**
 * Deployed equals tested: the state machine definitions are taken **from the synthesized
 * CloudFormation template**, their tokens (the run-task and finalize Lambda ARNs) replaced by the
 * local targets, and run in aws-local-stepfunctions against the local handlers, beside the
 * definitions the local platform runs. Both must say and do the same.
 */

const logger = createLogger('deployed-definitions-test');
let env: TestPlatform;
let deployed: Record<string, AslDefinition>;

function servicesFor(definitions: Record<string, AslDefinition>) {
  const store = new ExecutionStore(env.platform.pool);
  const orchestrator = new LocalOrchestrator({
    definitions,
    lambdas: localLambdas({ core: env.platform, access: env.platform, workflows, logger }),
    retryIntervalMs: 0,
  });
  const executions = new ExecutionService({
    registry: env.platform.registry,
    workflows,
    store,
    orchestrator,
    logger,
  });
  return { orchestrator, executions };
}

beforeAll(async () => {
  const { stack } = buildPlatform();
  const logicalId = (construct: { node: { defaultChild?: unknown } }) =>
    Stack.of(stack).getLogicalId(construct.node.defaultChild as CfnElement);
  const byStateMachine = synthesizedDefinitions(Template.fromStack(stack).toJSON() as never, {
    byLogicalId: {
      [logicalId(stack.functions.runTask)]: LOCAL_TARGETS.taskRunnerArn,
      [logicalId(stack.functions.finalize)]: LOCAL_TARGETS.finalizeArn,
    },
  });
  deployed = Object.fromEntries(
    [...stack.stateMachines.values()].map((machine) => {
      const definition = byStateMachine[logicalId(machine.stateMachine)];
      if (definition === undefined) {
        throw new Error(`No synthesized definition for ${machine.workflowName}`);
      }
      return [machine.workflowName, definition as unknown as AslDefinition];
    }),
  );
  env = await createTestPlatform();
}, 120_000);

afterAll(async () => {
  await env?.cleanup();
});

describe('the state machines CDK deploys', () => {
  it('are, once their ARNs are replaced, exactly what compileToAsl gives the local platform', () => {
    expect(Object.keys(deployed).sort()).toEqual(
      workflows
        .list()
        .map((workflow) => workflow.name)
        .sort(),
    );
    for (const workflow of workflows.list()) {
      expect(deployed[workflow.name]).toEqual(compileToAsl(workflow, LOCAL_TARGETS));
    }
  });

  it('run every example to the same outcome, context and task history as the local definitions', async () => {
    const tenantId = env.id('deployed');
    await env.platform.provisioning.provision({
      tenantId,
      name: 'Deployed',
      config: { settings: {}, features: {}, limits: { max_items_per_workflow: 3 } },
    });
    const inputs: Record<string, unknown> = {
      tenant_isolation: {},
      configurable_processing: { items: [1, 2, 3, 4, 5] },
      report_pipeline: { rows: [{ id: 'a', amount: 3 }], destination: 's3://nowhere' },
    };
    const runAll = async (definitions: Record<string, AslDefinition>) => {
      const { orchestrator, executions } = servicesFor(definitions);
      const started = await Promise.all(
        workflows.list().map(async (workflow) => ({
          workflow: workflow.name,
          ...(await executions.start(tenantId, {
            workflow: workflow.name,
            input: (inputs[workflow.name] ?? {}) as never,
          })),
        })),
      );
      await orchestrator.drain();
      const views: Record<string, ExecutionView> = {};
      for (const { workflow, executionId } of started) {
        views[workflow] = await executions.get(tenantId, executionId);
      }
      return views;
    };
    const comparable = (view: ExecutionView | undefined) => ({
      status: view?.status,
      error: view?.error?.replaceAll(/[0-9a-f]{8}-[0-9a-f-]{27}/g, '<id>'),
      contextKeys: Object.keys(view?.context ?? {}).sort(),
      tasks: view?.tasks.map((task) => ({ taskId: task.taskId, status: task.status, attempt: task.attempt })),
    });
    const fromTemplate = await runAll(deployed);
    const local = await runAll(
      Object.fromEntries(
        workflows.list().map((workflow) => [workflow.name, compileToAsl(workflow, LOCAL_TARGETS)]),
      ),
    );
    expect(Object.keys(fromTemplate).sort()).toEqual(Object.keys(inputs).sort());
    for (const name of Object.keys(inputs)) {
      expect(comparable(fromTemplate[name])).toEqual(comparable(local[name]));
    }
    // And the outcomes are the examples' own, not two identical failures.
    expect(fromTemplate.tenant_isolation?.status).toBe('succeeded');
    expect(fromTemplate.configurable_processing?.context.processedItems).toBe(3);
    expect(fromTemplate.report_pipeline?.status).toBe('failed');
    expect(fromTemplate.report_pipeline?.error).toMatch(/^Task 'publish' failed/);
  }, 60_000);
});
