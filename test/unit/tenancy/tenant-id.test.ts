import { ValidationError } from '@tenantflow/shared/kernel/errors';
import {
  assertValidTenantId,
  TENANT_ID_MAX_LENGTH,
  validateTenantId,
} from '@tenantflow/shared/kernel/tenant-id';
import { describe, expect, it } from 'vitest';

describe('validateTenantId', () => {
  it.each(['acme_corp', 'client123', 'tenant_a', 'a', 'x'.repeat(TENANT_ID_MAX_LENGTH)])(
    'accepts %j',
    (id) => {
      expect(validateTenantId(id)).toEqual([]);
    },
  );

  it.each([
    ['', /must not be empty/],
    ['123tenant', /must start with a lowercase letter/],
    ['tenant-name', /only lowercase letters, digits and underscores/],
    ['tenant name', /only lowercase letters, digits and underscores/],
    ['public', /'public' is a reserved name/],
    ['pg_temp', /must not start with 'pg_'/],
    ['_tenant', /must start with a lowercase letter/],
    ['tenant.name', /only lowercase letters, digits and underscores/],
    ['Acme', /must start with a lowercase letter/],
    ['information_schema', /reserved/],
    ['pg_catalog', /pg_/],
    ['pg_toast', /pg_/],
    ['tenantflow', /reserved/],
    ['x'.repeat(TENANT_ID_MAX_LENGTH + 1), /at most 58 characters \(got 59\)/],
  ])('rejects %j', (id, reason) => {
    const reasons = validateTenantId(id);
    expect(reasons.some((r) => reason.test(r))).toBe(true);
  });

  it.each([
    "acme'; DROP SCHEMA tenantflow CASCADE; --",
    'acme" OR "1"="1',
    'acme;SELECT pg_sleep(10)',
    'acme/*comment*/',
    'a\u0000b',
  ])('rejects the SQL-injection string %j', (id) => {
    expect(validateTenantId(id)).not.toEqual([]);
  });

  it.each(['café', 'naïve_tenant', 'тенант', 'ａｃｍｅ', 'acme\u200b'])(
    'rejects the non-ASCII id %j',
    (id) => {
      expect(validateTenantId(id)).not.toEqual([]);
    },
  );

  it.each([undefined, null, 42, {}, ['acme']])('rejects the non-string %j', (id) => {
    expect(validateTenantId(id)).toEqual(['must be a string']);
  });

  it('reports every reason at once', () => {
    const reasons = validateTenantId(`pg_${'X'.repeat(60)}`);
    expect(reasons).toHaveLength(3);
  });
});

describe('assertValidTenantId', () => {
  it('returns quietly for a valid id', () => {
    expect(() => assertValidTenantId('acme_corp')).not.toThrow();
  });

  it('throws a ValidationError that lists every reason', () => {
    const id = `pg_${'A'.repeat(60)}`;
    let caught: unknown;
    try {
      assertValidTenantId(id);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ValidationError);
    const error = caught as ValidationError;
    expect(error.statusCode).toBe(400);
    expect(error.code).toBe('VALIDATION_FAILED');
    expect(error.reasons).toEqual(validateTenantId(id));
    for (const reason of error.reasons) {
      expect(error.message).toContain(reason);
    }
  });
});
