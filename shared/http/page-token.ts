import { z } from '../kernel/zod.js';

/** The one reason a token that does not decode to a position of this list is refused with. */
const NOT_OUR_TOKEN = 'is not a token this API returned';

/** Far more than any position we encode; a longer string is refused before it is decoded. */
const MAX_TOKEN_LENGTH = 512;

/**
 * The `nextToken` of a paged list: the position the next page starts after (the last item's
 * keyset key), as base64url JSON `{"after": …}`, the form the executions list hands out. Opaque to
 * clients, so the paging behind it can change without breaking them.
 *
 * @example
 * ```ts
 * const page = await registry.listPage({ limit: 50 });
 * return jsonResponse(200, { tenants: page.tenants, nextToken: encodePageToken(page.next) });
 * ```
 */
export function encodePageToken(after: unknown): string | undefined {
  return after === undefined ? undefined : Buffer.from(JSON.stringify({ after })).toString('base64url');
}

/**
 * The query parameter a paged route takes its `nextToken` in: it decodes the token and checks the
 * position in it with `position`, the schema of what {@link encodePageToken} was given, so a forged
 * or garbled token is a 400 (`query.nextToken: is not a token this API returned`) and never reaches
 * SQL or an error message. Parses to the position itself.
 *
 * @example
 * ```ts
 * const query = z.strictObject({ nextToken: pageTokenSchema(tenantIdSchema).optional() });
 * query.parse({ nextToken: encodePageToken('acme') }); // { nextToken: 'acme' }
 * ```
 */
export function pageTokenSchema<P extends z.ZodType>(position: P) {
  return z
    .string()
    .max(MAX_TOKEN_LENGTH, NOT_OUR_TOKEN)
    .transform(function decodePageToken(token, ctx): z.output<P> {
      const parsed = position.safeParse(decodedPosition(token));
      if (!parsed.success) {
        ctx.addIssue({ code: 'custom', message: NOT_OUR_TOKEN });
        return z.NEVER;
      }
      return parsed.data as z.output<P>;
    });
}

/** What `{"after": …}` holds, or `undefined` when the token is not base64url JSON of that shape. */
function decodedPosition(token: string): unknown {
  try {
    const decoded: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    return typeof decoded === 'object' && decoded !== null && 'after' in decoded ? decoded.after : undefined;
  } catch {
    return undefined;
  }
}
