import { randomBytes } from 'node:crypto';
import { PutSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { loadConfig, type TenantflowConfig } from '@tenantflow/shared/config/config';
import { quoteIdent } from '@tenantflow/shared/db/sql';
import { ConfigurationError } from '@tenantflow/shared/kernel/errors';
import { DatabaseAdmin } from '@tenantflow/shared/provisioning/database-admin';
import { migrateDatabase, prepareControlSchema } from '@tenantflow/shared/provisioning/database-migrator';
import {
  cachedCore,
  createPlatformCore,
  type PlatformCore,
  type PlatformCoreOptions,
} from '@tenantflow/shared/runtime/core';
import { createDatabaseAdmin } from '@tenantflow/shared/runtime/provisioning';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { createPlatformServices, type PlatformServices } from '../../../local/platform-services.js';
import {
  type DatabaseLogin,
  motoSecretsManager,
  rdsSecret,
  storeSecret,
} from '../../support/database-secrets.js';
import { MOTO_INSTALL_HINT } from '../../support/moto-setup.js';
import { dropTenantRoles, tenantIdSuffix } from '../../support/tenants.js';

/** What a function that runs DDL builds in AWS: the core (the platform secret) and the admin (the admin secret). */
interface DdlFunction {
  readonly pool: pg.Pool;
  readonly admin: DatabaseAdmin;
  readonly platformLogin: PlatformCore['platformLogin'];
  close(): Promise<void>;
}

async function buildDdlFunction(
  config: TenantflowConfig,
  options: PlatformCoreOptions,
): Promise<DdlFunction> {
  const core = await createPlatformCore(config, options);
  try {
    return {
      pool: core.pool,
      admin: await createDatabaseAdmin(core),
      platformLogin: core.platformLogin,
      close: core.close,
    };
  } catch (error) {
    await core.close();
    throw error;
  }
}

/**
 * The AWS form of the database configuration: the platform pool logs in with the platform secret
 * (TENANTFLOW_DATABASE_SECRET_ARN, the platform role) and DDL with the admin secret
 * (TENANTFLOW_ADMIN_DATABASE_SECRET_ARN, a non-superuser with CREATEROLE), both read from moto.
 *
 * Every database here is the suite's own, owned by an admin role of its own (created by the
 * bootstrap superuser, as Aurora's master user is created with the cluster), so that rotating the
 * admin's password touches no other suite. The platform role is created by that admin, as the
 * migrate function does on a first deploy.
 */

const motoEndpoint = inject('motoEndpoint');
const motoMissing = motoEndpoint === '';

/** The run's PostgreSQL, on 127.0.0.1 without TLS. Its bootstrap superuser only sets up and looks. */
const superuserUrl = inject('superuserUrl');
const server = new URL(superuserUrl);

const unique = () => randomBytes(6).toString('hex');

/** A database of the suite, its two roles' current logins, and the secrets holding them. */
interface AwsDatabase {
  readonly name: string;
  readonly suffix: string;
  readonly admin: DatabaseLogin;
  readonly platform: DatabaseLogin;
  readonly adminSecretArn: string;
  readonly platformSecretArn: string;
}

describe.skipIf(motoMissing)(
  motoMissing
    ? `The platform's database logins from Secrets Manager (skipped: moto_server is not on the PATH; install it with ${MOTO_INSTALL_HINT})`
    : "The platform's database logins from Secrets Manager",
  () => {
    let client: SecretsManagerClient;
    /** Where the tests that rotate nothing run. */
    let shared: AwsDatabase;
    const platforms: { close(): Promise<void> }[] = [];
    const cleanups: (() => Promise<void>)[] = [];

    beforeAll(async () => {
      client = motoSecretsManager(motoEndpoint);
      shared = await createAwsDatabase();
    });

    afterAll(async () => {
      await Promise.all(platforms.map((platform) => platform.close().catch(() => undefined)));
      for (const cleanup of cleanups.reverse()) {
        await cleanup();
      }
      client?.destroy();
    });

    async function withClient<T>(
      config: string | pg.ClientConfig,
      work: (connection: pg.Client) => Promise<T>,
    ): Promise<T> {
      const connection = new pg.Client(config);
      await connection.connect();
      try {
        return await work(connection);
      } finally {
        await connection.end();
      }
    }

    /** A connection string that survives any character in the password. */
    function loginUrl(login: DatabaseLogin, database: string): string {
      const user = encodeURIComponent(login.username);
      const password = encodeURIComponent(login.password);
      return `postgresql://${user}:${password}@${server.hostname}:${server.port}/${database}?sslmode=disable`;
    }

    /**
     * A database owned by an admin role of its own (LOGIN CREATEROLE CREATEDB, not a superuser),
     * its control schema migrated and its platform role `tf_platform_<suffix>` created by that
     * admin, and one RDS secret for each login.
     */
    async function createAwsDatabase(passwords: { admin?: string; platform?: string } = {}) {
      const suffix = tenantIdSuffix();
      const name = `tf_creds_${suffix}`;
      const admin = { username: `tf_creds_admin_${suffix}`, password: passwords.admin ?? `pw_${unique()}` };
      const platform = {
        username: `tf_platform_${suffix}`,
        password: passwords.platform ?? `pw_${unique()}`,
      };
      cleanups.push(async () => {
        await withClient(superuserUrl, async (superuser) => {
          await superuser.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
        });
        await dropTenantRoles(superuserUrl, suffix);
        await withClient(superuserUrl, async (superuser) => {
          await superuser.query(`DROP ROLE IF EXISTS ${quoteIdent(admin.username)}`);
        });
      });
      await withClient(superuserUrl, async (superuser) => {
        await superuser.query(
          `CREATE ROLE ${quoteIdent(admin.username)} WITH LOGIN NOSUPERUSER CREATEROLE CREATEDB NOREPLICATION NOBYPASSRLS PASSWORD ${superuser.escapeLiteral(admin.password)}`,
        );
        await superuser.query(`CREATE DATABASE ${quoteIdent(name)} OWNER ${quoteIdent(admin.username)}`);
      });
      const databaseAdmin = new DatabaseAdmin({
        adminUrl: loginUrl(admin, name),
        platformRole: platform.username,
        tenantMigrations: [],
      });
      await prepareControlSchema(databaseAdmin, {
        platformRole: { name: platform.username, password: platform.password },
      });
      return {
        name,
        suffix,
        admin,
        platform,
        adminSecretArn: await storeSecret(client, rdsSecret(server, name, admin), 'admin'),
        platformSecretArn: await storeSecret(client, rdsSecret(server, name, platform), 'platform'),
      } satisfies AwsDatabase;
    }

    interface Secrets {
      readonly platform: string;
      /** Unset: a function that runs no DDL (everything but the tenants API, recovery and migrate). */
      readonly admin?: string | undefined;
    }

    /** The configuration CDK gives a Lambda, pointed at the suite's database (which has no TLS). */
    function awsConfig(database: string, secrets: Secrets, ssl: 'disable' | 'require' = 'disable') {
      return loadConfig({
        TENANTFLOW_STAGE: `t${unique()}`,
        TENANTFLOW_DATABASE_HOST: server.hostname,
        TENANTFLOW_DATABASE_PORT: server.port,
        TENANTFLOW_DATABASE_NAME: database,
        TENANTFLOW_DATABASE_SECRET_ARN: secrets.platform,
        ...(secrets.admin === undefined ? {} : { TENANTFLOW_ADMIN_DATABASE_SECRET_ARN: secrets.admin }),
        TENANTFLOW_DATABASE_SSL: ssl,
      });
    }

    const bothSecrets = (database: AwsDatabase): Secrets => ({
      platform: database.platformSecretArn,
      admin: database.adminSecretArn,
    });

    async function platformFor(
      database: AwsDatabase,
      secrets: Secrets = bothSecrets(database),
      ssl: 'disable' | 'require' = 'disable',
    ): Promise<PlatformServices> {
      // Every capability on one core, as the AWS functions together build them.
      const platform = await createPlatformServices(awsConfig(database.name, secrets, ssl), {
        secretsManagerClient: client,
      });
      platforms.push(platform);
      return platform;
    }

    interface Login {
      readonly role: string;
      readonly superuser: boolean;
      readonly createrole: boolean;
    }

    const whoAmI = `SELECT r.rolname AS role, r.rolsuper AS superuser, r.rolcreaterole AS createrole, current_database() AS db
                       FROM pg_catalog.pg_roles r WHERE r.rolname = current_user`;

    /** Who the platform pool and an admin connection of `platform` log in as, on `database`. */
    async function loginsOf(
      platform: Pick<DdlFunction, 'pool' | 'admin'>,
      database: AwsDatabase,
    ): Promise<{ pool: Login; admin: Login }> {
      const read = (rows: (Login & { db: string })[]): Login => {
        const [row] = rows;
        expect(row?.db).toBe(database.name);
        return {
          role: row?.role ?? '',
          superuser: row?.superuser ?? true,
          createrole: row?.createrole ?? true,
        };
      };
      const pool = read((await platform.pool.query<Login & { db: string }>(whoAmI)).rows);
      const admin = read(
        await platform.admin.withConnection(
          async (connection) => (await connection.query<Login & { db: string }>(whoAmI)).rows,
        ),
      );
      return { pool, admin };
    }

    const asPlatformRole = (database: AwsDatabase): Login => ({
      role: database.platform.username,
      superuser: false,
      createrole: false,
    });
    const asAdminRole = (database: AwsDatabase): Login => ({
      role: database.admin.username,
      superuser: false,
      createrole: true,
    });

    /** What `attempt` rejects with (`undefined` if it resolves), handled at once. */
    function rejectionOf(attempt: Promise<unknown>): Promise<unknown> {
      return attempt.then(
        () => undefined,
        (error: unknown) => error,
      );
    }

    /** Everything an error would show in a log (message, stack, cause), to search for a leaked value. */
    function loggedText(error: unknown): string {
      return error instanceof Error
        ? `${error.message} ${error.stack ?? ''} ${String(error.cause ?? '')}`
        : String(error);
    }

    describe('the AWS form', () => {
      it('logs the platform pool in as the platform role and admin connections as the admin role, each from its secret', async () => {
        // Act
        const platform = await platformFor(shared);

        // Assert
        expect(platform.config.database).toMatchObject({
          kind: 'secret',
          secretArn: shared.platformSecretArn,
          adminSecretArn: shared.adminSecretArn,
        });
        expect(await loginsOf(platform, shared)).toEqual({
          pool: asPlatformRole(shared),
          admin: asAdminRole(shared),
        });
        expect(await platform.admin.platformRoleName()).toBe(shared.platform.username);
        expect(platform.core.platformLogin).toEqual({
          name: shared.platform.username,
          password: shared.platform.password,
        });
        expect(await platform.registry.list()).toEqual([]);
      });

      it('refuses DDL in a function given no admin secret, naming TENANTFLOW_ADMIN_DATABASE_SECRET_ARN, while its pool serves requests', async () => {
        // Prepare
        const platform = await platformFor(shared, { platform: shared.platformSecretArn });
        const tenantId = `noddl_${shared.suffix}`;
        const missingAdmin = /TENANTFLOW_ADMIN_DATABASE_SECRET_ARN is not set/;

        // Act
        const errors = [
          await rejectionOf(platform.admin.withConnection((connection) => connection.query('SELECT 1'))),
          await rejectionOf(platform.provisioning.provision({ tenantId, name: 'No DDL' })),
          await rejectionOf(migrateDatabase(platform)),
        ];

        // Assert
        expect(platform.config.database).not.toHaveProperty('adminSecretArn');
        for (const error of errors) {
          expect(error).toBeInstanceOf(ConfigurationError);
          expect((error as Error).message).toMatch(missingAdmin);
        }
        expect(await platform.registry.get(tenantId)).toBeUndefined();
        const created = await withClient(loginUrl(shared.admin, shared.name), async (admin) => {
          const { rows } = await admin.query<{ name: string }>(
            `SELECT nspname AS name FROM pg_catalog.pg_namespace WHERE nspname = $1
              UNION ALL SELECT rolname FROM pg_catalog.pg_roles WHERE rolname = $2`,
            [tenantId, `${tenantId}_user`],
          );
          return rows;
        });
        expect(created).toEqual([]);
        // The pool is the platform role, not a stand-in admin: requests still run.
        expect((await platform.pool.query<Login>(whoAmI)).rows[0]).toMatchObject(asPlatformRole(shared));
        expect(await platform.registry.list()).toEqual([]);
      });

      it('survives passwords with every character a URL treats specially, on both logins', async () => {
        // Prepare
        const special = () => `p@ss:w/rd%20?#&=+ é'"\\${unique()}`;
        const database = await createAwsDatabase({ admin: special(), platform: special() });

        // Act
        const platform = await platformFor(database);

        // Assert
        expect(await loginsOf(platform, database)).toEqual({
          pool: asPlatformRole(database),
          admin: asAdminRole(database),
        });
      });

      it('asks for TLS on platform, admin and tenant connections when TENANTFLOW_DATABASE_SSL=require, naming no password', async () => {
        // Prepare
        const platform = await platformFor(shared, bothSecrets(shared), 'require');
        const tenantPassword = `pw_${unique()}`;
        await platform.secrets.put('acme', {
          engine: 'postgres',
          host: server.hostname,
          port: Number(server.port),
          username: 'acme_user',
          password: tenantPassword,
          dbname: shared.name,
          schema: 'acme',
        });
        const tenantDb = await platform.tenantConnections.tenantDb('acme');

        // Act
        const errors = [
          await rejectionOf(platform.pool.query('SELECT 1')),
          await rejectionOf(platform.admin.withConnection((connection) => connection.query('SELECT 1'))),
          await rejectionOf(tenantDb.query('SELECT 1')),
        ];

        // Assert: the run's PostgreSQL has no TLS, so a client that asks for it is turned away
        // before logging in.
        for (const error of errors) {
          expect(error).toBeInstanceOf(Error);
          expect((error as Error).message).toMatch(/does not support SSL/);
          const text = loggedText(error);
          for (const password of [shared.platform.password, shared.admin.password, tenantPassword]) {
            expect(text).not.toContain(password);
            expect(text).not.toContain(encodeURIComponent(password));
          }
        }
      });

      const malformations: [string, (values: Record<string, string>) => string][] = [
        ['without a password', (values) => JSON.stringify({ ...values, password: undefined })],
        ['with an empty password', (values) => JSON.stringify({ ...values, password: '' })],
        ['without a username', (values) => JSON.stringify({ ...values, username: undefined })],
        ['that is not JSON', (values) => `{"password": "${values.password}"`],
      ];

      describe.each([
        ['platform', 'TENANTFLOW_DATABASE_SECRET_ARN'],
        ['admin', 'TENANTFLOW_ADMIN_DATABASE_SECRET_ARN'],
      ] as const)('the %s secret (%s)', (login, variable) => {
        /** The secrets a function gets, with `secretArn` in the place of this login's. */
        const secretsWith = (secretArn: string): Secrets =>
          login === 'platform'
            ? { platform: secretArn, admin: shared.adminSecretArn }
            : { platform: shared.platformSecretArn, admin: secretArn };

        it.each(malformations)(
          'fails when it is a secret %s, naming its ARN and none of its values',
          async (_, content) => {
            // Prepare
            const values = {
              engine: 'postgres',
              host: `h${unique()}.example`,
              username: `u_${unique()}`,
              password: `pw_${unique()}`,
              dbname: `db_${unique()}`,
            };
            const secretArn = await storeSecret(client, content(values), login);

            // Act
            const error = await rejectionOf(
              buildDdlFunction(awsConfig(shared.name, secretsWith(secretArn)), {
                secretsManagerClient: client,
              }),
            );

            // Assert
            expect(error).toBeInstanceOf(ConfigurationError);
            const message = loggedText(error);
            expect(message).toContain(
              `The ${login} database secret ${secretArn} (${variable}) must be the JSON of an RDS secret with a username and a password`,
            );
            for (const value of [...Object.values(values), shared.platform.password, shared.admin.password]) {
              expect(message).not.toContain(value);
            }
          },
        );

        it('fails when the secret does not exist, naming its ARN and its variable', async () => {
          // Prepare
          const secretArn = `arn:aws:secretsmanager:us-east-1:123456789012:secret:tenantflow-missing-${unique()}`;

          // Act
          const attempt = buildDdlFunction(awsConfig(shared.name, secretsWith(secretArn)), {
            secretsManagerClient: client,
          });

          // Assert
          await expect(attempt).rejects.toBeInstanceOf(ConfigurationError);
          await expect(attempt).rejects.toThrow(
            `Could not read the ${login} database secret ${secretArn} (${variable}): ResourceNotFoundException`,
          );
        });
      });
    });

    describe('cachedCore after a secret is rotated', () => {
      /**
       * A database and its two secrets, and a platform cache over them, as one Lambda sandbox of a
       * DDL-running function has; `reads` counts GetSecretValue calls per secret ARN.
       */
      async function sandbox() {
        const database = await createAwsDatabase();
        const logins = { admin: database.admin, platform: database.platform };
        const sandboxClient = motoSecretsManager(motoEndpoint);
        cleanups.push(async () => sandboxClient.destroy());
        const reads = new Map<string, number>();
        sandboxClient.middlewareStack.add(
          (next, context) => async (args) => {
            if (context.commandName === 'GetSecretValueCommand') {
              const secretId = String((args.input as { SecretId?: unknown }).SecretId);
              reads.set(secretId, (reads.get(secretId) ?? 0) + 1);
            }
            return next(args);
          },
          { step: 'initialize', name: 'countSecretReads' },
        );
        const config = awsConfig(database.name, bothSecrets(database));
        // The core is cached as in a Lambda sandbox; the function's admin is built once per core.
        const functions = new WeakMap<PlatformCore, Promise<DdlFunction>>();
        const getCore = cachedCore(async (options) => {
          const core = await createPlatformCore(config, { ...options, secretsManagerClient: sandboxClient });
          platforms.push(core);
          return core;
        });
        const getPlatform = async (): Promise<DdlFunction> => {
          const core = await getCore();
          let built = functions.get(core);
          if (built === undefined) {
            built = createDatabaseAdmin(core).then((admin) => ({
              pool: core.pool,
              admin,
              platformLogin: core.platformLogin,
              close: core.close,
            }));
            functions.set(core, built);
          }
          return built;
        };
        const readsOf = () => ({
          platform: reads.get(database.platformSecretArn) ?? 0,
          admin: reads.get(database.adminSecretArn) ?? 0,
        });
        /** As the admin, with its current password: what a rotation function or an operator runs. */
        const asAdmin = <T>(work: (admin: pg.Client) => Promise<T>) =>
          withClient(loginUrl(logins.admin, database.name), work);
        const putSecret = (secretArn: string, login: DatabaseLogin) =>
          client.send(
            new PutSecretValueCommand({
              SecretId: secretArn,
              SecretString: JSON.stringify(rdsSecret(server, database.name, login)),
            }),
          );
        /** RDS's multi-user rotation: the admin sets a new password on the platform role, then the secret. */
        const rotatePlatform = async () => {
          const password = `pw_${unique()}`;
          await asAdmin((admin) =>
            admin.query(
              `ALTER ROLE ${quoteIdent(database.platform.username)} PASSWORD ${admin.escapeLiteral(password)}`,
            ),
          );
          logins.platform = { username: database.platform.username, password };
          await putSecret(database.platformSecretArn, logins.platform);
        };
        /** RDS's single-user rotation: the admin sets its own new password, then the secret. */
        const rotateAdmin = async () => {
          const password = `pw_${unique()}`;
          await asAdmin((admin) =>
            admin.query(`ALTER ROLE CURRENT_USER PASSWORD ${admin.escapeLiteral(password)}`),
          );
          logins.admin = { username: database.admin.username, password };
          await putSecret(database.adminSecretArn, logins.admin);
        };
        /**
         * Open sessions outlive a rotation; this makes the pool need a new one, as after an idle
         * timeout. The admin may end them: it is a member of the platform role it created.
         */
        const endPlatformSessions = (stale: DdlFunction) =>
          asAdmin(async (admin) => {
            const { rows } = await admin.query<{ ended: boolean }>(
              `SELECT pg_terminate_backend(pid) AS ended FROM pg_catalog.pg_stat_activity WHERE usename = $1`,
              [database.platform.username],
            );
            expect(rows.length).toBeGreaterThan(0);
            expect(rows.every((row) => row.ended)).toBe(true);
            return vi.waitFor(() => expect(stale.pool.totalCount).toBe(0));
          });
        return { database, logins, getPlatform, readsOf, rotatePlatform, rotateAdmin, endPlatformSessions };
      }

      it('keeps one platform, reading each secret once, while both passwords are accepted', async () => {
        // Prepare
        const { database, getPlatform, readsOf } = await sandbox();

        // Act
        const first = await getPlatform();
        const logins = await loginsOf(first, database);

        // Assert
        expect(logins).toEqual({ pool: asPlatformRole(database), admin: asAdminRole(database) });
        expect(await getPlatform()).toBe(first);
        expect(readsOf()).toEqual({ platform: 1, admin: 1 });
      });

      it('builds a new platform, reading both secrets again, once the platform pool is refused (28P01)', async () => {
        // Prepare
        const { database, logins, getPlatform, readsOf, rotatePlatform, endPlatformSessions } =
          await sandbox();
        const stale = await getPlatform();
        expect((await loginsOf(stale, database)).pool.role).toBe(database.platform.username);
        const stalePassword = logins.platform.password;
        await rotatePlatform();
        await endPlatformSessions(stale);

        // Act
        const refusal = await rejectionOf(stale.pool.query('SELECT 1'));
        const fresh = await getPlatform();

        // Assert
        expect(refusal).toMatchObject({ code: '28P01' });
        const text = loggedText(refusal);
        expect(text).not.toContain(stalePassword);
        expect(text).not.toContain(logins.platform.password);
        expect(fresh).not.toBe(stale);
        expect(readsOf()).toEqual({ platform: 2, admin: 2 });
        expect(await loginsOf(fresh, database)).toEqual({
          pool: asPlatformRole(database),
          admin: asAdminRole(database),
        });
        expect(fresh.platformLogin?.password).toBe(logins.platform.password);
        expect(await getPlatform()).toBe(fresh);
        // The refused platform is closed once its replacement exists, so connections stay bounded.
        await vi.waitFor(() => expect(stale.pool.ended).toBe(true));
      });

      it('builds a new platform, reading both secrets again, once an admin connection is refused, though the pool still has a session', async () => {
        // Prepare
        const { database, logins, getPlatform, readsOf, rotateAdmin } = await sandbox();
        const stale = await getPlatform();
        await stale.pool.query('SELECT 1');
        const stalePassword = logins.admin.password;
        await rotateAdmin();

        // Act
        const refusal = await rejectionOf(
          stale.admin.withConnection((connection) => connection.query('SELECT 1')),
        );
        await stale.pool.query('SELECT 1');
        const fresh = await getPlatform();

        // Assert
        expect(refusal).toMatchObject({ code: '28P01' });
        const text = loggedText(refusal);
        expect(text).not.toContain(stalePassword);
        expect(text).not.toContain(encodeURIComponent(stalePassword));
        expect(text).not.toContain(logins.admin.password);
        expect(fresh).not.toBe(stale);
        expect(readsOf()).toEqual({ platform: 2, admin: 2 });
        expect(await loginsOf(fresh, database)).toEqual({
          pool: asPlatformRole(database),
          admin: asAdminRole(database),
        });
        expect(await getPlatform()).toBe(fresh);
      });

      it('takes the newest admin password too when the platform pool is what got refused', async () => {
        // Prepare: both secrets rotated since the platform read them; only the pool finds out.
        const { database, getPlatform, rotatePlatform, rotateAdmin, endPlatformSessions } = await sandbox();
        const stale = await getPlatform();
        await stale.pool.query('SELECT 1');
        await rotateAdmin();
        await rotatePlatform();
        await endPlatformSessions(stale);
        await expect(stale.pool.query('SELECT 1')).rejects.toMatchObject({ code: '28P01' });

        // Act
        const fresh = await getPlatform();

        // Assert
        expect(fresh).not.toBe(stale);
        expect(await loginsOf(fresh, database)).toEqual({
          pool: asPlatformRole(database),
          admin: asAdminRole(database),
        });
        await expect(
          stale.admin.withConnection((connection) => connection.query('SELECT 1')),
        ).rejects.toMatchObject({ code: '28P01' });
      });
    });
  },
);
