import type { APIGatewayAuthorizerResult } from 'aws-lambda';
import { UnauthenticatedError } from '../kernel/errors.js';
import { hashApiKey } from '../tenancy/api-keys.js';
import type { TenantRegistry } from '../tenancy/tenant-registry.js';
import { adminTokenMatcher } from './admin-token.js';
import { bearerCredential } from './bearer.js';

/** Who a request comes from, as the authorizer established it. */
export type Principal = { readonly kind: 'admin' } | { readonly kind: 'tenant'; readonly tenantId: string };

/** What the authorizer passes to the handlers (`requestContext.authorizer`): strings only, as API Gateway requires. */
export interface AuthorizerContext {
  readonly principal: Principal['kind'];
  /** The key's tenant; empty for an admin. */
  readonly tenantId: string;
}

const API_KEY = /^tfk_([a-z][a-z0-9_]*)_[A-Za-z0-9_-]{43}$/;

export interface RequestAuthorizerOptions {
  readonly registry: Pick<TenantRegistry, 'findByApiKeyHash'>;
  /** The admin bearer token, accepted on tenant routes too; `undefined` accepts tenant keys only. */
  readonly adminToken: string | undefined;
  /**
   * How long a key found in the registry is trusted without looking again, in milliseconds: the
   * longest a replaced key (or a deleted tenant's) keeps working on an instance that saw it. Keys
   * that were refused are never cached. 0 looks up every request.
   * @default 0
   */
  readonly cacheTtlMs?: number | undefined;
  /** At most this many keys are kept; the oldest go first. @default 1000 */
  readonly maxCachedKeys?: number | undefined;
  /** The clock, for tests. @default Date.now */
  readonly now?: (() => number) | undefined;
}

interface CachedKey {
  readonly tenantId: string;
  readonly expiresAt: number;
}

/**
 * Authenticates the `Authorization: Bearer <credential>` of a tenant route: a tenant API key
 * (looked up by its SHA-256, the only form stored) or the admin token. It answers who the caller
 * is; which tenant paths that caller may use is the policy's job ({@link policyFor}).
 *
 * @example
 * ```ts
 * const principal = await authorizer.authenticate(headers.Authorization);
 * return policyFor(principal, event.methodArn);
 * ```
 */
export class RequestAuthorizer {
  readonly #registry: RequestAuthorizerOptions['registry'];
  readonly #isAdminToken: (credential: string) => boolean;
  readonly #cacheTtlMs: number;
  readonly #maxCachedKeys: number;
  readonly #now: () => number;
  /** By the key's SHA-256, as the registry stores it; in insertion order, so the oldest go first. */
  readonly #cache = new Map<string, CachedKey>();

  constructor(options: RequestAuthorizerOptions) {
    this.#registry = options.registry;
    this.#isAdminToken = adminTokenMatcher(options.adminToken);
    this.#cacheTtlMs = options.cacheTtlMs ?? 0;
    this.#maxCachedKeys = options.maxCachedKeys ?? 1000;
    this.#now = options.now ?? Date.now;
  }

  async authenticate(authorization: string | undefined): Promise<Principal> {
    if (authorization === undefined || authorization.length === 0) {
      throw new UnauthenticatedError(
        'Missing Authorization header. Send "Authorization: Bearer <tenant API key>".',
      );
    }
    const credential = bearerCredential(authorization);
    if (credential === undefined) {
      throw new UnauthenticatedError(
        'The Authorization header must be exactly "Bearer <tenant API key>": the word Bearer, one space, the key.',
      );
    }
    const keyTenant = API_KEY.exec(credential)?.[1];
    if (keyTenant !== undefined) {
      return { kind: 'tenant', tenantId: await this.#tenantOfKey(hashApiKey(credential), keyTenant) };
    }
    if (this.#isAdminToken(credential)) {
      return { kind: 'admin' };
    }
    throw new UnauthenticatedError('The API key is not valid.');
  }

  async #tenantOfKey(keyHash: string, keyTenant: string): Promise<string> {
    const cached = this.#cache.get(keyHash);
    if (cached !== undefined && cached.expiresAt > this.#now()) {
      return cached.tenantId;
    }
    this.#cache.delete(keyHash);
    const tenant = await this.#registry.findByApiKeyHash(keyHash);
    // The hash is unique, so a match is the key; the tenant check guards against a stale row.
    if (tenant === undefined || tenant.tenantId !== keyTenant) {
      throw new UnauthenticatedError('The API key is not valid.');
    }
    if (this.#cacheTtlMs > 0) {
      if (this.#cache.size >= this.#maxCachedKeys) {
        const oldest = this.#cache.keys().next().value;
        if (oldest !== undefined) {
          this.#cache.delete(oldest);
        }
      }
      this.#cache.set(keyHash, { tenantId: tenant.tenantId, expiresAt: this.#now() + this.#cacheTtlMs });
    }
    return tenant.tenantId;
  }
}

/**
 * The IAM policy an API Gateway REQUEST authorizer returns. A tenant may invoke its own
 * `/tenants/{tenantId}/...` routes and `GET /workflows`, nothing else, so API Gateway itself
 * answers 403 to a key used on another tenant's path, even from its authorizer cache. The policy
 * covers all of the caller's routes (not only `methodArn`), which keeps that cache correct.
 *
 * @example
 * ```ts
 * policyFor({ kind: 'tenant', tenantId: 'acme' }, 'arn:aws:execute-api:eu-west-1:1:api/prod/GET/tenants/acme/metrics');
 * ```
 */
export function policyFor(principal: Principal, methodArn: string): APIGatewayAuthorizerResult {
  const [apiArn, stage] = methodArn.split('/');
  const base = `${apiArn}/${stage}`;
  const resources =
    principal.kind === 'admin'
      ? [`${base}/*`]
      : [
          `${base}/*/tenants/${principal.tenantId}`,
          `${base}/*/tenants/${principal.tenantId}/*`,
          `${base}/GET/workflows`,
        ];
  const context: AuthorizerContext = {
    principal: principal.kind,
    tenantId: principal.kind === 'tenant' ? principal.tenantId : '',
  };
  return {
    principalId: principal.kind === 'tenant' ? `tenant:${principal.tenantId}` : 'admin',
    policyDocument: {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: 'execute-api:Invoke', Resource: resources }],
    },
    context: { ...context },
  };
}
