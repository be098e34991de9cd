import { randomBytes } from 'node:crypto';
import {
  CreateSecretCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { loadConfig } from '../../../shared/config/config.js';
import { migrateControlSchema } from '../../../shared/db/control-schema.js';
import { ConfigurationError } from '../../../shared/errors.js';
import { cachedPlatform, createPlatform, type Platform } from '../../../shared/platform.js';
import { createTestDatabase } from '../../support/database.js';
import { MOTO_INSTALL_HINT } from '../../support/moto-setup.js';

const motoEndpoint = inject('motoEndpoint');
const motoMissing = motoEndpoint === '';

/** The run's PostgreSQL: a superuser on 127.0.0.1, without TLS. */
const server = new URL(inject('databaseUrl'));

const unique = () => randomBytes(6).toString('hex');

describe.skipIf(motoMissing)(
  motoMissing
    ? `The platform's database login from Secrets Manager (skipped: moto_server is not on the PATH; install it with ${MOTO_INSTALL_HINT})`
    : "The platform's database login from Secrets Manager",
  () => {
    let database: Awaited<ReturnType<typeof createTestDatabase>>;
    let databaseName: string;
    let client: SecretsManagerClient;
    const platforms: Platform[] = [];
    const roles: string[] = [];

    beforeAll(async () => {
      database = await createTestDatabase('tf_creds');
      databaseName = new URL(database.url).pathname.slice(1);
      await migrateControlSchema(database.url);
      client = new SecretsManagerClient({
        endpoint: motoEndpoint,
        region: 'us-east-1',
        credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
      });
    });

    afterAll(async () => {
      await Promise.all(platforms.map((platform) => platform.close().catch(() => undefined)));
      await database?.drop();
      await asSuperuser(async (admin) => {
        for (const role of roles) {
          await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, [
            role,
          ]);
          await admin.query(`DROP ROLE IF EXISTS "${role}"`);
        }
      });
      client?.destroy();
    });

    async function asSuperuser<T>(work: (admin: pg.Client) => Promise<T>): Promise<T> {
      const admin = new pg.Client({ connectionString: inject('databaseUrl') });
      await admin.connect();
      try {
        return await work(admin);
      } finally {
        await admin.end();
      }
    }

    /** A login role of its own, so its password can be rotated without touching the run's superuser. */
    async function createRole(password: string): Promise<string> {
      const role = `tf_creds_${unique()}`;
      roles.push(role);
      await asSuperuser((admin) =>
        admin.query(`CREATE ROLE "${role}" LOGIN PASSWORD ${admin.escapeLiteral(password)}`),
      );
      return role;
    }

    /** Stores `value` as moto's copy of an RDS-generated secret and returns its ARN. */
    async function storeSecret(value: unknown): Promise<string> {
      const created = await client.send(
        new CreateSecretCommand({
          Name: `tenantflow/test/platform-${unique()}`,
          SecretString: typeof value === 'string' ? value : JSON.stringify(value),
        }),
      );
      if (created.ARN === undefined) {
        throw new Error('moto returned no ARN');
      }
      return created.ARN;
    }

    /** An RDS-style secret for `username`/`password` on the run's server. */
    function rdsSecret(username: string, password: string) {
      return {
        engine: 'postgres',
        host: server.hostname,
        port: Number(server.port),
        username,
        password,
        dbname: databaseName,
        dbClusterIdentifier: 'tenantflow',
      };
    }

    /** The configuration CDK gives a Lambda, pointed at the test database (which has no TLS). */
    function awsConfig(secretArn: string, ssl: 'disable' | 'require' = 'disable') {
      return loadConfig({
        TENANTFLOW_STAGE: `t${unique()}`,
        TENANTFLOW_DATABASE_HOST: server.hostname,
        TENANTFLOW_DATABASE_PORT: server.port,
        TENANTFLOW_DATABASE_NAME: databaseName,
        TENANTFLOW_DATABASE_SECRET_ARN: secretArn,
        TENANTFLOW_DATABASE_SSL: ssl,
      });
    }

    async function platformFor(secretArn: string, ssl: 'disable' | 'require' = 'disable'): Promise<Platform> {
      const platform = await createPlatform(awsConfig(secretArn, ssl), { secretsManagerClient: client });
      platforms.push(platform);
      return platform;
    }

    async function currentUser(platform: Platform): Promise<{ pool: string; admin: string }> {
      const { rows } = await platform.pool.query<{ me: string; db: string }>(
        'SELECT current_user AS me, current_database() AS db',
      );
      expect(rows[0]?.db).toBe(databaseName);
      const admin = await platform.admin.withConnection(
        async (connection) =>
          (await connection.query<{ me: string }>('SELECT current_user AS me')).rows[0]?.me,
      );
      return { pool: rows[0]?.me ?? '', admin: admin ?? '' };
    }

    describe('createPlatform in the AWS form', () => {
      it("logs the platform pool and the admin connection in with the secret's username and password", async () => {
        const username = decodeURIComponent(server.username);
        const secretArn = await storeSecret(rdsSecret(username, decodeURIComponent(server.password)));

        const platform = await platformFor(secretArn);

        expect(platform.config.database).toMatchObject({ kind: 'secret', secretArn });
        expect(await currentUser(platform)).toEqual({ pool: username, admin: username });
        expect(await platform.registry.list()).toEqual([]);
      });

      it('survives a password with every character a URL treats specially', async () => {
        const password = `p@ss:w/rd%20?#&=+ é'"\\${unique()}`;
        const role = await createRole(password);
        const secretArn = await storeSecret(rdsSecret(role, password));

        const platform = await platformFor(secretArn);

        expect(await currentUser(platform)).toEqual({ pool: role, admin: role });
      });

      it('asks for TLS on platform, admin and tenant connections when TENANTFLOW_DATABASE_SSL=require', async () => {
        const username = decodeURIComponent(server.username);
        const secretArn = await storeSecret(rdsSecret(username, decodeURIComponent(server.password)));
        const platform = await platformFor(secretArn, 'require');
        await platform.secrets.put('acme', {
          engine: 'postgres',
          host: server.hostname,
          port: Number(server.port),
          username: 'acme_user',
          password: 'not-used',
          dbname: databaseName,
          schema: 'acme',
        });
        const tenantDb = await platform.tenantConnections.tenantDb('acme');

        // The run's PostgreSQL has no TLS: a client that asks for it is turned away before logging in.
        await expect(platform.pool.query('SELECT 1')).rejects.toThrow(/does not support SSL/);
        await expect(
          platform.admin.withConnection((connection) => connection.query('SELECT 1')),
        ).rejects.toThrow(/does not support SSL/);
        await expect(tenantDb.query('SELECT 1')).rejects.toThrow(/does not support SSL/);
      });

      it.each([
        [
          'without a password',
          (values: Record<string, string>) => JSON.stringify({ ...values, password: undefined }),
        ],
        [
          'with an empty password',
          (values: Record<string, string>) => JSON.stringify({ ...values, password: '' }),
        ],
        [
          'without a username',
          (values: Record<string, string>) => JSON.stringify({ ...values, username: undefined }),
        ],
        ['that is not JSON', (values: Record<string, string>) => `{"password": "${values.password}"`],
      ])('fails on a secret %s, naming the ARN and none of its values', async (_, content) => {
        const values = {
          engine: 'postgres',
          host: `h${unique()}.example`,
          username: `u_${unique()}`,
          password: `pw_${unique()}`,
          dbname: `db_${unique()}`,
        };
        const secretArn = await storeSecret(content(values));

        const attempt = createPlatform(awsConfig(secretArn), { secretsManagerClient: client });

        await expect(attempt).rejects.toBeInstanceOf(ConfigurationError);
        const message = await attempt.then(
          () => '',
          (error: Error) => `${error.message} ${String(error.cause ?? '')}`,
        );
        expect(message).toContain(secretArn);
        expect(message).toMatch(/must be the JSON of an RDS secret with a username and a password/);
        for (const value of Object.values(values)) {
          expect(message).not.toContain(value);
        }
      });

      it('fails on a secret that does not exist, naming its ARN', async () => {
        const secretArn = `arn:aws:secretsmanager:us-east-1:123456789012:secret:tenantflow-missing-${unique()}`;

        const attempt = createPlatform(awsConfig(secretArn), { secretsManagerClient: client });

        await expect(attempt).rejects.toBeInstanceOf(ConfigurationError);
        await expect(attempt).rejects.toThrow(
          `Could not read the platform database secret ${secretArn} (TENANTFLOW_DATABASE_SECRET_ARN): ResourceNotFoundException`,
        );
      });
    });

    describe('cachedPlatform (getPlatform) after the secret is rotated', () => {
      /** A role, its secret, and a platform cache over it, as one Lambda sandbox has. */
      async function sandbox() {
        const firstPassword = `pw_${unique()}`;
        const role = await createRole(firstPassword);
        const secretArn = await storeSecret(rdsSecret(role, firstPassword));
        const config = awsConfig(secretArn);
        const getPlatform = cachedPlatform(async (overrides) => {
          const platform = await createPlatform(config, { ...overrides, secretsManagerClient: client });
          platforms.push(platform);
          return platform;
        });
        /** What the rotation function does: a new password on the role, then in the secret. */
        const rotate = async () => {
          const password = `pw_${unique()}`;
          await asSuperuser((admin) =>
            admin.query(`ALTER ROLE "${role}" PASSWORD ${admin.escapeLiteral(password)}`),
          );
          await client.send(
            new PutSecretValueCommand({
              SecretId: secretArn,
              SecretString: JSON.stringify(rdsSecret(role, password)),
            }),
          );
        };
        return { role, getPlatform, rotate };
      }

      it('keeps one platform while the password is accepted', async () => {
        const { getPlatform } = await sandbox();

        const first = await getPlatform();
        await first.pool.query('SELECT 1');

        expect(await getPlatform()).toBe(first);
      });

      it('builds a new platform, reading the secret again, once the platform pool is refused (28P01)', async () => {
        const { role, getPlatform, rotate } = await sandbox();
        const stale = await getPlatform();
        expect((await currentUser(stale)).pool).toBe(role);
        await rotate();
        // Open sessions outlive a rotation; make the pool need a new one, as after an idle timeout.
        await asSuperuser((admin) =>
          admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [role]),
        );
        await vi.waitFor(() => expect(stale.pool.totalCount).toBe(0));

        await expect(stale.pool.query('SELECT 1')).rejects.toMatchObject({ code: '28P01' });
        const fresh = await getPlatform();

        expect(fresh).not.toBe(stale);
        expect(await currentUser(fresh)).toEqual({ pool: role, admin: role });
        expect(await getPlatform()).toBe(fresh);
        // The refused platform is closed once its replacement exists, so connections stay bounded.
        await vi.waitFor(() => expect(stale.pool.ended).toBe(true));
      });

      it('builds a new platform once an admin connection is refused, though the pool still has a session', async () => {
        const { role, getPlatform, rotate } = await sandbox();
        const stale = await getPlatform();
        await stale.pool.query('SELECT 1');
        await rotate();

        await expect(
          stale.admin.withConnection((connection) => connection.query('SELECT 1')),
        ).rejects.toMatchObject({
          code: '28P01',
        });
        await stale.pool.query('SELECT 1');
        const fresh = await getPlatform();

        expect(fresh).not.toBe(stale);
        expect(await currentUser(fresh)).toEqual({ pool: role, admin: role });
      });
    });
  },
);
