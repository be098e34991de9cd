import { WorkflowDefinitionError, WorkflowNotFoundError } from '../errors.js';
import type { WorkflowDefinition } from './workflow.js';

/**
 * The workflows an installation runs. The Lambdas look workflows up here by name, and CDK deploys
 * one state machine per entry, so both always agree on what exists.
 *
 * @example
 * ```ts
 * export const workflows = new WorkflowRegistry([nightlyEtl, onboarding]);
 * workflows.require('nightly_etl');
 * ```
 */
export class WorkflowRegistry {
  readonly #workflows = new Map<string, WorkflowDefinition>();

  constructor(workflows: readonly WorkflowDefinition[] = []) {
    for (const workflow of workflows) {
      this.register(workflow);
    }
  }

  register(workflow: WorkflowDefinition): this {
    if (this.#workflows.has(workflow.name)) {
      throw new WorkflowDefinitionError('Cannot register workflow', [
        `a workflow named '${workflow.name}' is already registered`,
      ]);
    }
    this.#workflows.set(workflow.name, workflow);
    return this;
  }

  get(name: string): WorkflowDefinition | undefined {
    return this.#workflows.get(name);
  }

  /** The workflow, or a 404 `WorkflowNotFoundError` that lists the registered names. */
  require(name: string): WorkflowDefinition {
    const workflow = this.#workflows.get(name);
    if (workflow === undefined) {
      throw new WorkflowNotFoundError(name, this.names());
    }
    return workflow;
  }

  list(): WorkflowDefinition[] {
    return [...this.#workflows.values()];
  }

  names(): string[] {
    return [...this.#workflows.keys()];
  }
}
