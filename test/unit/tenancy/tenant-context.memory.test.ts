import { getCurrentTenantId, TenantContextSwitch } from '@tenantflow/shared/tenancy/tenant-context';
import { directRegistration } from '@tenantflow/shared/testing/direct-registration';
import { MemoryTenantRegistry } from '@tenantflow/shared/testing/memory-tenant-registry';
import { describe, expect, it } from 'vitest';
import { describeTenantContextSwitch } from '../../support/tenant-context.behaviour.js';
import { describeTenantRegistry } from '../../support/tenant-registry.behaviour.js';

describeTenantContextSwitch('MemoryTenantRegistry', async () => new MemoryTenantRegistry());
describeTenantRegistry('MemoryTenantRegistry', async () => new MemoryTenantRegistry());

describe('TenantContextSwitch instances', () => {
  it('share the current tenant but keep their own registries and counters', async () => {
    const firstRegistry = new MemoryTenantRegistry();
    const secondRegistry = new MemoryTenantRegistry();
    const first = new TenantContextSwitch(firstRegistry, directRegistration(firstRegistry));
    const second = new TenantContextSwitch(secondRegistry, directRegistration(secondRegistry));
    await first.registerTenant('acme', 'Acme');

    const seenBySecond = await first.switch('acme', () => ({
      current: second.getCurrentTenant(),
      registered: second.isTenantRegistered('acme'),
    }));

    expect(seenBySecond.current).toBe('acme');
    expect(await seenBySecond.registered).toBe(false);
    expect((await second.getStats()).totalSwitches).toBe(0);
    expect(getCurrentTenantId()).toBeUndefined();
  });
});

describe('TenantContextSwitch trusting an active tenant for a while', () => {
  /** A registry that counts its lookups. */
  function countingRegistry() {
    const registry = new MemoryTenantRegistry();
    let lookups = 0;
    const get = registry.get.bind(registry);
    registry.get = (tenantId: string) => {
      lookups += 1;
      return get(tenantId);
    };
    return { registry, lookups: () => lookups };
  }

  it('reads the registry once per window for a tenant it found active', async () => {
    const { registry, lookups } = countingRegistry();
    let now = 1_000;
    const tenants = new TenantContextSwitch(registry, directRegistration(registry), {
      trustActiveForMs: 5_000,
      now: () => now,
    });
    await tenants.registerTenant('acme', 'Acme');
    const before = lookups();

    for (let index = 0; index < 3; index += 1) {
      expect(await tenants.switch('acme', () => getCurrentTenantId())).toBe('acme');
    }
    expect(lookups() - before).toBe(1);
    now += 5_001;
    await tenants.switch('acme', () => undefined);
    expect(lookups() - before).toBe(2);
  });

  it('never remembers a refusal, and forgets a tenant it deactivates itself', async () => {
    const { registry, lookups } = countingRegistry();
    const tenants = new TenantContextSwitch(registry, directRegistration(registry), {
      trustActiveForMs: 60_000,
    });
    await tenants.registerTenant('acme', 'Acme');
    await tenants.switch('acme', () => undefined);

    await tenants.deactivateTenant('acme');
    await expect(tenants.switch('acme', () => undefined)).rejects.toMatchObject({ code: 'TENANT_INACTIVE' });
    const before = lookups();
    await expect(tenants.switch('acme', () => undefined)).rejects.toMatchObject({ code: 'TENANT_INACTIVE' });
    await expect(tenants.switch('nobody', () => undefined)).rejects.toMatchObject({
      code: 'TENANT_NOT_FOUND',
    });
    expect(lookups() - before).toBeGreaterThanOrEqual(2);
  });

  it('reads the registry on every switch by default', async () => {
    const { registry, lookups } = countingRegistry();
    const tenants = new TenantContextSwitch(registry, directRegistration(registry));
    await tenants.registerTenant('acme', 'Acme');
    const before = lookups();
    await tenants.switch('acme', () => undefined);
    await tenants.switch('acme', () => undefined);
    expect(lookups() - before).toBe(2);
  });
});
