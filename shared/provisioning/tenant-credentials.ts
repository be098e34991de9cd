import type { TenantSecret } from '../secrets/secret-store.js';

const MASK = '********';

/**
 * How to connect as a tenant's own database role. The password is readable as a property, for the
 * code that opens the connection, but never through `toString`, `toJSON` or `util.inspect`, so a
 * stray log line or error body cannot leak it.
 *
 * @example
 * ```ts
 * const credentials = TenantCredentials.fromSecret(secret);
 * new pg.Client({ connectionString: credentials.connectionString });
 * JSON.stringify(credentials); // {"username":"acme_user","password":"********",...}
 * ```
 */
export class TenantCredentials {
  readonly username: string;
  readonly schemaName: string;
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly #password: string;

  constructor(fields: {
    username: string;
    password: string;
    schemaName: string;
    host: string;
    port: number;
    database: string;
  }) {
    this.username = fields.username;
    this.#password = fields.password;
    this.schemaName = fields.schemaName;
    this.host = fields.host;
    this.port = fields.port;
    this.database = fields.database;
  }

  static fromSecret(secret: TenantSecret): TenantCredentials {
    return new TenantCredentials({
      username: secret.username,
      password: secret.password,
      schemaName: secret.schema,
      host: secret.host,
      port: secret.port,
      database: secret.dbname,
    });
  }

  get password(): string {
    return this.#password;
  }

  /** A libpq connection URL, password included: pass it to a driver, never to a logger. */
  get connectionString(): string {
    return this.#url(this.#password);
  }

  toSecret(): TenantSecret {
    return {
      engine: 'postgres',
      host: this.host,
      port: this.port,
      username: this.username,
      password: this.#password,
      dbname: this.database,
      schema: this.schemaName,
    };
  }

  toJSON(): Record<string, unknown> {
    return {
      username: this.username,
      password: MASK,
      schemaName: this.schemaName,
      host: this.host,
      port: this.port,
      database: this.database,
      connectionString: this.#url(MASK),
    };
  }

  toString(): string {
    return `TenantCredentials(${this.#url(MASK)})`;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }

  #url(password: string): string {
    const user = encodeURIComponent(this.username);
    return `postgresql://${user}:${password === MASK ? MASK : encodeURIComponent(password)}@${this.host}:${this.port}/${encodeURIComponent(this.database)}`;
  }
}
