import { ValidationError, WorkflowDefinitionError } from '../kernel/errors.js';
import { z } from '../kernel/zod.js';
import type { JsonValue, TaskDefinition } from './task.js';

/** A JSON Schema document, as `z.toJSONSchema` writes it. */
export type JsonSchema = Readonly<Record<string, unknown>>;

/** A validated workflow: a DAG of tasks. */
export interface WorkflowDefinition {
  /** Also the state machine's name (with a deployment prefix) and the API's `workflow` field. */
  readonly name: string;
  readonly description: string;
  /** What an execution's input must be: checked when it starts. `undefined`: any JSON. */
  readonly inputSchema: z.ZodType | undefined;
  /**
   * The input as JSON Schema (of what a client sends, so a field with a default is optional), for
   * `GET /workflows`; `{}`, which any JSON matches, for a workflow without an input schema.
   */
  readonly inputJsonSchema: JsonSchema;
  /**
   * The tasks, in the order they were given. Their `ctx.input` is typed here as any JSON: the
   * schema's output type was checked by `defineWorkflow`, and the stored input is that output.
   */
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

/** The type of `ctx.input` in a workflow whose input schema is `S`: any JSON without one. */
export type WorkflowInput<S extends z.ZodType | undefined> = S extends z.ZodType ? z.output<S> : JsonValue;

export interface WorkflowOptions<S extends z.ZodType | undefined = undefined> {
  readonly name: string;
  readonly description?: string;
  /**
   * A zod schema for the execution's input. `POST /tenants/{tenantId}/executions` refuses (400) an
   * input it does not accept, before anything is recorded, and records what it parsed; the tasks'
   * `ctx.input` is typed as its output. Its output must be JSON (no transforms to a `Date`, say).
   * Default: any JSON, `ctx.input` a `JsonValue`.
   */
  readonly input?: S;
  /**
   * Each task's `ctx.input` type (`defineTask<Input>`) must be the workflow's input type, or one it
   * is assignable to: a task typed as plain JSON (the default) fits any workflow whose input type
   * is JSON.
   */
  readonly tasks: readonly TaskDefinition<WorkflowInput<S>>[];
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
 * With an `input` schema, the executions API accepts only inputs it parses, and the tasks'
 * `ctx.input` has its output type; an input schema that cannot be written as JSON Schema (a
 * `z.date()`, say) is refused here too.
 *
 * @example
 * ```ts
 * const etl = defineWorkflow({
 *   name: 'nightly_etl',
 *   description: 'Extract, transform twice in parallel, load',
 *   input: z.object({ day: z.string().default('yesterday') }),
 *   tasks: [extract, cleanse, enrich, load],
 *   dependsOn: { cleanse: ['extract'], enrich: ['extract'], load: ['cleanse', 'enrich'] },
 * });
 * ```
 */
export function defineWorkflow<S extends z.ZodType | undefined = undefined>(
  options: WorkflowOptions<S>,
): WorkflowDefinition {
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
  const input: z.ZodType | undefined = options.input;
  const inputJsonSchema = input === undefined ? {} : describeInputSchema(input, reasons);
  // Sound because the stored input is what the schema parsed (see parseWorkflowInput), and a
  // task typed as plain JSON reads it as such.
  const tasks = (options.tasks ?? []) as readonly TaskDefinition[];
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
    inputSchema: input,
    inputJsonSchema: deepFreeze(inputJsonSchema),
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

/** At most this many issues are listed in a 400, so a large bad input cannot make a huge reply. */
const MAX_INPUT_REASONS = 20;

/**
 * The input an execution of `workflow` runs with: what its input schema parsed, or the input as
 * given if it has none. An input the schema refuses is a 400 `ValidationError` whose reasons say
 * where each issue is (`input.items.0: expected number, received string`).
 *
 * @example
 * ```ts
 * const input = parseWorkflowInput(workflow, { items: [1, 2, 3] });
 * ```
 */
export function parseWorkflowInput(workflow: WorkflowDefinition, input: JsonValue): JsonValue {
  if (workflow.inputSchema === undefined) {
    return input;
  }
  const result = workflow.inputSchema.safeParse(input);
  if (!result.success) {
    const issues = result.error.issues;
    const reasons = issues.slice(0, MAX_INPUT_REASONS).map(describeIssue);
    if (issues.length > MAX_INPUT_REASONS) {
      reasons.push(`input: ${issues.length - MAX_INPUT_REASONS} more issues`);
    }
    throw new ValidationError(`Invalid input for workflow '${workflow.name}'`, reasons);
  }
  // What is recorded must be JSON: a schema that transforms to anything else is the workflow's
  // mistake (a 500, logged), not the client's.
  const json = z.json().safeParse(result.data);
  if (!json.success) {
    throw new Error(
      `Workflow '${workflow.name}': its input schema's output is not JSON (${describeIssue(json.error.issues[0] ?? { path: [], message: 'not JSON' })})`,
    );
  }
  return json.data as JsonValue;
}

/** `input.items.0: expected number, received string`: where, then what. */
function describeIssue(issue: Pick<z.ZodIssue, 'path' | 'message'>): string {
  const where = ['input', ...issue.path.map((segment) => shorten(String(segment)))].join('.');
  return `${where}: ${shorten(issue.message.replace(/^Invalid input: /, ''), 200)}`;
}

/** A client's key or value, cut short enough to quote in an error. */
function shorten(text: string, max = 64): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** The input schema as JSON Schema, of the input side; a reason if it cannot be written so. */
function describeInputSchema(schema: z.ZodType, reasons: string[]): JsonSchema {
  try {
    return z.toJSONSchema(schema, { io: 'input' }) as JsonSchema;
  } catch (error) {
    reasons.push(
      `input schema cannot be written as JSON Schema (GET /workflows shows it so): ${error instanceof Error ? error.message : String(error)}`,
    );
    return {};
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) {
      deepFreeze(child);
    }
    Object.freeze(value);
  }
  return value;
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
