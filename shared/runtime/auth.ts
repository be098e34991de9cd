import type { AdminAuthOptions } from '../http/admin-auth.middleware.js';
import { RequestAuthorizer } from '../http/request-authorizer.js';
import type { PlatformCore } from './core.js';

/**
 * Who a request is: the API key check of the tenant routes' authorizer, and how the admin routes
 * recognise an admin (a verified IAM identity in AWS, the bearer admin token locally). Reads the
 * registry only: no secret beyond the platform's, no admin login.
 *
 * @example
 * ```ts
 * const { authorizer } = createAuth(core);
 * const principal = await authorizer.authenticate('Bearer tf_acme_…');
 * ```
 */
export function createAuth(core: Pick<PlatformCore, 'config' | 'registry'>): {
  readonly authorizer: RequestAuthorizer;
  readonly adminAuth: AdminAuthOptions;
} {
  const { config } = core;
  return {
    authorizer: new RequestAuthorizer({
      registry: core.registry,
      adminToken: config.adminToken,
      cacheTtlMs: config.authorizerCacheSeconds * 1000,
    }),
    adminAuth: { adminToken: config.adminToken, trustIamIdentity: config.trustIamAdminIdentity },
  };
}
