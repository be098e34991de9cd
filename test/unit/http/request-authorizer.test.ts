import middy from '@middy/core';
import { httpErrorMapper } from '@tenantflow/shared/http/error-mapper.middleware';
import { policyFor, RequestAuthorizer } from '@tenantflow/shared/http/request-authorizer';
import { jsonResponse } from '@tenantflow/shared/http/responses';
import { requireTenantAccess } from '@tenantflow/shared/http/tenant-access.middleware';
import { createLogger } from '@tenantflow/shared/logging/logger';
import { generateApiKey, hashApiKey } from '@tenantflow/shared/tenancy/api-keys';
import { MemoryTenantRegistry } from '@tenantflow/shared/testing/memory-tenant-registry';
import type {
  APIGatewayProxyEvent,
  APIGatewayProxyResult,
  APIGatewayRequestAuthorizerEvent,
} from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { createAuthorizerHandler } from '../../../functions/api/authorizer.js';
import { lambdaContext, restEvent } from '../../support/api-gateway-events.js';

const ADMIN_TOKEN = 'unit-admin-token-0123456789abcdef';
const METHOD_ARN = 'arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/GET/tenants/acme/executions';

/** A registry holding tenants `acme` and `acme2`, with their API keys' hashes as provisioning stores them. */
async function registryWithKeys() {
  const registry = new MemoryTenantRegistry();
  const keys: Record<string, string> = {};
  for (const tenantId of ['acme', 'acme2']) {
    await registry.create({ tenantId, name: tenantId, metadata: {}, status: 'provisioning' });
    await registry.claim(tenantId, { owner: 'test', status: 'provisioning', leaseMs: 1000 });
    keys[tenantId] = generateApiKey(tenantId);
    await registry.releaseClaim(tenantId, 'test', {
      status: 'active',
      apiKeyHash: hashApiKey(keys[tenantId]),
    });
  }
  return { registry, keys };
}

/** IAM-style matching of the policy's resources, as API Gateway evaluates them. */
function allowed(policy: ReturnType<typeof policyFor>, arn: string): boolean {
  return policy.policyDocument.Statement.some((statement) =>
    [('Resource' in statement ? statement.Resource : []) ?? []]
      .flat()
      .some((pattern) => new RegExp(`^${pattern.split('*').map(escapeRegExp).join('.*')}$`).test(arn)),
  );
}
const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('RequestAuthorizer', () => {
  it('knows a tenant by its API key, and the admin by the admin token', async () => {
    const { registry, keys } = await registryWithKeys();
    const authorizer = new RequestAuthorizer({ registry, adminToken: ADMIN_TOKEN });
    await expect(authorizer.authenticate(`Bearer ${keys.acme}`)).resolves.toEqual({
      kind: 'tenant',
      tenantId: 'acme',
    });
    await expect(authorizer.authenticate(`Bearer ${keys.acme2}`)).resolves.toEqual({
      kind: 'tenant',
      tenantId: 'acme2',
    });
    await expect(authorizer.authenticate(`Bearer ${ADMIN_TOKEN}`)).resolves.toEqual({ kind: 'admin' });
  });

  it('refuses missing, malformed, forged and re-labelled credentials with a 401', async () => {
    const { registry, keys } = await registryWithKeys();
    const authorizer = new RequestAuthorizer({ registry, adminToken: undefined });
    const acmeKey = keys.acme ?? '';
    for (const header of [
      undefined,
      '',
      acmeKey,
      `Basic ${acmeKey}`,
      `Bearer tfk_acme_${'A'.repeat(43)}`,
      // acme's secret part under acme2's name: its hash matches nothing stored.
      `Bearer ${acmeKey.replace('tfk_acme_', 'tfk_acme2_')}`,
      `Bearer ${ADMIN_TOKEN}`, // no admin token configured
    ]) {
      await expect(authorizer.authenticate(header)).rejects.toMatchObject({ statusCode: 401 });
    }
  });
});

describe('policyFor', () => {
  it("allows a tenant its own routes and GET /workflows, and nothing of any other tenant's", () => {
    const policy = policyFor({ kind: 'tenant', tenantId: 'acme' }, METHOD_ARN);
    const base = 'arn:aws:execute-api:eu-west-1:123456789012:abc123/prod';
    expect(allowed(policy, `${base}/GET/tenants/acme/executions`)).toBe(true);
    expect(allowed(policy, `${base}/POST/tenants/acme/executions`)).toBe(true);
    expect(allowed(policy, `${base}/GET/tenants/acme/executions/1b2c`)).toBe(true);
    expect(allowed(policy, `${base}/GET/workflows`)).toBe(true);
    expect(allowed(policy, `${base}/GET/tenants/acme2/executions`)).toBe(false);
    expect(allowed(policy, `${base}/GET/tenants/globex/metrics`)).toBe(false);
    expect(allowed(policy, `${base}/GET/tenants`)).toBe(false);
    expect(allowed(policy, `${base}/POST/workflows`)).toBe(false);
    expect(
      allowed(policy, 'arn:aws:execute-api:eu-west-1:123456789012:other/prod/GET/tenants/acme/executions'),
    ).toBe(false);
    expect(policy.context).toEqual({ principal: 'tenant', tenantId: 'acme' });
  });

  it('allows an admin every route of this API stage only', () => {
    const policy = policyFor({ kind: 'admin' }, METHOD_ARN);
    expect(
      allowed(policy, 'arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/GET/tenants/globex/metrics'),
    ).toBe(true);
    expect(allowed(policy, 'arn:aws:execute-api:eu-west-1:123456789012:abc123/dev/GET/workflows')).toBe(
      false,
    );
  });
});

describe('authorizer handler', () => {
  const event = (authorization?: string): APIGatewayRequestAuthorizerEvent =>
    ({
      type: 'REQUEST',
      methodArn: METHOD_ARN,
      headers: authorization === undefined ? {} : { Authorization: authorization },
    }) as APIGatewayRequestAuthorizerEvent;

  it("follows API Gateway's contract: a policy to allow, Error('Unauthorized') for a 401", async () => {
    const { registry, keys } = await registryWithKeys();
    const handler = createAuthorizerHandler({
      authorizer: new RequestAuthorizer({ registry, adminToken: ADMIN_TOKEN }),
      logger: createLogger('test'),
    });
    const result = await handler(event(`Bearer ${keys.acme}`));
    expect(result.principalId).toBe('tenant:acme');
    await expect(handler(event('Bearer wrong'))).rejects.toThrow(/^Unauthorized$/);
    await expect(handler(event())).rejects.toThrow(/^Unauthorized$/);
  });

  it.each([
    ['a lower-case scheme', (key: string) => `bearer ${key}`],
    ['two spaces', (key: string) => `Bearer  ${key}`],
    ['a trailing space', (key: string) => `Bearer ${key} `],
  ])('accepts exactly one documented form: refuses %s', async (_, header) => {
    const { registry, keys } = await registryWithKeys();
    const handler = createAuthorizerHandler({
      authorizer: new RequestAuthorizer({ registry, adminToken: ADMIN_TOKEN }),
      logger: createLogger('test'),
    });
    await expect(handler(event(header(keys.acme ?? '')))).rejects.toThrow(/^Unauthorized$/);
    await expect(handler(event(header(ADMIN_TOKEN)))).rejects.toThrow(/^Unauthorized$/);
    expect((await handler(event(`Bearer ${ADMIN_TOKEN}`))).principalId).toBe('admin');
  });

  it('lets a registry outage fail the request, never turn into an allow or a 401', async () => {
    const handler = createAuthorizerHandler({
      authorizer: new RequestAuthorizer({
        registry: { findByApiKeyHash: () => Promise.reject(new Error('database down')) },
        adminToken: undefined,
      }),
      logger: createLogger('test'),
    });
    await expect(handler(event(`Bearer tfk_acme_${'A'.repeat(43)}`))).rejects.toThrow('database down');
  });
});

describe('requireTenantAccess', () => {
  const handler = middy<APIGatewayProxyEvent, APIGatewayProxyResult>()
    .use(httpErrorMapper({ logger: createLogger('test') }))
    .use(requireTenantAccess())
    .handler(async () => jsonResponse(200, { ok: true }));
  const onPath = (tenantId: string, authorizer: Record<string, string> | null) => {
    const event = restEvent({ pathParameters: { tenantId } });
    (event.requestContext as { authorizer: unknown }).authorizer = authorizer;
    return handler(event, lambdaContext());
  };

  it("refuses another tenant's path even when the gateway let the request through", async () => {
    expect((await onPath('acme', { principal: 'tenant', tenantId: 'acme' })).statusCode).toBe(200);
    expect((await onPath('globex', { principal: 'tenant', tenantId: 'acme' })).statusCode).toBe(403);
    expect((await onPath('globex', { principal: 'admin', tenantId: '' })).statusCode).toBe(200);
  });

  it('fails closed (401) when no authorizer ran', async () => {
    expect((await onPath('acme', null)).statusCode).toBe(401);
    expect((await onPath('acme', { principal: 'tenant', tenantId: '' })).statusCode).toBe(401);
  });
});

describe('RequestAuthorizer key cache', () => {
  /** The registry with its lookups counted, and a clock the test moves. */
  async function countedAuthorizer(options: { cacheTtlMs: number; maxCachedKeys?: number }) {
    const { registry, keys } = await registryWithKeys();
    let lookups = 0;
    let now = 1_000_000;
    const authorizer = new RequestAuthorizer({
      registry: {
        findByApiKeyHash: (hash) => {
          lookups += 1;
          return registry.findByApiKeyHash(hash);
        },
      },
      adminToken: ADMIN_TOKEN,
      ...options,
      now: () => now,
    });
    return {
      authorizer,
      registry,
      keys: keys as Record<'acme' | 'acme2', string>,
      lookups: () => lookups,
      advance: (ms: number) => {
        now += ms;
      },
    };
  }

  it('reads the registry once for a burst of requests with one key, and again once the entry expires', async () => {
    const { authorizer, keys, lookups, advance } = await countedAuthorizer({ cacheTtlMs: 5000 });
    for (let i = 0; i < 10; i++) {
      await expect(authorizer.authenticate(`Bearer ${keys.acme}`)).resolves.toEqual({
        kind: 'tenant',
        tenantId: 'acme',
      });
    }
    expect(lookups()).toBe(1);
    advance(5000);
    await authorizer.authenticate(`Bearer ${keys.acme}`);
    expect(lookups()).toBe(2);
  });

  it('bounds how long a replaced key keeps working by the cache time, and never caches a refusal', async () => {
    const { authorizer, registry, keys, lookups, advance } = await countedAuthorizer({ cacheTtlMs: 5000 });
    await authorizer.authenticate(`Bearer ${keys.acme}`);
    const replacement = generateApiKey('acme');
    await registry.replaceApiKeyHash('acme', hashApiKey(replacement), ['active']);

    advance(4999);
    await expect(authorizer.authenticate(`Bearer ${keys.acme}`)).resolves.toMatchObject({ tenantId: 'acme' });
    advance(1);
    await expect(authorizer.authenticate(`Bearer ${keys.acme}`)).rejects.toThrow('The API key is not valid.');
    const afterRefusal = lookups();
    await expect(authorizer.authenticate(`Bearer ${keys.acme}`)).rejects.toThrow('The API key is not valid.');
    expect(lookups()).toBe(afterRefusal + 1);
    await expect(authorizer.authenticate(`Bearer ${replacement}`)).resolves.toMatchObject({
      tenantId: 'acme',
    });
  });

  it('looks up every request with the cache off, and keeps at most maxCachedKeys keys', async () => {
    const off = await countedAuthorizer({ cacheTtlMs: 0 });
    await off.authorizer.authenticate(`Bearer ${off.keys.acme}`);
    await off.authorizer.authenticate(`Bearer ${off.keys.acme}`);
    expect(off.lookups()).toBe(2);

    const small = await countedAuthorizer({ cacheTtlMs: 60_000, maxCachedKeys: 1 });
    await small.authorizer.authenticate(`Bearer ${small.keys.acme}`);
    await small.authorizer.authenticate(`Bearer ${small.keys.acme2}`);
    await small.authorizer.authenticate(`Bearer ${small.keys.acme}`);
    expect(small.lookups()).toBe(3);
  });
});
