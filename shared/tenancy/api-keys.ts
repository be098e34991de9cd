import { createHash, randomBytes } from 'node:crypto';

/**
 * A tenant API key: `tfk_<tenantId>_<43 random base64url characters>` (256 bits). The tenant id
 * in the key lets the authorizer find the tenant without a scan; only the SHA-256 of the key is
 * stored, which is enough for a random key of this length (no salt or slow hash needed).
 */
export function generateApiKey(tenantId: string): string {
  return `tfk_${tenantId}_${randomBytes(32).toString('base64url')}`;
}

export function hashApiKey(apiKey: string): string {
  return createHash('sha256').update(apiKey, 'utf8').digest('hex');
}
