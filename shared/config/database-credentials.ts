import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type pg from 'pg';
import { ConfigurationError } from '../kernel/errors.js';
import { z } from '../kernel/zod.js';
import type { DatabaseSsl } from './config.js';

/** The login read from a database secret. The rest of an RDS secret (host, port…) is not used. */
export interface DatabaseCredentials {
  readonly username: string;
  readonly password: string;
}

/** Where to connect: in AWS the RDS Proxy endpoint from the configuration, not the secret's `host`. */
export interface DatabaseTarget {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly ssl: DatabaseSsl;
}

/** The two logins of the AWS form, and the variable each secret's ARN comes from. */
export type DatabaseLogin = 'platform' | 'admin';

const SECRET_VARIABLES: Readonly<Record<DatabaseLogin, string>> = {
  platform: 'TENANTFLOW_DATABASE_SECRET_ARN',
  admin: 'TENANTFLOW_ADMIN_DATABASE_SECRET_ARN',
};

export interface ResolveDatabaseCredentialsProps {
  readonly client: Pick<SecretsManagerClient, 'send'>;
  /**
   * The RDS-style secret of the login: `TENANTFLOW_DATABASE_SECRET_ARN` (the platform role) or
   * `TENANTFLOW_ADMIN_DATABASE_SECRET_ARN` (the admin role).
   */
  readonly secretArn: string;
  /**
   * Which login the secret holds; errors name it and its variable.
   * @default 'platform'
   */
  readonly login?: DatabaseLogin;
}

// An RDS-generated secret is `{ username, password, host, port, dbname, engine, … }`; only the login
// is needed, and other fields may come and go with rotation lambdas, so they are not checked.
const platformSecretSchema = z.object({
  username: z.string().min(1),
  password: z.string().min(1),
});

/**
 * Reads a database login (the platform's, or the admin's) from Secrets Manager. Every failure is a
 * `ConfigurationError` that names the secret ARN and its variable, and never a value read from it,
 * so the password cannot reach a log through the message.
 *
 * Read once per platform (once per Lambda sandbox through `getPlatform()`): a password rotated
 * later is seen by new sandboxes, and by a sandbox whose platform the database refused
 * (SQLSTATE 28P01, on the platform pool or an admin connection), because `getPlatform()` then
 * builds a new platform, which reads both secrets again.
 *
 * @example
 * ```ts
 * const credentials = await resolveDatabaseCredentials({ client, secretArn: config.database.secretArn });
 * const pool = new pg.Pool(databaseConnectionConfig(target, credentials));
 * const admin = await resolveDatabaseCredentials({ client, secretArn: adminSecretArn, login: 'admin' });
 * ```
 */
export async function resolveDatabaseCredentials(
  props: ResolveDatabaseCredentialsProps,
): Promise<DatabaseCredentials> {
  const { client, secretArn } = props;
  const login = props.login ?? 'platform';
  let text: string | undefined;
  try {
    text = (await client.send(new GetSecretValueCommand({ SecretId: secretArn }))).SecretString;
  } catch (error) {
    // SDK errors name the secret and the reason (not found, access denied), never its value.
    const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    throw new ConfigurationError(
      `Could not read the ${login} database secret ${secretArn} (${SECRET_VARIABLES[login]}): ${reason}`,
      { cause: error },
    );
  }
  if (text === undefined) {
    throw malformed(login, secretArn, ['it holds no SecretString (a binary secret?)']);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // JSON.parse's message quotes the text near the error, which may be the password: dropped.
    throw malformed(login, secretArn, ['it is not JSON']);
  }
  const parsed = platformSecretSchema.safeParse(value);
  if (!parsed.success) {
    // zod v4 issues carry no input value; only the field and the expectation are kept.
    throw malformed(
      login,
      secretArn,
      parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`),
    );
  }
  return Object.freeze({ username: parsed.data.username, password: parsed.data.password });
}

function malformed(login: DatabaseLogin, secretArn: string, reasons: readonly string[]): ConfigurationError {
  return new ConfigurationError(
    `The ${login} database secret ${secretArn} (${SECRET_VARIABLES[login]}) must be the JSON of an RDS secret with a username and a password: ${reasons.join('; ')}`,
  );
}

/**
 * Why a function cannot open an admin connection: it was not given the admin login
 * (`TENANTFLOW_ADMIN_DATABASE_SECRET_ARN` is set only on the tenants API, recovery and migrate).
 */
export function missingAdminLoginError(): ConfigurationError {
  return new ConfigurationError(
    `This function has no admin database login: ${SECRET_VARIABLES.admin} is not set. Only the functions that run DDL (provisioning, recovery, migrations) are given the admin secret`,
  );
}

/**
 * TLS options for `pg`. `require` verifies the certificate chain and the host name against Node's
 * default CA store, which trusts the Amazon (ACM) certificate RDS Proxy presents; no CA bundle is
 * shipped. `disable` is explicit, so a stray `PGSSLMODE` cannot change it.
 *
 * @example
 * ```ts
 * new pg.Pool({ host, ssl: databaseTls('require') }); // ssl: { rejectUnauthorized: true }
 * ```
 */
export function databaseTls(ssl: DatabaseSsl): pg.ClientConfig['ssl'] {
  return ssl === 'require' ? { rejectUnauthorized: true } : false;
}

/**
 * The `pg` client configuration for `target`, logged in with `credentials`.
 *
 * @example
 * ```ts
 * databaseConnectionConfig({ host: 'proxy.example', port: 5432, database: 'tenantflow', ssl: 'require' }, credentials);
 * ```
 */
export function databaseConnectionConfig(
  target: DatabaseTarget,
  credentials: DatabaseCredentials,
): Pick<pg.ClientConfig, 'host' | 'port' | 'database' | 'user' | 'password' | 'ssl'> {
  return {
    host: target.host,
    port: target.port,
    database: target.database,
    user: credentials.username,
    password: credentials.password,
    ssl: databaseTls(target.ssl),
  };
}

/**
 * The same connection as a `postgresql://` URL, for code that takes a connection string
 * (`DatabaseAdmin`). User and password are percent-encoded, so any character survives
 * `pg-connection-string`. TLS is `sslmode=verify-full`: pg 8 reads it as TLS with certificate and
 * host name verification (`sslmode=require` means the same in pg 8 but only encryption in pg 9).
 *
 * @example
 * ```ts
 * databaseConnectionUrl(target, { username: 'admin', password: 'p@ss' });
 * // postgresql://admin:p%40ss@proxy.example:5432/tenantflow?sslmode=verify-full
 * ```
 */
export function databaseConnectionUrl(target: DatabaseTarget, credentials: DatabaseCredentials): string {
  const host = target.host.includes(':') ? `[${target.host}]` : target.host;
  const user = encodeURIComponent(credentials.username);
  const password = encodeURIComponent(credentials.password);
  const sslmode = target.ssl === 'require' ? 'verify-full' : 'disable';
  return `postgresql://${user}:${password}@${host}:${target.port}/${encodeURIComponent(target.database)}?sslmode=${sslmode}`;
}
