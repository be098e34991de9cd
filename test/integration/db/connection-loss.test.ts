import { createPlatformPool } from '@tenantflow/shared/db/connections';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../../support/database.js';

/**
 * A connection the server ends while the platform holds it (PostgreSQL killed or restarted with a
 * transaction open, waiting on task code): the process must survive it, the holder's next query
 * must fail, and the pool must go on with a new connection. Without a listener on the checked-out
 * client, 'error' would be unhandled and take the process, and every tenant's work in it, down
 * (vitest reports that as an error of the run).
 */

let database: Awaited<ReturnType<typeof createTestDatabase>>;

beforeAll(async () => {
  database = await createTestDatabase('tf_conn_loss');
});

afterAll(async () => {
  await database?.drop();
});

describe('a pooled connection lost while checked out', () => {
  it('fails only its holder, and the pool serves the next request on a new connection', async () => {
    const pool = createPlatformPool({ connectionString: database.url, max: 2 });
    const killer = new pg.Client({ connectionString: database.superuserUrl });
    await killer.connect();
    try {
      const held = await pool.connect();
      await held.query('BEGIN');
      const { rows } = await held.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      // Ended by the server while idle in the transaction: no query of the holder's is running.
      await killer.query('SELECT pg_terminate_backend($1)', [rows[0]?.pid]);
      await new Promise((resolve) => setTimeout(resolve, 200));

      const failure = await held.query('SELECT 1').catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(Error);
      held.release(failure as Error);

      const next = await pool.query<{ ok: number }>('SELECT 1 AS ok');
      expect(next.rows[0]?.ok).toBe(1);
    } finally {
      await killer.end();
      await pool.end();
    }
  });
});
