import type { Queryable } from '../db/sql.js';
import { WorkflowDefinitionError } from '../kernel/errors.js';
import type { Logger } from '../logging/logger.js';
import type { TenantConfig } from '../tenancy/tenant-config.js';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** When and how often a failed task is tried again (compiled into the state's `Retry`). */
export interface RetryPolicy {
  /** Tries in all, the first included. Default 3. */
  readonly attempts: number;
  /** Wait before the first retry, in whole seconds (Step Functions' unit). Default 1. */
  readonly intervalSeconds: number;
  /** Each wait is the previous one times this. Default 2.0. */
  readonly backoffRate: number;
  /** Cap on any single wait, in seconds. Default: no cap. */
  readonly maxDelaySeconds?: number | undefined;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { attempts: 3, intervalSeconds: 1, backoffRate: 2 };

/** Default time a task body may run before it is abandoned and its transaction rolled back. */
export const DEFAULT_TASK_TIMEOUT_SECONDS = 60;
/** The run-task Lambda has at most 15 minutes; keep a margin for the commit and the bookkeeping. */
export const MAX_TASK_TIMEOUT_SECONDS = 840;

/** What a task sees of its tenant. */
export interface TaskTenant {
  readonly id: string;
  readonly name: string;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly config: TenantConfig;
}

/**
 * Everything a task body gets. The context (`get`/`set`) is the workflow's JSON state, shared by
 * all its tasks and kept in the tenant's schema; what a task `set`s is committed in the same
 * transaction as its own writes through `db` and its completion, or not at all.
 *
 * `Input` is the type of `input`: `JsonValue` unless the workflow declares an input schema, in
 * which case it is that schema's output type (see {@link defineTask}).
 */
export interface TaskContext<Input = JsonValue> {
  readonly taskId: string;
  readonly workflow: string;
  readonly executionId: string;
  /** 1 on the first try; the retry policy's `attempts` is the last. */
  readonly attempt: number;
  /**
   * The input the execution was started with: as the workflow's input schema parsed it, when it
   * declares one (defaults filled in, unknown keys of a `z.object` dropped).
   */
  readonly input: Input;
  readonly tenant: TaskTenant;
  /**
   * A connection logged in as the tenant's own role, inside this task's transaction. Unqualified
   * names resolve to the tenant's schema; PostgreSQL refuses everything else.
   */
  readonly db: Queryable;
  /** Every line carries the tenant, workflow, execution and task ids. */
  readonly logger: Logger;
  /**
   * Aborted when the task runs past its timeout, or when its execution is cancelled (noticed at
   * the next heartbeat); pass it on to long calls. Either way the task's transaction rolls back.
   */
  readonly signal: AbortSignal;
  /** A value from the workflow context, as the task's predecessors left it. */
  get<T extends JsonValue = JsonValue>(key: string): T | undefined;
  /** Sets (or with `undefined`, removes) a context value; it must be JSON. */
  set(key: string, value: unknown): void;
}

export interface TaskDefinition<Input = JsonValue> {
  readonly id: string;
  readonly run: (ctx: TaskContext<Input>) => Promise<void> | void;
  readonly retry: RetryPolicy;
  readonly timeoutSeconds: number;
}

export interface TaskOptions<Input = JsonValue> {
  /** Names the state in Step Functions: letters, digits, `_` and `-`, starting with a letter. */
  readonly id: string;
  readonly run: (ctx: TaskContext<Input>) => Promise<void> | void;
  readonly retry?: Partial<RetryPolicy>;
  /** Default {@link DEFAULT_TASK_TIMEOUT_SECONDS}; at most {@link MAX_TASK_TIMEOUT_SECONDS}. */
  readonly timeoutSeconds?: number;
}

export const TASK_ID_PATTERN = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;

/**
 * Defines a task. Invalid options are refused here, with every reason, so a mistake surfaces when
 * the module loads rather than in a state machine at run time.
 *
 * `ctx.input` is a `JsonValue` unless the task names its type as the type parameter: the output
 * type of its workflow's input schema, `z.infer<typeof schema>`. `defineWorkflow` then refuses the
 * task in a workflow whose input has another type; a task typed as plain JSON fits any workflow
 * whose input type is JSON. TypeScript cannot carry the workflow's schema into a task by itself
 * (the task is typed before the workflow that lists it), so a task written inline in `tasks` names
 * the type too.
 *
 * ```ts
 * const orderInput = z.object({ customer: z.string(), totalCents: z.number().int() });
 * const recordOrder = defineTask<z.infer<typeof orderInput>>({
 *   id: 'record_order',
 *   run: (ctx) => ctx.set('customer', ctx.input.customer), // a string
 * });
 * defineWorkflow({ name: 'take_order', input: orderInput, tasks: [recordOrder] });
 * ```
 *
 * @example
 * ```ts
 * const countItems = defineTask({
 *   id: 'count_items',
 *   retry: { attempts: 5 },
 *   run: async (ctx) => {
 *     const { rows } = await ctx.db.query('SELECT count(*)::int AS n FROM items');
 *     ctx.set('itemCount', rows[0]?.n ?? 0);
 *   },
 * });
 * ```
 */
export function defineTask<Input = JsonValue>(options: TaskOptions<Input>): TaskDefinition<Input> {
  const retry: RetryPolicy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
  const timeoutSeconds = options.timeoutSeconds ?? DEFAULT_TASK_TIMEOUT_SECONDS;
  const label = typeof options.id === 'string' ? `Task '${options.id}'` : 'Task';
  const reasons = [
    ...(typeof options.id === 'string' && TASK_ID_PATTERN.test(options.id)
      ? []
      : ['id must be 1-64 letters, digits, _ or -, starting with a letter']),
    ...(typeof options.run === 'function' ? [] : ['run must be a function']),
    ...checkInteger('retry.attempts', retry.attempts, 1, 25),
    ...checkInteger('retry.intervalSeconds', retry.intervalSeconds, 1, 3600),
    ...(Number.isFinite(retry.backoffRate) && retry.backoffRate >= 1 && retry.backoffRate <= 10
      ? []
      : ['retry.backoffRate must be between 1.0 and 10.0']),
    ...(retry.maxDelaySeconds === undefined
      ? []
      : checkInteger('retry.maxDelaySeconds', retry.maxDelaySeconds, retry.intervalSeconds, 31_622_400)),
    ...checkInteger('timeoutSeconds', timeoutSeconds, 1, MAX_TASK_TIMEOUT_SECONDS),
  ];
  if (reasons.length > 0) {
    throw new WorkflowDefinitionError(`${label} is invalid`, reasons);
  }
  return Object.freeze({ id: options.id, run: options.run, retry: Object.freeze(retry), timeoutSeconds });
}

function checkInteger(name: string, value: number, min: number, max: number): string[] {
  return Number.isInteger(value) && value >= min && value <= max
    ? []
    : [`${name} must be a whole number from ${min} to ${max}`];
}
