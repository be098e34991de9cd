import { randomUUID } from 'node:crypto';
import {
  ConfigurationError,
  ExecutionNotFoundError,
  PayloadTooLargeError,
  TenantInactiveError,
  TenantNotFoundError,
  ValidationError,
} from '../kernel/errors.js';
import type { Failpoints } from '../kernel/failpoints.js';
import { assertValidTenantId } from '../kernel/tenant-id.js';
import type { Logger } from '../logging/logger.js';
import { effectiveLimits } from '../tenancy/tenant-config.js';
import { assertTenantActive, type TenantInfo, type TenantRegistry } from '../tenancy/tenant-registry.js';
import type {
  ExecutionRecord,
  ExecutionStatus,
  ExecutionStore,
  ExecutionSummary,
  TaskRunRecord,
  TenantMetrics,
} from './execution-store.js';
import { executionIdSchema } from './invocations.js';
import type { Orchestrator } from './orchestrator.js';
import type { JsonValue } from './task.js';
import { parseWorkflowInput } from './workflow.js';
import type { WorkflowRegistry } from './workflow-registry.js';

export interface ExecutionServiceDependencies {
  readonly registry: Pick<TenantRegistry, 'get'>;
  readonly workflows: WorkflowRegistry;
  readonly store: ExecutionStore;
  readonly orchestrator: Orchestrator;
  readonly logger: Logger;
  /** Crash injection for the recovery tests; never set in production. */
  readonly failpoints?: Failpoints | undefined;
}

export interface StartExecutionCommand {
  readonly workflow: string;
  readonly input: JsonValue;
}

/** A task as the API shows it: tasks that have not run yet are listed as `pending`. */
export type TaskView = Omit<TaskRunRecord, 'status' | 'startedAt' | 'heartbeatAt'> & {
  readonly status: TaskRunRecord['status'] | 'pending';
  readonly startedAt: Date | null;
  readonly heartbeatAt: Date | null;
};

export type ExecutionView = Omit<ExecutionRecord, 'tasks' | 'orchestratorRef'> & {
  readonly tenantId: string;
  readonly tasks: readonly TaskView[];
};

/**
 * Starts and reads workflow executions for one tenant at a time. The execution row is
 * the source of truth: it is written before the orchestrator is asked to start, so a start that is
 * lost on the way is still on record (`pending`) for recovery to start again.
 *
 * @example
 * ```ts
 * const { executionId } = await executions.start('acme', { workflow: 'nightly_etl', input: {} });
 * const view = await executions.get('acme', executionId);
 * ```
 */
export class ExecutionService {
  constructor(private readonly deps: ExecutionServiceDependencies) {}

  /**
   * Checks the tenant (registered, active), the workflow (registered), the input (within
   * `limits.maxInputBytes`, then accepted by the workflow's input schema: a 400 otherwise) and the
   * tenant's concurrency (`limits.maxConcurrentExecutions`), records the execution, with the input
   * as the schema parsed it, and starts it. Nothing is recorded for an input that is refused.
   */
  async start(
    tenantId: string,
    command: StartExecutionCommand,
  ): Promise<{ executionId: string; status: ExecutionStatus }> {
    const tenant = await this.#activeTenant(tenantId);
    const workflow = this.deps.workflows.require(command.workflow);
    const limits = effectiveLimits(tenant.config);
    const inputBytes = Buffer.byteLength(JSON.stringify(command.input));
    if (inputBytes > limits.maxInputBytes) {
      throw new PayloadTooLargeError(
        `The input is ${inputBytes} bytes as JSON; tenant '${tenantId}' allows at most ${limits.maxInputBytes} (limits.maxInputBytes)`,
      );
    }
    // After the size check, so the schema never parses more than the tenant allows.
    const input = parseWorkflowInput(workflow, command.input);
    const executionId = randomUUID();
    await this.deps.store.insertWithinLimit(
      tenantId,
      { executionId, workflow: workflow.name, input },
      limits.maxConcurrentExecutions,
    );
    await this.deps.failpoints?.reach('after-insert', { tenantId });
    try {
      const started = await this.deps.orchestrator.start({ workflow: workflow.name, tenantId, executionId });
      await this.deps.store.markStarted(tenantId, executionId, started.ref);
      return { executionId, status: 'running' };
    } catch (error) {
      if (error instanceof ConfigurationError) {
        // No state machine for this workflow: retrying will not help, so say so now.
        await this.deps.store.finalize(tenantId, executionId, 'failed', `Not started: ${error.message}`);
        throw error;
      }
      // Accepted and on record: recovery starts it (same name, so never twice).
      this.deps.logger.error('start failed; the execution stays pending for recovery', {
        tenantId,
        executionId,
        error,
      });
      return { executionId, status: 'pending' };
    }
  }

  async get(tenantId: string, executionId: string): Promise<ExecutionView> {
    await this.#knownTenant(tenantId);
    const record = await this.deps.store.get(tenantId, executionId);
    if (record === undefined) {
      throw new ExecutionNotFoundError(tenantId, executionId);
    }
    const { orchestratorRef: _internal, tasks, ...execution } = record;
    const ran = new Map(tasks.map((task) => [task.taskId, task]));
    const declared = this.deps.workflows.get(record.workflow)?.tasks.map((task) => task.id) ?? [];
    const views: TaskView[] = [
      ...declared.map(
        (taskId) =>
          ran.get(taskId) ?? {
            taskId,
            status: 'pending' as const,
            attempt: 0,
            error: null,
            startedAt: null,
            finishedAt: null,
            heartbeatAt: null,
          },
      ),
      // Runs of tasks this deployment no longer declares are still shown, never hidden.
      ...tasks.filter((task) => !declared.includes(task.taskId)),
    ];
    return { tenantId, ...execution, tasks: views };
  }

  async list(
    tenantId: string,
    options: { status?: ExecutionStatus | undefined; limit: number; nextToken?: string | undefined },
  ): Promise<{ executions: ExecutionSummary[]; nextToken: string | undefined }> {
    await this.#knownTenant(tenantId);
    const after = options.nextToken === undefined ? undefined : decodeToken(options.nextToken);
    if (after !== undefined && !(await this.deps.store.exists(tenantId, after))) {
      throw new ExecutionNotFoundError(tenantId, after);
    }
    const page = await this.deps.store.list(tenantId, {
      status: options.status,
      limit: options.limit,
      after,
    });
    return {
      executions: page.executions,
      nextToken: page.next === undefined ? undefined : encodeToken(page.next),
    };
  }

  async metrics(
    tenantId: string,
  ): Promise<
    TenantMetrics & { tenantId: string; averageDurationMs: number | null; pending: number; running: number }
  > {
    await this.#knownTenant(tenantId);
    const metrics = await this.deps.store.metrics(tenantId);
    return {
      tenantId,
      ...metrics,
      averageDurationMs:
        metrics.executionsFinished === 0
          ? null
          : Math.round(metrics.totalDurationMs / metrics.executionsFinished),
    };
  }

  /**
   * A tenant whose executions may be read: active or inactive. While it is being onboarded or
   * offboarded its schema may not exist (yet, or any more), so its reads are refused with the 423
   * its work gets, never attempted.
   */
  async #knownTenant(tenantId: string): Promise<TenantInfo> {
    assertValidTenantId(tenantId);
    const tenant = await this.deps.registry.get(tenantId);
    if (tenant === undefined) {
      throw new TenantNotFoundError(tenantId);
    }
    if (tenant.status === 'provisioning' || tenant.status === 'deprovisioning') {
      throw new TenantInactiveError(tenant.tenantId, tenant.status);
    }
    return tenant;
  }

  async #activeTenant(tenantId: string): Promise<TenantInfo> {
    const tenant = await this.#knownTenant(tenantId);
    assertTenantActive(tenant);
    return tenant;
  }
}

/** Page tokens are opaque to clients, so paging can change without breaking them. */
function encodeToken(executionId: string): string {
  return Buffer.from(JSON.stringify({ after: executionId })).toString('base64url');
}

function decodeToken(token: string): string {
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { after?: unknown };
    // Only an execution id this API could have put there: anything else (a NUL, say) would reach
    // PostgreSQL and come back as a 500, or be echoed in a 404's message.
    if (executionIdSchema.safeParse(parsed.after).success) {
      return parsed.after as string;
    }
  } catch {
    // fall through
  }
  throw new InvalidPageTokenError();
}

class InvalidPageTokenError extends ValidationError {
  constructor() {
    super('Invalid request', ['query.nextToken: is not a token this API returned']);
  }
}
