/**
 * A tenant role's credentials as stored, in the shape of an Amazon RDS database secret
 * (`engine, host, port, username, password, dbname`) plus the tenant's `schema`. Keeping the RDS
 * shape lets AWS's PostgreSQL single-user rotation function rotate the secret.
 */
export interface TenantSecret {
  readonly engine: 'postgres';
  readonly host: string;
  readonly port: number;
  readonly username: string;
  readonly password: string;
  readonly dbname: string;
  readonly schema: string;
}

/**
 * Where tenant credentials live. Adapters: `SecretsManagerSecretStore` (AWS) and
 * `LocalSecretStore` (files under `.tenantflow/secrets/`, local mode only).
 *
 * Every method is idempotent, so provisioning can be resumed at any step.
 */
export interface SecretStore {
  /**
   * Creates the tenant's secret, or stores a new value for it if it exists. Returns a reference
   * to it (a Secrets Manager name or ARN, a file path) to keep in the registry. Invalidates any
   * cached value, so the next `get` sees the new one.
   */
  put(tenantId: string, secret: TenantSecret): Promise<string>;
  /** The tenant's secret, or `undefined` when it has none. */
  get(tenantId: string): Promise<TenantSecret | undefined>;
  /** Deletes the tenant's secret at once. Returns `false` when there was none (not an error). */
  delete(tenantId: string): Promise<boolean>;
  /** Ids of the tenants that have a secret, sorted. */
  list(): Promise<string[]>;
}
