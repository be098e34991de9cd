import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * A check of presented credentials against the configured admin token. The token is digested once;
 * each credential is digested and the two digests compared in constant time, so that neither the
 * token nor its length leaks through timing. With no token configured, nothing matches.
 *
 * @example
 * ```ts
 * const isAdminToken = adminTokenMatcher(config.adminToken);
 * if (!isAdminToken(credential)) {
 *   throw new UnauthenticatedError('The admin token is not valid.');
 * }
 * ```
 */
export function adminTokenMatcher(adminToken: string | undefined): (credential: string) => boolean {
  if (adminToken === undefined) {
    return () => false;
  }
  const expected = sha256(adminToken);
  return (credential) => timingSafeEqual(sha256(credential), expected);
}

function sha256(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
