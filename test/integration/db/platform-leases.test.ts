import { migrateControlSchema } from '@tenantflow/shared/db/control-schema';
import { LeaseBusyError, LeaseLostError, PlatformLeases } from '@tenantflow/shared/db/platform-leases';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../../support/database.js';

describe('PlatformLeases: named leases by compare-and-set, safe behind RDS Proxy', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  const pools: pg.Pool[] = [];
  /** One pool per simulated Lambda, so no two holders share a connection. */
  const newPool = () => {
    const pool = new pg.Pool({ connectionString: database.url, max: 2 });
    // Dropping the database WITH (FORCE) may end a socket the pool is still closing: not a failure.
    pool.on('error', () => {});
    pools.push(pool);
    return pool;
  };

  beforeAll(async () => {
    database = await createTestDatabase('tf_leases');
    await migrateControlSchema(database.url);
  });

  afterAll(async () => {
    await Promise.all(pools.map((pool) => pool.end()));
    await database.drop();
  });

  it('lets exactly one holder in at a time: 8 holders on 8 pools never overlap, and all get their turn', async () => {
    let inside = 0;
    let mostInside = 0;
    let turns = 0;
    await Promise.all(
      Array.from({ length: 8 }, () =>
        new PlatformLeases(newPool()).withLease(
          'turns',
          { durationMs: 10_000, waitMs: 20_000 },
          async (lease) => {
            inside += 1;
            mostInside = Math.max(mostInside, inside);
            await new Promise((resolve) => setTimeout(resolve, 20));
            await lease.confirm();
            turns += 1;
            inside -= 1;
          },
        ),
      ),
    );
    expect(mostInside).toBe(1);
    expect(turns).toBe(8);
    const { rows } = await newPool().query('SELECT count(*)::int AS n FROM tenantflow.platform_leases');
    expect(rows[0].n).toBe(0); // every holder released its lease
  });

  it('gives up after waitMs with a busy error that says what to do', async () => {
    const holder = new PlatformLeases(newPool());
    const held = await holder.acquire('busy', { durationMs: 30_000, waitMs: 0 });
    try {
      await expect(
        new PlatformLeases(newPool()).acquire('busy', {
          durationMs: 30_000,
          waitMs: 200,
          busyHint: 'retry in a moment',
        }),
      ).rejects.toThrow(LeaseBusyError);
      await expect(
        new PlatformLeases(newPool()).acquire('busy', {
          durationMs: 30_000,
          waitMs: 0,
          busyHint: 'retry in a moment',
        }),
      ).rejects.toThrow(/'busy' has been held by another process .*; retry in a moment/);
    } finally {
      await holder.release(held);
    }
  });

  it('frees the lease of a holder that died, and that holder can no longer write', async () => {
    const crashed = await new PlatformLeases(newPool()).acquire('crash', { durationMs: 100, waitMs: 0 });
    await new Promise((resolve) => setTimeout(resolve, 150));
    const successor = new PlatformLeases(newPool());
    const taken = await successor.acquire('crash', { durationMs: 30_000, waitMs: 0 });

    await expect(crashed.confirm()).rejects.toThrow(LeaseLostError);
    // Its late release does not free the successor's lease either.
    await new PlatformLeases(newPool()).release(crashed);
    await expect(taken.confirm()).resolves.toBeUndefined();
    await expect(
      new PlatformLeases(newPool()).acquire('crash', { durationMs: 30_000, waitMs: 0 }),
    ).rejects.toThrow(LeaseBusyError);
    await successor.release(taken);
  });

  it('releases the lease when the work throws', async () => {
    const leases = new PlatformLeases(newPool());
    await expect(
      leases.withLease('throws', { durationMs: 30_000, waitMs: 0 }, async () => {
        throw new Error('work failed');
      }),
    ).rejects.toThrow('work failed');
    const again = await leases.acquire('throws', { durationMs: 30_000, waitMs: 0 });
    await leases.release(again);
  });
});
