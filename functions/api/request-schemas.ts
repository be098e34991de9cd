/**
 * What each API route accepts, as the zod schemas its handler validates with. The handlers
 * (`tenants.ts`, `executions.ts`, ...) and the route table (`routes.ts`) both use these, so what
 * is validated and what is documented cannot drift apart.
 */
import { pageTokenSchema, type RequestSchemas } from '@tenantflow/shared/http';
import { tenantIdSchema } from '@tenantflow/shared/kernel/tenant-id.schema';
import { z } from '@tenantflow/shared/kernel/zod';
import { recoveryEventCursorSchema } from '@tenantflow/shared/recovery/recovery-history';
import { scheduleExpressionIssues } from '@tenantflow/shared/schedules/schedule-expression';
import { SCHEDULE_STATES } from '@tenantflow/shared/schedules/schedule-store';
import {
  jsonBytes,
  MAX_METADATA_BYTES,
  tenantConfigPatchSchema,
  tenantConfigSchema,
} from '@tenantflow/shared/tenancy/tenant-config';
import { TENANT_STATUSES } from '@tenantflow/shared/tenancy/tenant-registry';
import { EXECUTION_STATUSES } from '@tenantflow/shared/workflows/execution-store';
import { executionIdSchema } from '@tenantflow/shared/workflows/invocations';

/** A route that reads no parameters and no body (`GET /health`, `GET /workflows`). */
export const noInput = {} satisfies RequestSchemas;

export const tenantPath = { pathParameters: z.object({ tenantId: tenantIdSchema }) } satisfies RequestSchemas;

/** A page size: 1–100, `default` when absent. */
export const pageLimit = (defaultLimit: number) =>
  z.coerce.number().int('must be a whole number').min(1).max(100).default(defaultLimit);

export const listTenants = {
  queryStringParameters: z.strictObject({
    status: z.enum(TENANT_STATUSES, { message: `must be one of ${TENANT_STATUSES.join(', ')}` }).optional(),
    limit: pageLimit(50),
    nextToken: pageTokenSchema(tenantIdSchema).optional(),
  }),
} satisfies RequestSchemas;

export const listRecoveryEvents = {
  queryStringParameters: z.strictObject({
    tenantId: tenantIdSchema.optional(),
    limit: pageLimit(50),
    nextToken: pageTokenSchema(recoveryEventCursorSchema).optional(),
  }),
} satisfies RequestSchemas;

const tenantName = z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters');
const tenantMetadata = z
  .record(z.string(), z.unknown())
  .refine((metadata) => jsonBytes(metadata) <= MAX_METADATA_BYTES, {
    message: `must be at most ${MAX_METADATA_BYTES} bytes as JSON`,
  });

export const registerTenant = {
  body: z.strictObject({
    tenantId: tenantIdSchema,
    name: tenantName,
    metadata: tenantMetadata.optional(),
    config: tenantConfigSchema.optional(),
  }),
} satisfies RequestSchemas;

export const updateTenant = {
  ...tenantPath,
  body: z
    .strictObject({
      name: tenantName.optional(),
      metadata: tenantMetadata.optional(),
      config: tenantConfigPatchSchema.optional(),
    })
    .refine((patch) => Object.keys(patch).length > 0, {
      message: 'must change at least one of name, metadata, config',
    }),
} satisfies RequestSchemas;

export const startExecution = {
  ...tenantPath,
  body: z.strictObject({
    workflow: z.string().min(1, 'must name a registered workflow (GET /workflows lists them)'),
    input: z.json().default({}),
  }),
} satisfies RequestSchemas;

export const executionPath = {
  pathParameters: z.object({ tenantId: tenantIdSchema, executionId: executionIdSchema }),
} satisfies RequestSchemas;

/** `POST …/executions/{executionId}/cancel`: the execution's path, and no body. */
export const cancelExecution = { ...executionPath } satisfies RequestSchemas;

/** `POST …/executions/{executionId}/rerun`: the execution's path, and no body. */
export const rerunExecution = { ...executionPath } satisfies RequestSchemas;

export const listExecutions = {
  ...tenantPath,
  queryStringParameters: z.strictObject({
    status: z
      .enum(EXECUTION_STATUSES, { message: `must be one of ${EXECUTION_STATUSES.join(', ')}` })
      .optional(),
    limit: z.coerce.number().int('must be a whole number').min(1).max(100).default(20),
    nextToken: z.string().max(512).optional(),
  }),
} satisfies RequestSchemas;

/** A cron() or rate() expression as EventBridge Scheduler writes it; each fault is an issue of its own. */
const scheduleExpression = z
  .string()
  .max(256, 'must be at most 256 characters')
  .superRefine((expression, ctx) => {
    for (const issue of scheduleExpressionIssues(expression)) {
      ctx.addIssue({ code: 'custom', message: issue });
    }
  });
const scheduleState = z.enum(SCHEDULE_STATES, { message: `must be one of ${SCHEDULE_STATES.join(', ')}` });
const scheduleTimezone = z.string().min(1, 'must name an IANA time zone, e.g. Europe/Paris').max(64);
const scheduleWorkflow = z
  .string()
  .min(1, 'must name a registered workflow (GET /workflows lists them)')
  .max(80);

export const createSchedule = {
  ...tenantPath,
  body: z.strictObject({
    workflow: scheduleWorkflow,
    expression: scheduleExpression,
    timezone: scheduleTimezone.default('UTC'),
    input: z.json().default({}),
    state: scheduleState.default('enabled'),
  }),
} satisfies RequestSchemas;

export const schedulePath = {
  pathParameters: z.object({ tenantId: tenantIdSchema, scheduleId: z.uuid({ message: 'must be a UUID' }) }),
} satisfies RequestSchemas;

export const listSchedules = {
  ...tenantPath,
  queryStringParameters: z.strictObject({
    limit: pageLimit(50),
    nextToken: pageTokenSchema(z.number().int().positive()).optional(),
  }),
} satisfies RequestSchemas;

export const updateSchedule = {
  ...schedulePath,
  body: z
    .strictObject({
      workflow: scheduleWorkflow.optional(),
      expression: scheduleExpression.optional(),
      timezone: scheduleTimezone.optional(),
      input: z.json().optional(),
      state: scheduleState.optional(),
    })
    .refine((patch) => Object.keys(patch).length > 0, {
      message: 'must change at least one of workflow, expression, timezone, input, state',
    }),
} satisfies RequestSchemas;
