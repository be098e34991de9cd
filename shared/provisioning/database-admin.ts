import type pg from 'pg';
import { withDedicatedClient } from '../db/connections.js';
import { type Migration, type MigrationReport, migrateSchema } from '../db/migrations.js';
import { qualified, quoteIdent } from '../db/sql.js';
import { assertValidTenantId } from '../tenancy/tenant-id.js';
import { scramSha256Verifier } from './passwords.js';

/** The login role of a tenant: `<id>_user` (which is why ids stop at 58 characters). */
export function tenantRoleName(tenantId: string): string {
  assertValidTenantId(tenantId);
  return `${tenantId}_user`;
}

export interface DatabaseAdminOptions {
  /** Connection string of the admin role; used only for dedicated, unpooled connections. */
  readonly adminUrl: string;
  /** Migrations applied to every tenant schema (`migrations/tenant/`). */
  readonly tenantMigrations: readonly Migration[];
  /**
   * `cluster` (default) also revokes PUBLIC's CONNECT on the cluster's other databases that the
   * admin role owns (`template1` included: creating databases from it needs no CONNECT), so a
   * tenant role cannot even open a session elsewhere. tenantflow expects a
   * cluster of its own; choose `database` to touch only the platform database.
   */
  readonly lockDownScope?: 'cluster' | 'database';
  /** Sessions a tenant role may hold at once, so one tenant cannot exhaust the server. Default 20. */
  readonly tenantConnectionLimit?: number;
}

export interface TenantDatabaseState {
  readonly schemaExists: boolean;
  readonly roleExists: boolean;
}

/** Serialises changes to database-wide ACLs: concurrent GRANTs on one object fail in PostgreSQL. */
const DATABASE_ACL_LOCK = 'tenantflow:database-acl';

/**
 * The DDL of onboarding and offboarding a tenant. Every method runs on a **dedicated** admin
 * connection (never the platform pool), and every method is idempotent, so provisioning can stop
 * after any step and be run again.
 *
 * @example
 * ```ts
 * const admin = new DatabaseAdmin({ adminUrl, tenantMigrations: await loadMigrations(TENANT_MIGRATIONS_DIR) });
 * await admin.withConnection(async (client) => {
 *   await admin.lockDown(client);
 *   await admin.ensureSchema(client, 'acme');
 *   await admin.ensureRole(client, 'acme', generatePassword());
 * });
 * ```
 */
export class DatabaseAdmin {
  readonly #options: Required<DatabaseAdminOptions>;

  constructor(options: DatabaseAdminOptions) {
    this.#options = { lockDownScope: 'cluster', tenantConnectionLimit: 20, ...options };
  }

  /** Runs `work` on a new dedicated admin connection, closed afterwards. */
  withConnection<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
    return withDedicatedClient(this.#options.adminUrl, work);
  }

  /**
   * Once per database, idempotent: nobody may create objects in `public`, and only roles granted
   * CONNECT (the platform role and each tenant role) may connect. Skips itself when already done.
   */
  async lockDown(client: pg.Client): Promise<void> {
    // has_*_privilege('public', …) answers from the ACL directly; exploding the ACLs instead grew
    // with every tenant's CONNECT entry and made this check the slowest step at 1,000 tenants.
    const { rows } = await client.query<{ needed: boolean }>(
      `SELECT has_schema_privilege('public', 'public', 'CREATE')
           OR EXISTS (SELECT 1 FROM pg_database d
                       WHERE d.datallowconn
                         AND (d.datname = current_database() OR ($1 AND pg_has_role(current_user, d.datdba, 'USAGE')))
                         AND has_database_privilege('public', d.oid, 'CONNECT')) AS needed`,
      [this.#options.lockDownScope === 'cluster'],
    );
    if (rows[0]?.needed !== true) {
      return;
    }
    await this.#withAclLock(client, async () => {
      await client.query('REVOKE CREATE ON SCHEMA public FROM PUBLIC');
      const { rows: databases } = await client.query<{ datname: string }>(
        `SELECT datname FROM pg_database d
          WHERE d.datallowconn
            AND (d.datname = current_database() OR ($1 AND pg_has_role(current_user, d.datdba, 'USAGE')))`,
        [this.#options.lockDownScope === 'cluster'],
      );
      for (const { datname } of databases) {
        await client.query(`REVOKE CONNECT ON DATABASE ${quoteIdent(datname)} FROM PUBLIC`);
      }
      const { rows: who } = await client.query<{ db: string; me: string }>(
        'SELECT current_database() AS db, current_user AS me',
      );
      const { db, me } = who[0] ?? { db: '', me: '' };
      await client.query(`GRANT CONNECT ON DATABASE ${quoteIdent(db)} TO ${quoteIdent(me)}`);
    });
  }

  /** `CREATE SCHEMA "<id>"`, owned by the admin role, unless it exists. */
  async ensureSchema(client: pg.Client, tenantId: string): Promise<void> {
    assertValidTenantId(tenantId);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(tenantId)}`);
  }

  /**
   * Creates the login role `<id>_user` with `password`, or sets `password` on it if it exists.
   * The password is sent as a SCRAM verifier, never as plaintext.
   */
  async ensureRole(client: pg.Client, tenantId: string, password: string): Promise<void> {
    const role = quoteIdent(tenantRoleName(tenantId));
    const verifier = client.escapeLiteral(scramSha256Verifier(password));
    const attributes = `LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS CONNECTION LIMIT ${this.#options.tenantConnectionLimit}`;
    if (await this.#roleExists(client, tenantId)) {
      await client.query(`ALTER ROLE ${role} WITH ${attributes} PASSWORD ${verifier}`);
      return;
    }
    try {
      await client.query(`CREATE ROLE ${role} WITH ${attributes} PASSWORD ${verifier}`);
    } catch (error) {
      // Another run created it between our check and our CREATE: take it over with our password.
      if ((error as { code?: string }).code !== '42710') {
        throw error;
      }
      await client.query(`ALTER ROLE ${role} WITH ${attributes} PASSWORD ${verifier}`);
    }
  }

  /** Sets a new password on an existing tenant role (credential rotation). */
  async setPassword(client: pg.Client, tenantId: string, password: string): Promise<void> {
    const role = quoteIdent(tenantRoleName(tenantId));
    await client.query(
      `ALTER ROLE ${role} WITH PASSWORD ${client.escapeLiteral(scramSha256Verifier(password))}`,
    );
  }

  /**
   * The tenant role's rights: CONNECT on this database, USAGE and CREATE on its own schema, and
   * read/write on the tables the admin role creates there (now and later, through default
   * privileges). Nothing on `tenantflow` or any other schema is ever granted.
   */
  async grantTenantAccess(client: pg.Client, tenantId: string): Promise<void> {
    const schema = quoteIdent(tenantId);
    const role = quoteIdent(tenantRoleName(tenantId));
    await this.#withAclLock(client, async () => {
      const { rows } = await client.query<{ db: string }>('SELECT current_database() AS db');
      await client.query(`GRANT CONNECT ON DATABASE ${quoteIdent(rows[0]?.db ?? '')} TO ${role}`);
    });
    await client.query('BEGIN');
    try {
      await client.query(`GRANT USAGE, CREATE ON SCHEMA ${schema} TO ${role}`);
      await client.query(
        `ALTER DEFAULT PRIVILEGES IN SCHEMA ${schema} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${role}`,
      );
      await client.query(
        `ALTER DEFAULT PRIVILEGES IN SCHEMA ${schema} GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO ${role}`,
      );
      // Tables that already exist (a resumed run that migrated before granting) get the same rights.
      await client.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${schema} TO ${role}`);
      await client.query(`GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA ${schema} TO ${role}`);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }

  /**
   * `ALTER ROLE "<id>_user" SET search_path = "<id>"`: a default stored on the role, applied by
   * the server at login, not state set on a pooled session. No `public`: an unqualified name never
   * falls back to another schema.
   */
  async pinSearchPath(client: pg.Client, tenantId: string): Promise<void> {
    await client.query(
      `ALTER ROLE ${quoteIdent(tenantRoleName(tenantId))} SET search_path = ${quoteIdent(tenantId)}`,
    );
  }

  /** Brings the tenant schema up to date with the tenant migrations. */
  async migrateTenant(
    client: pg.Client,
    tenantId: string,
    options: { readonly alwaysProtectHistory?: boolean } = {},
  ): Promise<MigrationReport> {
    assertValidTenantId(tenantId);
    const report = await migrateSchema(client, tenantId, this.#options.tenantMigrations, {
      createSchema: false,
      unqualifiedNamesInSchema: true,
    });
    // The migration history is the platform's: the tenant role may read it, never rewrite it.
    // A fleet run that applied nothing touches no ACL; provisioning always checks, because a run
    // that crashed right after migrating may not have got this far.
    const role = quoteIdent(tenantRoleName(tenantId));
    const mayHaveChanged = report.applied.length > 0 || options.alwaysProtectHistory === true;
    if (mayHaveChanged && (await this.#roleExists(client, tenantId))) {
      await client.query(`REVOKE ALL ON ${qualified(tenantId, 'schema_migrations')} FROM ${role}`);
      await client.query(`GRANT SELECT ON ${qualified(tenantId, 'schema_migrations')} TO ${role}`);
    }
    return report;
  }

  /** Ends every session of the tenant role, so its schema and role can be dropped. */
  async terminateTenantSessions(client: pg.Client, tenantId: string): Promise<void> {
    await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [
      tenantRoleName(tenantId),
    ]);
  }

  /** `DROP SCHEMA "<id>" CASCADE`, if it exists. */
  async dropSchema(client: pg.Client, tenantId: string): Promise<void> {
    assertValidTenantId(tenantId);
    await client.query(`DROP SCHEMA IF EXISTS ${quoteIdent(tenantId)} CASCADE`);
  }

  /** Revokes what the role was granted (CONNECT included) and drops it, if it exists. */
  async dropRole(client: pg.Client, tenantId: string): Promise<void> {
    if (!(await this.#roleExists(client, tenantId))) {
      return;
    }
    const role = quoteIdent(tenantRoleName(tenantId));
    await this.#withAclLock(client, async () => {
      await client.query(`DROP OWNED BY ${role}`);
      await client.query(`DROP ROLE IF EXISTS ${role}`);
    });
  }

  /** Whether the schema and the role exist: for tests and for operators checking a tenant. */
  async inspect(client: pg.Client, tenantId: string): Promise<TenantDatabaseState> {
    const { rows } = await client.query<{ schema_exists: boolean; role_exists: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) AS schema_exists,
              EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $2) AS role_exists`,
      [tenantId, tenantRoleName(tenantId)],
    );
    return { schemaExists: rows[0]?.schema_exists === true, roleExists: rows[0]?.role_exists === true };
  }

  async #roleExists(client: pg.Client, tenantId: string): Promise<boolean> {
    const { rows } = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [
      tenantRoleName(tenantId),
    ]);
    return rows.length > 0;
  }

  async #withAclLock(client: pg.Client, work: () => Promise<void>): Promise<void> {
    await client.query('BEGIN');
    try {
      await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [DATABASE_ACL_LOCK]);
      await work();
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }
}
