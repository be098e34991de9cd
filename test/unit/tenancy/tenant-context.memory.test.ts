import { describe, expect, it } from 'vitest';
import { MemoryTenantRegistry } from '../../../shared/tenancy/memory-tenant-registry.js';
import { getCurrentTenantId, TenantContextSwitch } from '../../../shared/tenancy/tenant-context.js';
import { describeTenantContextSwitch } from '../../support/tenant-context.behaviour.js';
import { describeTenantRegistry } from '../../support/tenant-registry.behaviour.js';

describeTenantContextSwitch('MemoryTenantRegistry', async () => new MemoryTenantRegistry());
describeTenantRegistry('MemoryTenantRegistry', async () => new MemoryTenantRegistry());

describe('TenantContextSwitch instances', () => {
  it('share the current tenant but keep their own registries and counters', async () => {
    const first = new TenantContextSwitch(new MemoryTenantRegistry());
    const second = new TenantContextSwitch(new MemoryTenantRegistry());
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
