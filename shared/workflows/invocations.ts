import { ValidationError } from '../kernel/errors.js';
import { tenantIdSchema } from '../kernel/tenant-id.schema.js';
import { z } from '../kernel/zod.js';
import { TASK_ID_PATTERN } from './task.js';

/** Execution ids are UUIDs: unique across tenants, as the orchestrator's execution names must be. */
export const executionIdSchema = z.uuid({ message: 'must be a UUID' });

/** The payload of the run-task state (see `compileToAsl`). */
export const taskInvocationSchema = z.object({
  tenantId: tenantIdSchema,
  executionId: executionIdSchema,
  taskId: z.string().regex(TASK_ID_PATTERN, 'must be a task id'),
});

/** The payload of the finalize and record-failure states. */
export const finalizeInvocationSchema = z.object({
  tenantId: tenantIdSchema,
  executionId: executionIdSchema,
  outcome: z.enum(['succeeded', 'failed', 'aborted']),
  error: z.string().max(256).optional(),
  cause: z.string().max(32_768).optional(),
});

/** Parses a Step Functions payload; a malformed one is a `ValidationError`, never retried. */
export function parseInvocation<S extends z.ZodType>(schema: S, payload: unknown): z.output<S> {
  const parsed = schema.safeParse(payload);
  if (!parsed.success) {
    throw new ValidationError(
      'Invalid invocation payload',
      parsed.error.issues.map((issue) => `${issue.path.join('.') || '(payload)'}: ${issue.message}`),
    );
  }
  return parsed.data;
}
