import { ValidationError } from '../kernel/errors.js';
import { z } from '../kernel/zod.js';

/**
 * Per-tenant configuration, set at `POST /tenants`, changed with `PATCH /tenants/{id}`, and handed
 * to every task as `ctx.tenant.config`:
 * - `settings`: free-form JSON the application reads (e.g. an allow-list of destinations);
 * - `features`: on/off flags;
 * - `limits`: numbers. The platform enforces the ones it knows ({@link PLATFORM_LIMITS}); tasks may
 *   read others (e.g. `max_items_per_workflow`).
 */
export interface TenantConfig {
  readonly settings: Readonly<Record<string, unknown>>;
  readonly features: Readonly<Record<string, boolean>>;
  readonly limits: Readonly<Record<string, number>>;
}

/** The limits the platform itself enforces, with the values used when a tenant sets none. */
export const PLATFORM_LIMITS = {
  /** Executions `pending` or `running` at once; one more start gets 429. */
  maxConcurrentExecutions: 25,
  /** Size of an execution's input as JSON; a larger one gets 413. */
  maxInputBytes: 256 * 1024,
  /** Schedules defined at once (enabled or paused); one more gets 429. */
  maxSchedules: 50,
} as const;

export type PlatformLimits = { readonly [K in keyof typeof PLATFORM_LIMITS]: number };

/** A configuration bigger than this is refused: it is read on every task invocation. */
export const MAX_CONFIG_BYTES = 16 * 1024;
/** Metadata bigger than this is refused: it lives in every registry row and response. */
export const MAX_METADATA_BYTES = 16 * 1024;

/** Size as stored and sent: the UTF-8 bytes of the JSON text. */
export function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value));
}

/** A patch whose merged result would pass the size limits (checked on the result, atomically). */
export function profileTooLarge(): ValidationError {
  return new ValidationError('Invalid request', [
    `body: after this patch, metadata would exceed ${MAX_METADATA_BYTES} bytes or config ${MAX_CONFIG_BYTES} bytes as JSON; remove keys (set them to null) first`,
  ]);
}

export function emptyTenantConfig(): TenantConfig {
  return { settings: {}, features: {}, limits: {} };
}

/** The limits in force for a tenant: its own where set, the platform defaults otherwise. */
export function effectiveLimits(config: TenantConfig): PlatformLimits {
  return {
    maxConcurrentExecutions: config.limits.maxConcurrentExecutions ?? PLATFORM_LIMITS.maxConcurrentExecutions,
    maxInputBytes: config.limits.maxInputBytes ?? PLATFORM_LIMITS.maxInputBytes,
    maxSchedules: config.limits.maxSchedules ?? PLATFORM_LIMITS.maxSchedules,
  };
}

const limitValue = z.number().finite('must be a finite number').nonnegative('must not be negative');
const knownLimits = {
  maxConcurrentExecutions: z.number().int('must be a whole number').min(1).max(10_000),
  maxInputBytes: z
    .number()
    .int('must be a whole number')
    .min(2)
    .max(10 * 1024 * 1024),
  maxSchedules: z.number().int('must be a whole number').min(0).max(10_000),
};
const fitsSize = (value: unknown) => Buffer.byteLength(JSON.stringify(value)) <= MAX_CONFIG_BYTES;

/** A whole configuration, as accepted by `POST /tenants`. */
export const tenantConfigSchema = z
  .strictObject({
    settings: z.record(z.string(), z.unknown()).default({}),
    features: z.record(z.string(), z.boolean()).default({}),
    limits: z.record(z.string(), limitValue).default({}),
  })
  .superRefine((config, issues) => checkKnownLimits(config.limits, issues, ['limits']))
  .refine(fitsSize, { message: `must be at most ${MAX_CONFIG_BYTES} bytes as JSON` });

/**
 * A change to a configuration, as accepted by `PATCH /tenants/{id}`: a JSON Merge Patch (RFC 7396)
 * per section, so `null` removes a key and absent keys stay as they are.
 */
export const tenantConfigPatchSchema = z.strictObject({
  settings: z.record(z.string(), z.unknown()).optional(),
  features: z.record(z.string(), z.boolean().nullable()).optional(),
  limits: z
    .record(z.string(), limitValue.nullable())
    // Refined on the record itself, so the issue path is already inside `limits`.
    .superRefine((limits, issues) => checkKnownLimits(limits, issues, []))
    .optional(),
});

export type TenantConfigPatch = z.infer<typeof tenantConfigPatchSchema>;

/** `at` is where the limits record sits relative to the schema being refined. */
function checkKnownLimits(
  limits: Record<string, number | null>,
  ctx: z.RefinementCtx,
  at: readonly string[],
) {
  for (const [name, schema] of Object.entries(knownLimits)) {
    const value = limits[name];
    if (value === undefined || value === null) {
      continue;
    }
    const parsed = schema.safeParse(value);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        ctx.addIssue({ code: 'custom', path: [...at, name], message: issue.message });
      }
    }
  }
}

/**
 * JSON Merge Patch (RFC 7396): objects merge key by key, `null` deletes, anything else replaces.
 * The PostgreSQL registry does the same in SQL (`tenantflow.jsonb_merge_patch`), so both
 * adapters agree.
 *
 * @example
 * ```ts
 * applyMergePatch({ a: 1, b: { c: 2 } }, { b: { c: null, d: 3 } }); // { a: 1, b: { d: 3 } }
 * ```
 */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch)) {
    return structuredClone(patch);
  }
  const result: Record<string, unknown> = isPlainObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) {
      delete result[key];
    } else {
      // Defined, not assigned: a `__proto__` key from JSON must stay a key, as it does in jsonb,
      // rather than replace the result's prototype.
      Object.defineProperty(result, key, {
        value: applyMergePatch(Object.hasOwn(result, key) ? result[key] : undefined, value),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
  }
  return result;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
