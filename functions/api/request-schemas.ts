/**
 * What each API route accepts, as the zod schemas its handler validates with. The handlers
 * (`tenants.ts`, `executions.ts`, ...) and the route table (`routes.ts`) both use these, so what
 * is validated and what is documented cannot drift apart.
 */
import { pageTokenSchema, type RequestSchemas } from '@tenantflow/shared/http';
import { tenantIdSchema } from '@tenantflow/shared/kernel/tenant-id.schema';
import { z } from '@tenantflow/shared/kernel/zod';
import { recoveryEventCursorSchema } from '@tenantflow/shared/recovery/recovery-history';
import {
  jsonBytes,
  MAX_METADATA_BYTES,
  tenantConfigPatchSchema,
  tenantConfigSchema,
} from '@tenantflow/shared/tenancy/tenant-config';
import { TENANT_STATUSES } from '@tenantflow/shared/tenancy/tenant-registry';
import { EXECUTION_STATUSES } from '@tenantflow/shared/workflows/execution-store';
import { executionIdSchema } from '@tenantflow/shared/workflows/invocations';

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
