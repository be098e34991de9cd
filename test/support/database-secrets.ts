import { randomBytes } from 'node:crypto';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

/** A database login as an RDS secret holds it. */
export interface DatabaseLogin {
  readonly username: string;
  readonly password: string;
}

/** A Secrets Manager client on the run's moto_server. */
export function motoSecretsManager(endpoint: string): SecretsManagerClient {
  return new SecretsManagerClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });
}

/**
 * What an RDS-generated secret holds for `login` on the database `dbname` of `server` (a
 * `postgres://` URL: only its host and port are used).
 */
export function rdsSecret(server: URL, dbname: string, login: DatabaseLogin) {
  return {
    engine: 'postgres',
    host: server.hostname,
    port: Number(server.port),
    username: login.username,
    password: login.password,
    dbname,
    dbClusterIdentifier: 'tenantflow',
  };
}

/**
 * Stores `value` (JSON-encoded unless it is a string already) as a new secret and returns its ARN.
 * Names are random: suites share one moto_server.
 */
export async function storeSecret(
  client: Pick<SecretsManagerClient, 'send'>,
  value: unknown,
  purpose = 'database',
): Promise<string> {
  const created = await client.send(
    new CreateSecretCommand({
      Name: `tenantflow/test/${purpose}-${randomBytes(6).toString('hex')}`,
      SecretString: typeof value === 'string' ? value : JSON.stringify(value),
    }),
  );
  if (created.ARN === undefined) {
    throw new Error('moto returned no ARN');
  }
  return created.ARN;
}
