import { createHash, randomUUID } from 'node:crypto';
import {
  LimitExceededError,
  NotFoundError,
  PayloadTooLargeError,
  TenantInactiveError,
  TenantNotFoundError,
  ValidationError,
  WorkflowNotFoundError,
} from '../kernel/errors.js';
import { assertValidTenantId } from '../kernel/tenant-id.js';
import type { Logger } from '../logging/logger.js';
import { effectiveLimits } from '../tenancy/tenant-config.js';
import { assertTenantActive, type TenantInfo, type TenantRegistry } from '../tenancy/tenant-registry.js';
import type { ExecutionService } from '../workflows/execution-service.js';
import type { JsonValue } from '../workflows/task.js';
import { parseWorkflowInput } from '../workflows/workflow.js';
import type { WorkflowRegistry } from '../workflows/workflow-registry.js';
import { isTimeZone, nextDueTime, parseScheduleExpression } from './schedule-expression.js';
import type { FiringRecord, ScheduleRecord, ScheduleState, ScheduleStore } from './schedule-store.js';
import type { ScheduleFiring, ScheduleTrigger, TriggeredSchedule } from './schedule-trigger.js';

export interface ScheduleServiceDependencies {
  readonly registry: Pick<TenantRegistry, 'get'>;
  readonly workflows: WorkflowRegistry;
  readonly store: ScheduleStore;
  /** Starts what a schedule fires, with the same checks and records as the API's starts. */
  readonly executions: Pick<ExecutionService, 'start'>;
  readonly trigger: ScheduleTrigger;
  readonly logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** @default the system clock */
  readonly now?: () => Date;
}

export interface CreateScheduleCommand {
  readonly workflow: string;
  readonly expression: string;
  /** @default 'UTC' */
  readonly timezone?: string | undefined;
  /** @default {} */
  readonly input?: JsonValue | undefined;
  /** @default 'enabled' */
  readonly state?: ScheduleState | undefined;
}

export interface UpdateScheduleCommand {
  readonly workflow?: string | undefined;
  readonly expression?: string | undefined;
  readonly timezone?: string | undefined;
  readonly input?: JsonValue | undefined;
  readonly state?: ScheduleState | undefined;
}

/** A schedule as the API shows it. */
export interface ScheduleView {
  readonly scheduleId: string;
  readonly tenantId: string;
  readonly workflow: string;
  readonly expression: string;
  readonly timezone: string;
  readonly input: JsonValue;
  readonly state: ScheduleState;
  /** When it is next due; `null` while paused, or when it never is again (its years have passed). */
  readonly nextDueAt: Date | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** What one firing did. `not_found` and `paused` are not recorded: there is nothing to record them on, or nothing was due. */
export type FireResult =
  | FiringRecord
  | { readonly outcome: 'not_found' | 'paused'; readonly scheduleId: string; readonly scheduledTime: Date };

export class ScheduleNotFoundError extends NotFoundError {
  override readonly code: string = 'SCHEDULE_NOT_FOUND';

  constructor(
    readonly tenantId: string,
    readonly scheduleId: string,
  ) {
    super(`Schedule '${scheduleId}' does not exist for tenant '${tenantId}'`);
  }
}

/** The namespace of the execution ids firings derive (a UUID of its own, chosen once). */
const FIRING_NAMESPACE = '6f1f8a4e-3c55-4d0e-9a57-2f0b8f3c1d42';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The execution id of a schedule's firing at a time: a name-based UUID (version 5, RFC 9562) of
 * the schedule id and the scheduled time, so every delivery of the same firing names the same
 * execution and the execution store starts it once.
 *
 * @example
 * ```ts
 * firingExecutionId('0b6f…', new Date('2026-03-30T07:00:00Z')); // the same UUID on every call
 * ```
 */
export function firingExecutionId(scheduleId: string, scheduledTime: Date): string {
  const namespace = Buffer.from(FIRING_NAMESPACE.replaceAll('-', ''), 'hex');
  const hash = createHash('sha1')
    .update(namespace)
    .update(`${scheduleId.toLowerCase()}@${scheduledTime.toISOString()}`)
    .digest();
  const bytes = hash.subarray(0, 16);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x50;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * A tenant's workflows started on a schedule. The row in the control schema is the source of
 * truth and is written first; the trigger (EventBridge Scheduler in AWS, a timer locally) is put
 * after it on every write, and every put is idempotent. A crash between the two leaves a row whose
 * trigger is missing or stale until the next write of that schedule or a {@link resync}; a delete
 * removes the trigger first, so a crash there leaves the schedule listed (and deletable again),
 * never a trigger without a row.
 *
 * @example
 * ```ts
 * const schedule = await schedules.create('acme', { workflow: 'report', expression: 'cron(0 9 ? * MON-FRI *)', timezone: 'Europe/Paris' });
 * await schedules.fire({ tenantId: 'acme', scheduleId: schedule.scheduleId, scheduledTime: new Date() });
 * ```
 */
export class ScheduleService {
  readonly #deps: ScheduleServiceDependencies;
  readonly #now: () => Date;

  constructor(deps: ScheduleServiceDependencies) {
    this.#deps = deps;
    this.#now = deps.now ?? (() => new Date());
  }

  /**
   * Creates a schedule for an active tenant, within its `limits.maxSchedules` (429 beyond):
   * the expression, time zone, workflow and input are checked first (400).
   */
  async create(tenantId: string, command: CreateScheduleCommand): Promise<ScheduleView> {
    const tenant = await this.#activeTenant(tenantId);
    const timezone = command.timezone ?? 'UTC';
    const checked = this.#checkDefinition(tenant, {
      workflow: command.workflow,
      expression: command.expression,
      timezone,
      input: command.input ?? {},
    });
    const record = await this.#deps.store.insertWithinLimit(
      {
        scheduleId: randomUUID(),
        tenantId,
        workflow: checked.workflow,
        expression: command.expression,
        timezone,
        input: checked.input,
        state: command.state ?? 'enabled',
      },
      effectiveLimits(tenant.config).maxSchedules,
    );
    try {
      await this.#deps.trigger.put(triggered(record));
    } catch (error) {
      // Not created, as the client is told: a retry must not leave two schedules behind.
      await this.#deps.store.delete(tenantId, record.scheduleId).catch(() => undefined);
      throw error;
    }
    return this.#view(record);
  }

  async get(tenantId: string, scheduleId: string): Promise<ScheduleView> {
    await this.#knownTenant(tenantId);
    return this.#view(await this.#require(tenantId, scheduleId));
  }

  /** One page of the tenant's schedules, oldest first; `next` is where the following page starts. */
  async list(
    tenantId: string,
    options: { readonly limit: number; readonly after?: number | undefined },
  ): Promise<{ schedules: ScheduleView[]; next: number | undefined }> {
    await this.#knownTenant(tenantId);
    const page = await this.#deps.store.list(tenantId, options);
    return { schedules: page.schedules.map((record) => this.#view(record)), next: page.next };
  }

  /** Pauses, resumes or redefines a schedule of an active tenant; what changes is checked as on create. */
  async update(tenantId: string, scheduleId: string, command: UpdateScheduleCommand): Promise<ScheduleView> {
    const tenant = await this.#activeTenant(tenantId);
    const current = await this.#require(tenantId, scheduleId);
    const checked = this.#checkDefinition(tenant, {
      workflow: command.workflow ?? current.workflow,
      expression: command.expression ?? current.expression,
      timezone: command.timezone ?? current.timezone,
      input: command.input ?? current.input,
    });
    const updated = await this.#deps.store.update(tenantId, scheduleId, {
      ...command,
      // The input as the (possibly new) workflow's schema parsed it.
      input: command.input === undefined && command.workflow === undefined ? undefined : checked.input,
    });
    if (updated === undefined) {
      throw new ScheduleNotFoundError(tenantId, scheduleId);
    }
    await this.#deps.trigger.put(triggered(updated));
    return this.#view(updated);
  }

  /**
   * Deletes a schedule (its trigger first, then its row). A tenant being onboarded or offboarded
   * gets 423, as for reads; an inactive one may still delete.
   */
  async delete(tenantId: string, scheduleId: string): Promise<void> {
    await this.#knownTenant(tenantId);
    await this.#require(tenantId, scheduleId);
    await this.#deps.trigger.delete(tenantId, scheduleId);
    await this.#deps.store.delete(tenantId, scheduleId);
  }

  /**
   * Starts the workflow a schedule fires, once per (schedule, scheduled time), through the same
   * ExecutionService as the API. Never throws for what is expected (a deleted or paused schedule,
   * an inactive tenant, a limit reached, a workflow or input that no longer fits): in AWS a throw
   * makes the Scheduler deliver again. What it did is recorded and answered; a repeated delivery
   * answers the first one's record and starts nothing.
   */
  async fire(firing: ScheduleFiring): Promise<FireResult> {
    const { tenantId, scheduleId, scheduledTime } = firing;
    const base = { scheduleId, scheduledTime };
    if (!UUID.test(scheduleId) || Number.isNaN(scheduledTime.getTime())) {
      this.#deps.logger.warn('ignored a firing that names no schedule', { tenantId, scheduleId });
      return { outcome: 'not_found', ...base };
    }
    const schedule = await this.#deps.store.get(tenantId, scheduleId);
    if (schedule === undefined) {
      this.#deps.logger.info('a deleted schedule fired; nothing to start', { tenantId, scheduleId });
      return { outcome: 'not_found', ...base };
    }
    const recorded = await this.#deps.store.getFiring(scheduleId, scheduledTime);
    if (recorded !== undefined) {
      return recorded;
    }
    if (schedule.state === 'paused') {
      return { outcome: 'paused', ...base };
    }
    const tenant = await this.#deps.registry.get(tenantId);
    if (tenant === undefined) {
      return { outcome: 'not_found', ...base };
    }
    if (tenant.status !== 'active') {
      return this.#record(schedule, scheduledTime, {
        outcome: 'skipped',
        reason: `Tenant '${tenantId}' is ${tenant.status}: no work runs for it`,
      });
    }
    const executionId = firingExecutionId(scheduleId, scheduledTime);
    try {
      await this.#deps.executions.start(
        tenantId,
        { workflow: schedule.workflow, input: schedule.input },
        { executionId },
      );
    } catch (error) {
      const reason = skipReason(error);
      if (reason === undefined) {
        throw error;
      }
      return this.#record(schedule, scheduledTime, { outcome: 'skipped', reason });
    }
    return this.#record(schedule, scheduledTime, { outcome: 'started', executionId });
  }

  /** The firings of one schedule, newest first. */
  async firings(tenantId: string, scheduleId: string, limit = 20): Promise<FiringRecord[]> {
    await this.#knownTenant(tenantId);
    await this.#require(tenantId, scheduleId);
    return this.#deps.store.listFirings(tenantId, scheduleId, limit);
  }

  /**
   * Puts every schedule's trigger again from its row (of one tenant, or all): what converges a
   * trigger lost to a crash between a write and its put, and what the local timer loads at
   * start-up. Answers how many were put; one that fails is logged and the rest go on.
   */
  async resync(tenantId?: string): Promise<{ put: number; failed: number }> {
    if (tenantId !== undefined) {
      assertValidTenantId(tenantId);
    }
    let put = 0;
    let failed = 0;
    for await (const record of this.#deps.store.all(tenantId)) {
      try {
        await this.#deps.trigger.put(triggered(record));
        put++;
      } catch (error) {
        failed++;
        this.#deps.logger.error('could not put a schedule trigger', {
          tenantId: record.tenantId,
          scheduleId: record.scheduleId,
          error,
        });
      }
    }
    return { put, failed };
  }

  /** Offboarding's step: see {@link removeTenantSchedules}. */
  removeTenantSchedules(tenantId: string): Promise<number> {
    return removeTenantSchedules(this.#deps, tenantId);
  }

  #checkDefinition(
    tenant: TenantInfo,
    definition: { workflow: string; expression: string; timezone: string; input: JsonValue },
  ): { workflow: string; input: JsonValue } {
    const reasons: string[] = [];
    try {
      parseScheduleExpression(definition.expression);
    } catch (error) {
      if (!(error instanceof ValidationError)) {
        throw error;
      }
      reasons.push(...error.reasons);
    }
    if (!isTimeZone(definition.timezone)) {
      reasons.push(
        `body.timezone: '${definition.timezone}' is not an IANA time zone (e.g. 'UTC', 'Europe/Paris', 'America/New_York')`,
      );
    }
    const workflow = this.#deps.workflows.get(definition.workflow);
    if (workflow === undefined) {
      reasons.push(
        `body.workflow: '${definition.workflow}' is not a registered workflow (GET /workflows lists them)`,
      );
    }
    if (reasons.length > 0) {
      throw new ValidationError('Invalid request', reasons);
    }
    const limit = effectiveLimits(tenant.config).maxInputBytes;
    const inputBytes = Buffer.byteLength(JSON.stringify(definition.input));
    if (inputBytes > limit) {
      throw new PayloadTooLargeError(
        `The input is ${inputBytes} bytes as JSON; tenant '${tenant.tenantId}' allows at most ${limit} (limits.maxInputBytes)`,
      );
    }
    // Checked now, so a schedule never fires an input its workflow refuses.
    return {
      workflow: definition.workflow,
      input: parseWorkflowInput(workflow as NonNullable<typeof workflow>, definition.input),
    };
  }

  async #record(
    schedule: ScheduleRecord,
    scheduledTime: Date,
    outcome: Parameters<ScheduleStore['recordFiring']>[3],
  ): Promise<FireResult> {
    const recorded = await this.#deps.store.recordFiring(
      schedule.tenantId,
      schedule.scheduleId,
      scheduledTime,
      outcome,
    );
    const log = outcome.outcome === 'started' ? this.#deps.logger.info : this.#deps.logger.warn;
    log.call(this.#deps.logger, `schedule fired: ${outcome.outcome}`, {
      tenantId: schedule.tenantId,
      scheduleId: schedule.scheduleId,
      scheduledTime: scheduledTime.toISOString(),
      ...outcome,
    });
    return recorded ?? { outcome: 'not_found', scheduleId: schedule.scheduleId, scheduledTime };
  }

  async #require(tenantId: string, scheduleId: string): Promise<ScheduleRecord> {
    const record = UUID.test(scheduleId) ? await this.#deps.store.get(tenantId, scheduleId) : undefined;
    if (record === undefined) {
      throw new ScheduleNotFoundError(tenantId, scheduleId);
    }
    return record;
  }

  #view(record: ScheduleRecord): ScheduleView {
    const { anchoredAt, ...shown } = record;
    let nextDueAt: Date | null = null;
    if (record.state === 'enabled') {
      try {
        nextDueAt =
          nextDueTime(parseScheduleExpression(record.expression), record.timezone, this.#now(), anchoredAt) ??
          null;
      } catch {
        // A row written by an older rule set: shown without a due time rather than not at all.
      }
    }
    return { ...shown, nextDueAt };
  }

  /** A tenant whose schedules may be read (or deleted): active or inactive, as for executions. */
  async #knownTenant(tenantId: string): Promise<TenantInfo> {
    assertValidTenantId(tenantId);
    const tenant = await this.#deps.registry.get(tenantId);
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

/**
 * Deletes every schedule of a tenant, each trigger before its row, so a crash midway leaves rows
 * that a repeated call finds and finishes: what offboarding runs before the tenant's schema goes.
 * Answers how many it deleted.
 */
export async function removeTenantSchedules(
  deps: Pick<ScheduleServiceDependencies, 'store' | 'trigger' | 'logger'>,
  tenantId: string,
): Promise<number> {
  assertValidTenantId(tenantId);
  let removed = 0;
  // Collected first: deleting while paging would skip rows.
  const records: ScheduleRecord[] = [];
  for await (const record of deps.store.all(tenantId)) {
    records.push(record);
  }
  for (const record of records) {
    await deps.trigger.delete(tenantId, record.scheduleId);
    if (await deps.store.delete(tenantId, record.scheduleId)) {
      removed++;
    }
  }
  if (removed > 0) {
    deps.logger.info('deleted the schedules of an offboarded tenant', { tenantId, removed });
  }
  return removed;
}

/** The definition a trigger needs of a schedule. */
function triggered(record: ScheduleRecord): TriggeredSchedule {
  return {
    tenantId: record.tenantId,
    scheduleId: record.scheduleId,
    expression: record.expression,
    timezone: record.timezone,
    enabled: record.state === 'enabled',
    anchoredAt: record.anchoredAt,
  };
}

/** Why a firing starts nothing, for the errors that are expected; `undefined` for the rest (rethrown). */
function skipReason(error: unknown): string | undefined {
  if (error instanceof LimitExceededError) {
    return `Limit reached: ${error.message}`;
  }
  if (
    error instanceof TenantInactiveError ||
    error instanceof TenantNotFoundError ||
    error instanceof WorkflowNotFoundError ||
    error instanceof PayloadTooLargeError ||
    error instanceof ValidationError
  ) {
    return error.message;
  }
  return undefined;
}
