import type { ExecutionHandle } from './orchestrator.js';

/** Step Functions' limit on an execution name. */
export const MAX_EXECUTION_NAME_LENGTH = 80;

/**
 * The most of a tenant id an execution name keeps: the name is `<tenant>-<executionId>`, and an
 * execution id is a 36-character UUID, so 80 − 36 − 1 = 43 of a tenant id's up to 58 characters.
 */
export const EXECUTION_NAME_TENANT_CHARS = MAX_EXECUTION_NAME_LENGTH - 36 - 1;

/**
 * The orchestrator's name for an execution: `<tenantId>-<executionId>`, the tenant id cut to
 * {@link EXECUTION_NAME_TENANT_CHARS} characters. An operator finds a tenant's executions in the
 * Step Functions console by typing its id.
 *
 * It depends on the handle alone, so a retried start reuses the name (Step Functions deduplicates
 * it) and recovery can find an execution whose start response was lost. A name still proves
 * nothing about whose execution it is (two long tenant ids may share their first 43 characters):
 * adapters keep checking the execution's input (`carriesHandle`). Tenant ids
 * (`^[a-z][a-z0-9_]*$`) and UUIDs only hold characters Step Functions allows in a name.
 *
 * Both adapters name executions with this rule; the one place it is written.
 *
 * @example
 * ```ts
 * executionNameFor({ workflow: 'etl', tenantId: 'acme', executionId: '7c0e…' }); // 'acme-7c0e…'
 * ```
 */
export function executionNameFor(handle: Pick<ExecutionHandle, 'tenantId' | 'executionId'>): string {
  return `${handle.tenantId.slice(0, EXECUTION_NAME_TENANT_CHARS)}-${handle.executionId}`;
}

/**
 * The name executions had before names carried the tenant id: the bare execution id. Executions
 * started then may still be in flight, or stuck for recovery, so adapters that do not find an
 * execution by {@link executionNameFor} look it up by this name too, and never start a duplicate.
 */
export function legacyExecutionNameFor(handle: Pick<ExecutionHandle, 'executionId'>): string {
  return handle.executionId;
}
