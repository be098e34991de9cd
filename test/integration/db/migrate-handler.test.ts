import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@tenantflow/shared/config/config';
import { CONTROL_MIGRATIONS_DIR } from '@tenantflow/shared/db/control-schema';
import { checksumOf, type Migration } from '@tenantflow/shared/db/migrations';
import { ConfigurationError, MigrationError } from '@tenantflow/shared/kernel/errors';
import { DatabaseAdmin } from '@tenantflow/shared/provisioning/database-admin';
import {
  type DatabaseMigrationSummary,
  migrationSettings,
} from '@tenantflow/shared/provisioning/database-migrator';
import { loadTenantMigrations } from '@tenantflow/shared/provisioning/tenant-migrations';
import { processCore } from '@tenantflow/shared/runtime/core';
import type { Context } from 'aws-lambda';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it, vi } from 'vitest';
import {
  createMigrateHandler,
  handler,
  type MigrateHandlerDependencies,
  SAFETY_MARGIN_MS,
} from '../../../functions/ops/migrate.js';
import { createPlatformServices, type PlatformServices } from '../../../local/platform-services.js';
import { createTestDatabase } from '../../support/database.js';
import {
  type DatabaseLogin,
  motoSecretsManager,
  rdsSecret,
  storeSecret,
} from '../../support/database-secrets.js';
import { MOTO_INSTALL_HINT } from '../../support/moto-setup.js';
import { createTestPlatform, type TestPlatform } from '../../support/platform.js';
import { dropTenantRoles, tenantIdSuffix } from '../../support/tenants.js';

/** The version after the last of `migrations` (versions may have gaps: the numbering is never reused). */
const versionAfter = (migrations: readonly { version: number }[]) =>
  Math.max(0, ...migrations.map((migration) => migration.version)) + 1;

/**
 * The `migrate` Lambda (functions/ops/migrate.ts) against a real PostgreSQL: what a deployment's
 * migration run does to a fresh database and to a fleet of tenant schemas, how it fails, and that
 * it stops before the Lambda's timeout.
 */

/** What a Lambda with `ms` left before its timeout is given. */
function contextWith(ms: number): Context {
  return { getRemainingTimeInMillis: () => ms } as Context;
}
/** The migrate function's timeout: time enough for everything here. */
const PLENTY_MS = 14 * 60_000;

/** Keeps what the handler logs, so a test can read the summary a failed run leaves behind. */
function recordingLogger() {
  const entries: { level: 'info' | 'error'; message: string; summary: DatabaseMigrationSummary }[] = [];
  const record =
    (level: 'info' | 'error') =>
    (message: unknown, ...extra: unknown[]): void => {
      entries.push({ level, message: String(message), summary: extra[0] as DatabaseMigrationSummary });
    };
  return { entries, info: record('info'), error: record('error') };
}

/** What `promise` rejects with; `undefined` if it resolves. */
function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
}

async function query<R extends pg.QueryResultRow>(url: string, sql: string, values: unknown[] = []) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<R>(sql, values)).rows;
  } finally {
    await client.end();
  }
}

/** The control migrations recorded in `tenantflow.schema_migrations`; [] when the schema is missing. */
async function appliedControlMigrations(url: string): Promise<string[]> {
  const [found] = await query<{ exists: boolean }>(
    url,
    `SELECT to_regclass('tenantflow.schema_migrations') IS NOT NULL AS exists`,
  );
  if (found?.exists !== true) {
    return [];
  }
  const rows = await query<{ name: string }>(url, 'SELECT name FROM tenantflow.schema_migrations ORDER BY 1');
  return rows.map((row) => row.name);
}

const shippedControlMigrations = async () =>
  (await readdir(CONTROL_MIGRATIONS_DIR)).filter((file) => file.endsWith('.sql')).sort();

describe('migrate handler', () => {
  describe('on a fresh database', () => {
    let database: Awaited<ReturnType<typeof createTestDatabase>>;
    let secretsDir: string;
    let platform: PlatformServices;

    beforeAll(async () => {
      database = await createTestDatabase('tf_migrate');
      secretsDir = await mkdtemp(join(tmpdir(), 'tenantflow-secrets-'));
      // The platform a Lambda builds: nothing in it touches the control schema before it exists.
      platform = await createPlatformServices(
        loadConfig({
          TENANTFLOW_LOCAL: '1',
          DATABASE_URL: database.url,
          TENANTFLOW_SECRETS: 'local',
          TENANTFLOW_SECRETS_DIR: secretsDir,
        }),
      );
    });

    afterAll(async () => {
      await platform?.close();
      await database?.drop();
      await rm(secretsDir, { recursive: true, force: true });
    });

    it('creates the control schema, and a second run finds nothing left to do', async () => {
      // Prepare
      const shipped = await shippedControlMigrations();
      expect(await appliedControlMigrations(database.url)).toEqual([]);
      const migrate = createMigrateHandler({ database: platform, logger: recordingLogger() });

      // Act
      const first = await migrate({}, contextWith(PLENTY_MS));
      const second = await migrate({}, contextWith(PLENTY_MS));

      // Assert
      expect(first.control).toEqual({ applied: shipped, alreadyApplied: 0 });
      expect(await appliedControlMigrations(database.url)).toEqual(shipped);
      expect(first.tenants).toMatchObject({ total: 0, migrated: 0, failed: [], notStarted: [] });
      expect(first.complete).toBe(true);
      expect(second.control).toEqual({ applied: [], alreadyApplied: shipped.length });
      expect(await platform.registry.list()).toEqual([]);
    });
  });

  describe('on a fleet of tenant schemas', () => {
    let env: TestPlatform;
    let tenantIds: [string, string, string];
    let shipped: Migration[];
    /** The migration a new release ships: every tenant schema is one behind until it runs. */
    let next: Migration;
    /** The platform's admin, built with the new release's tenant migrations. */
    let nextAdmin: DatabaseAdmin;

    beforeEach(async () => {
      env = await createTestPlatform();
      tenantIds = [env.id('alpha'), env.id('bravo'), env.id('charlie')];
      for (const tenantId of tenantIds) {
        await env.platform.provisioning.provision({ tenantId, name: tenantId });
      }
      shipped = await loadTenantMigrations();
      const sql = 'ALTER TABLE executions ADD COLUMN priority integer NOT NULL DEFAULT 0;';
      const version = versionAfter(shipped);
      next = {
        version,
        name: `${String(version).padStart(4, '0')}_execution_priority.sql`,
        sql,
        checksum: checksumOf(sql),
      };
      nextAdmin = new DatabaseAdmin({
        adminUrl: env.databaseUrl,
        platformRole: await env.platform.admin.platformRoleName(),
        tenantMigrations: [...shipped, next],
      });
    });

    afterEach(async () => {
      await env?.cleanup();
    });

    /** The handler as the new release deploys it, with what it logs. */
    function releaseHandler(options: MigrateHandlerDependencies['options'] = {}) {
      const logger = recordingLogger();
      const migrate = createMigrateHandler({
        database: { admin: nextAdmin, registry: env.platform.registry },
        logger,
        options,
      });
      return { logger, migrate };
    }

    /** Tenant schemas where `executions.priority` is the new release's integer column. */
    async function schemasWithPriority(): Promise<string[]> {
      const rows = await query<{ table_schema: string }>(
        env.databaseUrl,
        `SELECT table_schema FROM information_schema.columns
          WHERE table_name = 'executions' AND column_name = 'priority' AND data_type = 'integer'
          ORDER BY 1`,
      );
      return rows.map((row) => row.table_schema);
    }

    it('brings a tenant schema that is behind up to date, and leaves the up-to-date ones alone', async () => {
      // Prepare: alpha and bravo already have the new migration, charlie does not.
      const [alpha, bravo, charlie] = tenantIds;
      await nextAdmin.withConnection(async (client) => {
        await nextAdmin.migrateTenant(client, alpha);
        await nextAdmin.migrateTenant(client, bravo);
      });
      expect(await schemasWithPriority()).toEqual([alpha, bravo].sort());
      const { logger, migrate } = releaseHandler();

      // Act
      const summary = await migrate({}, contextWith(PLENTY_MS));

      // Assert
      expect(summary.tenants).toMatchObject({
        total: 3,
        migrated: 1,
        upToDate: 2,
        failed: [],
        notStarted: [],
      });
      expect(summary.complete).toBe(true);
      expect(await schemasWithPriority()).toEqual([alpha, bravo, charlie].sort());
      const [history] = await query<{ names: string[] }>(
        env.databaseUrl,
        `SELECT array_agg(name ORDER BY version) AS names FROM "${charlie}".schema_migrations`,
      );
      expect(history?.names).toEqual([...shipped.map((m) => m.name), next.name]);
      expect(logger.entries).toEqual([
        { level: 'info', message: 'database migrated', summary: expect.objectContaining({ complete: true }) },
      ]);
    });

    it('names a failing tenant, still migrates the others, and throws so the deployment fails', async () => {
      // Prepare: bravo already has a `priority` column of another type, so the migration fails there.
      const [alpha, bravo, charlie] = tenantIds;
      await query(env.databaseUrl, `ALTER TABLE "${bravo}".executions ADD COLUMN priority text`);
      const { logger, migrate } = releaseHandler({ concurrency: 2 });

      // Act
      const error = await rejectionOf(migrate({}, contextWith(PLENTY_MS)));

      // Assert
      expect(error).toBeInstanceOf(MigrationError);
      const message = (error as Error).message;
      expect(message).toContain(
        `1 of 3 tenant schema(s) failed to migrate (${bravo}: Migration ${next.name} failed`,
      );
      expect(message).toContain('already exists');
      expect(message).not.toContain(alpha);
      expect(message).not.toContain(charlie);
      expect(message).not.toContain('did not finish');
      expect(await schemasWithPriority()).toEqual([alpha, charlie].sort());
      expect(logger.entries).toHaveLength(1);
      expect(logger.entries[0]).toMatchObject({ level: 'error', message: 'database migrations incomplete' });
      expect(logger.entries[0]?.summary.tenants).toMatchObject({
        total: 3,
        migrated: 2,
        failed: [{ tenantId: bravo, error: expect.stringContaining(next.name) }],
        notStarted: [],
      });
    });

    it('stops taking new tenants when the time runs short, says it did not finish, and the next run does the rest', async () => {
      // Prepare: one tenant a page, and no time left beyond the safety margin.
      const { logger, migrate } = releaseHandler({ pageSize: 1 });

      // Act
      const error = await rejectionOf(migrate({}, contextWith(SAFETY_MARGIN_MS)));
      const migratedInTime = await schemasWithPriority();

      // Assert: the first page (one tenant) only; the others are named as not started.
      expect(error).toBeInstanceOf(MigrationError);
      expect((error as Error).message).toMatch(
        /the run did not finish: 2 of 3 tenant schema\(s\) were not started/,
      );
      expect(migratedInTime).toHaveLength(1);
      const summary = logger.entries[0]?.summary;
      expect(summary?.complete).toBe(false);
      expect(summary?.tenants).toMatchObject({ total: 3, migrated: 1, failed: [] });
      expect([...(summary?.tenants.notStarted ?? []), ...migratedInTime].sort()).toEqual(
        [...tenantIds].sort(),
      );

      // Act: the next run, with the whole timeout ahead of it.
      const resumed = await migrate({}, contextWith(PLENTY_MS));

      // Assert
      expect(resumed.complete).toBe(true);
      expect(resumed.tenants).toMatchObject({ total: 3, migrated: 2, upToDate: 1, notStarted: [] });
      expect(await schemasWithPriority()).toEqual([...tenantIds].sort());
    });
  });

  describe('migrationSettings', () => {
    it('reads TENANTFLOW_MIGRATE_CONCURRENCY, 8 by default, and refuses a bad one by name', () => {
      expect(migrationSettings({})).toEqual({ concurrency: 8 });
      expect(migrationSettings({ TENANTFLOW_MIGRATE_CONCURRENCY: '3' })).toEqual({ concurrency: 3 });
      for (const bad of ['0', '65', '2.5', 'eight', '']) {
        expect(() => migrationSettings({ TENANTFLOW_MIGRATE_CONCURRENCY: bad })).toThrow(
          new ConfigurationError(
            `TENANTFLOW_MIGRATE_CONCURRENCY must be an integer from 1 to 64 (got '${bad}')`,
          ),
        );
      }
    });
  });

  const motoEndpoint = inject('motoEndpoint');
  const motoMissing = motoEndpoint === '';

  describe.skipIf(motoMissing)(
    motoMissing
      ? `the deployed entry point (skipped: moto_server is not on the PATH; install it with ${MOTO_INSTALL_HINT})`
      : 'the deployed entry point',
    () => {
      /** The run's admin role (CREATEROLE, CREATEDB, not a superuser): the admin secret's login. */
      const adminServer = new URL(inject('databaseUrl'));
      const superuserUrl = inject('superuserUrl');
      let database: Awaited<ReturnType<typeof createTestDatabase>>;
      let databaseName: string;
      /** The platform secret's login: a role that does not exist until the first deploy. */
      let platformLogin: DatabaseLogin;
      let suffix: string;

      beforeAll(async () => {
        database = await createTestDatabase('tf_migrate_aws');
        databaseName = new URL(database.url).pathname.slice(1);
        suffix = tenantIdSuffix();
        platformLogin = {
          username: `tf_platform_${suffix}`,
          password: randomBytes(18).toString('base64url'),
        };
        const client = motoSecretsManager(motoEndpoint);
        const adminLogin = {
          username: decodeURIComponent(adminServer.username),
          password: decodeURIComponent(adminServer.password),
        };
        const platformSecretArn = await storeSecret(
          client,
          rdsSecret(adminServer, databaseName, platformLogin),
          'platform',
        );
        const adminSecretArn = await storeSecret(
          client,
          rdsSecret(adminServer, databaseName, adminLogin),
          'admin',
        );
        client.destroy();
        // The environment TenantFunction and DatabaseMigrations give the function, pointed at the
        // test database (no TLS) and at moto for Secrets Manager.
        const environment: Record<string, string> = {
          TENANTFLOW_STAGE: `t${randomBytes(4).toString('hex')}`,
          TENANTFLOW_DATABASE_HOST: adminServer.hostname,
          TENANTFLOW_DATABASE_PORT: adminServer.port,
          TENANTFLOW_DATABASE_NAME: databaseName,
          TENANTFLOW_DATABASE_SECRET_ARN: platformSecretArn,
          TENANTFLOW_ADMIN_DATABASE_SECRET_ARN: adminSecretArn,
          TENANTFLOW_DATABASE_SSL: 'disable',
          TENANTFLOW_SECRETS: 'secrets-manager',
          TENANTFLOW_MIGRATE_CONCURRENCY: '2',
          AWS_ENDPOINT_URL_SECRETS_MANAGER: motoEndpoint,
          AWS_REGION: 'us-east-1',
          AWS_ACCESS_KEY_ID: 'testing',
          AWS_SECRET_ACCESS_KEY: 'testing',
        };
        for (const [name, value] of Object.entries(environment)) {
          vi.stubEnv(name, value);
        }
      });

      afterAll(async () => {
        await (await processCore().catch(() => undefined))?.close();
        vi.unstubAllEnvs();
        await database?.drop();
        // After the database: the platform role owns functions and holds grants there.
        await dropTenantRoles(superuserUrl, suffix);
      });

      /** The platform role as the superuser sees it (to look only); undefined while it does not exist. */
      async function platformRole() {
        const [role] = await query<{
          rolsuper: boolean;
          rolcreaterole: boolean;
          rolcreatedb: boolean;
          rolcanlogin: boolean;
          rolconfig: string[] | null;
          verifier: string | null;
        }>(
          superuserUrl,
          `SELECT r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolcanlogin, r.rolconfig, a.rolpassword AS verifier
             FROM pg_catalog.pg_roles r JOIN pg_catalog.pg_authid a ON a.oid = r.oid
            WHERE r.rolname = $1`,
          [platformLogin.username],
        );
        return role;
      }

      it('logs in with the admin secret, creates the control schema and the platform role from the platform secret', async () => {
        // Prepare
        const expected = await shippedControlMigrations();
        expect(await platformRole()).toBeUndefined();

        // Act
        const summary = await handler({}, contextWith(PLENTY_MS));

        // Assert
        expect(summary.control.applied).toEqual(expected);
        expect(await appliedControlMigrations(database.url)).toEqual(expected);
        const platform = await processCore();
        expect(platform.config.database).toMatchObject({ kind: 'secret', host: adminServer.hostname });
        const [ddlLogin] = await query<{ owner: string }>(
          database.url,
          `SELECT nspowner::regrole::text AS owner FROM pg_catalog.pg_namespace WHERE nspname = 'tenantflow'`,
        );
        expect(ddlLogin?.owner).toBe(decodeURIComponent(adminServer.username));
        const role = await platformRole();
        expect(role).toMatchObject({
          rolsuper: false,
          rolcreaterole: false,
          rolcreatedb: false,
          rolcanlogin: true,
        });
        expect(role?.rolconfig).toContain('search_path=pg_catalog');
        // The platform pool logs in with the platform secret's password, as the new role, and reads
        // the registry with the rights the migration granted it.
        const { rows } = await platform.pool.query<{ me: string; search_path: string }>(
          `SELECT current_user AS me, current_setting('search_path') AS search_path`,
        );
        expect(rows[0]).toEqual({ me: platformLogin.username, search_path: 'pg_catalog' });
        expect(await platform.registry.list()).toEqual([]);
      });

      it('leaves the platform role and its password alone on a later deploy', async () => {
        // Prepare: a first deploy (again, if the test above ran) created the role.
        await handler({}, contextWith(PLENTY_MS));
        const before = await platformRole();
        expect(before?.verifier).toMatch(/^SCRAM-SHA-256\$/);

        // Act
        const summary = await handler({}, contextWith(PLENTY_MS));

        // Assert: Secrets Manager rotation owns the password once the role exists.
        expect(summary.control.applied).toEqual([]);
        expect((await platformRole())?.verifier).toBe(before?.verifier);
        const platform = await processCore();
        expect(await platform.registry.list()).toEqual([]);
      });
    },
  );
});
