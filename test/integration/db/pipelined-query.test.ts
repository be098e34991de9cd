import { pipelined } from '@tenantflow/shared/db/pipelined-query';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../../support/database.js';

/**
 * Statements sent in one round trip with one Sync: the task runner opens its transaction with the
 * claim and ends it with the completion this way, so what PostgreSQL does with them is what keeps a
 * failed completion from committing.
 */

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let client: pg.Client;

beforeAll(async () => {
  database = await createTestDatabase('tf_pipelined');
  const setup = new pg.Client({ connectionString: database.url });
  await setup.connect();
  await setup.query('CREATE TABLE pipelined_rows (id integer PRIMARY KEY, note text)');
  await setup.end();
});

afterEach(async () => {
  await client?.end().catch(() => undefined);
});

afterAll(async () => {
  await database?.drop();
});

async function connect(): Promise<pg.Client> {
  client = new pg.Client({ connectionString: database.url });
  await client.connect();
  return client;
}

async function countRows(id: number): Promise<number> {
  const reader = new pg.Client({ connectionString: database.url });
  await reader.connect();
  try {
    const { rows } = await reader.query<{ n: string }>(
      'SELECT count(*) AS n FROM pipelined_rows WHERE id = $1',
      [id],
    );
    return Number(rows[0]?.n);
  } finally {
    await reader.end();
  }
}

describe('pipelined', () => {
  it('answers one result per statement, with bound parameters, in one call', async () => {
    const connection = await connect();
    const results = await pipelined(connection, [
      { text: 'SELECT $1::int + 1 AS n', values: ['41'] },
      { text: 'SELECT $1::text AS a, $2::text AS b', values: ['x', null] },
    ]);
    expect(results.map((result) => result.rows)).toEqual([[{ n: 42 }], [{ a: 'x', b: null }]]);
  });

  it('opens a transaction with BEGIN and runs the next statement inside it', async () => {
    const connection = await connect();
    const [begin, insert] = await pipelined(connection, [
      { text: 'BEGIN' },
      { text: 'INSERT INTO pipelined_rows VALUES ($1::int, $2) RETURNING note', values: ['1', 'opened'] },
    ]);
    expect(begin?.command).toBe('BEGIN');
    expect(insert?.rows).toEqual([{ note: 'opened' }]);
    // Not committed yet: another session does not see it, and a rollback takes it back.
    expect(await countRows(1)).toBe(0);
    await connection.query('ROLLBACK');
    expect(await countRows(1)).toBe(0);
  });

  it('commits with the statement before COMMIT when that statement succeeds', async () => {
    const connection = await connect();
    await connection.query('BEGIN');
    await connection.query("INSERT INTO pipelined_rows VALUES (2, 'body')");
    const results = await pipelined(connection, [
      { text: 'UPDATE pipelined_rows SET note = $2 WHERE id = $1::int', values: ['2', 'done'] },
      { text: 'COMMIT' },
    ]);
    expect(results.map((result) => result.command)).toEqual(['UPDATE', 'COMMIT']);
    expect(await countRows(2)).toBe(1);
  });

  it('skips COMMIT after a failed statement: the transaction stays open and failed until rolled back', async () => {
    const connection = await connect();
    await connection.query('BEGIN');
    await connection.query("INSERT INTO pipelined_rows VALUES (3, 'body')");
    const failure = await pipelined(connection, [
      { text: 'SELECT 1 / $1::int AS n', values: ['0'] },
      { text: 'COMMIT' },
    ]).catch((error: unknown) => error);
    expect(failure).toMatchObject({ code: '22012' });
    const aborted = await connection.query('SELECT 1').catch((error: unknown) => error);
    expect(aborted).toMatchObject({ code: '25P02' });
    await connection.query('ROLLBACK');
    expect(await countRows(3)).toBe(0);
    // The connection serves ordinary queries again.
    expect((await connection.query('SELECT 2 AS n')).rows).toEqual([{ n: 2 }]);
  });

  it('keeps bound values out of pg_stat_activity', async () => {
    const connection = await connect();
    const secret = 'not-for-other-sessions-4f1c';
    await pipelined(connection, [{ text: 'SELECT $1::text AS token, pg_sleep(0)', values: [secret] }]);
    const { rows } = await connection.query<{ query: string }>(
      'SELECT query FROM pg_stat_activity WHERE pid = pg_backend_pid()',
    );
    expect(rows[0]?.query).not.toContain(secret);
    const [seen] = await pipelined(connection, [
      {
        text: 'SELECT query FROM pg_stat_activity WHERE pid = pg_backend_pid() AND $1::text IS NOT NULL',
        values: [secret],
      },
    ]);
    expect(JSON.stringify(seen?.rows)).not.toContain(secret);
  });
});
