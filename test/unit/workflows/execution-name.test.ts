import { randomUUID } from 'node:crypto';
import { TENANT_ID_MAX_LENGTH } from '@tenantflow/shared/kernel/tenant-id';
import {
  EXECUTION_NAME_TENANT_CHARS,
  executionNameFor,
  legacyExecutionNameFor,
  MAX_EXECUTION_NAME_LENGTH,
} from '@tenantflow/shared/workflows/execution-name';
import { describe, expect, it } from 'vitest';

describe('executionNameFor', () => {
  it('names an execution <tenantId>-<executionId>', () => {
    const executionId = randomUUID();

    expect(executionNameFor({ tenantId: 'acme', executionId })).toBe(`acme-${executionId}`);
  });

  it('keeps a name within 80 characters for the longest tenant id, cutting the id to its first 43', () => {
    const tenantId = `t${'x'.repeat(TENANT_ID_MAX_LENGTH - 1)}`;
    const executionId = randomUUID();

    const name = executionNameFor({ tenantId, executionId });

    expect(tenantId).toHaveLength(58);
    expect(name.length).toBeLessThanOrEqual(MAX_EXECUTION_NAME_LENGTH);
    expect(name).toHaveLength(80);
    expect(EXECUTION_NAME_TENANT_CHARS).toBe(43);
    expect(name).toBe(`${tenantId.slice(0, 43)}-${executionId}`);
  });

  it('keeps a 43-character tenant id whole', () => {
    const tenantId = `a${'b'.repeat(42)}`;
    const executionId = randomUUID();

    expect(executionNameFor({ tenantId, executionId })).toBe(`${tenantId}-${executionId}`);
  });

  it('depends on the handle alone, so a retried start reuses the name', () => {
    const handle = { workflow: 'etl', tenantId: 'acme', executionId: randomUUID() };
    const sameIds = { tenantId: 'acme', executionId: handle.executionId };

    expect(executionNameFor(sameIds)).toBe(executionNameFor(handle));
  });

  it('holds only the characters Step Functions allows in a name', () => {
    const name = executionNameFor({ tenantId: 'acme_2_corp', executionId: randomUUID() });

    expect(name).toMatch(/^[a-z0-9_-]+$/);
  });
});

describe('legacyExecutionNameFor', () => {
  it('is the bare execution id, as executions were named before names carried the tenant id', () => {
    const executionId = randomUUID();

    expect(legacyExecutionNameFor({ executionId })).toBe(executionId);
  });
});
