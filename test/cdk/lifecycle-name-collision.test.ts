import { WorkflowDefinitionError } from '@tenantflow/shared/kernel/errors';
import { defineTask } from '@tenantflow/shared/workflows/task';
import { defineWorkflow, type WorkflowDefinition } from '@tenantflow/shared/workflows/workflow';
import { Template } from 'aws-cdk-lib/assertions';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { buildPlatform } from './platform-fixture.js';

/** Workflows this suite adds to the installation's, as a user would in workflows/index.ts. */
const added = vi.hoisted(() => ({ workflows: [] as WorkflowDefinition[] }));

vi.mock('../../workflows/index.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../workflows/index.js')>();
  return {
    ...original,
    installedWorkflows: (options: Parameters<typeof original.installedWorkflows>[0]) => {
      const registry = original.installedWorkflows(options);
      for (const workflow of added.workflows) {
        registry.register(workflow);
      }
      return registry;
    },
  };
});

function workflowNamed(name: string): WorkflowDefinition {
  return defineWorkflow({ name, tasks: [defineTask({ id: 'only', run: () => {} })] });
}

describe('a workflow named after a lifecycle state machine is refused before synthesis', () => {
  afterEach(() => {
    added.workflows = [];
  });

  it.each(['onboarding', 'offboarding'])(
    "refuses a workflow named '%s': its state machine would be tenantflow-<stage>-%s",
    (name) => {
      // Prepare
      added.workflows = [workflowNamed(name)];

      // Act / Assert
      expect(() => buildPlatform({ skipBundling: true })).toThrow(WorkflowDefinitionError);
      try {
        buildPlatform({ skipBundling: true });
      } catch (error) {
        expect((error as WorkflowDefinitionError).reasons).toEqual([
          `'${name}' is the name of the platform's own tenant ${name} state machine (tenantflow-<stage>-${name}); choose another name`,
        ]);
      }
    },
  );

  it('installs a workflow whose name only resembles them (the check is not blind)', () => {
    // Prepare
    added.workflows = [workflowNamed('onboarding_report')];

    // Act
    const { stack } = buildPlatform({ skipBundling: true, context: { examples: false } });
    const names = Object.values(Template.fromStack(stack).findResources('AWS::StepFunctions::StateMachine'))
      .map((machine) => (machine.Properties as { StateMachineName: string }).StateMachineName)
      .sort();

    // Assert
    expect(names).toEqual([
      'tenantflow-qa-offboarding',
      'tenantflow-qa-onboarding',
      'tenantflow-qa-onboarding_report',
    ]);
  });
});
