import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../../support/database.js';
import { createTestPlatform, type TestPlatform } from '../../support/platform.js';

/**
 * The isolation promise, proven by PostgreSQL itself: connected as acme's own role, nothing of
 * globex's (nor of the platform's) can be read, written, or reached by changing roles or paths.
 */

let env: TestPlatform;
let acme: string;
let globex: string;
let acmeClient: pg.Client;
let otherDatabase: Awaited<ReturnType<typeof createTestDatabase>>;

const DENIED = /permission denied|does not exist|must be (superuser|owner)|not allowed/;

beforeAll(async () => {
  // A database that exists before provisioning, to prove a tenant role cannot even connect to it.
  otherDatabase = await createTestDatabase('tf_other');
  env = await createTestPlatform();
  acme = env.id('acme');
  globex = env.id('globex');
  await env.platform.tenantAdmin.register({ tenantId: acme, name: 'Acme' });
  await env.platform.tenantAdmin.register({ tenantId: globex, name: 'Globex' });
  // Their onboarding state machines create the schemas, roles and secrets; both are active after.
  await env.platform.lifecycleOrchestrator.drain();
  for (const tenantId of [acme, globex]) {
    expect(await env.platform.registry.get(tenantId)).toMatchObject({ status: 'active' });
  }
  // globex has data of its own: a row of its own table, and an execution of the platform's.
  const globexDb = await env.platform.tenantConnections.tenantDb(globex);
  await globexDb.query(
    `INSERT INTO example_results (execution_id, workflow, tenant_id, payload) VALUES ('g1', 'billing', $1, '{"secret": "globex"}')`,
    [globex],
  );
  await env.platform.pool.query(
    `INSERT INTO "${globex}".executions (id, workflow, context) VALUES ('g1', 'billing', '{"secret": "globex"}')`,
  );
  const secret = await env.platform.secrets.get(acme);
  if (secret === undefined) {
    throw new Error('acme has no secret');
  }
  acmeClient = new pg.Client({
    host: secret.host,
    port: secret.port,
    database: secret.dbname,
    user: secret.username,
    password: secret.password,
  });
  await acmeClient.connect();
});

afterAll(async () => {
  await acmeClient?.end();
  await env?.cleanup();
  await otherDatabase?.drop();
});

async function expectDenied(sql: string): Promise<void> {
  await expect(acmeClient.query(sql), sql).rejects.toThrow(DENIED);
}

describe('tenant isolation, enforced by PostgreSQL', () => {
  it('logs acme in as acme_user with its own schema as the only search path', async () => {
    const { rows } = await acmeClient.query<{ user: string; path: string; schemas: string[] }>(
      'SELECT current_user AS user, current_setting($1) AS path, current_schemas(false)::text[] AS schemas',
      ['search_path'],
    );
    expect(rows[0]?.user).toBe(`${acme}_user`);
    expect(rows[0]?.path.replaceAll('"', '')).toBe(acme);
    expect(rows[0]?.schemas).toEqual([acme]);
  });

  it('lets acme use its own tables, unqualified and qualified', async () => {
    await acmeClient.query(
      `INSERT INTO example_results (execution_id, workflow, tenant_id, payload) VALUES ('a1', 'billing', $1, '{}')`,
      [acme],
    );
    const { rows } = await acmeClient.query(`SELECT execution_id AS id FROM "${acme}".example_results`);
    expect(rows).toEqual([{ id: 'a1' }]);
  });

  it.each([
    ['select', (s: string) => `SELECT * FROM "${s}".executions`],
    ['insert', (s: string) => `INSERT INTO "${s}".executions (id, workflow) VALUES ('x', 'y')`],
    ['update', (s: string) => `UPDATE "${s}".executions SET workflow = 'hacked'`],
    ['delete', (s: string) => `DELETE FROM "${s}".executions`],
    ['select', (s: string) => `SELECT * FROM "${s}".example_results`],
    [
      'insert',
      (s: string) =>
        `INSERT INTO "${s}".example_results (execution_id, workflow, tenant_id, payload) VALUES ('x', 'y', 'z', '{}')`,
    ],
    ['update', (s: string) => `UPDATE "${s}".example_results SET workflow = 'hacked'`],
    ['delete', (s: string) => `DELETE FROM "${s}".example_results`],
  ])('refuses %s on globex tables, schema-qualified', async (_op, sql) => {
    await expectDenied(sql(globex));
  });

  it.each([
    ['select', 'SELECT * FROM task_runs_of_globex'],
    ['a table name that exists only in globex', 'SELECT * FROM globex_only'],
  ])('resolves unqualified names in acme only (%s)', async (_case, sql) => {
    await expectDenied(sql);
  });

  it('sees only its own rows through unqualified names, even though globex has the same tables', async () => {
    const { rows } = await acmeClient.query('SELECT id FROM executions ORDER BY id');
    expect(rows.map((row) => row.id)).not.toContain('g1');
    const results = await acmeClient.query('SELECT execution_id FROM example_results ORDER BY id');
    expect(results.rows.map((row) => row.execution_id)).not.toContain('g1');
  });

  it('refuses CREATE TABLE in public and in globex', async () => {
    await expectDenied('CREATE TABLE public.stolen (x int)');
    await expectDenied(`CREATE TABLE "${globex}".stolen (x int)`);
  });

  it('refuses to read the tenant registry', async () => {
    await expectDenied('SELECT * FROM tenantflow.tenants');
  });

  it('refuses SET ROLE to another tenant role', async () => {
    await expectDenied(`SET ROLE "${globex}_user"`);
  });

  it('refuses to create a role', async () => {
    await expectDenied('CREATE ROLE intruder LOGIN');
  });

  it('refuses pg_read_file', async () => {
    await expectDenied(`SELECT pg_read_file('postgresql.conf')`);
  });

  it.each([
    ['another application database', () => new URL(otherDatabase.url).pathname.slice(1)],
    ['the postgres maintenance database', () => 'postgres'],
    ['template1', () => 'template1'],
  ])('refuses to connect to %s', async (_name, database) => {
    const secret = await env.platform.secrets.get(acme);
    const elsewhere = new pg.Client({
      host: secret?.host,
      port: secret?.port,
      database: database(),
      user: secret?.username,
      password: secret?.password,
    });
    elsewhere.on('error', () => {});
    try {
      await expect(elsewhere.connect()).rejects.toThrow(/permission denied for database|not have CONNECT/);
    } finally {
      await elsewhere.end().catch(() => undefined);
    }
  });

  it('finds nothing readable after pointing its own search_path at globex', async () => {
    // PostgreSQL lets a role change its own defaults. The point is that privileges, not the path,
    // decide: with globex first in its path, acme still reads nothing of globex's.
    const secret = await env.platform.secrets.get(acme);
    await acmeClient.query(`ALTER ROLE "${acme}_user" SET search_path = "${globex}"`);
    const relogged = new pg.Client({
      host: secret?.host,
      port: secret?.port,
      database: secret?.dbname,
      user: secret?.username,
      password: secret?.password,
    });
    await relogged.connect();
    try {
      await expect(relogged.query('SELECT * FROM executions')).rejects.toThrow(DENIED);
      await acmeClient.query(`SET search_path = "${globex}"`);
      await expectDenied('SELECT * FROM executions');
      await expectDenied('SELECT * FROM task_runs');
    } finally {
      await relogged.end();
      await acmeClient.query('RESET search_path');
      await acmeClient.query(`ALTER ROLE "${acme}_user" SET search_path = "${acme}"`);
    }
  });

  it('cannot rewrite its migration history', async () => {
    await expectDenied('DELETE FROM schema_migrations');
    const { rows } = await acmeClient.query('SELECT count(*)::int AS n FROM schema_migrations');
    expect(rows[0]?.n).toBeGreaterThan(0);
  });

  it('gives task code a connection as the tenant role, via tenantDb', async () => {
    const db = await env.platform.tenantConnections.tenantDb(acme);
    const { rows } = await db.query('SELECT current_user AS user');
    expect(rows[0]?.user).toBe(`${acme}_user`);
    await expect(db.query(`SELECT * FROM "${globex}".executions`)).rejects.toThrow(DENIED);
  });
});
