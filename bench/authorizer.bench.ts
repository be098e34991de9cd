import { RequestAuthorizer } from '@tenantflow/shared/http/request-authorizer';
import type { LocalPlatform } from '../local/local-platform.js';
import { benchTenantId, countDatabaseWork, type Distribution, distribution } from './support.js';

export interface AuthorizerBenchmarkResult {
  readonly calls: number;
  readonly cacheSeconds: number;
  /** Round trips per call with the platform's authorizer, its key cache warm. */
  readonly roundTrips: number;
  /** The same with the cache off (`TENANTFLOW_AUTHORIZER_CACHE_SECONDS=0`): one registry read per call. */
  readonly uncachedRoundTrips: number;
  readonly cached: Distribution;
  readonly uncached: Distribution;
}

/**
 * The REQUEST authorizer of the tenant routes, as API Gateway calls it with its own cache off (TTL
 * 0, so every request reaches it): the round trips and time per call of the platform's authorizer
 * (`createAuth`, with its key cache) against one with the cache off, for a tenant's API key.
 */
export async function benchmarkAuthorizer(
  local: LocalPlatform,
  adminUrl: string,
  suffix: string,
  calls: number,
): Promise<AuthorizerBenchmarkResult> {
  const { platform } = local;
  const tenantId = benchTenantId('auth', 0, suffix);
  const { apiKey } = await platform.tenantAdmin.register({ tenantId, name: tenantId });
  await platform.lifecycleOrchestrator.drain();
  const header = `Bearer ${apiKey}`;
  const uncachedAuthorizer = new RequestAuthorizer({
    registry: platform.registry,
    adminToken: undefined,
    cacheTtlMs: 0,
  });
  const timedCalls = async (authorizer: Pick<RequestAuthorizer, 'authenticate'>) => {
    const samples: number[] = [];
    for (let index = 0; index < calls; index += 1) {
      const began = performance.now();
      const principal = await authorizer.authenticate(header);
      samples.push(performance.now() - began);
      if (principal.kind !== 'tenant' || principal.tenantId !== tenantId) {
        throw new Error(`the key authenticated as ${JSON.stringify(principal)}`);
      }
    }
    return samples;
  };
  // Warm: the cache holds the key, the pool is open.
  await timedCalls(platform.authorizer);
  await timedCalls(uncachedAuthorizer);
  const cached = await countDatabaseWork(adminUrl, () => timedCalls(platform.authorizer));
  const uncached = await countDatabaseWork(adminUrl, () => timedCalls(uncachedAuthorizer));
  return {
    calls,
    cacheSeconds: platform.config.authorizerCacheSeconds,
    roundTrips: cached.roundTrips / calls,
    uncachedRoundTrips: uncached.roundTrips / calls,
    cached: distribution(cached.result),
    uncached: distribution(uncached.result),
  };
}
