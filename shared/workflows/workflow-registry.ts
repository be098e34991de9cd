import type { TenantMigrationSet } from '../db/migrations.js';
import { WorkflowDefinitionError, WorkflowNotFoundError } from '../kernel/errors.js';
import type { WorkflowDefinition } from './workflow.js';

export interface WorkflowRegistryOptions {
  /** The per-tenant tables these workflows use ({@link defineTenantMigrations}). */
  readonly tenantMigrations?: readonly TenantMigrationSet[];
}

/**
 * Names no workflow may take: the platform's onboarding and offboarding state machines are named
 * `tenantflow-<stage>-onboarding` and `-offboarding`, as a workflow's would be.
 */
export const RESERVED_WORKFLOW_NAMES: readonly string[] = ['onboarding', 'offboarding'];

/**
 * The workflows an installation runs, with the per-tenant tables they use. The Lambdas look
 * workflows up here by name, CDK deploys one state machine per entry, and provisioning and
 * migrations apply the tables to every tenant, so all of them agree on what exists.
 *
 * @example
 * ```ts
 * export const workflows = new WorkflowRegistry([nightlyEtl, onboarding], { tenantMigrations: [etlTables] });
 * workflows.require('nightly_etl');
 * ```
 */
export class WorkflowRegistry {
  readonly #workflows = new Map<string, WorkflowDefinition>();
  readonly #tenantMigrations = new Map<string, TenantMigrationSet>();

  constructor(workflows: readonly WorkflowDefinition[] = [], options: WorkflowRegistryOptions = {}) {
    for (const workflow of workflows) {
      this.register(workflow);
    }
    for (const set of options.tenantMigrations ?? []) {
      this.addTenantMigrations(set);
    }
  }

  /** Adds the workflows and tables of `other` (the examples, say) to these. */
  include(other: WorkflowRegistry): this {
    for (const workflow of other.list()) {
      this.register(workflow);
    }
    for (const set of other.tenantMigrations()) {
      this.addTenantMigrations(set);
    }
    return this;
  }

  addTenantMigrations(set: TenantMigrationSet): this {
    if (this.#tenantMigrations.has(set.name)) {
      throw new WorkflowDefinitionError('Cannot register tenant migrations', [
        `a set named '${set.name}' is already registered`,
      ]);
    }
    this.#tenantMigrations.set(set.name, set);
    return this;
  }

  /** The registered tables, in registration order: applied to each tenant after the platform's. */
  tenantMigrations(): TenantMigrationSet[] {
    return [...this.#tenantMigrations.values()];
  }

  register(workflow: WorkflowDefinition): this {
    if (RESERVED_WORKFLOW_NAMES.includes(workflow.name)) {
      throw new WorkflowDefinitionError('Cannot register workflow', [
        `'${workflow.name}' is the name of the platform's own tenant ${workflow.name} state machine (tenantflow-<stage>-${workflow.name}); choose another name`,
      ]);
    }
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
