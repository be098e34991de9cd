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

  describe(`${adapter}.listPage`, () => {
    /** Letters only, so every collation orders them the same as JavaScript does. */
    const fleet: readonly [string, TenantStatus][] = [
      ['echo', 'active'],
      ['alpha', 'active'],
      ['delta', 'inactive'],
      ['charlie', 'active'],
      ['bravo', 'provisioning'],
      ['foxtrot', 'active'],
    ];
    const withFleet = async () => {
      const registry = await freshRegistry();
      for (const [tenantId, status] of fleet) {
        await registry.create({ tenantId, name: tenantId, metadata: {}, status });
      }
      return registry;
    };
    /** Every page, following `next`, with a guard against a page that never ends. */
    const allPages = async (registry: TenantRegistry, query: { status?: TenantStatus; limit: number }) => {
      const pages: string[][] = [];
      let after: string | undefined;
      do {
        const page = await registry.listPage({ ...query, after });
        pages.push(page.tenants.map((tenant) => tenant.tenantId));
        after = page.next;
      } while (after !== undefined && pages.length < 10);
      return pages;
    };

    it('pages through every tenant in id order, each exactly once', async () => {
      const registry = await withFleet();

      const pages = await allPages(registry, { limit: 4 });

      expect(pages).toEqual([
        ['alpha', 'bravo', 'charlie', 'delta'],
        ['echo', 'foxtrot'],
      ]);
    });

    it('pages through the tenants of one status only', async () => {
      const registry = await withFleet();

      const pages = await allPages(registry, { status: 'active', limit: 2 });

      expect(pages).toEqual([
        ['alpha', 'charlie'],
        ['echo', 'foxtrot'],
      ]);
    });

    it('ends with no next page when the last page is exactly full, and on an empty registry', async () => {
      const registry = await withFleet();

      const full = await registry.listPage({ limit: fleet.length });
      const empty = await (await freshRegistry()).listPage({ limit: 5 });

      expect(full.tenants).toHaveLength(fleet.length);
      expect(full.next).toBeUndefined();
      expect(empty).toEqual({ tenants: [], next: undefined });
    });

    it('resumes after a tenant that was removed in the meantime, skipping none', async () => {
      const registry = await withFleet();
      const first = await registry.listPage({ limit: 2 });
      await registry.remove('bravo');

      const second = await registry.listPage({ limit: 2, after: first.next });

      expect(first.next).toBe('bravo');
      expect(second.tenants.map((tenant) => tenant.tenantId)).toEqual(['charlie', 'delta']);
    });

    it('answers whole tenants, as get does', async () => {
      const registry = await withFleet();

      const { tenants } = await registry.listPage({ limit: 1 });

      expect(tenants).toEqual([await registry.get('alpha')]);
    });
  });

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
