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
