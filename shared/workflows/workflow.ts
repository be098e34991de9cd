import { WorkflowDefinitionError } from '../kernel/errors.js';
import type { TaskDefinition } from './task.js';

/** A validated workflow: a DAG of tasks. */
export interface WorkflowDefinition {
  /** Also the state machine's name (with a deployment prefix) and the API's `workflow` field. */
  readonly name: string;
  readonly description: string;
  /** The tasks, in the order they were given. */
  readonly tasks: readonly TaskDefinition[];
  /** For each task id, the ids it waits for. */
  readonly dependsOn: Readonly<Record<string, readonly string[]>>;
  /**
   * The tasks in waves: every task's dependencies are in earlier waves, and the tasks of one wave
   * are independent of each other (they run as the branches of one Parallel state).
   */
  readonly waves: readonly (readonly string[])[];
  task(taskId: string): TaskDefinition | undefined;
}

export interface WorkflowOptions {
  readonly name: string;
  readonly description?: string;
  readonly tasks: readonly TaskDefinition[];
  /** `{ load: ['extract'] }`: `load` runs after `extract`. Tasks not named depend on nothing. */
  readonly dependsOn?: Readonly<Record<string, readonly string[]>>;
}

/**
 * Step Functions' own rule for state machine names: 1-80 characters, no whitespace, brackets,
 * wildcards, control characters or any of `" # % \ ^ | ~ ` $ & , ; : /`.
 */
const STATE_MACHINE_NAME = /^[^\s<>{}[\]?*"#%\\^|~`$&,;:/\p{Cc}]{1,80}$/u;

/**
 * Defines a workflow and checks it is a DAG Step Functions can run. Everything wrong is reported
 * at once: unknown dependencies, duplicate task ids, an invalid name, and each cycle, named
 * (`a → b → a`).
 *
 * @example
 * ```ts
 * const etl = defineWorkflow({
 *   name: 'nightly_etl',
 *   description: 'Extract, transform twice in parallel, load',
 *   tasks: [extract, cleanse, enrich, load],
 *   dependsOn: { cleanse: ['extract'], enrich: ['extract'], load: ['cleanse', 'enrich'] },
 * });
 * ```
 */
export function defineWorkflow(options: WorkflowOptions): WorkflowDefinition {
  const reasons: string[] = [];
  const name = options.name;
  if (typeof name !== 'string' || !STATE_MACHINE_NAME.test(name)) {
    reasons.push(
      `name '${String(name)}' is not a valid state machine name: use 1-80 characters without whitespace or any of < > { } [ ] ? * " # % \\ ^ | ~ \` $ & , ; : /`,
    );
  }
  const description = options.description ?? '';
  if (description.length > 1000) {
    reasons.push('description must be at most 1000 characters');
  }
  const tasks = options.tasks ?? [];
  if (tasks.length === 0) {
    reasons.push('a workflow needs at least one task');
  }
  const byId = new Map<string, TaskDefinition>();
  for (const task of tasks) {
    if (byId.has(task.id)) {
      reasons.push(`duplicate task id '${task.id}'`);
    }
    byId.set(task.id, task);
  }
  const dependsOn: Record<string, string[]> = Object.fromEntries(tasks.map((task) => [task.id, []]));
  for (const [taskId, dependencies] of Object.entries(options.dependsOn ?? {})) {
    if (!byId.has(taskId)) {
      reasons.push(`dependsOn names an unknown task '${taskId}'`);
      continue;
    }
    for (const dependency of dependencies) {
      if (!byId.has(dependency)) {
        reasons.push(`task '${taskId}' depends on an unknown task '${dependency}'`);
      } else if (!dependsOn[taskId]?.includes(dependency)) {
        dependsOn[taskId]?.push(dependency);
      }
    }
  }
  for (const cycle of findCycles(dependsOn)) {
    reasons.push(`dependency cycle: ${cycle.join(' → ')}`);
  }
  if (reasons.length > 0) {
    throw new WorkflowDefinitionError(`Workflow '${String(name)}' is invalid`, reasons);
  }
  return Object.freeze({
    name,
    description,
    tasks: Object.freeze([...tasks]),
    dependsOn: Object.freeze(
      Object.fromEntries(Object.entries(dependsOn).map(([id, deps]) => [id, Object.freeze(deps)])),
    ),
    waves: Object.freeze(
      waves(
        tasks.map((task) => task.id),
        dependsOn,
      ).map((wave) => Object.freeze(wave)),
    ),
    task: (taskId: string) => byId.get(taskId),
  });
}

/** Kahn's algorithm by generations; a task's wave is one past its latest dependency's. */
function waves(ids: readonly string[], dependsOn: Record<string, readonly string[]>): string[][] {
  const result: string[][] = [];
  const placed = new Set<string>();
  let remaining = [...ids];
  while (remaining.length > 0) {
    const wave = remaining.filter((id) =>
      (dependsOn[id] ?? []).every((dependency) => placed.has(dependency)),
    );
    for (const id of wave) {
      placed.add(id);
    }
    result.push(wave);
    remaining = remaining.filter((id) => !placed.has(id));
  }
  return result;
}

/** Each elementary cycle found by a depth-first search, reported once, starting at its first task. */
function findCycles(dependsOn: Record<string, readonly string[]>): string[][] {
  const cycles: string[][] = [];
  const seen = new Set<string>();
  const state = new Map<string, 'visiting' | 'done'>();
  const path: string[] = [];
  const visit = (id: string) => {
    state.set(id, 'visiting');
    path.push(id);
    for (const dependency of dependsOn[id] ?? []) {
      const dependencyState = state.get(dependency);
      if (dependencyState === 'visiting') {
        // The path from the dependency back to here, reversed so it reads in execution order.
        const loop = path.slice(path.indexOf(dependency)).reverse();
        const key = [...loop].sort().join('\u0000');
        if (!seen.has(key)) {
          seen.add(key);
          cycles.push([...loop, loop[0] ?? dependency]);
        }
      } else if (dependencyState === undefined) {
        visit(dependency);
      }
    }
    path.pop();
    state.set(id, 'done');
  };
  for (const id of Object.keys(dependsOn)) {
    if (!state.has(id)) {
      visit(id);
    }
  }
  return cycles;
}
