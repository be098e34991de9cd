import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { loadConfig } from '@tenantflow/shared/config/config';
import {
  type DatabaseTarget,
  databaseConnectionConfig,
  databaseConnectionUrl,
  missingAdminLoginError,
  resolveDatabaseCredentials,
} from '@tenantflow/shared/config/database-credentials';
import { ConfigurationError } from '@tenantflow/shared/kernel/errors';
import { DatabaseAdmin } from '@tenantflow/shared/provisioning/database-admin';
import { createPlatformCore } from '@tenantflow/shared/runtime/core';
import { createDatabaseAdmin, createProvisioning } from '@tenantflow/shared/runtime/provisioning';
import pg from 'pg';
import { describe, expect, it } from 'vitest';

describe('loadConfig', () => {
  it('names both database forms when neither is given', () => {
    expect(() => loadConfig({})).toThrow(ConfigurationError);
    expect(() => loadConfig({})).toThrow(
      /no database is configured: set either DATABASE_URL .* or TENANTFLOW_DATABASE_HOST and TENANTFLOW_DATABASE_SECRET_ARN/,
    );
  });

  it('reports every invalid variable at once', () => {
    let message = '';
    try {
      loadConfig({ DATABASE_URL: 'mysql://x', TENANTFLOW_STAGE: 'Prod!', TENANTFLOW_ADMIN_TOKEN: 'short' });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/DATABASE_URL/);
    expect(message).toMatch(/TENANTFLOW_STAGE/);
    expect(message).toMatch(/TENANTFLOW_ADMIN_TOKEN/);
  });

  it('uses local defaults under TENANTFLOW_LOCAL=1 and never trusts IAM identities there', () => {
    const config = loadConfig({ DATABASE_URL: 'postgres://localhost/db', TENANTFLOW_LOCAL: '1' });
    expect(config).toMatchObject({
      local: true,
      stage: 'local',
      trustIamAdminIdentity: false,
      dbPoolMax: 10,
    });
  });

  it('uses Lambda defaults otherwise: IAM admins, a pool of two', () => {
    const config = loadConfig({ DATABASE_URL: 'postgresql://proxy.example/db', TENANTFLOW_STAGE: 'prod' });
    expect(config).toMatchObject({ local: false, stage: 'prod', trustIamAdminIdentity: true, dbPoolMax: 2 });
  });

  it('has recovery defaults a scheduled job can live with, each overridable', () => {
    const defaults = loadConfig({ DATABASE_URL: 'postgres://localhost/db' });
    expect(defaults.recovery).toEqual({
      staleAfterSeconds: 300,
      heartbeatStaleAfterSeconds: 60,
      maxAttempts: 3,
      concurrency: 4,
      intervalSeconds: 60,
      retentionDays: 30,
    });
    expect(defaults.provisioningLeaseSeconds).toBe(120);
    const tuned = loadConfig({
      DATABASE_URL: 'postgres://localhost/db',
      TENANTFLOW_RECOVERY_STALE_SECONDS: '0',
      TENANTFLOW_RECOVERY_MAX_ATTEMPTS: '5',
      TENANTFLOW_PROVISIONING_LEASE_SECONDS: '10',
    });
    expect(tuned.recovery).toMatchObject({ staleAfterSeconds: 0, maxAttempts: 5 });
    expect(tuned.provisioningLeaseSeconds).toBe(10);
    expect(() =>
      loadConfig({ DATABASE_URL: 'postgres://localhost/db', TENANTFLOW_RECOVERY_MAX_ATTEMPTS: '0' }),
    ).toThrow(/TENANTFLOW_RECOVERY_MAX_ATTEMPTS/);
  });

  it('refuses failpoints outside the local platform: they make the process exit on purpose', () => {
    expect(() =>
      loadConfig({ DATABASE_URL: 'postgres://localhost/db', TENANTFLOW_FAILPOINTS: 'after-insert' }),
    ).toThrow(/TENANTFLOW_FAILPOINTS .*local platform only/);
    expect(
      loadConfig({
        DATABASE_URL: 'postgres://localhost/db',
        TENANTFLOW_LOCAL: '1',
        TENANTFLOW_FAILPOINTS: '',
      }).failpoints,
    ).toBeUndefined();
  });

  describe('the database in the AWS form (RDS Proxy endpoint and platform secret)', () => {
    const secretArn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:tenantflow/prod/platform-AbCdEf';
    const adminSecretArn =
      'arn:aws:secretsmanager:eu-west-1:123456789012:secret:tenantflow/prod/admin-GhIjKl';
    const aws = {
      TENANTFLOW_DATABASE_HOST: 'tf.proxy-abc.eu-west-1.rds.amazonaws.com',
      TENANTFLOW_DATABASE_SECRET_ARN: secretArn,
    };

    /** The message of the ConfigurationError `loadConfig(env)` throws. */
    function configurationProblem(env: NodeJS.ProcessEnv): string {
      try {
        loadConfig(env);
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigurationError);
        return (error as Error).message;
      }
      throw new Error('loadConfig accepted the environment');
    }

    it('defaults to port 5432, database tenantflow and TLS, with no URL holding a password', () => {
      const config = loadConfig({ ...aws, TENANTFLOW_STAGE: 'prod' });

      expect(config.database).toEqual({
        kind: 'secret',
        host: 'tf.proxy-abc.eu-west-1.rds.amazonaws.com',
        port: 5432,
        name: 'tenantflow',
        secretArn,
        ssl: 'require',
      });
      // No admin login unless it is given: most functions never run DDL.
      expect(config.database).not.toHaveProperty('adminSecretArn');
      expect(config.databaseUrl).toBeUndefined();
      expect(config.adminDatabaseUrl).toBeUndefined();
    });

    it('takes the admin login from TENANTFLOW_ADMIN_DATABASE_SECRET_ARN, beside the platform secret', () => {
      const config = loadConfig({ ...aws, TENANTFLOW_ADMIN_DATABASE_SECRET_ARN: adminSecretArn });

      expect(config.database).toEqual({
        kind: 'secret',
        host: aws.TENANTFLOW_DATABASE_HOST,
        port: 5432,
        name: 'tenantflow',
        secretArn,
        adminSecretArn,
        ssl: 'require',
      });
      expect(config.adminDatabaseUrl).toBeUndefined();
    });

    it('does not take the admin secret for a database on its own: the platform secret and host are still required', () => {
      const message = configurationProblem({ TENANTFLOW_ADMIN_DATABASE_SECRET_ARN: adminSecretArn });

      expect(message).toMatch(/no database is configured/);
    });

    it('refuses TENANTFLOW_ADMIN_DATABASE_SECRET_ARN beside DATABASE_URL, pointing at TENANTFLOW_ADMIN_DATABASE_URL', () => {
      const message = configurationProblem({
        DATABASE_URL: 'postgres://localhost/db',
        TENANTFLOW_ADMIN_DATABASE_SECRET_ARN: adminSecretArn,
      });

      expect(message).toMatch(
        /TENANTFLOW_ADMIN_DATABASE_SECRET_ARN belongs to the AWS form and cannot be combined with DATABASE_URL/,
      );
      expect(message).toMatch(/TENANTFLOW_ADMIN_DATABASE_URL instead/);
    });

    it('lets tenant roles connect to the proxy, unless told otherwise', () => {
      const config = loadConfig({
        ...aws,
        TENANTFLOW_DATABASE_PORT: '6432',
        TENANTFLOW_DATABASE_NAME: 'tf_prod',
      });
      const elsewhere = loadConfig({
        ...aws,
        TENANTFLOW_TENANT_DB_HOST: 'tenants.proxy.example',
        TENANTFLOW_TENANT_DB_PORT: '5433',
      });

      expect(config.database).toMatchObject({ port: 6432, name: 'tf_prod' });
      expect(config.tenantEndpoint).toEqual({
        host: aws.TENANTFLOW_DATABASE_HOST,
        port: 6432,
        database: 'tf_prod',
      });
      expect(elsewhere.tenantEndpoint).toEqual({
        host: 'tenants.proxy.example',
        port: 5433,
        database: 'tenantflow',
      });
    });

    it('turns TLS off only when told to (a plain PostgreSQL, as in the integration tests)', () => {
      expect(loadConfig({ ...aws, TENANTFLOW_DATABASE_SSL: 'disable' }).database.ssl).toBe('disable');
      expect(loadConfig({ ...aws, TENANTFLOW_DATABASE_SSL: 'require' }).database.ssl).toBe('require');
    });

    it('refuses DATABASE_URL beside it, naming both forms', () => {
      const message = configurationProblem({ ...aws, DATABASE_URL: 'postgres://localhost/db' });

      expect(message).toMatch(
        /DATABASE_URL and TENANTFLOW_DATABASE_HOST, TENANTFLOW_DATABASE_SECRET_ARN are both set/,
      );
      expect(message).toMatch(
        /either DATABASE_URL .* or TENANTFLOW_DATABASE_HOST and TENANTFLOW_DATABASE_SECRET_ARN/,
      );
    });

    it('refuses a port or database name beside DATABASE_URL: the URL already says them', () => {
      expect(
        configurationProblem({ DATABASE_URL: 'postgres://localhost/db', TENANTFLOW_DATABASE_PORT: '5432' }),
      ).toMatch(/DATABASE_URL and TENANTFLOW_DATABASE_PORT are both set/);
    });

    it('names the half of the AWS form that is missing', () => {
      expect(configurationProblem({ TENANTFLOW_DATABASE_HOST: aws.TENANTFLOW_DATABASE_HOST })).toMatch(
        /TENANTFLOW_DATABASE_SECRET_ARN is required/,
      );
      const message = configurationProblem({ TENANTFLOW_DATABASE_SECRET_ARN: secretArn });
      expect(message).toMatch(/TENANTFLOW_DATABASE_HOST is required/);
      expect(message).not.toMatch(/TENANTFLOW_DATABASE_SECRET_ARN is required/);
    });

    it('refuses an admin URL: the admin login is the admin secret', () => {
      expect(
        configurationProblem({
          ...aws,
          TENANTFLOW_ADMIN_DATABASE_URL: 'postgres://admin:pw@proxy/tenantflow',
        }),
      ).toMatch(
        /TENANTFLOW_ADMIN_DATABASE_URL cannot be combined with the AWS form: the admin login is read from TENANTFLOW_ADMIN_DATABASE_SECRET_ARN/,
      );
    });

    it.each([
      ['TENANTFLOW_DATABASE_PORT', '0', /TENANTFLOW_DATABASE_PORT must be a port number/],
      ['TENANTFLOW_DATABASE_PORT', '65536', /TENANTFLOW_DATABASE_PORT must be a port number/],
      ['TENANTFLOW_DATABASE_PORT', 'five', /TENANTFLOW_DATABASE_PORT must be a port number/],
      ['TENANTFLOW_DATABASE_SSL', 'verify-full', /TENANTFLOW_DATABASE_SSL must be 'require' or 'disable'/],
      ['TENANTFLOW_DATABASE_SSL', 'true', /TENANTFLOW_DATABASE_SSL must be 'require' or 'disable'/],
      [
        'TENANTFLOW_DATABASE_SECRET_ARN',
        'tenantflow-platform',
        /TENANTFLOW_DATABASE_SECRET_ARN must be a Secrets Manager secret ARN/,
      ],
      [
        'TENANTFLOW_ADMIN_DATABASE_SECRET_ARN',
        'tenantflow/prod/admin',
        /TENANTFLOW_ADMIN_DATABASE_SECRET_ARN must be a Secrets Manager secret ARN/,
      ],
      [
        'TENANTFLOW_ADMIN_DATABASE_SECRET_ARN',
        'arn:aws:rds:eu-west-1:123456789012:cluster:tenantflow-prod',
        /TENANTFLOW_ADMIN_DATABASE_SECRET_ARN must be a Secrets Manager secret ARN/,
      ],
      ['TENANTFLOW_DATABASE_NAME', 'tenant flow', /TENANTFLOW_DATABASE_NAME must be 1-63 letters/],
      ['TENANTFLOW_DATABASE_HOST', '', /TENANTFLOW_DATABASE_HOST must be a host name/],
    ])('names %s=%j as invalid', (name, value, expected) => {
      expect(configurationProblem({ ...aws, [name]: value })).toMatch(expected);
    });

    it('reports a bad port together with the other invalid variables', () => {
      const message = configurationProblem({
        ...aws,
        TENANTFLOW_DATABASE_PORT: 'x',
        TENANTFLOW_STAGE: 'Prod!',
      });

      expect(message).toMatch(/TENANTFLOW_DATABASE_PORT/);
      expect(message).toMatch(/TENANTFLOW_STAGE/);
    });
  });

  describe('TLS with DATABASE_URL', () => {
    it('is off unless the URL or TENANTFLOW_DATABASE_SSL asks for it', () => {
      expect(loadConfig({ DATABASE_URL: 'postgres://localhost/db' }).database).toEqual({
        kind: 'url',
        url: 'postgres://localhost/db',
        adminUrl: 'postgres://localhost/db',
        ssl: 'disable',
      });
      expect(loadConfig({ DATABASE_URL: 'postgres://db.example/db?sslmode=verify-full' }).database.ssl).toBe(
        'require',
      );
      expect(loadConfig({ DATABASE_URL: 'postgres://db.example/db?ssl=true' }).database.ssl).toBe('require');
    });

    it('writes TENANTFLOW_DATABASE_SSL=require into both URLs as sslmode=verify-full (TLS with verification)', () => {
      const config = loadConfig({
        DATABASE_URL: 'postgres://app:pw@db.example/db?application_name=x',
        TENANTFLOW_ADMIN_DATABASE_URL: 'postgres://admin:pw@db.example/db',
        TENANTFLOW_DATABASE_SSL: 'require',
      });

      expect(config.database).toMatchObject({ kind: 'url', ssl: 'require' });
      expect(config.databaseUrl).toBe(
        'postgres://app:pw@db.example/db?application_name=x&sslmode=verify-full',
      );
      expect(config.adminDatabaseUrl).toBe('postgres://admin:pw@db.example/db?sslmode=verify-full');
    });

    it('refuses TENANTFLOW_DATABASE_SSL that contradicts the URL, naming the URL variable', () => {
      expect(() =>
        loadConfig({
          DATABASE_URL: 'postgres://db.example/db?sslmode=disable',
          TENANTFLOW_DATABASE_SSL: 'require',
        }),
      ).toThrow(/TENANTFLOW_DATABASE_SSL=require contradicts the sslmode\/ssl of DATABASE_URL/);
    });

    it('names a DATABASE_URL that is not a URL without repeating it (it may hold a password)', () => {
      const message = (() => {
        try {
          loadConfig({ DATABASE_URL: 'postgres://user:s3cret@[bad/db' });
        } catch (error) {
          return (error as Error).message;
        }
        return '';
      })();

      expect(message).toMatch(/DATABASE_URL is not a valid URL/);
      expect(message).not.toMatch(/s3cret/);
    });
  });
});

describe('the connection built from the platform secret', () => {
  const proxy: DatabaseTarget = {
    host: 'tf.proxy-abc.eu-west-1.rds.amazonaws.com',
    port: 5432,
    database: 'tenantflow',
    ssl: 'require',
  };
  const credentials = { username: 'tenantflow_admin', password: `p@ss:w/rd%?#&=+ é'"\\` };

  /** What pg itself makes of a connection string (pg.Client parses it at construction, offline). */
  function pgParameters(connectionString: string) {
    const client = new pg.Client({ connectionString });
    return (client as unknown as { connectionParameters: Record<string, unknown> }).connectionParameters;
  }

  it('requires TLS that verifies the certificate, as a pg config', () => {
    expect(databaseConnectionConfig(proxy, credentials)).toEqual({
      host: proxy.host,
      port: 5432,
      database: 'tenantflow',
      user: 'tenantflow_admin',
      password: credentials.password,
      ssl: { rejectUnauthorized: true },
    });
    expect(databaseConnectionConfig({ ...proxy, ssl: 'disable' }, credentials).ssl).toBe(false);
  });

  it('requires TLS that verifies the certificate, as a URL pg reads back to the same login', () => {
    const url = databaseConnectionUrl(proxy, credentials);

    const parameters = pgParameters(url);

    expect(url).toMatch(/\?sslmode=verify-full$/);
    expect(parameters).toMatchObject({
      host: proxy.host,
      port: 5432,
      database: 'tenantflow',
      user: 'tenantflow_admin',
    });
    expect(parameters.password).toBe(credentials.password);
    // An options object without rejectUnauthorized: false leaves Node's default, which verifies.
    expect(parameters.ssl).toEqual({});
    expect(pgParameters(databaseConnectionUrl({ ...proxy, ssl: 'disable' }, credentials)).ssl).toBe(false);
  });
});

describe('the admin login in the AWS form', () => {
  const platformArn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:tenantflow/prod/platform-AbCdEf';
  const adminArn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:tenantflow/prod/admin-GhIjKl';
  const logins: Record<string, { username: string; password: string }> = {
    [platformArn]: { username: 'tenantflow_platform', password: 'platform-pw' },
    [adminArn]: { username: 'tenantflow_admin', password: 'admin-pw' },
  };

  /** A Secrets Manager client that answers from `logins` and records which secrets were asked for. */
  function fakeSecretsManager(): { client: SecretsManagerClient; asked: string[] } {
    const asked: string[] = [];
    const client = {
      send: async (command: { input: { SecretId?: string } }) => {
        const id = command.input.SecretId ?? '';
        asked.push(id);
        const login = logins[id];
        if (login === undefined) {
          throw Object.assign(new Error("Secrets Manager can't find the specified secret."), {
            name: 'ResourceNotFoundException',
          });
        }
        return { SecretString: JSON.stringify({ engine: 'postgres', ...login }) };
      },
    };
    return { client: client as unknown as SecretsManagerClient, asked };
  }

  /** The configuration CDK gives a Lambda; nothing here opens a connection. */
  function awsConfig(extra: NodeJS.ProcessEnv = {}) {
    return loadConfig({
      TENANTFLOW_STAGE: 'prod',
      TENANTFLOW_DATABASE_HOST: 'tf.proxy-abc.eu-west-1.rds.amazonaws.com',
      TENANTFLOW_DATABASE_SECRET_ARN: platformArn,
      ...extra,
    });
  }

  function poolUser(pool: pg.Pool): unknown {
    return (pool as unknown as { options: { user?: unknown } }).options.user;
  }

  it('fails any admin connection of a function without it, before connecting, naming the variable', async () => {
    const admin = new DatabaseAdmin({
      adminUrl: undefined,
      missingAdminLogin: missingAdminLoginError,
      platformRole: 'tenantflow_platform',
      tenantMigrations: [],
    });
    let connected = false;

    const attempt = admin.withConnection(async () => {
      connected = true;
    });

    await expect(attempt).rejects.toThrow(ConfigurationError);
    await expect(admin.withConnection(async () => undefined)).rejects.toThrow(
      /no admin database login: TENANTFLOW_ADMIN_DATABASE_SECRET_ARN is not set/,
    );
    expect(connected).toBe(false);
  });

  it('names the admin secret and its variable when it cannot be read, and never a value from it', async () => {
    const { client } = fakeSecretsManager();
    const malformed = {
      send: async () => ({ SecretString: JSON.stringify({ username: 'tenantflow_admin', password: '' }) }),
    };

    await expect(
      resolveDatabaseCredentials({ client, secretArn: `${adminArn}x`, login: 'admin' }),
    ).rejects.toThrow(
      `Could not read the admin database secret ${adminArn}x (TENANTFLOW_ADMIN_DATABASE_SECRET_ARN): ResourceNotFoundException`,
    );
    await expect(resolveDatabaseCredentials({ client, secretArn: `${platformArn}x` })).rejects.toThrow(
      `Could not read the platform database secret ${platformArn}x (TENANTFLOW_DATABASE_SECRET_ARN)`,
    );
    const refusal = resolveDatabaseCredentials({ client: malformed, secretArn: adminArn, login: 'admin' });
    await expect(refusal).rejects.toThrow(
      `The admin database secret ${adminArn} (TENANTFLOW_ADMIN_DATABASE_SECRET_ARN) must be the JSON of an RDS secret`,
    );
    await expect(refusal).rejects.not.toThrow(/tenantflow_admin/);
  });

  it('a core reads the platform secret only, and its pool logs in as the platform', async () => {
    const { client, asked } = fakeSecretsManager();

    const core = await createPlatformCore(awsConfig({ TENANTFLOW_ADMIN_DATABASE_SECRET_ARN: adminArn }), {
      secretsManagerClient: client,
    });
    try {
      expect(asked).toEqual([platformArn]);
      expect(poolUser(core.pool)).toBe('tenantflow_platform');
      expect(core.platformLogin?.name).toBe('tenantflow_platform');
    } finally {
      await core.close();
    }
  });

  it('a function without it builds its admin, which refuses DDL naming the variable', async () => {
    const { client, asked } = fakeSecretsManager();

    const core = await createPlatformCore(awsConfig(), { secretsManagerClient: client });
    try {
      const admin = await createDatabaseAdmin(core);
      expect(asked).toEqual([platformArn]);
      await expect(admin.withConnection(async () => 'connected')).rejects.toThrow(
        /TENANTFLOW_ADMIN_DATABASE_SECRET_ARN is not set/,
      );
    } finally {
      await core.close();
    }
  });

  it('provisioning with it reads the admin secret as well, and the pool still logs in as the platform', async () => {
    const { client, asked } = fakeSecretsManager();

    const core = await createPlatformCore(awsConfig({ TENANTFLOW_ADMIN_DATABASE_SECRET_ARN: adminArn }), {
      secretsManagerClient: client,
    });
    try {
      await createProvisioning(core);
      expect([...asked].sort()).toEqual([adminArn, platformArn].sort());
      expect(poolUser(core.pool)).toBe('tenantflow_platform');
    } finally {
      await core.close();
    }
  });

  it('fails to build provisioning whose admin secret cannot be read, naming TENANTFLOW_ADMIN_DATABASE_SECRET_ARN', async () => {
    const { client } = fakeSecretsManager();
    const missing = `${adminArn}-gone`;
    const core = await createPlatformCore(awsConfig({ TENANTFLOW_ADMIN_DATABASE_SECRET_ARN: missing }), {
      secretsManagerClient: client,
    });
    try {
      const attempt = createProvisioning(core);

      await expect(attempt).rejects.toBeInstanceOf(ConfigurationError);
      await expect(attempt).rejects.toThrow(
        `admin database secret ${missing} (TENANTFLOW_ADMIN_DATABASE_SECRET_ARN)`,
      );
    } finally {
      await core.close();
    }
  });
});
