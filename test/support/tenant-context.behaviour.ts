import {
  TenantAlreadyExistsError,
  TenantContextRequiredError,
  TenantInactiveError,
  TenantNotFoundError,
  TenantStateConflictError,
  ValidationError,
} from '@tenantflow/shared/kernel/errors';
import { getCurrentTenantId, TenantContextSwitch } from '@tenantflow/shared/tenancy/tenant-context';
import type { TenantRegistry } from '@tenantflow/shared/tenancy/tenant-registry';
import { directRegistration } from '@tenantflow/shared/testing/direct-registration';
import { describe, expect, it } from 'vitest';

/**
 * The behaviour every TenantRegistry adapter must give the context switch. Each adapter's test
 * file calls this with a factory that returns a fresh, empty registry per test.
 */
export function describeTenantContextSwitch(
  adapter: string,
  freshRegistry: () => Promise<TenantRegistry>,
): void {
  const freshSwitch = async () => {
    const registry = await freshRegistry();
    return new TenantContextSwitch(registry, directRegistration(registry));
  };

  describe(`TenantContextSwitch over ${adapter}`, () => {
    describe('registerTenant', () => {
      it('returns the registered tenant, active, with its metadata', async () => {
        const tenants = await freshSwitch();
        const before = Date.now();

        const info = await tenants.registerTenant('acme', 'Acme Corporation', { plan: 'enterprise' });

        expect(info).toMatchObject({
          tenantId: 'acme',
          name: 'Acme Corporation',
          active: true,
          status: 'active',
        });
        expect(info.metadata).toEqual({ plan: 'enterprise' });
        expect(info.createdAt.getTime()).toBeGreaterThanOrEqual(before - 1000);
        expect(await tenants.getTenant('acme')).toEqual(info);
      });

      it('defaults metadata to an empty object', async () => {
        const tenants = await freshSwitch();
        expect((await tenants.registerTenant('acme', 'Acme')).metadata).toEqual({});
      });

      it('rejects an invalid id with every reason', async () => {
        const tenants = await freshSwitch();
        const attempt = tenants.registerTenant('pg_Bad-Id', 'Bad');
        await expect(attempt).rejects.toBeInstanceOf(ValidationError);
        await expect(attempt).rejects.toMatchObject({
          reasons: expect.arrayContaining([expect.stringMatching(/pg_/)]),
        });
        expect(await tenants.listTenants()).toEqual([]);
      });

      it('rejects a duplicate', async () => {
        const tenants = await freshSwitch();
        await tenants.registerTenant('acme', 'Acme');

        const attempt = tenants.registerTenant('acme', 'Acme again');

        await expect(attempt).rejects.toBeInstanceOf(TenantAlreadyExistsError);
        await expect(attempt).rejects.toThrow("Tenant 'acme' is already registered");
        expect((await tenants.getTenant('acme'))?.name).toBe('Acme');
      });
    });

    describe('queries', () => {
      it('getTenant returns undefined for a missing tenant', async () => {
        const tenants = await freshSwitch();
        expect(await tenants.getTenant('nobody')).toBeUndefined();
      });

      it('lists tenants ordered by id and answers registered/active', async () => {
        const tenants = await freshSwitch();
        await tenants.registerTenant('globex', 'Globex');
        await tenants.registerTenant('acme', 'Acme');
        await tenants.deactivateTenant('globex');

        expect((await tenants.listTenants()).map((t) => t.tenantId)).toEqual(['acme', 'globex']);
        expect(await tenants.isTenantRegistered('globex')).toBe(true);
        expect(await tenants.isTenantRegistered('initech')).toBe(false);
        expect(await tenants.isTenantActive('acme')).toBe(true);
        expect(await tenants.isTenantActive('globex')).toBe(false);
        expect(await tenants.isTenantActive('initech')).toBe(false);
      });

      it('activateTenant and deactivateTenant refuse an unknown tenant', async () => {
        const tenants = await freshSwitch();
        await expect(tenants.activateTenant('nobody')).rejects.toBeInstanceOf(TenantNotFoundError);
        await expect(tenants.deactivateTenant('nobody')).rejects.toBeInstanceOf(TenantNotFoundError);
      });
    });

    describe('switch', () => {
      it('runs the callback with the tenant current and returns its result', async () => {
        const tenants = await freshSwitch();
        await tenants.registerTenant('acme', 'Acme');

        const result = await tenants.switch('acme', (tenant) => ({
          seen: getCurrentTenantId(),
          required: tenants.requireTenant(),
          name: tenant.name,
        }));

        expect(result).toEqual({ seen: 'acme', required: 'acme', name: 'Acme' });
        expect(getCurrentTenantId()).toBeUndefined();
      });

      it('nests three levels and restores each one: [outer, middle, inner, middle, outer, none]', async () => {
        const tenants = await freshSwitch();
        for (const id of ['outer', 'middle', 'inner']) {
          await tenants.registerTenant(id, id);
        }
        const seen: Array<string | undefined> = [];

        await tenants.switch('outer', async () => {
          seen.push(tenants.getCurrentTenant());
          await tenants.switch('middle', async () => {
            seen.push(tenants.getCurrentTenant());
            await tenants.switch('inner', async () => {
              seen.push(tenants.getCurrentTenant());
            });
            seen.push(tenants.getCurrentTenant());
          });
          seen.push(tenants.getCurrentTenant());
        });
        seen.push(tenants.getCurrentTenant());

        expect(seen).toEqual(['outer', 'middle', 'inner', 'middle', 'outer', undefined]);
      });

      it('restores the outer tenant after an inner switch throws synchronously', async () => {
        const tenants = await freshSwitch();
        await tenants.registerTenant('outer', 'Outer');
        await tenants.registerTenant('inner', 'Inner');

        const afterThrow = await tenants.switch('outer', async () => {
          await expect(
            tenants.switch('inner', () => {
              throw new Error('sync failure');
            }),
          ).rejects.toThrow('sync failure');
          return getCurrentTenantId();
        });

        expect(afterThrow).toBe('outer');
        expect(getCurrentTenantId()).toBeUndefined();
      });

      it('restores the outer tenant after an inner switch rejects asynchronously', async () => {
        const tenants = await freshSwitch();
        await tenants.registerTenant('outer', 'Outer');
        await tenants.registerTenant('inner', 'Inner');

        const afterThrow = await tenants.switch('outer', async () => {
          await expect(
            tenants.switch('inner', async () => {
              await new Promise((resolve) => setTimeout(resolve, 5));
              throw new Error('async failure');
            }),
          ).rejects.toThrow('async failure');
          return getCurrentTenantId();
        });

        expect(afterThrow).toBe('outer');
        const stats = await tenants.getStats();
        expect(stats.activeSwitches).toBe(0);
      });

      it('keeps 100 concurrent tenants apart: each sees only itself', async () => {
        const tenants = await freshSwitch();
        const ids = Array.from({ length: 100 }, (_, i) => `tenant_${i}`);
        for (const id of ids) {
          await tenants.registerTenant(id, id);
        }

        const observed = await Promise.all(
          ids.map((id, i) =>
            tenants.switch(id, async () => {
              const seen: Array<string | undefined> = [getCurrentTenantId()];
              // Interleave: yield to the other 99 several times with different delays.
              for (let step = 0; step < 3; step += 1) {
                await new Promise((resolve) => setTimeout(resolve, (i * 7 + step * 13) % 11));
                seen.push(getCurrentTenantId());
              }
              return { id, seen };
            }),
          ),
        );

        for (const { id, seen } of observed) {
          expect(seen).toEqual([id, id, id, id]);
        }
        expect(getCurrentTenantId()).toBeUndefined();
      });

      it('refuses an unknown tenant, listing the registered ones and pointing to registerTenant()', async () => {
        const tenants = await freshSwitch();
        await tenants.registerTenant('acme', 'Acme');
        let ran = false;

        const attempt = tenants.switch('globex', () => {
          ran = true;
        });

        await expect(attempt).rejects.toBeInstanceOf(TenantNotFoundError);
        await expect(attempt).rejects.toThrow(
          /Tenant 'globex' is not registered.*'acme'.*registerTenant\(\)/,
        );
        expect(ran).toBe(false);
      });

      it('refuses an inactive tenant with the reactivation hint', async () => {
        const tenants = await freshSwitch();
        await tenants.registerTenant('acme', 'Acme');
        await tenants.deactivateTenant('acme');
        let ran = false;

        const attempt = tenants.switch('acme', () => {
          ran = true;
        });

        await expect(attempt).rejects.toBeInstanceOf(TenantInactiveError);
        await expect(attempt).rejects.toThrow(
          "Tenant 'acme' is not active: no work runs for it. Use activateTenant() (POST /tenants/acme/activate) to reactivate it.",
        );
        expect(ran).toBe(false);
      });
    });

    describe('requireTenant', () => {
      it('fails closed outside any switch, naming switch()', async () => {
        const tenants = await freshSwitch();
        expect(() => tenants.requireTenant()).toThrow(TenantContextRequiredError);
        expect(() => tenants.requireTenant()).toThrow(/switch\(/);
      });
    });

    describe('getStats', () => {
      it('counts tenants and switches through a sequence', async () => {
        const tenants = await freshSwitch();
        expect(await tenants.getStats()).toEqual({
          totalTenants: 0,
          activeTenants: 0,
          totalSwitches: 0,
          activeSwitches: 0,
          currentTenant: undefined,
        });

        await tenants.registerTenant('acme', 'Acme');
        await tenants.registerTenant('globex', 'Globex');
        await tenants.deactivateTenant('globex');
        expect(await tenants.getStats()).toMatchObject({
          totalTenants: 2,
          activeTenants: 1,
          totalSwitches: 0,
        });

        const inside = await tenants.switch('acme', () =>
          tenants.switch('acme', async () => tenants.getStats()),
        );
        expect(inside).toMatchObject({ totalSwitches: 2, activeSwitches: 2, currentTenant: 'acme' });

        // A refused switch is not a successful entry.
        await expect(tenants.switch('globex', () => undefined)).rejects.toBeInstanceOf(TenantInactiveError);
        expect(await tenants.getStats()).toEqual({
          totalTenants: 2,
          activeTenants: 1,
          totalSwitches: 2,
          activeSwitches: 0,
          currentTenant: undefined,
        });
      });
    });

    describe('lifecycle', () => {
      it('register → use → deactivate → blocked → reactivate → use → unregister', async () => {
        const tenants = await freshSwitch();
        await tenants.registerTenant('acme', 'Acme', { plan: 'pro' });

        expect(await tenants.switch('acme', () => tenants.requireTenant())).toBe('acme');

        await tenants.deactivateTenant('acme');
        expect(await tenants.isTenantActive('acme')).toBe(false);
        await expect(tenants.switch('acme', () => 'should not run')).rejects.toBeInstanceOf(
          TenantInactiveError,
        );

        await tenants.activateTenant('acme');
        expect(await tenants.switch('acme', () => tenants.requireTenant())).toBe('acme');

        await tenants.unregisterTenant('acme');
        expect(await tenants.isTenantRegistered('acme')).toBe(false);
        await expect(tenants.switch('acme', () => 'gone')).rejects.toBeInstanceOf(TenantNotFoundError);
      });

      it('refuses to unregister the tenant that is the current context', async () => {
        const tenants = await freshSwitch();
        await tenants.registerTenant('acme', 'Acme');

        const attempt = tenants.switch('acme', () => tenants.unregisterTenant('acme'));

        await expect(attempt).rejects.toBeInstanceOf(TenantStateConflictError);
        await expect(attempt).rejects.toThrow(
          "Cannot unregister tenant 'acme' while it is the active context",
        );
        expect(await tenants.isTenantRegistered('acme')).toBe(true);
      });

      it('unregisters another tenant from inside a switch', async () => {
        const tenants = await freshSwitch();
        await tenants.registerTenant('acme', 'Acme');
        await tenants.registerTenant('globex', 'Globex');

        await tenants.switch('acme', () => tenants.unregisterTenant('globex'));

        expect(await tenants.isTenantRegistered('globex')).toBe(false);
      });

      it('refuses to unregister an unknown tenant', async () => {
        const tenants = await freshSwitch();
        await expect(tenants.unregisterTenant('nobody')).rejects.toBeInstanceOf(TenantNotFoundError);
      });
    });
  });
}
