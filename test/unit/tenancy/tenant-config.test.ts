import {
  applyMergePatch,
  effectiveLimits,
  emptyTenantConfig,
  MAX_CONFIG_BYTES,
  PLATFORM_LIMITS,
  type TenantConfig,
  tenantConfigPatchSchema,
  tenantConfigSchema,
} from '@tenantflow/shared/tenancy/tenant-config';
import { describe, expect, it } from 'vitest';

/** The issues of a parse that must fail, as `path: message` lines. */
function issuesOf(result: {
  success: boolean;
  error?: { issues: ReadonlyArray<{ path: PropertyKey[]; message: string }> };
}) {
  expect(result.success).toBe(false);
  return (result.error?.issues ?? []).map((issue) => `${issue.path.map(String).join('.')}: ${issue.message}`);
}

describe('tenantConfigSchema', () => {
  it('fills in empty settings, features and limits', () => {
    expect(tenantConfigSchema.parse({})).toEqual(emptyTenantConfig());
    expect(tenantConfigSchema.parse({ features: { beta: true } })).toEqual({
      settings: {},
      features: { beta: true },
      limits: {},
    });
  });

  it('keeps free-form settings, flags and limits as given', () => {
    const config = {
      settings: {
        tier: 'premium',
        allowedDestinations: ['s3://reports'],
        nested: { depth: [1, { two: 2 }] },
      },
      features: { detailed_report: true, beta: false },
      limits: {
        max_items_per_workflow: 10_000,
        ratio: 0.5,
        maxConcurrentExecutions: 10_000,
        maxInputBytes: 2,
      },
    };

    expect(tenantConfigSchema.parse(config)).toEqual(config);
  });

  it('rejects an unknown top-level key', () => {
    expect(issuesOf(tenantConfigSchema.safeParse({ settings: {}, flags: {} }))).toEqual([
      expect.stringMatching(/^: Unrecognized key: "flags"/),
    ]);
  });

  it.each([
    ['a string', 'yes'],
    ['a number', 1],
    ['null', null],
  ])('rejects a feature flag that is %s', (_, value) => {
    expect(issuesOf(tenantConfigSchema.safeParse({ features: { beta: value } }))).toEqual([
      expect.stringMatching(/^features\.beta: /),
    ]);
  });

  it.each([
    ['negative', -1, /must not be negative/],
    ['infinite', Number.POSITIVE_INFINITY, /expected number/],
    ['not a number at all', '10', /expected number/],
  ])('rejects a limit that is %s', (_, value, message) => {
    const issues = issuesOf(tenantConfigSchema.safeParse({ limits: { max_items_per_workflow: value } }));

    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatch(/^limits\.max_items_per_workflow: /);
    expect(issues[0]).toMatch(message);
  });

  it.each([
    ['0', 0, /expected number to be >=1/],
    ['1.5', 1.5, /must be a whole number/],
    ['over 10 000', 10_001, /expected number to be <=10000/],
  ])('rejects maxConcurrentExecutions of %s', (_, value, message) => {
    const issues = issuesOf(tenantConfigSchema.safeParse({ limits: { maxConcurrentExecutions: value } }));

    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatch(/^limits\.maxConcurrentExecutions: /);
    expect(issues[0]).toMatch(message);
  });

  it.each([
    ['1', 1],
    ['a fraction', 1024.5],
    ['over 10 MiB', 10 * 1024 * 1024 + 1],
  ])('rejects maxInputBytes of %s', (_, value) => {
    expect(issuesOf(tenantConfigSchema.safeParse({ limits: { maxInputBytes: value } }))).toEqual([
      expect.stringMatching(/^limits\.maxInputBytes: /),
    ]);
  });

  it(`accepts a configuration of exactly ${MAX_CONFIG_BYTES} bytes as JSON and refuses one byte more`, () => {
    const overhead = Buffer.byteLength(JSON.stringify({ settings: { blob: '' }, features: {}, limits: {} }));
    const atCap = { settings: { blob: 'x'.repeat(MAX_CONFIG_BYTES - overhead) } };
    const overCap = { settings: { blob: 'x'.repeat(MAX_CONFIG_BYTES - overhead + 1) } };

    expect(tenantConfigSchema.safeParse(atCap).success).toBe(true);
    expect(issuesOf(tenantConfigSchema.safeParse(overCap))).toEqual([
      `: must be at most ${MAX_CONFIG_BYTES} bytes as JSON`,
    ]);
  });

  it('counts bytes, not characters, against the size cap', () => {
    const overhead = Buffer.byteLength(JSON.stringify({ settings: { blob: '' }, features: {}, limits: {} }));
    // Each 'é' is one character but two bytes of UTF-8.
    const config = { settings: { blob: 'é'.repeat(MAX_CONFIG_BYTES - overhead) } };

    expect(tenantConfigSchema.safeParse(config).success).toBe(false);
  });

  it('reports a bad known limit and an oversized configuration together', () => {
    const issues = issuesOf(
      tenantConfigSchema.safeParse({
        settings: { blob: 'x'.repeat(MAX_CONFIG_BYTES) },
        limits: { maxConcurrentExecutions: 0 },
      }),
    );

    expect(issues).toEqual([
      expect.stringMatching(/^limits\.maxConcurrentExecutions: /),
      expect.stringMatching(/must be at most/),
    ]);
  });
});

describe('tenantConfigPatchSchema', () => {
  it('accepts null to remove a setting, a flag or a limit', () => {
    const patch = { settings: { tier: null }, features: { beta: null }, limits: { maxInputBytes: null } };

    expect(tenantConfigPatchSchema.parse(patch)).toEqual(patch);
  });

  it('leaves out the sections it is not given', () => {
    expect(tenantConfigPatchSchema.parse({ features: { beta: true } })).toEqual({ features: { beta: true } });
    expect(tenantConfigPatchSchema.parse({})).toEqual({});
  });

  it('rejects an unknown top-level key, a non-boolean flag and a negative limit', () => {
    expect(issuesOf(tenantConfigPatchSchema.safeParse({ flags: {} }))).toEqual([
      expect.stringMatching(/Unrecognized key: "flags"/),
    ]);
    expect(issuesOf(tenantConfigPatchSchema.safeParse({ features: { beta: 'on' } }))).toEqual([
      expect.stringMatching(/^features\.beta: /),
    ]);
    expect(issuesOf(tenantConfigPatchSchema.safeParse({ limits: { quota: -5 } }))).toEqual([
      'limits.quota: must not be negative',
    ]);
  });

  it.each([
    ['maxConcurrentExecutions', 0],
    ['maxConcurrentExecutions', 1.5],
    ['maxInputBytes', 1],
  ])('rejects %s of %s in a patch, at its path under limits', (name, value) => {
    expect(issuesOf(tenantConfigPatchSchema.safeParse({ limits: { [name]: value } }))).toEqual([
      expect.stringMatching(new RegExp(`^limits\\.${name}: `)),
    ]);
  });
});

describe('effectiveLimits', () => {
  it('uses the platform defaults for a tenant that sets no limits', () => {
    expect(effectiveLimits(emptyTenantConfig())).toEqual(PLATFORM_LIMITS);
  });

  it("uses the tenant's own limit where set, and the default for the other", () => {
    const config: TenantConfig = {
      ...emptyTenantConfig(),
      limits: { maxConcurrentExecutions: PLATFORM_LIMITS.maxConcurrentExecutions + 7, other: 3 },
    };

    expect(effectiveLimits(config)).toEqual({
      maxConcurrentExecutions: PLATFORM_LIMITS.maxConcurrentExecutions + 7,
      maxInputBytes: PLATFORM_LIMITS.maxInputBytes,
      maxSchedules: PLATFORM_LIMITS.maxSchedules,
    });
  });

  it('keeps a tenant limit stricter than the default, and returns only the platform limits', () => {
    const config: TenantConfig = {
      ...emptyTenantConfig(),
      limits: { maxConcurrentExecutions: 1, maxInputBytes: 2, max_items_per_workflow: 100 },
    };

    expect(effectiveLimits(config)).toEqual({
      maxConcurrentExecutions: 1,
      maxInputBytes: 2,
      maxSchedules: PLATFORM_LIMITS.maxSchedules,
    });
  });
});

describe('applyMergePatch', () => {
  // RFC 7396, Appendix A.
  it.each([
    [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
    [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
    [{ a: 'b' }, { a: null }, {}],
    [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
    [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
    [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
    [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
    [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
    [
      ['a', 'b'],
      ['c', 'd'],
      ['c', 'd'],
    ],
    [{ a: 'b' }, ['c'], ['c']],
    [{ a: 'foo' }, null, null],
    [{ a: 'foo' }, 'bar', 'bar'],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: 'b', c: null }, { a: 'b' }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ])('merges %j with %j into %j', (target, patch, expected) => {
    expect(applyMergePatch(target, patch)).toEqual(expected);
  });

  it('does the example of its own documentation', () => {
    expect(applyMergePatch({ a: 1, b: { c: 2 } }, { b: { c: null, d: 3 } })).toEqual({ a: 1, b: { d: 3 } });
  });

  it('ignores null for a key the target does not have', () => {
    expect(applyMergePatch({ a: 1 }, { z: null })).toEqual({ a: 1 });
  });

  it('changes neither the target nor the patch, and shares no patch value with the result', () => {
    const target = { settings: { tier: 'basic', keep: { deep: [1] } }, limits: { quota: 1 } };
    const patch = { settings: { tier: null, list: [{ x: 1 }] }, limits: { quota: 2 } };
    const targetBefore = structuredClone(target);
    const patchBefore = structuredClone(patch);

    const result = applyMergePatch(target, patch) as { settings: { list: Array<{ x: number }> } };
    result.settings.list[0] = { x: 99 };

    expect(target).toEqual(targetBefore);
    expect(patch).toEqual(patchBefore);
    expect(result).toEqual({ settings: { keep: { deep: [1] }, list: [{ x: 99 }] }, limits: { quota: 2 } });
  });

  it('patches a whole tenant configuration section by section', () => {
    const current: TenantConfig = {
      settings: { tier: 'standard', allowedDestinations: ['s3://a'] },
      features: { detailed_report: false, beta: true },
      limits: { max_items_per_workflow: 1000, maxConcurrentExecutions: 5 },
    };
    const patch = tenantConfigPatchSchema.parse({
      settings: { tier: 'premium', allowedDestinations: ['s3://a', 's3://b'] },
      features: { beta: null, detailed_report: true },
      limits: { max_items_per_workflow: 10_000, maxConcurrentExecutions: null },
    });

    const patched = applyMergePatch(current, patch) as TenantConfig;

    expect(patched).toEqual({
      settings: { tier: 'premium', allowedDestinations: ['s3://a', 's3://b'] },
      features: { detailed_report: true },
      limits: { max_items_per_workflow: 10_000 },
    });
    expect(effectiveLimits(patched).maxConcurrentExecutions).toBe(PLATFORM_LIMITS.maxConcurrentExecutions);
  });

  it('keeps a "__proto__" key from JSON as a key, as jsonb does, instead of changing the prototype', () => {
    const patch = JSON.parse('{"settings": {"__proto__": {"polluted": true}}}') as unknown;

    const result = applyMergePatch({ settings: { tier: 'basic' } }, patch) as {
      settings: Record<string, unknown>;
    };

    expect(Object.getPrototypeOf(result.settings)).toBe(Object.prototype);
    expect(result.settings.polluted).toBeUndefined();
    expect(JSON.stringify(result)).toBe('{"settings":{"tier":"basic","__proto__":{"polluted":true}}}');
  });
});
