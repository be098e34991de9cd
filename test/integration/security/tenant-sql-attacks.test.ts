import { createHmac, randomUUID } from 'node:crypto';
import { CONTROL_MIGRATIONS_DIR } from '@tenantflow/shared/db/control-schema';
import { checksumOf, loadMigrations, type Migration, migrateSchema } from '@tenantflow/shared/db/migrations';
import { CONTROL_SCHEMA, quoteIdent, tenantTable } from '@tenantflow/shared/db/sql';
import { TenantflowError } from '@tenantflow/shared/kernel/errors';
import { createLogger } from '@tenantflow/shared/logging/logger';
import { DatabaseAdmin } from '@tenantflow/shared/provisioning/database-admin';
import { prepareControlSchema } from '@tenantflow/shared/provisioning/database-migrator';
import { migrateFleet } from '@tenantflow/shared/provisioning/fleet-migrator';
import { loadTenantMigrations } from '@tenantflow/shared/provisioning/tenant-migrations';
import type { RecoveryService } from '@tenantflow/shared/recovery';
import { createRecoveryHistory } from '@tenantflow/shared/runtime/recovery-history';
import { compileToAsl } from '@tenantflow/shared/workflows/asl';
import { ExecutionStore } from '@tenantflow/shared/workflows/execution-store';
import type { Orchestrator } from '@tenantflow/shared/workflows/orchestrator';
import { defineTask } from '@tenantflow/shared/workflows/task';
import { defineWorkflow } from '@tenantflow/shared/workflows/workflow';
import { WorkflowRegistry } from '@tenantflow/shared/workflows/workflow-registry';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenantsApi } from '../../../functions/api/tenants.js';
import { LocalOrchestrator } from '../../../local/local-orchestrator.js';
import { LOCAL_TARGETS, localLambdas } from '../../../local/local-runtime.js';
import { lambdaContext, restEvent } from '../../support/api-gateway-events.js';
import { createTestDatabase } from '../../support/database.js';
import { createTestPlatform, type TestPlatform } from '../../support/platform.js';
import { CountingOrchestrator, testRecovery } from '../../support/recovery.js';
import {
  completeTask as completeWithToken,
  runningAttempt as startRunningAttempt,
} from '../../support/task-attempts.js';

/** The version after the last of `migrations` (versions may have gaps: the numbering is never reused). */
const versionAfter = (migrations: readonly { version: number }[]) =>
  Math.max(0, ...migrations.map((migration) => migration.version)) + 1;

/**
 * What an attacker holding a tenant's SQL login (the stored credentials of `<id>_user`, as an
 * injection in task code would have them) can do to other tenants, to the platform and to the
 * privileged code that runs over its schema. Every attack below is either refused by PostgreSQL
 * (checked by SQLSTATE and message, never "any error") or runs and is then proven harmless by a
 * look as the superuser or the admin. Each counts once in the tally printed at the end.
 *
 * Families: I (isolation: other tenants, the registry, the server), N1 (name squatting), E1
 * (planted overloads run by privileged code), E2 (tenant ids that name what exists), F1
 * (bookkeeping forgeries), L1 (locks that would stall others), S (other sessions).
 */

const INSUFFICIENT_PRIVILEGE = '42501';
const UNDEFINED_TABLE = '42P01';
const TOO_MANY_CONNECTIONS = '53300';
const OBJECT_NOT_IN_PREREQUISITE_STATE = '55000';
/** What "in bounded time" means for platform work while a tenant holds its locks. */
const BOUND_MS = 15_000;
const ADMIN_TOKEN = 'security-suite-admin-token-0123456789';
const logger = createLogger('tenant-sql-attacks-test');
const q = quoteIdent;

// --- The tally -------------------------------------------------------------------------------

const tally = { tried: new Set<string>(), denied: new Set<string>() };

function tried(name: string): void {
  if (tally.tried.has(name)) {
    throw new Error(`Attack '${name}' is counted twice: every attack must be distinct`);
  }
  tally.tried.add(name);
}

/** An attack as one test: counted as tried when it starts, as denied once its assertions held. */
function attack(name: string, body: () => Promise<void>, timeout?: number): void {
  it(
    name,
    async () => {
      tried(name);
      await body();
      tally.denied.add(name);
    },
    timeout,
  );
}

// --- Workflows the platform runs for the tenants ---------------------------------------------

const gates = { fragileBroken: false };
let lingerArrived: () => void = () => {};
let releaseLinger: () => void = () => {};

const record = defineTask({
  id: 'record',
  run: async (ctx) => {
    await ctx.db.query(
      'INSERT INTO example_results (execution_id, workflow, tenant_id, payload) VALUES ($1, $2, $3, $4)',
      [ctx.executionId, 'security_record', ctx.tenant.id, '{}'],
    );
    ctx.set('recorded', true);
  },
});
const noop = defineTask({ id: 'noop', run: (ctx) => ctx.set('noop', true) });
const fragile = defineTask({
  id: 'fragile',
  retry: { attempts: 1 },
  run: (ctx) => {
    if (gates.fragileBroken) {
      throw new Error('fragile is broken right now');
    }
    ctx.set('fragile', true);
  },
});
const linger = defineTask({
  id: 'linger',
  run: async (ctx) => {
    // The task's own connection is open (its transaction has begun) while it waits.
    await ctx.db.query('SELECT 1');
    const released = new Promise<void>((resolve) => {
      releaseLinger = resolve;
    });
    lingerArrived();
    await released;
  },
});
const workflows = new WorkflowRegistry([
  defineWorkflow({ name: 'security_record', tasks: [record] }),
  defineWorkflow({ name: 'security_noop', tasks: [noop] }),
  defineWorkflow({ name: 'security_fragile', tasks: [fragile] }),
  defineWorkflow({ name: 'security_linger', tasks: [linger] }),
]);

// --- The suite's world -------------------------------------------------------------------------

let env: TestPlatform;
let otherDatabase: Awaited<ReturnType<typeof createTestDatabase>>;
/** The attacker: acme's own login. globex is the victim next door. */
let acme: string;
let globex: string;
let attacker: pg.Client;
/** The bootstrap superuser: sets scenarios up and looks, never acts for the platform. */
let superuser: pg.Client;
let adminRole: string;
let platformRole: string;
let store: ExecutionStore;
let orchestrator: LocalOrchestrator;
let shippedMigrations: Migration[];
/** Tenant migrations added by the fleet runs of this suite, in version order. */
const extraMigrations: Migration[] = [];

const openClients = new Set<pg.Client>();

async function loginAs(tenantId: string, database?: string): Promise<pg.Client> {
  const secret = await env.platform.secrets.get(tenantId);
  if (secret === undefined) {
    throw new Error(`${tenantId} has no stored credentials`);
  }
  const client = new pg.Client({
    host: secret.host,
    port: secret.port,
    database: database ?? secret.dbname,
    user: secret.username,
    password: secret.password,
  });
  client.on('error', () => {});
  await client.connect();
  openClients.add(client);
  return client;
}

async function logout(client: pg.Client): Promise<void> {
  openClients.delete(client);
  await client.end().catch(() => undefined);
}

/** The error `work` rejected with; fails the test when it resolved. */
async function refusal(work: Promise<unknown>, what: string): Promise<Error & { code?: string }> {
  const outcome = await work.then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(outcome, `${what} should have been refused`).toBeInstanceOf(Error);
  return outcome as Error & { code?: string };
}

/** The statement fails with a denial: the given SQLSTATE (42501 by default) and message. */
async function expectDenied(
  client: pg.Client,
  sql: string,
  message: RegExp,
  code = INSUFFICIENT_PRIVILEGE,
): Promise<void> {
  const error = await refusal(client.query(sql), sql);
  expect(error, sql).toMatchObject({ code, message: expect.stringMatching(message) });
}

/** The same inside a transaction (LOCK TABLE needs one), rolled back afterwards. */
async function expectDeniedInTransaction(client: pg.Client, sql: string, message: RegExp): Promise<void> {
  await client.query('BEGIN');
  try {
    await expectDenied(client, sql, message);
  } finally {
    await client.query('ROLLBACK');
  }
}

async function look<T extends pg.QueryResultRow>(sql: string, values: unknown[] = []): Promise<T[]> {
  return (await superuser.query<T>(sql, values)).rows;
}

async function elapsed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await work();
  return { value, ms: performance.now() - started };
}

function migration(version: number, name: string, sql: string): Migration {
  return { version, name: `${String(version).padStart(4, '0')}_${name}.sql`, sql, checksum: checksumOf(sql) };
}

/** A new tenant migration, after the shipped ones and those this suite added before it. */
function nextTenantMigration(name: string, sql: string): Migration {
  const added = migration(versionAfter(shippedMigrations) + extraMigrations.length, name, sql);
  extraMigrations.push(added);
  return added;
}

/** An admin as a deployment with this suite's extra tenant migrations would build it. */
function fleetAdmin(): DatabaseAdmin {
  return new DatabaseAdmin({
    adminUrl: env.databaseUrl,
    platformRole,
    tenantMigrations: [...shippedMigrations, ...extraMigrations],
  });
}

async function newExecution(tenantId: string, workflow: string): Promise<string> {
  const executionId = randomUUID();
  await store.insertWithinLimit(tenantId, { executionId, workflow, input: {} }, 100);
  return executionId;
}

/** Runs a workflow for a tenant through the local orchestrator, to its end. */
async function runWorkflow(tenantId: string, workflow: string): Promise<string> {
  const executionId = await newExecution(tenantId, workflow);
  await orchestrator.start({ workflow, tenantId, executionId });
  await orchestrator.drain();
  return executionId;
}

async function statusOf(tenantId: string, executionId: string): Promise<string | undefined> {
  return (await store.get(tenantId, executionId))?.status;
}

function recovery(over: Orchestrator): RecoveryService {
  return testRecovery(env, { orchestrator: over, workflows, logger });
}

/** An execution row quiet for an hour, written by the platform: what recovery will find stuck. */
async function staleExecution(tenantId: string, workflow: string): Promise<string> {
  const executionId = randomUUID();
  await env.platform.pool.query(
    `INSERT INTO ${tenantTable(tenantId, 'executions')} (id, workflow, status, created_at, updated_at)
     VALUES ($1, $2, 'pending', now() - interval '1 hour', now() - interval '1 hour')`,
    [executionId, workflow],
  );
  return executionId;
}

/** acme's bookkeeping as the superuser sees it: what a forgery would have changed. */
async function bookkeepingOf(tenantId: string): Promise<unknown> {
  const [row] = await look<{ state: unknown }>(
    `SELECT json_build_object(
       'executions', (SELECT json_agg(e ORDER BY e.id) FROM ${tenantTable(tenantId, 'executions')} e),
       'task_runs', (SELECT json_agg(t ORDER BY t.execution_id, t.task_id) FROM ${tenantTable(tenantId, 'task_runs')} t),
       'schema_migrations', (SELECT json_agg(m ORDER BY m.version) FROM ${tenantTable(tenantId, 'schema_migrations')} m)
     ) AS state`,
  );
  return row?.state;
}

beforeAll(async () => {
  // A database that exists before provisioning: a tenant role must not even connect to it.
  otherDatabase = await createTestDatabase('tf_other');
  env = await createTestPlatform();
  acme = env.id('acme');
  globex = env.id('globex');
  for (const [tenantId, name] of [
    [acme, 'Acme'],
    [globex, 'Globex'],
  ] as const) {
    await env.platform.provisioning.provision({ tenantId, name });
  }
  superuser = new pg.Client({ connectionString: env.superuserUrl });
  await superuser.connect();
  adminRole = (await env.adminPool.query<{ me: string }>('SELECT current_user AS me')).rows[0]?.me ?? '';
  platformRole = await env.platform.admin.platformRoleName();
  shippedMigrations = await loadTenantMigrations();
  store = new ExecutionStore(env.platform.pool);
  orchestrator = new LocalOrchestrator({
    definitions: Object.fromEntries(
      workflows.list().map((workflow) => [workflow.name, compileToAsl(workflow, LOCAL_TARGETS)]),
    ),
    lambdas: localLambdas({ core: env.platform, access: env.platform, workflows, logger }),
    retryIntervalMs: 0,
  });
  // globex has data of its own: a row of its own table, an execution, and a table only it has.
  const globexDb = await env.platform.tenantConnections.tenantDb(globex);
  await globexDb.query(
    `INSERT INTO example_results (execution_id, workflow, tenant_id, payload) VALUES ('g1', 'billing', $1, '{"secret": "globex"}')`,
    [globex],
  );
  await env.platform.pool.query(
    `INSERT INTO ${tenantTable(globex, 'executions')} (id, workflow, context) VALUES ('g1', 'billing', '{"secret": "globex"}')`,
  );
  await env.adminPool.query(`CREATE TABLE ${tenantTable(globex, 'globex_only')} (secret text)`);
  await env.adminPool.query(`ANALYZE ${tenantTable(globex, 'example_results')}`);
  attacker = await loginAs(acme);
});

afterAll(async () => {
  await orchestrator?.drain().catch(() => undefined);
  await Promise.all([...openClients].map((client) => logout(client)));
  await superuser?.end().catch(() => undefined);
  await env?.cleanup();
  await otherDatabase?.drop();
});

afterAll(() => {
  const line = `attacks tried ${tally.tried.size}, denied ${tally.denied.size}`;
  console.log(line);
  expect(tally.tried.size).toBeGreaterThanOrEqual(60);
  expect([...tally.tried].filter((name) => !tally.denied.has(name))).toEqual([]);
  expect(tally.denied.size).toBe(tally.tried.size);
});

// --- The attacker's starting point (not attacks) -----------------------------------------------

describe("the attacker's login", () => {
  it('is acme_user, with its own schema as the only search path', async () => {
    const { rows } = await attacker.query<{ user: string; path: string; schemas: string[] }>(
      'SELECT current_user AS user, current_setting($1) AS path, current_schemas(false)::text[] AS schemas',
      ['search_path'],
    );
    expect(rows[0]?.user).toBe(`${acme}_user`);
    expect(rows[0]?.path.replaceAll('"', '')).toBe(acme);
    expect(rows[0]?.schemas).toEqual([acme]);
  });

  it('uses its own business tables, unqualified and qualified', async () => {
    await attacker.query(
      `INSERT INTO example_results (execution_id, workflow, tenant_id, payload) VALUES ('a1', 'billing', $1, '{}')`,
      [acme],
    );
    const { rows } = await attacker.query(`SELECT execution_id AS id FROM ${q(acme)}.example_results`);
    expect(rows).toEqual([{ id: 'a1' }]);
  });
});

// --- I: other tenants, the registry and the server ----------------------------------------------

describe("I: another tenant's data and the registry", () => {
  const globexTables: Array<[string, (schema: string) => string]> = [
    ['reads', (s) => `SELECT * FROM ${q(s)}.executions`],
    ['inserts into', (s) => `INSERT INTO ${q(s)}.executions (id, workflow) VALUES ('x', 'y')`],
    ['updates', (s) => `UPDATE ${q(s)}.executions SET workflow = 'hacked'`],
    ['deletes from', (s) => `DELETE FROM ${q(s)}.executions`],
    ['reads business rows of', (s) => `SELECT * FROM ${q(s)}.example_results`],
    [
      'inserts business rows into',
      (s) =>
        `INSERT INTO ${q(s)}.example_results (execution_id, workflow, tenant_id, payload) VALUES ('x', 'y', 'z', '{}')`,
    ],
    ['updates business rows of', (s) => `UPDATE ${q(s)}.example_results SET workflow = 'hacked'`],
    ['deletes business rows of', (s) => `DELETE FROM ${q(s)}.example_results`],
  ];
  for (const [verb, sql] of globexTables) {
    attack(`${verb} globex's tables, schema-qualified`, async () => {
      await expectDenied(attacker, sql(globex), /permission denied for schema/);
    });
  }

  attack("reads globex's tables through task code's tenantDb handle", async () => {
    const db = await env.platform.tenantConnections.tenantDb(acme);
    const error = await refusal(db.query(`SELECT * FROM ${tenantTable(globex, 'executions')}`), 'tenantDb');
    expect(error).toMatchObject({ code: INSUFFICIENT_PRIVILEGE, message: expect.stringMatching(/schema/) });
  });

  attack('names a table that exists only in globex, unqualified', async () => {
    // The table is there (in globex): the name resolves in acme's schema only, so it is not found.
    expect(
      await look(`SELECT 1 FROM pg_class WHERE oid = $1::regclass`, [`${globex}.globex_only`]),
    ).toHaveLength(1);
    await expectDenied(attacker, 'SELECT * FROM globex_only', /does not exist/, UNDEFINED_TABLE);
  });

  attack("reads globex's rows through the unqualified names both schemas share", async () => {
    const executions = await attacker.query<{ id: string }>('SELECT id FROM executions');
    const results = await attacker.query<{ execution_id: string }>(
      'SELECT execution_id FROM example_results',
    );
    expect(executions.rows.map((row) => row.id)).not.toContain('g1');
    expect(results.rows.map((row) => row.execution_id)).not.toContain('g1');
    // globex does have them.
    expect(await look(`SELECT 1 FROM ${tenantTable(globex, 'executions')} WHERE id = 'g1'`)).toHaveLength(1);
  });

  attack("points its own role's search_path at globex and logs in again", async () => {
    // A role may change its own defaults: privileges, not the path, must decide. A schema on the
    // path that the role may not use is skipped, so globex's tables are simply not found.
    await attacker.query(`ALTER ROLE ${q(`${acme}_user`)} SET search_path = ${q(globex)}`);
    const relogged = await loginAs(acme);
    try {
      await expectDenied(relogged, 'SELECT * FROM executions', /does not exist/, UNDEFINED_TABLE);
      await attacker.query(`SET search_path = ${q(globex)}`);
      await expectDenied(attacker, 'SELECT * FROM task_runs', /does not exist/, UNDEFINED_TABLE);
    } finally {
      await logout(relogged);
      await attacker.query('RESET search_path');
      await attacker.query(`ALTER ROLE ${q(`${acme}_user`)} SET search_path = ${q(acme)}`);
    }
  });

  const registry: Array<[string, string]> = [
    ['reads the tenant registry', 'SELECT * FROM tenantflow.tenants'],
    [
      'raises its own limits in the registry',
      `UPDATE tenantflow.tenants SET config = '{"limits": {"maxConcurrentExecutions": 100000}}' WHERE tenant_id = current_user`,
    ],
    ['reads the recovery journal', 'SELECT * FROM tenantflow.recovery_events'],
    ['reads the control schema migration history', 'SELECT * FROM tenantflow.schema_migrations'],
  ];
  for (const [name, sql] of registry) {
    attack(name, async () => {
      await expectDenied(attacker, sql, /permission denied for schema tenantflow/);
    });
  }

  const catalogs: Array<[string, string, RegExp]> = [
    ['reads password hashes in pg_authid', 'SELECT rolname, rolpassword FROM pg_authid', /pg_authid/],
    ['reads pg_shadow', 'SELECT * FROM pg_shadow', /pg_shadow/],
    ['reads the server authentication rules', 'SELECT * FROM pg_hba_file_rules', /pg_hba_file_rules/],
    ['reads the server configuration files', 'SELECT * FROM pg_file_settings', /pg_file_settings/],
    ["reads raw column statistics of globex's tables", 'SELECT * FROM pg_statistic', /pg_statistic/],
    ['reads extended statistics data', 'SELECT * FROM pg_statistic_ext_data', /pg_statistic_ext_data/],
    ['reads large objects', 'SELECT * FROM pg_largeobject', /pg_largeobject/],
  ];
  for (const [name, sql, table] of catalogs) {
    attack(name, async () => {
      await expectDenied(attacker, sql, new RegExp(`permission denied for (table|view) ${table.source}`));
    });
  }

  attack("reads globex's column values through pg_stats", async () => {
    // The statistics exist (the superuser sees most common values of globex's columns)...
    const seen = await look('SELECT attname FROM pg_stats WHERE schemaname = $1', [globex]);
    expect(seen.length).toBeGreaterThan(0);
    // ...but pg_stats shows a role only the columns it may read.
    const { rows } = await attacker.query('SELECT * FROM pg_stats WHERE schemaname = $1', [globex]);
    expect(rows).toEqual([]);
  });

  const databases: Array<[string, () => string]> = [
    ['another application database', () => new URL(otherDatabase.url).pathname.slice(1)],
    ['the postgres maintenance database', () => 'postgres'],
    ['template1', () => 'template1'],
  ];
  for (const [name, database] of databases) {
    attack(`connects to ${name}`, async () => {
      const error = await refusal(loginAs(acme, database()), `a login to ${name}`);
      expect(error).toMatchObject({
        code: INSUFFICIENT_PRIVILEGE,
        message: expect.stringMatching(/permission denied for database/),
      });
    });
  }
});

describe('I: privilege escalation', () => {
  const statements: Array<[string, () => string, RegExp]> = [
    [
      'SET ROLE to another tenant role',
      () => `SET ROLE ${q(`${globex}_user`)}`,
      /permission denied to set role/,
    ],
    ['SET ROLE to the platform role', () => `SET ROLE ${q(platformRole)}`, /permission denied to set role/],
    ['SET ROLE to the admin role', () => `SET ROLE ${q(adminRole)}`, /permission denied to set role/],
    [
      'SET ROLE to the tenants group it is a member of',
      () => `SET ROLE ${q(`${platformRole}_tenants`)}`,
      /permission denied to set role/,
    ],
    ['sets the role through set_config', () => `SELECT set_config('role', 'postgres', false)`, /set role/],
    [
      'SET SESSION AUTHORIZATION to the admin',
      () => `SET SESSION AUTHORIZATION ${q(adminRole)}`,
      /permission denied to set session authorization/,
    ],
    [
      'makes itself SUPERUSER',
      () => `ALTER ROLE ${q(`${acme}_user`)} SUPERUSER`,
      /permission denied to alter role/,
    ],
    [
      'makes itself CREATEROLE',
      () => `ALTER ROLE ${q(`${acme}_user`)} CREATEROLE`,
      /permission denied to alter role/,
    ],
    [
      'makes itself CREATEDB',
      () => `ALTER ROLE ${q(`${acme}_user`)} CREATEDB`,
      /permission denied to alter role/,
    ],
    [
      'makes itself BYPASSRLS',
      () => `ALTER ROLE ${q(`${acme}_user`)} BYPASSRLS`,
      /permission denied to alter role/,
    ],
    [
      'makes itself REPLICATION',
      () => `ALTER ROLE ${q(`${acme}_user`)} REPLICATION`,
      /permission denied to alter role/,
    ],
    [
      'lifts its own CONNECTION LIMIT',
      () => `ALTER ROLE ${q(`${acme}_user`)} CONNECTION LIMIT -1`,
      /permission denied to alter role/,
    ],
    [
      'makes itself INHERIT',
      () => `ALTER ROLE ${q(`${acme}_user`)} INHERIT`,
      /permission denied to alter role/,
    ],
    [
      'changes its own VALID UNTIL',
      () => `ALTER ROLE ${q(`${acme}_user`)} VALID UNTIL 'infinity'`,
      /permission denied to alter role/,
    ],
    [
      "changes globex_user's password",
      () => `ALTER ROLE ${q(`${globex}_user`)} PASSWORD 'taken-over'`,
      /permission denied to alter role/,
    ],
    [
      "changes globex_user's search_path",
      () => `ALTER ROLE ${q(`${globex}_user`)} SET search_path = ${q(acme)}`,
      /permission denied to alter role/,
    ],
    ['drops globex_user', () => `DROP ROLE ${q(`${globex}_user`)}`, /permission denied to drop role/],
    ['creates a role', () => 'CREATE ROLE intruder LOGIN', /permission denied to create role/],
    [
      'grants itself to globex_user',
      () => `GRANT ${q(`${acme}_user`)} TO ${q(`${globex}_user`)}`,
      /permission denied to grant role/,
    ],
    [
      "grants itself globex's executions",
      () => `GRANT SELECT ON ${q(globex)}.executions TO ${q(`${acme}_user`)}`,
      /permission denied for schema/,
    ],
    [
      'reassigns its objects to globex_user',
      () => `REASSIGN OWNED BY ${q(`${acme}_user`)} TO ${q(`${globex}_user`)}`,
      /permission denied to reassign objects/,
    ],
    [
      "makes complete_task run with the caller's rights",
      () =>
        'ALTER FUNCTION tenantflow_api.complete_task(text, text, text, text, jsonb, text[]) SECURITY INVOKER',
      /must be owner of function/,
    ],
    [
      'replaces complete_task with one that always completes',
      () =>
        `CREATE OR REPLACE FUNCTION tenantflow_api.complete_task(p_tenant_id text, p_execution_id text, p_task_id text,
           p_attempt_token text, p_context_set jsonb, p_context_unset text[]) RETURNS text LANGUAGE sql AS $$ SELECT 'completed' $$`,
      /permission denied for schema tenantflow_api/,
    ],
    [
      'takes ownership of its schema',
      () => `ALTER SCHEMA ${q(acme)} OWNER TO CURRENT_USER`,
      /must be owner of schema/,
    ],
    ["drops globex's schema", () => `DROP SCHEMA ${q(globex)} CASCADE`, /must be owner of schema/],
    ['drops its executions table', () => 'DROP TABLE executions', /must be owner of table executions/],
    [
      'alters its own business table',
      () => 'ALTER TABLE example_results ADD COLUMN smuggled text',
      /must be owner of table example_results/,
    ],
    [
      'turns row-level security policies on its table',
      () => 'CREATE POLICY everything ON example_results USING (true)',
      /must be owner of table example_results/,
    ],
    [
      'attaches a trigger to its business table',
      () =>
        'CREATE TRIGGER spy BEFORE INSERT ON example_results FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()',
      /permission denied for table example_results/,
    ],
    ['comments on the bookkeeping', () => `COMMENT ON TABLE executions IS 'mine'`, /must be owner of table/],
    [
      'runs a DO block that empties its executions',
      () => `DO $$ BEGIN EXECUTE 'DELETE FROM executions'; END $$`,
      /permission denied for table executions/,
    ],
  ];
  for (const [name, sql, message] of statements) {
    attack(name, async () => {
      await expectDenied(attacker, sql(), message);
    });
  }

  attack('grants its business table to globex_user', async () => {
    await attacker.query(`GRANT SELECT ON example_results TO ${q(`${globex}_user`)}`);
    const [row] = await look<{ granted: boolean }>('SELECT has_table_privilege($1, $2, $3) AS granted', [
      `${globex}_user`,
      `${acme}.example_results`,
      'SELECT',
    ]);
    expect(row?.granted).toBe(false);
  });

  attack('grants USAGE on its schema to PUBLIC', async () => {
    await attacker.query(`GRANT USAGE ON SCHEMA ${q(acme)} TO PUBLIC`);
    const [row] = await look<{ granted: boolean }>('SELECT has_schema_privilege($1, $2, $3) AS granted', [
      `${globex}_user`,
      acme,
      'USAGE',
    ]);
    expect(row?.granted).toBe(false);
  });

  attack('grants EXECUTE on complete_task to PUBLIC', async () => {
    const signature = 'tenantflow_api.complete_task(text, text, text, text, jsonb, text[])';
    const before = await look('SELECT proacl::text FROM pg_proc WHERE oid = $1::regprocedure', [signature]);
    await attacker.query(`GRANT EXECUTE ON FUNCTION ${signature} TO PUBLIC`);
    expect(await look('SELECT proacl::text FROM pg_proc WHERE oid = $1::regprocedure', [signature])).toEqual(
      before,
    );
  });

  attack("stores SET ROLE globex_user as its own role's default and logs in again", async () => {
    await attacker.query(`ALTER ROLE ${q(`${acme}_user`)} SET role = ${q(`${globex}_user`)}`);
    try {
      const relogged = await loginAs(acme);
      const { rows } = await relogged.query<{ current: string }>('SELECT current_user AS current');
      await logout(relogged);
      expect(rows[0]?.current).toBe(`${acme}_user`);
    } finally {
      await attacker.query(`ALTER ROLE ${q(`${acme}_user`)} RESET role`);
    }
  });

  it('leaves acme_user with no privileged attribute, and no membership but the tenants group, which it cannot SET', async () => {
    const [role] = await look<{ attributes: boolean[]; memberships: string[] }>(
      `SELECT ARRAY[rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, rolinherit] AS attributes,
              ARRAY(SELECT format('%s inherit=%s set=%s admin=%s', pg_get_userbyid(m.roleid), m.inherit_option,
                                  m.set_option, m.admin_option)
                      FROM pg_auth_members m WHERE m.member = r.oid) AS memberships
         FROM pg_roles r WHERE rolname = $1`,
      [`${acme}_user`],
    );
    const group = await env.platform.admin.tenantGroupName();
    expect(role).toEqual({
      attributes: [false, false, false, false, false, false],
      memberships: [`${group} inherit=t set=f admin=f`],
    });
    // The group itself: nothing privileged, no login, member of nothing.
    const [groupRole] = await look<{ attributes: boolean[]; memberships: number }>(
      `SELECT ARRAY[rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, rolcanlogin] AS attributes,
              (SELECT count(*)::int FROM pg_auth_members m WHERE m.member = r.oid) AS memberships
         FROM pg_roles r WHERE rolname = $1`,
      [group],
    );
    expect(groupRole).toEqual({ attributes: [false, false, false, false, false, false], memberships: 0 });
  });
});

describe('I: the server, its files and its configuration', () => {
  const statements: Array<[string, string, RegExp]> = [
    ['runs a shell command with COPY TO PROGRAM', `COPY (SELECT 1) TO PROGRAM 'id'`, /external program/],
    ['writes a server file with COPY TO', `COPY (SELECT 1) TO '/tmp/tenantflow-stolen'`, /COPY to a file/],
    ['reads a server file with COPY FROM', `COPY example_results FROM '/etc/passwd'`, /COPY from a file/],
    ['reads a server file with lo_import', `SELECT lo_import('/etc/passwd')`, /function lo_import/],
    [
      'writes a server file with lo_export',
      `SELECT lo_export(0, '/tmp/tenantflow-stolen')`,
      /function lo_export/,
    ],
    [
      'reads a server file with pg_read_file',
      `SELECT pg_read_file('postgresql.conf')`,
      /function pg_read_file/,
    ],
    [
      'reads a server file with pg_read_binary_file',
      `SELECT pg_read_binary_file('postgresql.conf')`,
      /function pg_read_binary_file/,
    ],
    ['lists the data directory with pg_ls_dir', `SELECT pg_ls_dir('.')`, /function pg_ls_dir/],
    [
      'stats a server file with pg_stat_file',
      `SELECT pg_stat_file('postgresql.conf')`,
      /function pg_stat_file/,
    ],
    ['lists the WAL directory', 'SELECT pg_ls_waldir()', /function pg_ls_waldir/],
    ['lists the log directory', 'SELECT pg_ls_logdir()', /function pg_ls_logdir/],
    ['finds the current log file', 'SELECT pg_current_logfile()', /function pg_current_logfile/],
    ['installs dblink', 'CREATE EXTENSION dblink', /permission denied to create extension "dblink"/],
    ['installs postgres_fdw', 'CREATE EXTENSION postgres_fdw', /permission denied to create extension/],
    ['installs file_fdw', 'CREATE EXTENSION file_fdw', /permission denied to create extension/],
    [
      'installs a trusted extension (pgcrypto) into its schema',
      `CREATE EXTENSION pgcrypto`,
      /permission denied to create extension/,
    ],
    ['installs an untrusted language', 'CREATE LANGUAGE plperlu', /permission denied to create extension/],
    [
      'creates an event trigger on every DDL',
      'CREATE EVENT TRIGGER spy ON ddl_command_start EXECUTE FUNCTION pg_catalog.now()',
      /permission denied to create event trigger/,
    ],
    [
      'changes the server configuration with ALTER SYSTEM',
      `ALTER SYSTEM SET log_statement = 'none'`,
      /parameter/,
    ],
    [
      'turns statement logging off for its session',
      `SET log_statement = 'none'`,
      /permission denied to set parameter/,
    ],
    [
      'disables triggers and foreign keys with session_replication_role',
      'SET session_replication_role = replica',
      /permission denied to set parameter/,
    ],
    [
      "stores session_replication_role in its role's defaults",
      'ALTER ROLE CURRENT_USER SET session_replication_role = replica',
      /permission denied to set parameter/,
    ],
    ['reloads the server configuration', 'SELECT pg_reload_conf()', /function pg_reload_conf/],
    ['rotates the server log', 'SELECT pg_rotate_logfile()', /function pg_rotate_logfile/],
    ['resets the statistics', 'SELECT pg_stat_reset()', /function pg_stat_reset/],
    ['creates a database', 'CREATE DATABASE stolen', /permission denied to create database/],
    [
      'creates a tablespace',
      `CREATE TABLESPACE stolen LOCATION '/tmp'`,
      /permission denied to create tablespace/,
    ],
    [
      'publishes every table for replication',
      'CREATE PUBLICATION everything FOR ALL TABLES',
      /permission denied/,
    ],
    [
      'subscribes to another server',
      `CREATE SUBSCRIPTION pull CONNECTION 'host=127.0.0.1' PUBLICATION everything`,
      /permission denied to create subscription/,
    ],
    [
      'creates a foreign-data wrapper',
      'CREATE FOREIGN DATA WRAPPER tunnel',
      /permission denied to create foreign-data wrapper/,
    ],
    [
      'creates an access method',
      'CREATE ACCESS METHOD tunnel TYPE TABLE HANDLER heap_tableam_handler',
      /access method/,
    ],
    [
      'streams every change through a logical replication slot',
      `SELECT pg_create_logical_replication_slot('tunnel', 'pgoutput')`,
      /permission denied to use replication slots/,
    ],
    ['forces a WAL switch', 'SELECT pg_switch_wal()', /function pg_switch_wal/],
    [
      'reads where the data directory is',
      `SELECT current_setting('data_directory')`,
      /permission denied to examine/,
    ],
  ];
  for (const [name, sql, message] of statements) {
    attack(name, async () => {
      await expectDenied(attacker, sql, message);
    });
  }
});

// --- N1: name squatting ----------------------------------------------------------------------------

describe('N1: name squatting', () => {
  const kinds: Array<[string, (schema: string) => string]> = [
    ['a table', (s) => `CREATE TABLE ${s}.squat_table (x int)`],
    ['a view', (s) => `CREATE VIEW ${s}.squat_view AS SELECT 1 AS x`],
    ['a sequence', (s) => `CREATE SEQUENCE ${s}.squat_sequence`],
    ['a type', (s) => `CREATE TYPE ${s}.squat_type AS (x int)`],
    ['a function', (s) => `CREATE FUNCTION ${s}.squat_function() RETURNS int LANGUAGE sql AS 'SELECT 1'`],
  ];
  const schemas: Array<[string, () => string]> = [
    ['its own schema', () => q(acme)],
    ['public', () => 'public'],
    ['tenantflow', () => 'tenantflow'],
    ['tenantflow_api', () => 'tenantflow_api'],
    ["globex's schema", () => q(globex)],
  ];
  for (const [kind, create] of kinds) {
    for (const [where, schema] of schemas) {
      attack(`creates ${kind} in ${where}`, async () => {
        await expectDenied(attacker, create(schema()), /permission denied for schema/);
      });
    }
  }

  const others: Array<[string, string, RegExp]> = [
    [
      'creates a table in pg_catalog',
      'CREATE TABLE pg_catalog.squat_table (x int)',
      /permission denied for schema/,
    ],
    [
      'creates a function in pg_catalog',
      `CREATE FUNCTION pg_catalog.squat_function() RETURNS int LANGUAGE sql AS 'SELECT 1'`,
      /permission denied for schema/,
    ],
    ['creates a temporary table', 'CREATE TEMP TABLE squat_temp (x int)', /temporary tables/],
    ['creates a temporary view', 'CREATE TEMP VIEW squat_temp_view AS SELECT 1', /temporary tables/],
    [
      'creates a function in pg_temp',
      `CREATE FUNCTION pg_temp.lower(varchar) RETURNS text LANGUAGE sql AS 'SELECT 1::text'`,
      /temporary tables/,
    ],
    ['creates a schema', 'CREATE SCHEMA squat_schema', /permission denied for database/],
    [
      'creates a schema named after itself',
      'CREATE SCHEMA AUTHORIZATION CURRENT_USER',
      /permission denied for database/,
    ],
    ['creates a domain', 'CREATE DOMAIN squat_domain AS int', /permission denied for schema/],
    [
      'creates a collation',
      `CREATE COLLATION squat_collation (locale = 'C')`,
      /permission denied for schema/,
    ],
    [
      'creates an aggregate',
      'CREATE AGGREGATE squat_aggregate (int) (sfunc = int4pl, stype = int)',
      /permission denied for schema/,
    ],
    [
      'creates a procedure',
      `CREATE PROCEDURE squat_procedure() LANGUAGE sql AS 'SELECT 1'`,
      /permission denied for schema/,
    ],
    [
      'creates a materialized view',
      'CREATE MATERIALIZED VIEW squat_matview AS SELECT 1',
      /permission denied for schema/,
    ],
    [
      'creates a text search configuration',
      'CREATE TEXT SEARCH CONFIGURATION squat_search (COPY = simple)',
      /permission denied for schema/,
    ],
    ['creates a global cast', 'CREATE CAST (text AS integer) WITH INOUT', /must be owner of type/],
    [
      'creates an index on its business table',
      'CREATE INDEX squat_index ON example_results (workflow)',
      /must be owner of table/,
    ],
    [
      'creates statistics on its business table',
      'CREATE STATISTICS squat_statistics ON workflow, tenant_id FROM example_results',
      /must be owner of table/,
    ],
  ];
  for (const [name, sql, message] of others) {
    attack(name, async () => {
      await expectDenied(attacker, sql, message);
    });
  }

  it('left no squatted name anywhere in the database', async () => {
    const found = await look(
      `SELECT relname AS name FROM pg_class WHERE relname LIKE 'squat%'
       UNION ALL SELECT proname FROM pg_proc WHERE proname LIKE 'squat%'
       UNION ALL SELECT typname FROM pg_type WHERE typname LIKE 'squat%'
       UNION ALL SELECT nspname FROM pg_namespace WHERE nspname LIKE 'squat%'`,
    );
    expect(found).toEqual([]);
  });
});

// --- F1: bookkeeping forgeries ---------------------------------------------------------------------

describe('F1: forging the bookkeeping', () => {
  let executionId: string;
  let taskToken: string;
  let globexExecution: string;

  beforeAll(async () => {
    // acme has an execution with a task attempt running; only the platform holds its token.
    executionId = await newExecution(acme, 'security_record');
    taskToken = (await startRunningAttempt(env.platform.pool, acme, executionId, 'record')).token;
    globexExecution = await newExecution(globex, 'security_record');
    await startRunningAttempt(env.platform.pool, globex, globexExecution, 'record');
  });

  const writes: Array<[string, () => string, RegExp]> = [
    [
      'inserts an execution',
      () => `INSERT INTO executions (id, workflow) VALUES ('forged', 'x')`,
      /executions/,
    ],
    ['marks its executions succeeded', () => `UPDATE executions SET status = 'succeeded'`, /executions/],
    ['deletes its executions', () => 'DELETE FROM executions', /executions/],
    ['truncates its executions', () => 'TRUNCATE executions', /executions/],
    [
      'inserts a task run',
      () => `INSERT INTO task_runs (execution_id, task_id) VALUES ('forged', 'x')`,
      /task_runs/,
    ],
    ['marks its task runs succeeded', () => `UPDATE task_runs SET status = 'succeeded'`, /task_runs/],
    ['deletes its task runs', () => 'DELETE FROM task_runs', /task_runs/],
    ['truncates its task runs', () => 'TRUNCATE task_runs CASCADE', /task_runs/],
    [
      'records a migration as applied',
      () => `INSERT INTO schema_migrations (version, name, checksum) VALUES (9999, 'forged', 'x')`,
      /schema_migrations/,
    ],
    [
      'rewrites a migration checksum',
      () => `UPDATE schema_migrations SET checksum = 'forged'`,
      /schema_migrations/,
    ],
    ['rewrites its migration history', () => 'DELETE FROM schema_migrations', /schema_migrations/],
    ['truncates its migration history', () => 'TRUNCATE schema_migrations', /schema_migrations/],
    [
      "sets started_at to -infinity to break finalize's duration",
      () => `UPDATE executions SET started_at = '-infinity'`,
      /executions/,
    ],
    ['resets the recovery attempt counter', () => 'UPDATE executions SET attempts = 0', /executions/],
    [
      'claims its own executions for recovery',
      () => `UPDATE executions SET recovery_owner = 'me', recovery_lease_until = 'infinity'`,
      /executions/,
    ],
    [
      'adds its own token hash to a task run',
      () => `UPDATE task_runs SET attempt_token_hashes = '{}'`,
      /task_runs/,
    ],
  ];
  for (const [name, sql, table] of writes) {
    attack(name, async () => {
      const before = await bookkeepingOf(acme);
      await expectDenied(attacker, sql(), new RegExp(`permission denied for table ${table.source}`));
      expect(await bookkeepingOf(acme)).toEqual(before);
    });
  }

  async function completeTask(tenantId: string, execution: string, taskId: string, token: string | null) {
    return attacker.query<{ outcome: string }>(
      `SELECT tenantflow_api.complete_task($1, $2, $3, $4, '{"forged": true}'::jsonb, ARRAY[]::text[]) AS outcome`,
      [tenantId, execution, taskId, token],
    );
  }

  /** The stored SHA-256 of the running attempt's token, which the tenant role may read. */
  async function readableTokenHash(): Promise<string> {
    const { rows } = await attacker.query<{ hash: string }>(
      `SELECT encode(attempt_token_hashes[1], 'hex') AS hash FROM task_runs WHERE execution_id = $1`,
      [executionId],
    );
    const hash = rows[0]?.hash ?? '';
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    return hash;
  }

  const completions: Array<[string, () => Promise<string | null>]> = [
    ['completes its own running task with a guessed token', async () => 'guessed-token'],
    ['completes its own running task without a token', async () => null],
    ['completes its own running task with the token hash it can read', readableTokenHash],
  ];
  for (const [name, token] of completions) {
    attack(name, async () => {
      const before = await bookkeepingOf(acme);
      const { rows } = await completeTask(acme, executionId, 'record', await token());
      expect(rows[0]?.outcome).toBe('unknown_attempt');
      expect(await bookkeepingOf(acme)).toEqual(before);
    });
  }

  /**
   * `claim_task` runs with the platform's rights inside the tenant's own transaction; a claim the
   * tenant could make itself would give it a token of its own choosing, and with it a completion.
   */
  async function claimTask(
    tenantId: string,
    execution: string,
    proof: string | null,
    hash = 'ab'.repeat(32),
  ) {
    return attacker.query(
      `SELECT * FROM tenantflow_api.claim_task($1, $2, 'record', ARRAY['security_record'], decode($3, 'hex'), decode($4, 'hex'))`,
      [tenantId, execution, hash, proof],
    );
  }

  const claims: Array<[string, () => Promise<string | null>]> = [
    ['claims an attempt of its own task without a proof', async () => null],
    ['claims an attempt of its own task with a made-up proof', async () => 'cd'.repeat(32)],
    [
      'claims an attempt with a proof keyed by the hash it can read',
      async () =>
        createHmac('sha256', Buffer.from(await readableTokenHash(), 'hex'))
          .update('x')
          .digest('hex'),
    ],
  ];
  for (const [name, proof] of claims) {
    attack(name, async () => {
      const before = await bookkeepingOf(acme);
      const error = await refusal(claimTask(acme, executionId, await proof()), 'claim_task');
      expect(error).toMatchObject({
        code: INSUFFICIENT_PRIVILEGE,
        message: expect.stringMatching(/claim was not made by the platform/),
      });
      expect(await bookkeepingOf(acme)).toEqual(before);
    });
  }

  attack("claims globex's task under globex's tenant id", async () => {
    const before = await bookkeepingOf(globex);
    const error = await refusal(claimTask(globex, globexExecution, 'cd'.repeat(32)), 'claim_task');
    expect(error).toMatchObject({
      code: INSUFFICIENT_PRIVILEGE,
      message: expect.stringMatching(/may not claim tasks of tenant/),
    });
    expect(await bookkeepingOf(globex)).toEqual(before);
  });

  attack('reads the key that proves a claim', async () => {
    await expectDenied(
      attacker,
      'SELECT hmac_key FROM tenantflow.task_claim_key',
      /permission denied for schema/,
    );
  });

  attack('finishes its own running task without the token, then commits', async () => {
    const before = await bookkeepingOf(acme);
    const error = await refusal(
      attacker.query(
        `SELECT tenantflow_api.finish_task($1, $2, 'record', 'guessed-token', '{"forged": true}'::jsonb, ARRAY[]::text[])`,
        [acme, executionId],
      ),
      'finish_task',
    );
    expect(error).toMatchObject({ code: 'TF409', detail: 'unknown_attempt' });
    expect(await bookkeepingOf(acme)).toEqual(before);
  });

  attack('completes a task that does not exist', async () => {
    const before = await bookkeepingOf(acme);
    const { rows } = await completeTask(acme, executionId, 'no_such_task', 'guessed-token');
    expect(rows[0]?.outcome).toBe('not_found');
    expect(await bookkeepingOf(acme)).toEqual(before);
  });

  attack("names globex's execution through its own tenant id", async () => {
    const before = await bookkeepingOf(globex);
    const { rows } = await completeTask(acme, globexExecution, 'record', 'guessed-token');
    expect(rows[0]?.outcome).toBe('not_found');
    expect(await bookkeepingOf(globex)).toEqual(before);
  });

  attack("completes globex's task under globex's tenant id", async () => {
    const before = await bookkeepingOf(globex);
    const error = await refusal(
      completeTask(globex, globexExecution, 'record', 'guessed-token'),
      'complete_task',
    );
    expect(error).toMatchObject({
      code: INSUFFICIENT_PRIVILEGE,
      message: expect.stringMatching(/may not complete tasks of tenant/),
    });
    expect(await bookkeepingOf(globex)).toEqual(before);
  });

  attack('completes a task under an injected tenant id', async () => {
    const error = await refusal(
      completeTask(`${acme}".task_runs; DELETE FROM "${globex}`, executionId, 'record', 'x'),
      'complete_task',
    );
    expect(error).toMatchObject({ code: INSUFFICIENT_PRIVILEGE });
  });

  attack('reads how many rows globex has inserted through its sequence', async () => {
    await expectDenied(
      attacker,
      `SELECT pg_sequence_last_value('${globex}.example_results_id_seq'::regclass)`,
      /permission denied for schema/,
    );
  });

  attack("reads globex's attempt token hashes", async () => {
    expect(await look(`SELECT 1 FROM ${tenantTable(globex, 'task_runs')}`)).not.toHaveLength(0);
    await expectDenied(
      attacker,
      `SELECT attempt_token_hashes FROM ${q(globex)}.task_runs`,
      /permission denied for schema/,
    );
  });

  it("still lets the runner complete the task with the real token, in the tenant role's transaction", async () => {
    // Control: the entry point the forgeries were refused by does work for the runner.
    const db = await env.platform.tenantConnections.tenantDb(acme);
    const outcome = await db.transaction((client) =>
      completeWithToken(client, acme, executionId, 'record', taskToken, { set: { done: true }, unset: [] }),
    );
    expect(outcome).toBe('completed');
    expect((await store.get(acme, executionId))?.context).toEqual({ done: true });
  });

  attack(
    "has recovery act on globex's failed execution by naming it in a forged row of its own",
    async () => {
      // Prepare: globex's execution fails for real; a row in acme's schema (written as the
      // superuser, as a tenant with write access once could) names it as stuck in flight.
      gates.fragileBroken = true;
      let owned: string;
      try {
        owned = await runWorkflow(globex, 'security_fragile');
      } finally {
        gates.fragileBroken = false;
      }
      expect(await statusOf(globex, owned)).toBe('failed');
      await superuser.query(
        `INSERT INTO ${tenantTable(acme, 'executions')} (id, workflow, status, created_at, updated_at)
         VALUES ($1, 'security_fragile', 'running', now() - interval '1 hour', now() - interval '1 hour')`,
        [owned],
      );
      const counting = new CountingOrchestrator(orchestrator);

      // Act
      const summary = await recovery(counting).run();
      await orchestrator.drain();

      // Assert: nothing was done to globex's execution; the forged row is abandoned.
      expect(counting.starts).toEqual([]);
      expect(counting.redrives).toEqual([]);
      expect(counting.stops).toEqual([]);
      expect(summary.actions.redrive).toBe(0);
      expect(
        await orchestrator.describe({ workflow: 'security_fragile', tenantId: globex, executionId: owned }),
      ).toMatchObject({ status: 'failed', redriveCount: 0 });
      expect(await store.get(globex, owned)).toMatchObject({ status: 'failed', attempts: 0 });
      const forged = await store.get(acme, owned);
      expect(forged?.status).toBe('failed');
      expect(forged?.error).toMatch(/^ABANDONED: /);
      expect(forged?.error).not.toContain(globex);
    },
    30_000,
  );
});

// --- E1: planted overloads run by privileged code ------------------------------------------------------

describe('E1: planting names for privileged code to resolve', () => {
  const overloads: Array<[string, string]> = [
    [
      'jsonb_build_object(text, integer)',
      'CREATE FUNCTION jsonb_build_object(text, integer) RETURNS jsonb LANGUAGE sql AS $$ SELECT NULL::jsonb $$',
    ],
    ['lower(varchar)', 'CREATE FUNCTION lower(varchar) RETURNS text LANGUAGE sql AS $$ SELECT $1::text $$'],
    ['concat(text, text)', 'CREATE FUNCTION concat(text, text) RETURNS text LANGUAGE sql AS $$ SELECT $1 $$'],
    ['format(text, text)', 'CREATE FUNCTION format(text, text) RETURNS text LANGUAGE sql AS $$ SELECT $1 $$'],
    [
      'hashtextextended(text, integer)',
      'CREATE FUNCTION hashtextextended(text, integer) RETURNS bigint LANGUAGE sql AS $$ SELECT 0::bigint $$',
    ],
    [
      'the operator text + integer',
      'CREATE OPERATOR + (LEFTARG = text, RIGHTARG = integer, FUNCTION = pg_catalog.repeat)',
    ],
  ];
  for (const [name, sql] of overloads) {
    attack(`plants ${name} in its own schema`, async () => {
      await expectDenied(attacker, sql, new RegExp(`permission denied for schema ${acme}`));
    });
  }

  attack(
    'planted jsonb_build_object(text, integer) while an earlier version let it, for a fleet migration to run as the admin',
    async () => {
      // Prepare. A tenant as an earlier version provisioned it: CREATE on its own schema. The
      // superuser only bootstraps that (GRANT, SET ROLE); everything planted is the tenant's own.
      const legacy = env.id('legacy');
      const legacyRole = `${legacy}_user`;
      await env.platform.provisioning.provision({ tenantId: legacy, name: 'Legacy' });
      // A canary the planted function bumps: a sequence advances even in a transaction that rolls
      // back, and only the admin may use it (the tenant cannot even see its schema).
      const canary = `canary_${env.suffix}`;
      await superuser.query(`CREATE SCHEMA ${q(canary)}; CREATE SEQUENCE ${q(canary)}.hits`);
      await superuser.query(
        `GRANT USAGE ON SCHEMA ${q(canary)} TO ${q(adminRole)}; GRANT USAGE ON SEQUENCE ${q(canary)}.hits TO ${q(adminRole)}`,
      );
      await superuser.query(`GRANT CREATE ON SCHEMA ${q(legacy)} TO ${q(legacyRole)}`);
      await superuser.query(`SET ROLE ${q(legacyRole)}`);
      try {
        await superuser.query(
          `CREATE FUNCTION ${q(legacy)}.jsonb_build_object(key text, value integer) RETURNS jsonb
           LANGUAGE plpgsql AS $planted$
           BEGIN
             PERFORM pg_catalog.nextval('${canary}.hits');
             BEGIN
               EXECUTE 'ALTER ROLE ${q(legacyRole)} SUPERUSER';
             EXCEPTION WHEN insufficient_privilege THEN NULL;
             END;
             EXECUTE 'ALTER ROLE ${q(legacyRole)} CREATEROLE CREATEDB';
             RETURN pg_catalog.jsonb_build_object(key, value);
           END $planted$`,
        );
        await superuser.query(
          `CREATE FUNCTION ${q(legacy)}.text_plus_integer(text, integer) RETURNS text LANGUAGE sql AS $$ SELECT $1 $$;
           CREATE OPERATOR ${q(legacy)}.+ (LEFTARG = text, RIGHTARG = integer, FUNCTION = ${q(legacy)}.text_plus_integer)`,
        );
      } finally {
        await superuser.query('RESET ROLE');
      }
      const canaryHits = async () =>
        (
          await look<{ hits: string }>(
            `SELECT last_value::text || ':' || is_called AS hits FROM ${q(canary)}.hits`,
          )
        )[0]?.hits;
      // Control: run by the admin with the tenant schema on its path, the overload does win over
      // pg_catalog's, does bump the canary and does escalate the tenant role (rolled back here).
      const control = await env.adminPool.connect();
      let escalated: unknown;
      try {
        await control.query('BEGIN');
        await control.query(`SET LOCAL search_path TO ${q(legacy)}`);
        await control.query(`SELECT jsonb_build_object('k', 1)`);
        escalated = (
          await control.query(
            'SELECT rolcreaterole, rolcreatedb FROM pg_catalog.pg_roles WHERE rolname = $1',
            [legacyRole],
          )
        ).rows[0];
      } finally {
        await control.query('ROLLBACK');
        control.release();
      }
      expect(escalated).toEqual({ rolcreaterole: true, rolcreatedb: true });
      const hitsBefore = await canaryHits();
      expect(hitsBefore).toBe('1:true');
      const settings = nextTenantMigration(
        'tenant_settings',
        `CREATE TABLE settings (key text PRIMARY KEY, value jsonb NOT NULL);
         INSERT INTO settings (key, value) VALUES ('defaults', jsonb_build_object('k', 1));`,
      );

      // Act
      const summary = await migrateFleet(env.platform.registry, fleetAdmin(), { concurrency: 4 });

      // Assert: the schema is refused, naming what was planted; nothing planted ran.
      expect(summary.failed).toEqual([
        {
          tenantId: legacy,
          error: expect.stringMatching(
            new RegExp(
              `^Schema '${legacy}' was not migrated: .*function jsonb_build_object\\(text,integer\\) \\(owned by ${legacyRole}\\)`,
            ),
          ),
        },
      ]);
      expect(summary.failed[0]?.error).toContain(`operator +(text,integer) (owned by ${legacyRole})`);
      expect(await canaryHits()).toBe(hitsBefore);
      const [role] = await look<{ attributes: boolean[]; canCreate: boolean }>(
        `SELECT ARRAY[rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls] AS attributes,
                has_schema_privilege(rolname, $2, 'CREATE') AS "canCreate"
           FROM pg_roles WHERE rolname = $1`,
        [legacyRole, legacy],
      );
      expect(role).toEqual({ attributes: [false, false, false, false, false], canCreate: false });
      expect(
        await look(`SELECT 1 FROM pg_class WHERE oid = to_regclass($1)`, [`${legacy}.settings`]),
      ).toEqual([]);
      // Every other tenant got the migration, from pg_catalog's jsonb_build_object.
      expect(summary.migrated).toBe(summary.total - 1);
      expect(await look(`SELECT value FROM ${tenantTable(globex, 'settings')}`)).toEqual([
        { value: { k: 1 } },
      ]);
      expect(settings.version).toBe(versionAfter(shippedMigrations));

      // The tenant, now without CREATE, cannot plant again.
      const legacyLogin = await loginAs(legacy);
      try {
        await expectDenied(
          legacyLogin,
          `CREATE FUNCTION ${q(legacy)}.format(text, text) RETURNS text LANGUAGE sql AS $$ SELECT $1 $$`,
          /permission denied for schema/,
        );
      } finally {
        await logout(legacyLogin);
      }
      // The operator reviews and drops what was planted, so the fleet is whole for what follows.
      await superuser.query(
        `DROP OPERATOR ${q(legacy)}.+ (text, integer); DROP FUNCTION ${q(legacy)}.text_plus_integer(text, integer);
         DROP FUNCTION ${q(legacy)}.jsonb_build_object(text, integer)`,
      );
    },
    30_000,
  );
});

// --- E2: tenant ids that name what exists --------------------------------------------------------------

describe('E2: tenant ids that name something that exists', () => {
  const tenantsApi = () =>
    createTenantsApi({
      tenantAdmin: env.platform.tenantAdmin,
      recoveryHistory: createRecoveryHistory(env.platform.core),
      adminAuth: { adminToken: ADMIN_TOKEN, trustIamIdentity: false },
      logger,
    });

  beforeAll(async () => {
    await superuser.query(`CREATE ROLE ${q(`ghost_${env.suffix}_user`)} NOLOGIN`);
    await env.adminPool.query(`CREATE SCHEMA ${q(`squat_${env.suffix}`)}`);
    await superuser.query(`CREATE SCHEMA ${q(`foreign_${env.suffix}`)}`);
  });

  /** What exists under the id, as the superuser sees it: compared before and after. */
  async function footprint(tenantId: string): Promise<unknown> {
    const [row] = await look(
      `SELECT (SELECT count(*)::int FROM tenantflow.tenants WHERE tenant_id = $1) AS registry,
              ARRAY(SELECT rolname || ':' || rolsuper || rolcreaterole || rolcanlogin || ':' ||
                           has_database_privilege(oid, current_database(), 'CONNECT')
                      FROM pg_roles WHERE rolname IN ($1, $1 || '_user') ORDER BY 1) AS roles,
              ARRAY(SELECT nspname || ':' || pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = $1) AS schemas,
              ARRAY(SELECT datname::text FROM pg_database WHERE datname = $1) AS databases`,
      [tenantId],
    );
    return row;
  }

  const ids: Array<[string, () => string, 400 | 409]> = [
    ['postgres', () => 'postgres', 400],
    ['template1', () => 'template1', 400],
    ['template0', () => 'template0', 400],
    ['tenantflow_admin', () => 'tenantflow_admin', 400],
    ['tenantflow_platform', () => 'tenantflow_platform', 400],
    ['tenantflow_api', () => 'tenantflow_api', 400],
    ['rdsadmin', () => 'rdsadmin', 400],
    ['an rds_ id', () => 'rds_x', 400],
    ["the suite's platform role", () => platformRole, 409],
    ["the admin role's name", () => adminRole, 409],
    ['an id whose <id>_user role exists', () => `ghost_${env.suffix}`, 409],
    ["another tenant's role name", () => `${acme}_user`, 409],
    ['an existing schema the admin owns', () => `squat_${env.suffix}`, 409],
    ['an existing schema someone else owns', () => `foreign_${env.suffix}`, 409],
    ['an existing database', () => new URL(env.databaseUrl).pathname.slice(1), 409],
  ];
  for (const [name, id, status] of ids) {
    attack(`registers a tenant named after ${name}`, async () => {
      const tenantId = id();
      const before = await footprint(tenantId);

      const viaService = await refusal(
        env.platform.provisioning.provision({ tenantId, name: 'Squatter' }),
        `provisioning ${tenantId}`,
      );
      const response = await tenantsApi()(
        restEvent({
          httpMethod: 'POST',
          path: '/tenants',
          resource: '/tenants',
          headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, 'Content-Type': 'application/json' },
          body: JSON.stringify({ tenantId, name: 'Squatter' }),
        }),
        lambdaContext(),
      );

      expect(viaService).toBeInstanceOf(TenantflowError);
      expect((viaService as unknown as TenantflowError).statusCode).toBe(status);
      expect(response.statusCode).toBe(status);
      expect(JSON.parse(response.body).error.code).toBe(
        status === 400 ? 'VALIDATION_FAILED' : 'TENANT_ID_UNAVAILABLE',
      );
      expect(await footprint(tenantId)).toEqual(before);
      expect(before).toMatchObject({ registry: 0 });
      if (status === 409) {
        // (The secret store refuses to even look up an invalid id.)
        expect(await env.platform.secrets.get(tenantId)).toBeUndefined();
      }
    });
  }
});

// --- S: other sessions -----------------------------------------------------------------------------

describe('S: other sessions on the server', () => {
  let lingering: string;
  let globexPid: number;
  let platformClient: pg.PoolClient;
  let platformPid: number;

  beforeAll(async () => {
    // globex's task is running, holding its tenant-role connection; a platform session is open.
    const arrived = new Promise<void>((resolve) => {
      lingerArrived = resolve;
    });
    lingering = await newExecution(globex, 'security_linger');
    await orchestrator.start({ workflow: 'security_linger', tenantId: globex, executionId: lingering });
    await arrived;
    const [session] = await look<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE usename = $1 AND state LIKE 'idle in transaction%'`,
      [`${globex}_user`],
    );
    globexPid = session?.pid ?? -1;
    platformClient = await env.platform.pool.connect();
    platformPid =
      (await platformClient.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid ?? -1;
  });

  afterAll(async () => {
    releaseLinger();
    platformClient?.release();
    await orchestrator.drain();
  });

  it("sees another tenant's task session only as 'tenantflow-task', its query hidden", async () => {
    const { rows } = await attacker.query<{
      application_name: string;
      query: string;
      client_addr: string | null;
    }>(
      'SELECT application_name, query, client_addr::text AS client_addr FROM pg_stat_activity WHERE pid = $1',
      [globexPid],
    );
    expect(rows).toEqual([
      { application_name: 'tenantflow-task', query: '<insufficient privilege>', client_addr: null },
    ]);
    const platform = await attacker.query(
      'SELECT application_name, query FROM pg_stat_activity WHERE pid = $1',
      [platformPid],
    );
    expect(platform.rows).toEqual([{ application_name: 'tenantflow', query: '<insufficient privilege>' }]);
  });

  it("can still see other tenants' role, schema and table names and their tables' activity counters", async () => {
    // PostgreSQL's catalogs and statistics views are readable by every role: what this documents.
    const roles = await attacker.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [`${globex}_user`]);
    const schemas = await attacker.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [globex]);
    const tables = await attacker.query(
      `SELECT relname FROM pg_class WHERE relnamespace = $1::regnamespace AND relname = 'globex_only'`,
      [globex],
    );
    const counters = await attacker.query(
      `SELECT n_tup_ins FROM pg_stat_all_tables WHERE schemaname = $1 AND relname = 'example_results'`,
      [globex],
    );
    const sessions = await attacker.query('SELECT usename FROM pg_stat_activity WHERE pid = $1', [globexPid]);
    expect([roles.rowCount, schemas.rowCount, tables.rowCount, counters.rowCount]).toEqual([1, 1, 1, 1]);
    expect(sessions.rows).toEqual([{ usename: `${globex}_user` }]);
  });

  const signals: Array<[string, string, () => number, RegExp]> = [
    ["terminates globex's task session", 'pg_terminate_backend', () => globexPid, /terminate process/],
    ["cancels globex's task query", 'pg_cancel_backend', () => globexPid, /cancel query/],
    ['terminates a platform session', 'pg_terminate_backend', () => platformPid, /terminate process/],
    ['cancels a platform query', 'pg_cancel_backend', () => platformPid, /cancel query/],
  ];
  for (const [name, fn, pid, message] of signals) {
    attack(name, async () => {
      expect(pid()).toBeGreaterThan(0);
      await expectDenied(attacker, `SELECT ${fn}(${pid()})`, message);
      expect(await look('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid()])).toHaveLength(1);
    });
  }

  attack('opens more sessions than its connection limit', async () => {
    const opened: pg.Client[] = [];
    try {
      let refused: { code?: string; message: string } | undefined;
      for (let attempt = 0; attempt < 25 && refused === undefined; attempt += 1) {
        refused = await loginAs(acme).then(
          (client) => {
            opened.push(client);
            return undefined;
          },
          (error: { code?: string; message: string }) => error,
        );
      }
      expect(refused).toMatchObject({
        code: TOO_MANY_CONNECTIONS,
        message: expect.stringMatching(/for role/),
      });
      const [sessions] = await look<{ count: number }>(
        'SELECT count(*)::int AS count FROM pg_stat_activity WHERE usename = $1',
        [`${acme}_user`],
      );
      expect(sessions?.count).toBeLessThanOrEqual(20);
    } finally {
      await Promise.all(opened.map((client) => logout(client)));
    }
  });

  it("finishes globex's task and keeps the platform session, after the attacks", async () => {
    expect((await platformClient.query('SELECT 1 AS alive')).rows).toEqual([{ alive: 1 }]);
    releaseLinger();
    await orchestrator.drain();
    expect(await statusOf(globex, lingering)).toBe('succeeded');
  });
});

// --- L1: locks ---------------------------------------------------------------------------------------

describe('L1: locks a tenant takes do not stall anyone else', () => {
  const deniedLocks: Array<[string, string, RegExp]> = [
    ...(
      [
        'ACCESS EXCLUSIVE',
        'EXCLUSIVE',
        'SHARE ROW EXCLUSIVE',
        'SHARE',
        'SHARE UPDATE EXCLUSIVE',
        'ROW EXCLUSIVE',
        'ROW SHARE',
      ] as const
    ).map((mode): [string, string, RegExp] => [
      `locks its executions IN ${mode} MODE`,
      `LOCK TABLE executions IN ${mode} MODE`,
      /permission denied for table executions/,
    ]),
    [
      'locks its task runs IN ACCESS EXCLUSIVE MODE',
      'LOCK TABLE task_runs IN ACCESS EXCLUSIVE MODE',
      /permission denied for table task_runs/,
    ],
    [
      'locks its migration history as a migration would',
      'LOCK TABLE schema_migrations IN SHARE ROW EXCLUSIVE MODE',
      /permission denied for table schema_migrations/,
    ],
    ['locks the tenant registry', 'LOCK TABLE tenantflow.tenants IN ACCESS SHARE MODE', /schema tenantflow/],
    [
      "locks the platform's lock rows",
      'LOCK TABLE tenantflow.platform_locks IN ACCESS SHARE MODE',
      /schema tenantflow/,
    ],
    [
      'locks pg_class exclusively',
      'LOCK TABLE pg_catalog.pg_class IN ACCESS EXCLUSIVE MODE',
      /table pg_class/,
    ],
    ['locks its executions rows FOR UPDATE', 'SELECT * FROM executions FOR UPDATE', /table executions/],
    [
      'locks its executions rows FOR NO KEY UPDATE',
      'SELECT * FROM executions FOR NO KEY UPDATE',
      /table executions/,
    ],
    ['locks its executions rows FOR SHARE', 'SELECT * FROM executions FOR SHARE', /table executions/],
    ['locks its executions rows FOR KEY SHARE', 'SELECT * FROM executions FOR KEY SHARE', /table executions/],
    ['locks its task runs rows FOR UPDATE', 'SELECT * FROM task_runs FOR UPDATE', /table task_runs/],
  ];
  for (const [name, sql, message] of deniedLocks) {
    attack(name, async () => {
      await expectDeniedInTransaction(attacker, sql, message);
    });
  }

  const rewrites: Array<[string, string]> = [
    ['rewrites its executions with CLUSTER', 'CLUSTER executions USING executions_pkey'],
    ['rebuilds its executions indexes with REINDEX', 'REINDEX TABLE executions'],
  ];
  for (const [name, sql] of rewrites) {
    attack(name, async () => {
      await expectDenied(attacker, sql, /permission denied for table executions/);
    });
  }

  attack('rewrites its executions with VACUUM FULL', async () => {
    const filenode = () => look('SELECT pg_relation_filenode($1) AS node', [`${acme}.executions`]);
    const before = await filenode();
    const notices: string[] = [];
    const onNotice = (notice: { message?: string }) => notices.push(notice.message ?? '');
    attacker.on('notice', onNotice);
    try {
      await attacker.query('VACUUM FULL executions');
    } finally {
      attacker.off('notice', onNotice);
    }
    expect(notices).toEqual([expect.stringMatching(/permission denied to vacuum "executions", skipping it/)]);
    expect(await filenode()).toEqual(before);
  });

  attack('keeps its locks past its session with PREPARE TRANSACTION', async () => {
    await attacker.query('BEGIN');
    await attacker.query('SELECT * FROM executions');
    const error = await refusal(attacker.query(`PREPARE TRANSACTION 'held_forever'`), 'PREPARE TRANSACTION');
    await attacker.query('ROLLBACK');
    expect(error).toMatchObject({
      code: OBJECT_NOT_IN_PREREQUISITE_STATE,
      message: expect.stringMatching(/prepared transactions are disabled/),
    });
    expect(await look('SELECT 1 FROM pg_prepared_xacts')).toEqual([]);
  });

  describe('while the tenant holds every lock it can take', () => {
    const newcomer = () => env.id('newcomer');
    const advisoryKeys = () => [
      'tenantflow:database-acl',
      `tenantflow:migrations:${acme}`,
      `tenantflow:migrations:${globex}`,
      `tenantflow:migrations:${newcomer()}`,
      'tenantflow:migrations:tenantflow',
    ];
    const held = {
      advisory: 'holds the advisory lock keys of the ACL, of schema migrations and of the control schema',
      reader: 'keeps a transaction open that reads its executions, task runs and migration history',
      exclusive: 'holds its business table IN ACCESS EXCLUSIVE MODE in an open transaction',
      catalogs: 'holds pg_class, pg_namespace, pg_database and pg_proc IN ACCESS SHARE MODE',
      completion: 'calls complete_task with a wrong token in a transaction it keeps open',
    } as const;
    const harmless = {
      onboarding: false,
      fleet: false,
      controlSchema: false,
      recovery: false,
      taskRun: false,
      rows: false,
    };
    let advisory: pg.Client;
    let reader: pg.Client;
    let completer: pg.Client;
    let runningExecution: string;
    let runningAttemptNumber: number;

    beforeAll(async () => {
      runningExecution = await newExecution(acme, 'security_record');
      runningAttemptNumber = (await startRunningAttempt(env.platform.pool, acme, runningExecution, 'record'))
        .attempt;
      for (const name of Object.values(held)) {
        tried(name);
      }
      advisory = await loginAs(acme);
      for (const key of advisoryKeys()) {
        await advisory.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [key]);
      }
      reader = await loginAs(acme);
      await reader.query('SET idle_in_transaction_session_timeout = 0');
      await reader.query('BEGIN');
      await reader.query(
        'SELECT (SELECT count(*) FROM executions), (SELECT count(*) FROM task_runs), (SELECT count(*) FROM schema_migrations)',
      );
      await reader.query('LOCK TABLE example_results IN ACCESS EXCLUSIVE MODE');
      await reader.query(
        'LOCK TABLE pg_catalog.pg_class, pg_catalog.pg_namespace, pg_catalog.pg_database, pg_catalog.pg_proc IN ACCESS SHARE MODE',
      );
      completer = await loginAs(acme);
      await completer.query('SET idle_in_transaction_session_timeout = 0');
      await completer.query('BEGIN');
      const { rows } = await completer.query<{ outcome: string }>(
        `SELECT tenantflow_api.complete_task($1, $2, 'record', 'guessed-token', '{}'::jsonb, ARRAY[]::text[]) AS outcome`,
        [acme, runningExecution],
      );
      expect(rows[0]?.outcome).toBe('unknown_attempt');
    });

    afterAll(async () => {
      for (const client of [advisory, reader, completer]) {
        if (client !== undefined) {
          await logout(client);
        }
      }
    });

    it('really holds them (the superuser sees the locks)', async () => {
      const locks = await look<{ kind: string; count: number }>(
        `SELECT CASE WHEN l.locktype = 'advisory' THEN 'advisory'
                     ELSE l.relation::regclass::text || ' ' || l.mode END AS kind, count(*)::int AS count
           FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE a.usename = $1 AND l.granted AND (l.locktype = 'advisory' OR l.locktype = 'relation')
          GROUP BY 1`,
        [`${acme}_user`],
      );
      const kinds = Object.fromEntries(locks.map((lock) => [lock.kind, lock.count]));
      expect(kinds).toMatchObject({
        advisory: advisoryKeys().length,
        [`${acme}.executions AccessShareLock`]: 1,
        [`${acme}.task_runs AccessShareLock`]: 2,
        [`${acme}.schema_migrations AccessShareLock`]: 1,
        [`${acme}.example_results AccessExclusiveLock`]: 1,
        'pg_class AccessShareLock': expect.any(Number),
        'pg_database AccessShareLock': expect.any(Number),
      });
    });

    it('lets a new tenant be onboarded in bounded time', async () => {
      const { value, ms } = await elapsed(() =>
        env.platform.provisioning.provision({ tenantId: newcomer(), name: 'Newcomer' }),
      );
      expect(value.tenant.status).toBe('active');
      expect(ms).toBeLessThan(BOUND_MS);
      harmless.onboarding = true;
    });

    it("migrates the fleet in bounded time, failing only the attacker's schema, which its locks conflict with", async () => {
      nextTenantMigration(
        'execution_priority',
        'ALTER TABLE executions ADD COLUMN priority integer NOT NULL DEFAULT 0; ALTER TABLE example_results ADD COLUMN note text;',
      );
      const { value: summary, ms } = await elapsed(() =>
        migrateFleet(env.platform.registry, fleetAdmin(), { concurrency: 4 }),
      );
      expect(ms).toBeLessThan(BOUND_MS);
      expect(summary.failed).toEqual([{ tenantId: acme, error: expect.stringMatching(/lock timeout/) }]);
      expect(summary.migrated + summary.upToDate).toBe(summary.total - 1);
      const migrated = await look<{ schema: string }>(
        `SELECT table_schema AS schema FROM information_schema.columns
          WHERE table_name = 'executions' AND column_name = 'priority' AND table_schema IN ($1, $2, $3)
          ORDER BY 1`,
        [acme, globex, newcomer()],
      );
      expect(migrated.map((row) => row.schema)).toEqual([globex, newcomer()].sort());
      harmless.fleet = true;
    });

    it('prepares the control schema (migrations, platform grants) in bounded time', async () => {
      const { ms } = await elapsed(() => prepareControlSchema(env.platform.admin));
      expect(ms).toBeLessThan(BOUND_MS);
      harmless.controlSchema = true;
    });

    it("runs a recovery pass over every tenant, the attacker's included, in bounded time", async () => {
      const stuckGlobex = await staleExecution(globex, 'security_record');
      const stuckAcme = await staleExecution(acme, 'security_noop');
      const { value: summary, ms } = await elapsed(() => recovery(orchestrator).run());
      expect(ms).toBeLessThan(BOUND_MS);
      expect(summary.actions.start).toBe(2);
      await orchestrator.drain();
      expect(await statusOf(globex, stuckGlobex)).toBe('succeeded');
      expect(await statusOf(acme, stuckAcme)).toBe('succeeded');
      harmless.recovery = true;
    });

    it("runs another tenant's task in bounded time", async () => {
      const { value: executionId, ms } = await elapsed(() => runWorkflow(globex, 'security_record'));
      expect(ms).toBeLessThan(BOUND_MS);
      expect(await statusOf(globex, executionId)).toBe('succeeded');
      harmless.taskRun = true;
    });

    it('leaves no platform row locked by the refused complete_task', async () => {
      const { ms } = await elapsed(() =>
        store.heartbeat(acme, runningExecution, {
          taskId: 'record',
          attempt: runningAttemptNumber,
          startedAt: new Date(),
        }),
      );
      expect(ms).toBeLessThan(2_000);
      const platform = await env.platform.pool.connect();
      try {
        await platform.query('BEGIN');
        for (const [sql, value] of [
          [
            `SELECT 1 FROM ${tenantTable(acme, 'task_runs')} WHERE execution_id = $1 FOR UPDATE NOWAIT`,
            runningExecution,
          ],
          [
            `SELECT 1 FROM ${tenantTable(acme, 'executions')} WHERE id = $1 FOR UPDATE NOWAIT`,
            runningExecution,
          ],
          ['SELECT 1 FROM tenantflow.tenants WHERE tenant_id = $1 FOR UPDATE NOWAIT', acme],
        ] as const) {
          expect((await platform.query(sql, [value])).rows).toHaveLength(1);
        }
      } finally {
        await platform.query('ROLLBACK');
        platform.release();
      }
      const run = (await store.get(acme, runningExecution))?.tasks.find((task) => task.taskId === 'record');
      expect(run?.status).toBe('running');
      harmless.rows = true;
    });

    it('stalled nothing: every lock it held was harmless', () => {
      expect(harmless).toEqual({
        onboarding: true,
        fleet: true,
        controlSchema: true,
        recovery: true,
        taskRun: true,
        rows: true,
      });
      for (const name of Object.values(held)) {
        tally.denied.add(name);
      }
    });

    attack(
      'holds the registry table through complete_task, in a transaction it keeps open, against a control-schema migration',
      async () => {
        // The completer session called complete_task (wrong token) and keeps its transaction open.
        // complete_task reads tenantflow.tenants with the platform's rights; any table lock that
        // read takes lasts until the caller's transaction ends, which the caller decides. A
        // control-schema migration that alters the registry (as 0002 and 0003 did) then waits
        // `lock_timeout` and fails, and every registry read queues behind it meanwhile.
        const control = await loadMigrations(CONTROL_MIGRATIONS_DIR);
        const next = migration(
          control.length + 1,
          'registry_column',
          'ALTER TABLE tenantflow.tenants ADD COLUMN security_probe integer',
        );
        // Meanwhile a request reads the registry, as the authorizer and every task do.
        const readRegistry = (async () => {
          await new Promise((resolve) => setTimeout(resolve, 300));
          return (await elapsed(async () => env.platform.registry.get(globex))).ms;
        })();

        const outcome = await env.platform.admin
          .withConnection((client) => migrateSchema(client, CONTROL_SCHEMA, [...control, next]))
          .then(
            () => 'migrated',
            (error: Error) => `${error.message} (${(error.cause as Error | undefined)?.message})`,
          );
        const readMs = await readRegistry;

        expect({ outcome, registryReadStalledMs: readMs < 1_000 ? 0 : Math.round(readMs) }).toEqual({
          outcome: 'migrated',
          registryReadStalledMs: 0,
        });
      },
      30_000,
    );
  });
});
