import type { Migration } from '@tenantflow/shared/db/migrations';
import { qualified, quoteIdent } from '@tenantflow/shared/db/sql';
import type { FailpointPoint, FailpointSite, Failpoints } from '@tenantflow/shared/kernel/failpoints';
import { BOOKKEEPING_TABLES, tenantRoleName } from '@tenantflow/shared/provisioning/database-admin';
import { generatePassword, scramSha256Verifier } from '@tenantflow/shared/provisioning/passwords';
import type pg from 'pg';
import type { PlatformServices } from '../local/platform-services.js';
import { benchTenantId, type Distribution, distribution, timed, withClient } from './support.js';

/** DatabaseAdmin's default `tenantConnectionLimit`: the floor's CREATE ROLE matches the service's. */
const TENANT_CONNECTION_LIMIT = 20;
/** DatabaseAdmin's default tenant-role timeouts, which `pinSearchPath` stores on the role. */
const TENANT_STATEMENT_TIMEOUT_MS = 300_000;
const TENANT_IDLE_IN_TRANSACTION_TIMEOUT_MS = 60_000;

/** Tenants provisioned on each side before timing starts: the first run also does the one-time lock-down. */
const WARM_UP_TENANTS = 5;

/**
 * Time spent between consecutive provisioning steps, per step: a {@link Failpoints} port that
 * records `after-provisioning-step` instead of failing, wired into the platform as its `failpoints`; only tenants passed to {@link start} are recorded, so
 * tenants provisioned for setup elsewhere (the fleet benchmark's top-up) cost a map lookup.
 */
export class ProvisioningStepTimer implements Failpoints {
  readonly #lastMark = new Map<string, number>();
  readonly #segments = new Map<string, number[]>();

  reach(point: FailpointPoint, { tenantId, name: step }: FailpointSite): void {
    if (point !== 'after-provisioning-step' || step === undefined) {
      return;
    }
    const mark = this.#lastMark.get(tenantId);
    if (mark === undefined) {
      return;
    }
    const now = performance.now();
    const samples = this.#segments.get(step) ?? [];
    samples.push(now - mark);
    this.#segments.set(step, samples);
    this.#lastMark.set(tenantId, now);
  }

  start(tenantId: string): void {
    this.#lastMark.set(tenantId, performance.now());
  }

  stop(tenantId: string): void {
    this.#lastMark.delete(tenantId);
  }

  clear(): void {
    this.#lastMark.clear();
    this.#segments.clear();
  }

  /** Each step's segment (ms from the previous step's end), in the order steps first ran. */
  segments(): { step: string; samples: readonly number[] }[] {
    return [...this.#segments].map(([step, samples]) => ({ step, samples }));
  }
}

/**
 * What each step's segment covers: the time since the previous `afterStep`, so work the service
 * does between steps (reading the stored secret, closing the connection) lands in the next one.
 */
export const STEP_CONTENTS: Readonly<Record<string, string>> = {
  'lock-down':
    'id check (platform pool), registry row, claim, admin connection (reset of a kept one), lock-down check',
  schema: 'read stored secret, schema owner check, CREATE SCHEMA',
  role: 'SCRAM verifier, role check, CREATE ROLE with its three defaults (one round trip)',
  secret: 'secret file written and fsynced',
  login: 'admit the login (nothing to do with direct logins)',
  grants:
    'grants transaction in one round trip: tenants group, schema USAGE (platform role too), default privileges',
  'search-path': 'nothing when the role was created with its defaults (else the three ALTER ROLE SET)',
  migrations: 'a transaction per migration set, each with its history table and the bookkeeping grants',
  activate: 'release claim (status, key hash, secret reference); the admin connection is kept',
};

export interface StepSegment {
  readonly step: string;
  readonly meanMs: number;
  readonly p50Ms: number;
}

export interface ProvisioningBenchmarkResult {
  readonly tenants: number;
  /** `ProvisioningService.provision()`, ms per tenant. */
  readonly service: Distribution;
  /** The same DDL on one open connection, ms per tenant. */
  readonly floor: Distribution;
  /** Of the floor: the statements before the migration, and the migration transaction. */
  readonly floorStatements: Distribution;
  readonly floorMigration: Distribution;
  readonly ratioP50: number;
  /** Where the service's time goes, per step (means add up to the mean per tenant). */
  readonly steps: readonly StepSegment[];
  /** Opening and closing one dedicated admin connection, as the service does per tenant. */
  readonly adminConnect: Distribution;
  /** `DatabaseAdmin.lockDown()` once the database is locked down: the check every run makes. */
  readonly lockDownCheck: Distribution;
  /** Entries in the database's ACL when the check was timed (it reads them all). */
  readonly databaseAclEntries: number;
  /** One single-row INSERT committed on its own: what a durable commit costs on this machine. */
  readonly commit: Distribution;
}

/**
 * Provisioning latency through the real ProvisioningService, tenant after tenant, against its
 * floor: the same DDL sent over one connection that stays open, logged in as the same
 * non-superuser admin (`adminUrl`), with no registry row, claim, secret, idempotency check or
 * migration history.
 *
 * The two sides are interleaved (one service tenant, one floor tenant), so both see the same
 * catalogs: every tenant adds a role, a schema and a CONNECT grant to the database's ACL, and
 * later tenants cost more (the service's lock-down check reads that whole ACL).
 */
export async function benchmarkProvisioning(
  platform: PlatformServices,
  adminUrl: string,
  suffix: string,
  stepTimer: ProvisioningStepTimer,
  tenants: number,
): Promise<ProvisioningBenchmarkResult> {
  // Every set the service applies: the platform's migrations and the application's tables.
  const migrations = platform.admin.tenantMigrationSets().flatMap((set) => set.migrations);
  const platformRole = await platform.admin.platformRoleName();
  stepTimer.clear();
  const service: number[] = [];
  const floor: number[] = [];
  const floorStatements: number[] = [];
  const floorMigration: number[] = [];

  await withClient(adminUrl, async (client) => {
    const database = await currentDatabase(client);
    for (let index = 0; index < WARM_UP_TENANTS + tenants; index += 1) {
      const measured = index >= WARM_UP_TENANTS;
      const tenantId = benchTenantId('prov', index, suffix);
      if (measured) {
        stepTimer.start(tenantId);
      }
      const provisioned = await timed(() => platform.provisioning.provision({ tenantId, name: tenantId }));
      stepTimer.stop(tenantId);

      const floorRun = await timed(() =>
        provisionFloorTenant(client, {
          database,
          platformRole,
          tenantId: benchTenantId('floor', index, suffix),
          migrations,
        }),
      );
      if (measured) {
        service.push(provisioned.ms);
        floor.push(floorRun.ms);
        floorStatements.push(floorRun.result.statementsMs);
        floorMigration.push(floorRun.result.migrationMs);
      }
    }
  });

  // The pieces of the first segment, and the unit cost of a commit, to explain the figures.
  const adminConnect: number[] = [];
  for (let i = 0; i < 50; i += 1) {
    adminConnect.push((await timed(() => platform.admin.withConnection(async () => {}))).ms);
  }
  const commit: number[] = [];
  const lockDownCheck = await timeLockDownCheck(platform);
  await platform.admin.withConnection(async (client) => {
    await client.query('CREATE TABLE public.bench_commit_probe (n integer)');
    for (let i = 0; i < 100; i += 1) {
      commit.push(
        (await timed(() => client.query('INSERT INTO public.bench_commit_probe VALUES ($1)', [i]))).ms,
      );
    }
    await client.query('DROP TABLE public.bench_commit_probe');
  });

  const serviceDistribution = distribution(service);
  const floorDistribution = distribution(floor);
  return {
    tenants,
    service: serviceDistribution,
    floor: floorDistribution,
    floorStatements: distribution(floorStatements),
    floorMigration: distribution(floorMigration),
    ratioP50: serviceDistribution.p50 / floorDistribution.p50,
    steps: summariseSteps(stepTimer),
    adminConnect: distribution(adminConnect),
    lockDownCheck,
    databaseAclEntries: await countDatabaseAclEntries(adminUrl),
    commit: distribution(commit),
  };
}

export interface ProvisioningAtScaleResult {
  /** Active tenants before these were provisioned. */
  readonly existingTenants: number;
  /** Entries in the database's ACL, which the lock-down check reads in full. */
  readonly databaseAclEntries: number;
  readonly tenants: number;
  readonly service: Distribution;
  readonly steps: readonly StepSegment[];
  readonly lockDownCheck: Distribution;
}

/**
 * `provision()` once the fleet is large: a few more tenants, one after another, with the per-step
 * timing. Shows which steps grow with the number of tenants already there.
 */
export async function benchmarkProvisioningAtScale(
  platform: PlatformServices,
  adminUrl: string,
  suffix: string,
  stepTimer: ProvisioningStepTimer,
  tenants: number,
): Promise<ProvisioningAtScaleResult> {
  const existingTenants = (await platform.registry.list()).filter(
    (tenant) => tenant.status === 'active',
  ).length;
  const databaseAclEntries = await countDatabaseAclEntries(adminUrl);
  stepTimer.clear();
  const service: number[] = [];
  for (let index = 0; index < tenants; index += 1) {
    const tenantId = benchTenantId('late', index, suffix);
    stepTimer.start(tenantId);
    service.push((await timed(() => platform.provisioning.provision({ tenantId, name: tenantId }))).ms);
    stepTimer.stop(tenantId);
  }
  return {
    existingTenants,
    databaseAclEntries,
    tenants,
    service: distribution(service),
    steps: summariseSteps(stepTimer),
    lockDownCheck: await timeLockDownCheck(platform),
  };
}

/** One CONNECT grant per tenant role, plus the owner's entry and PUBLIC's (TEMPORARY only, once locked down). */
function countDatabaseAclEntries(adminUrl: string): Promise<number> {
  return withClient(adminUrl, async (client) => {
    const { rows } = await client.query<{ entries: number }>(
      'SELECT cardinality(datacl) AS entries FROM pg_database WHERE datname = current_database()',
    );
    return rows[0]?.entries ?? 0;
  });
}

function summariseSteps(stepTimer: ProvisioningStepTimer): StepSegment[] {
  return stepTimer.segments().map(({ step, samples }) => {
    const summary = distribution(samples);
    return { step, meanMs: summary.mean, p50Ms: summary.p50 };
  });
}

/** `DatabaseAdmin.lockDown()` on an open connection of a database already locked down: the check alone. */
async function timeLockDownCheck(platform: PlatformServices): Promise<Distribution> {
  const samples: number[] = [];
  await platform.admin.withConnection(async (client) => {
    for (let i = 0; i < 20; i += 1) {
      samples.push((await timed(() => platform.admin.lockDown(client))).ms);
    }
  });
  return distribution(samples);
}

/**
 * The floor: the statements the service sends, each committed on its own as a plain statement
 * would be, and the tenant migrations in one transaction under `SET LOCAL search_path` (they are
 * written unqualified), followed there by the bookkeeping grants (the tenant role may only read
 * `executions` and `task_runs`, the platform role reads and writes them). The password verifier
 * is computed here too, as the service computes it.
 */
async function provisionFloorTenant(
  client: pg.Client,
  floor: {
    readonly database: string;
    readonly platformRole: string;
    readonly tenantId: string;
    readonly migrations: readonly Migration[];
  },
): Promise<{ statementsMs: number; migrationMs: number }> {
  const schema = quoteIdent(floor.tenantId);
  const role = quoteIdent(tenantRoleName(floor.tenantId));
  const platform = quoteIdent(floor.platformRole);
  const started = performance.now();
  const verifier = client.escapeLiteral(scramSha256Verifier(generatePassword()));
  const statements = [
    `CREATE SCHEMA ${schema}`,
    `CREATE ROLE ${role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS CONNECTION LIMIT ${TENANT_CONNECTION_LIMIT} PASSWORD ${verifier}`,
    // The role's defaults before the group membership, as the service sends them: each membership
    // change makes PostgreSQL rebuild the admin's role walk that ALTER ROLE's check needs.
    `ALTER ROLE ${role} SET search_path = ${schema}`,
    `ALTER ROLE ${role} SET statement_timeout = ${TENANT_STATEMENT_TIMEOUT_MS}`,
    `ALTER ROLE ${role} SET idle_in_transaction_session_timeout = ${TENANT_IDLE_IN_TRANSACTION_TIMEOUT_MS}`,
    // CONNECT and complete_task come with membership of the tenants group, as the service does it.
    `GRANT ${quoteIdent(`${floor.platformRole}_tenants`)} TO ${role} WITH INHERIT TRUE, SET FALSE`,
    `GRANT USAGE ON SCHEMA ${schema} TO ${role}`,
    `GRANT USAGE ON SCHEMA ${schema} TO ${platform}`,
    `ALTER DEFAULT PRIVILEGES IN SCHEMA ${schema} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${role}`,
    `ALTER DEFAULT PRIVILEGES IN SCHEMA ${schema} GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO ${role}`,
  ];
  for (const statement of statements) {
    await client.query(statement);
  }
  const migrationStarted = performance.now();
  await client.query('BEGIN');
  try {
    await client.query(`SET LOCAL search_path TO ${schema}`);
    for (const migration of floor.migrations) {
      await client.query(migration.sql);
    }
    for (const table of BOOKKEEPING_TABLES) {
      const qualifiedTable = qualified(floor.tenantId, table);
      await client.query(`REVOKE ALL ON ${qualifiedTable} FROM ${role}`);
      await client.query(`GRANT SELECT ON ${qualifiedTable} TO ${role}`);
      await client.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ${qualifiedTable} TO ${platform}`);
    }
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
  const finished = performance.now();
  return { statementsMs: migrationStarted - started, migrationMs: finished - migrationStarted };
}

async function currentDatabase(client: pg.Client): Promise<string> {
  const { rows } = await client.query<{ db: string }>('SELECT current_database() AS db');
  const database = rows[0]?.db;
  if (database === undefined) {
    throw new Error('current_database() returned no row');
  }
  return database;
}
