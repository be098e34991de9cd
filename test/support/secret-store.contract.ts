import { randomBytes } from 'node:crypto';
import { ValidationError } from '@tenantflow/shared/kernel/errors';
import type { SecretStore, TenantSecret } from '@tenantflow/shared/secrets/secret-store';
import { describe, expect, it } from 'vitest';

/** A tenant secret in the RDS shape, with a fresh random password unless one is given. */
export function tenantSecret(tenantId: string, overrides: Partial<TenantSecret> = {}): TenantSecret {
  return {
    engine: 'postgres',
    host: 'db.internal.example',
    port: 5432,
    username: `${tenantId}_user`,
    password: `pw_${randomBytes(12).toString('base64url')}`,
    dbname: 'tenantflow',
    schema: tenantId,
    ...overrides,
  };
}

/**
 * The behaviour every {@link SecretStore} adapter must have. Each adapter's test file calls this
 * with a factory that returns a fresh store that holds no secret yet, one per test.
 */
export function describeSecretStoreContract(
  name: string,
  freshStore: () => SecretStore | Promise<SecretStore>,
): void {
  describe(`SecretStore contract: ${name}`, () => {
    describe('put and get', () => {
      it('get returns exactly the secret put stored', async () => {
        const store = await freshStore();
        const secret = tenantSecret('acme');

        await store.put('acme', secret);

        expect(await store.get('acme')).toEqual(secret);
      });

      it('put returns a non-empty reference to the secret', async () => {
        const store = await freshStore();

        const reference = await store.put('acme', tenantSecret('acme'));

        expect(reference).toEqual(expect.any(String));
        expect(reference).toContain('acme');
      });

      it('put of a tenant that has a secret stores the new value, and get sees it at once', async () => {
        const store = await freshStore();
        await store.put('acme', tenantSecret('acme'));
        await store.get('acme'); // Read once, so that a caching store has the old value cached.
        const rotated = tenantSecret('acme');

        await store.put('acme', rotated);

        expect(await store.get('acme')).toEqual(rotated);
      });

      it('rotating back to an earlier value makes that value current again', async () => {
        const store = await freshStore();
        const first = tenantSecret('acme');
        await store.put('acme', first);
        await store.put('acme', tenantSecret('acme'));

        await store.put('acme', first);

        expect(await store.get('acme')).toEqual(first);
      });

      it('get of a tenant that has no secret returns undefined', async () => {
        const store = await freshStore();

        expect(await store.get('nobody')).toBeUndefined();
      });

      it('put rejects a secret of the wrong shape with a ValidationError that does not echo the password', async () => {
        const store = await freshStore();
        const stored = tenantSecret('acme');
        await store.put('acme', stored);
        const malformed = { ...tenantSecret('acme'), port: '5432' } as unknown as TenantSecret;

        const attempt = store.put('acme', malformed);

        await expect(attempt).rejects.toBeInstanceOf(ValidationError);
        await expect(attempt).rejects.toThrow(/port/);
        await expect(attempt).rejects.not.toThrow(malformed.password);
        expect(await store.get('acme')).toEqual(stored);
      });
    });

    describe('delete', () => {
      it('returns true when it deleted a secret, then false', async () => {
        const store = await freshStore();
        await store.put('acme', tenantSecret('acme'));

        const first = await store.delete('acme');
        const second = await store.delete('acme');

        expect(first).toBe(true);
        expect(second).toBe(false);
      });

      it('returns false for a tenant that never had a secret', async () => {
        const store = await freshStore();

        expect(await store.delete('nobody')).toBe(false);
      });

      it('makes get return undefined, even right after a read', async () => {
        const store = await freshStore();
        await store.put('acme', tenantSecret('acme'));
        await store.get('acme');

        await store.delete('acme');

        expect(await store.get('acme')).toBeUndefined();
      });

      it('lets the tenant id be given a secret again at once', async () => {
        const store = await freshStore();
        await store.put('acme', tenantSecret('acme'));
        await store.delete('acme');
        const again = tenantSecret('acme');

        await store.put('acme', again);

        expect(await store.get('acme')).toEqual(again);
        expect(await store.list()).toEqual(['acme']);
      });
    });

    describe('list', () => {
      it('is empty when no tenant has a secret', async () => {
        const store = await freshStore();

        expect(await store.list()).toEqual([]);
      });

      it('returns exactly the tenants that have a secret, sorted', async () => {
        const store = await freshStore();
        for (const tenantId of ['globex', 'acme_eu', 'initech', 'acme']) {
          await store.put(tenantId, tenantSecret(tenantId));
        }
        await store.delete('initech');
        // A rotation must not make a tenant appear twice.
        await store.put('globex', tenantSecret('globex'));

        expect(await store.list()).toEqual(['acme', 'acme_eu', 'globex']);
      });
    });

    describe('isolation between tenants', () => {
      it("never returns one tenant's secret for another, even when one id prefixes the other", async () => {
        const store = await freshStore();
        const acme = tenantSecret('acme');
        const acmeEu = tenantSecret('acme_eu');
        await store.put('acme', acme);
        await store.put('acme_eu', acmeEu);

        const [readAcme, readAcmeEu] = [await store.get('acme'), await store.get('acme_eu')];

        expect(readAcme?.password).toBe(acme.password);
        expect(readAcmeEu?.password).toBe(acmeEu.password);
        expect(readAcme).not.toEqual(readAcmeEu);
      });

      it("leaves other tenants' secrets alone on put and delete", async () => {
        const store = await freshStore();
        const globex = tenantSecret('globex');
        await store.put('globex', globex);
        await store.put('acme', tenantSecret('acme'));

        await store.put('acme', tenantSecret('acme'));
        await store.delete('acme');

        expect(await store.get('globex')).toEqual(globex);
        expect(await store.list()).toEqual(['globex']);
      });
    });

    describe('tenant ids', () => {
      it.each(['../etc/passwd', 'Acme', 'pg_catalog', ''])(
        'rejects the invalid id %j with a ValidationError on every method',
        async (tenantId) => {
          const store = await freshStore();

          await expect(store.put(tenantId, tenantSecret('acme'))).rejects.toBeInstanceOf(ValidationError);
          await expect(store.get(tenantId)).rejects.toBeInstanceOf(ValidationError);
          await expect(store.delete(tenantId)).rejects.toBeInstanceOf(ValidationError);
          expect(await store.list()).toEqual([]);
        },
      );
    });
  });
}
