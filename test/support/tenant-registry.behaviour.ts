import type { TenantRegistry, TenantStatus } from '@tenantflow/shared/tenancy/tenant-registry';
import { describe, expect, it } from 'vitest';

/**
 * What every TenantRegistry adapter must do itself, beyond what the context switch sees
 * (`tenant-context.behaviour.ts`). Each adapter's test file calls this with a factory that returns
 * a fresh, empty registry per test.
 */
export function describeTenantRegistry(adapter: string, freshRegistry: () => Promise<TenantRegistry>): void {
  const withTenant = async (status: TenantStatus) => {
    const registry = await freshRegistry();
    await registry.create({ tenantId: 'acme', name: 'Acme', metadata: {}, status });
    return registry;
  };
  const issuable: readonly TenantStatus[] = ['active', 'inactive'];

  describe(`${adapter}.replaceApiKeyHash`, () => {
    it.each(issuable)('replaces the hash of an %s tenant, so only the new one finds it', async (status) => {
      const registry = await withTenant(status);
      await registry.replaceApiKeyHash('acme', 'old-hash', issuable);

      const change = await registry.replaceApiKeyHash('acme', 'new-hash', issuable);

      expect(change).toEqual({ kind: 'updated', tenant: await registry.get('acme') });
      expect((await registry.findByApiKeyHash('new-hash'))?.tenantId).toBe('acme');
      expect(await registry.findByApiKeyHash('old-hash')).toBeUndefined();
      expect((await registry.getCredentialRefs('acme'))?.apiKeyHash).toBe('new-hash');
      expect((await registry.get('acme'))?.status).toBe(status);
    });

    it.each<TenantStatus>(['provisioning', 'deprovisioning'])(
      'leaves a %s tenant without a key and says which status it is in',
      async (status) => {
        const registry = await withTenant(status);

        const change = await registry.replaceApiKeyHash('acme', 'new-hash', issuable);

        expect(change).toMatchObject({ kind: 'status_mismatch', tenant: { tenantId: 'acme', status } });
        expect(await registry.findByApiKeyHash('new-hash')).toBeUndefined();
        expect((await registry.getCredentialRefs('acme'))?.apiKeyHash).toBeUndefined();
      },
    );

    it('answers not_found for an unknown tenant and stores nothing', async () => {
      const registry = await freshRegistry();

      expect(await registry.replaceApiKeyHash('nobody', 'new-hash', issuable)).toEqual({ kind: 'not_found' });
      expect(await registry.findByApiKeyHash('new-hash')).toBeUndefined();
    });
  });
}
