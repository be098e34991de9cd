import { createHash } from 'node:crypto';
import {
  ConflictException,
  CreateScheduleCommand,
  type CreateScheduleCommandInput,
  DeleteScheduleCommand,
  ResourceNotFoundException,
  type RetryPolicy,
  type SchedulerClient,
  UpdateScheduleCommand,
} from '@aws-sdk/client-scheduler';
import { ConfigurationError } from '../kernel/errors.js';
import { tenantIdSchema } from '../kernel/tenant-id.schema.js';
import { z } from '../kernel/zod.js';
import type { ScheduleFiring, ScheduleTrigger, TriggeredSchedule } from './schedule-trigger.js';

/**
 * The context attribute EventBridge Scheduler replaces, in a target's `Input`, with the time the
 * invocation was scheduled for (ISO 8601, UTC): the same value on every retry of one firing, which
 * is what makes a firing deduplicable.
 */
export const SCHEDULED_TIME_PLACEHOLDER = '<aws.scheduler.scheduled-time>';

/** Scheduler's limits on a schedule's name: 1-64 characters of these. */
export const SCHEDULE_NAME_MAX_LENGTH = 64;
export const SCHEDULE_NAME_PATTERN = /^[0-9a-zA-Z\-_.]{1,64}$/;

/** The readable head of a name: the tenant id, cut to what leaves room for the hash. */
const TENANT_PREFIX_LENGTH = 31;
/** 128 bits of SHA-256: no two (tenant, schedule) pairs are expected to share a name. */
const HASH_HEX_LENGTH = 32;

/**
 * How Scheduler retries invoking the firing function when the invocation itself fails (throttling,
 * Lambda unavailable). The function is invoked asynchronously, so its own errors are retried by
 * Lambda's async invocation settings, not by this. An hour covers a regional Lambda hiccup; a
 * firing older than that is better reported (dead-letter queue) than run late.
 */
export const DEFAULT_RETRY_POLICY: Required<RetryPolicy> = {
  MaximumEventAgeInSeconds: 3600,
  MaximumRetryAttempts: 10,
};

export interface EventBridgeScheduleTriggerProps {
  readonly client: SchedulerClient;
  /** The stage's schedule group (`tenantflow-<stage>`), created by CDK. */
  readonly groupName: string;
  /** The schedule-firing Lambda's ARN: every schedule's target. */
  readonly targetArn: string;
  /** The role Scheduler assumes to invoke the target (and to write to the dead-letter queue). */
  readonly roleArn: string;
  /** Where Scheduler puts a firing it could not deliver. @default none */
  readonly deadLetterArn?: string | undefined;
  /** @default DEFAULT_RETRY_POLICY */
  readonly retryPolicy?: RetryPolicy | undefined;
}

/**
 * The Scheduler schedule's name of a tenant's schedule: the tenant id (cut to 31 characters, for
 * whoever reads the console) then `-` and 32 hex digits of SHA-256 over the tenant id and schedule
 * id. Always 64 characters at most, of the characters Scheduler allows (tenant ids are
 * `[a-z0-9_]`, and a tenant id holds no `-`, so the head cannot run into the hash), whatever the
 * schedule id holds; two pairs share a name only if SHA-256 collides on 128 bits.
 *
 * @example
 * ```ts
 * scheduleNameFor('acme', 'nightly-report'); // 'acme-' + 32 hex digits
 * ```
 */
export function scheduleNameFor(tenantId: string, scheduleId: string): string {
  // JSON of the pair: an unambiguous encoding, so ('a_b', 'c') and ('a', 'b_c') hash apart.
  const hash = createHash('sha256')
    .update(JSON.stringify([tenantId, scheduleId]))
    .digest('hex')
    .slice(0, HASH_HEX_LENGTH);
  return `${tenantId.slice(0, TENANT_PREFIX_LENGTH)}-${hash}`;
}

/**
 * The target `Input` of a tenant's schedule: its ids, and the scheduled time as Scheduler fills it
 * in at each firing. What the schedule-firing function parses (`functions/schedules/fire.ts`).
 */
export function firingInputFor(tenantId: string, scheduleId: string): string {
  // Written out rather than JSON.stringify'd with the placeholder as a value: it is the same text,
  // and the ids go through JSON.stringify, so no id can break out of its string.
  return `{"tenantId":${JSON.stringify(tenantId)},"scheduleId":${JSON.stringify(scheduleId)},"scheduledTime":"${SCHEDULED_TIME_PLACEHOLDER}"}`;
}

/**
 * The event the schedule-firing function receives: {@link firingInputFor} with the time filled in
 * (ISO 8601, e.g. `2030-01-01T09:00:00Z`), read into a {@link ScheduleFiring}.
 */
export const scheduleFiringEventSchema: z.ZodType<ScheduleFiring> = z
  .object({
    tenantId: tenantIdSchema,
    scheduleId: z.string().min(1, 'must not be empty').max(256, 'must be at most 256 characters'),
    scheduledTime: z
      .string()
      // Anything but a time (the placeholder itself, had Scheduler not replaced it) is refused.
      .regex(
        /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/,
        'must be an ISO 8601 time',
      )
      .refine((text) => !Number.isNaN(Date.parse(text)), 'must be a real time'),
  })
  .transform(({ tenantId, scheduleId, scheduledTime }) => ({
    tenantId,
    scheduleId,
    scheduledTime: new Date(scheduledTime),
  }));

/**
 * {@link ScheduleTrigger} on EventBridge Scheduler: one schedule per tenant schedule, in the stage's
 * schedule group, named by {@link scheduleNameFor}, that invokes the schedule-firing function with
 * {@link firingInputFor} at the definition's times (no flexible window), in its time zone.
 *
 * `put` creates the schedule and, when it exists (ConflictException), updates it with the whole
 * definition; `delete` treats a missing schedule as deleted. Both are therefore safe to repeat.
 *
 * @example
 * ```ts
 * const trigger = new EventBridgeScheduleTrigger({ client: new SchedulerClient({}), groupName: 'tenantflow-prod',
 *   targetArn: 'arn:aws:lambda:eu-west-1:123456789012:function:tenantflow-prod-schedule-fire',
 *   roleArn: 'arn:aws:iam::123456789012:role/tenantflow-prod-scheduler' });
 * await trigger.put({ tenantId: 'acme', scheduleId: 'nightly', expression: 'cron(0 2 * * ? *)', timezone: 'Europe/Paris', enabled: true });
 * await trigger.delete('acme', 'nightly');
 * ```
 */
export class EventBridgeScheduleTrigger implements ScheduleTrigger {
  private readonly props: EventBridgeScheduleTriggerProps;

  constructor(props: EventBridgeScheduleTriggerProps) {
    this.props = props;
  }

  async put(schedule: TriggeredSchedule): Promise<void> {
    const definition = this.definitionOf(schedule);
    try {
      await this.props.client.send(new CreateScheduleCommand(definition));
    } catch (error) {
      if (error instanceof ConflictException) {
        // UpdateSchedule replaces the whole definition: every field is sent again.
        await this.props.client.send(new UpdateScheduleCommand(definition));
        return;
      }
      if (error instanceof ResourceNotFoundException) {
        throw new ConfigurationError(
          `EventBridge Scheduler has no schedule group '${this.props.groupName}' (TENANTFLOW_SCHEDULE_GROUP): it is created with the stack`,
          { cause: error },
        );
      }
      throw error;
    }
  }

  async delete(tenantId: string, scheduleId: string): Promise<void> {
    try {
      await this.props.client.send(
        new DeleteScheduleCommand({
          Name: scheduleNameFor(tenantId, scheduleId),
          GroupName: this.props.groupName,
        }),
      );
    } catch (error) {
      if (error instanceof ResourceNotFoundException) {
        return;
      }
      throw error;
    }
  }

  private definitionOf(schedule: TriggeredSchedule): CreateScheduleCommandInput {
    const { tenantId, scheduleId } = schedule;
    return {
      Name: scheduleNameFor(tenantId, scheduleId),
      GroupName: this.props.groupName,
      // The name is a hash: this says whose schedule it is, for whoever reads the console.
      Description: `tenantflow schedule '${scheduleId}' of tenant '${tenantId}'`.slice(0, 512),
      ScheduleExpression: schedule.expression,
      ScheduleExpressionTimezone: schedule.timezone,
      State: schedule.enabled ? 'ENABLED' : 'DISABLED',
      // Exactly at the time: the firing is keyed on the scheduled time, and a window adds no
      // throughput we need.
      FlexibleTimeWindow: { Mode: 'OFF' },
      Target: {
        Arn: this.props.targetArn,
        RoleArn: this.props.roleArn,
        Input: firingInputFor(tenantId, scheduleId),
        RetryPolicy: this.props.retryPolicy ?? DEFAULT_RETRY_POLICY,
        ...(this.props.deadLetterArn === undefined
          ? {}
          : { DeadLetterConfig: { Arn: this.props.deadLetterArn } }),
      },
    };
  }
}
