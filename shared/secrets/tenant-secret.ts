import { TenantflowError, ValidationError } from '../kernel/errors.js';
import { z } from '../kernel/zod.js';
import type { TenantSecret } from './secret-store.js';

/**
 * A stored tenant secret could not be read as a {@link TenantSecret}: not JSON, a binary secret,
 * or a field missing or of the wrong type. A 500: the store, not the request, is broken. The
 * message names the fields at fault, never their values, so the password cannot leak through it.
 */
export class MalformedSecretError extends TenantflowError {
  readonly code: string = 'SECRET_MALFORMED';
  readonly statusCode: number = 500;

  constructor(
    readonly tenantId: string,
    readonly reference: string,
    readonly reasons: readonly string[],
  ) {
    super(`The stored secret of tenant '${tenantId}' (${reference}) is malformed: ${reasons.join('; ')}`);
  }
}

const tenantSecretSchema = z.object({
  engine: z.literal('postgres'),
  host: z.string().min(1),
  port: z.number().int().min(1).max(65_535),
  username: z.string().min(1),
  password: z.string().min(1),
  dbname: z.string().min(1),
  schema: z.string().min(1),
}) satisfies z.ZodType<TenantSecret>;

/**
 * Why `value` is not a {@link TenantSecret}; empty when it is one. Each reason names a field and
 * what was expected, never the value found, because the value may be the password.
 *
 * @example
 * ```ts
 * tenantSecretProblems({ ...secret, port: '5432' }); // ['port: Invalid input: expected number, received string']
 * ```
 */
export function tenantSecretProblems(value: unknown): string[] {
  const parsed = tenantSecretSchema.safeParse(value);
  if (parsed.success) {
    return [];
  }
  // zod v4 issues carry no input unless asked to, and we only keep path and message anyway.
  return parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
}

/**
 * Parses the JSON text of a stored secret. Throws a {@link MalformedSecretError} that names the
 * bad fields. `JSON.parse`'s own error is deliberately dropped, not kept as the cause: its message
 * quotes the text around the syntax error, which may be the password.
 *
 * @example
 * ```ts
 * const secret = parseTenantSecret(text, 'acme', '/path/to/acme.json');
 * ```
 */
export function parseTenantSecret(text: string, tenantId: string, reference: string): TenantSecret {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new MalformedSecretError(tenantId, reference, ['not valid JSON']);
  }
  const parsed = tenantSecretSchema.safeParse(value);
  if (!parsed.success) {
    throw new MalformedSecretError(tenantId, reference, tenantSecretProblems(value));
  }
  // Frozen so that a caller cannot change the copy other callers get from the cache.
  return Object.freeze(parsed.data);
}

/**
 * Serializes a secret for storage after checking it, so that a bug upstream (a port as a string,
 * say) is a 400 at `put` rather than a malformed secret found later by `get`.
 *
 * @example
 * ```ts
 * const text = serializeTenantSecret('acme', secret);
 * ```
 */
export function serializeTenantSecret(tenantId: string, secret: TenantSecret): string {
  const problems = tenantSecretProblems(secret);
  if (problems.length > 0) {
    throw new ValidationError(`Invalid secret for tenant '${tenantId}'`, problems);
  }
  // Only the known fields, in the RDS order, so nothing else a caller put on the object is stored.
  const { engine, host, port, username, password, dbname, schema } = secret;
  return JSON.stringify({ engine, host, port, username, password, dbname, schema });
}
