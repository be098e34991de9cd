/**
 * The one form of credentials this API reads: `Authorization: Bearer <credential>`, exactly, with
 * the scheme spelled `Bearer`, one space, and a credential of RFC 6750's `b64token` characters with
 * nothing after it. Lenient variants (`bearer`, two spaces, a trailing space) are refused rather
 * than guessed at: a proxy or client that rewrites the header is then caught at once, and what is
 * accepted is exactly what docs/api.md documents.
 */
const BEARER = /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/;

/**
 * The credential of an `Authorization` header of the documented form, or `undefined`.
 *
 * @example
 * ```ts
 * bearerCredential('Bearer tfk_acme_x'); // 'tfk_acme_x'
 * bearerCredential('bearer tfk_acme_x'); // undefined
 * ```
 */
export function bearerCredential(header: string): string | undefined {
  return BEARER.exec(header)?.[1];
}
