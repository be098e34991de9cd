import pg from 'pg';
import { connectionUser } from '../db/connections.js';
import {
  MIGRATIONS_TABLE,
  type Migration,
  type MigrationReport,
  migrateSchema,
  setTransactionLimits,
  type TenantMigrationSet,
} from '../db/migrations.js';
import { lockPlatformResource } from '../db/platform-locks.js';
import { CONTROL_SCHEMA, type Queryable, qualified, quoteIdent, SQLSTATE, sqlState } from '../db/sql.js';
import { ConfigurationError, MigrationError, TenantIdUnavailableError } from '../kernel/errors.js';
import { assertValidTenantId } from '../kernel/tenant-id.js';
import { scramSha256Verifier } from './passwords.js';

/** The login role of a tenant: `<id>_user` (which is why ids stop at 58 characters). */
export function tenantRoleName(tenantId: string): string {
  assertValidTenantId(tenantId);
  return `${tenantId}_user`;
}

/** The schema of the functions tenant roles may call (see `shared/migrations/control/0006_platform_role.sql`). */
export const TENANT_API_SCHEMA = 'tenantflow_api';
/**
 * The functions tenant roles may call (EXECUTE, through the tenants group), as `regprocedure` reads
 * them. All are SECURITY DEFINER: they run with the platform role's rights, so they are handed to it.
 */
const TENANT_API_PROCEDURES = [
  'complete_task(text, text, text, text, jsonb, text[])',
  'claim_task(text, text, text, text[], bytea, bytea)',
  'finish_task(text, text, text, text, jsonb, text[])',
].map((signature) => `${TENANT_API_SCHEMA}.${signature}`);
/** As GRANT, REVOKE and ALTER FUNCTION take them (every name here is a plain lower-case identifier). */
const apiFunctionSql = (procedure: string) =>
  `${quoteIdent(TENANT_API_SCHEMA)}.${procedure.slice(TENANT_API_SCHEMA.length + 1)}`;

/**
 * The platform's bookkeeping in every tenant schema. The platform role reads and writes it; the
 * tenant role may only read it, and claims and completes its tasks through `tenantflow_api`'s functions.
 */
export const BOOKKEEPING_TABLES = ['executions', 'task_runs'] as const;

export interface DatabaseAdminOptions {
  /**
   * Connection string of the admin role; used only for dedicated, unpooled connections. A function
   * given no admin login (in AWS, all but the tenants API, recovery and migrate) passes none, and
   * every admin connection then fails with {@link missingAdminLogin}'s error.
   */
  readonly adminUrl: string | undefined;
  /** The error an admin connection fails with when there is no `adminUrl`. */
  readonly missingAdminLogin?: () => Error;
  /**
   * Where read-only catalog checks may run instead of a new admin connection (the platform pool:
   * every role may read `pg_roles`, `pg_namespace` and `pg_database`).
   * @default a dedicated admin connection
   */
  readonly catalog?: Queryable;
  /** The platform's migrations of every tenant schema (`shared/migrations/tenant/`). */
  readonly tenantMigrations: readonly Migration[];
  /**
   * The application's tenant tables (the registered workflows' `tenantMigrations`), applied after
   * the platform's, each set with its own history table.
   * @default none
   */
  readonly applicationMigrations?: readonly TenantMigrationSet[];
  /**
   * The platform role (what every request runs as): granted USAGE on each tenant schema and DML on
   * its bookkeeping tables, never on the tenant's own tables. A function is called once, when
   * first needed (e.g. `SELECT current_user` on the platform pool).
   */
  readonly platformRole: string | (() => Promise<string>);
  /**
   * `cluster` (default) also revokes PUBLIC's CONNECT on the cluster's other databases that the
   * admin role owns (`template1` included: creating databases from it needs no CONNECT), so a
   * tenant role cannot even open a session elsewhere. tenantflow expects a
   * cluster of its own; choose `database` to touch only the platform database.
   */
  readonly lockDownScope?: 'cluster' | 'database';
  /** Sessions a tenant role may hold at once, so one tenant cannot exhaust the server. Default 20. */
  readonly tenantConnectionLimit?: number;
  /**
   * The tenant role's default `statement_timeout`. A default stored on the role: the tenant's own
   * SQL can raise it for its session, so the hard bound on a task is the runner's timeout, which
   * closes the connection. Default 5 min.
   */
  readonly tenantStatementTimeoutMs?: number;
  /** The tenant role's default `idle_in_transaction_session_timeout`. Default 60 s. */
  readonly tenantIdleInTransactionTimeoutMs?: number;
  /** `lock_timeout` of every admin transaction: how long it waits for a lock held elsewhere. Default 5 s. */
  readonly lockTimeoutMs?: number;
  /** `statement_timeout` of admin statements other than migrations. Default 60 s. */
  readonly statementTimeoutMs?: number;
  /** `statement_timeout` of a migration's statements. Default 5 min. */
  readonly migrationStatementTimeoutMs?: number;
  /**
   * Admin connections kept open between uses, so consecutive provisions do not each pay for a new
   * login (a TCP connection, SCRAM, a backend process). 0 closes each one after use. Default 1.
   */
  readonly idleConnections?: number;
  /** How long an unused admin connection stays open. Default 5 s. */
  readonly idleConnectionMs?: number;
}

/** An admin connection waiting for its next use. */
interface IdleConnection {
  readonly client: pg.Client;
  readonly parkedAt: number;
  readonly timer: NodeJS.Timeout;
}

/**
 * How long a dedicated admin connection may take to open: a server that accepts the TCP connection
 * and never answers (a proxy whose target is not available yet) must not hold the caller for long.
 */
const ADMIN_CONNECT_TIMEOUT_MS = 5_000;

/** What {@link DatabaseAdmin.ensureRole} did. */
export interface RoleOutcome {
  /** The role was created by this call (not taken over). */
  readonly created: boolean;
  /** Its defaults ({@link DatabaseAdmin.pinSearchPath}'s) were stored with it. */
  readonly defaultsPinned: boolean;
}

export interface TenantDatabaseState {
  readonly schemaExists: boolean;
  readonly roleExists: boolean;
}

/** An object in a tenant schema that the admin role did not create: it is never migrated over. */
export interface ForeignObject {
  readonly kind: string;
  readonly name: string;
  readonly owner: string;
}

export interface PlatformRoleSpec {
  readonly name: string;
  readonly password: string;
  /**
   * Set `password` on a role that already exists. Locally (the password is ours, in
   * `.tenantflow/`), yes; in AWS, no: Secrets Manager rotation owns it after creation.
   * @default false
   */
  readonly resetPassword?: boolean;
}

/** Serialises changes to database-wide ACLs: concurrent GRANTs on one object fail in PostgreSQL. */
const DATABASE_ACL_LOCK = 'database-acl';

/** Defaults of the platform role: it runs per request, so nothing it does may wait long. */
const PLATFORM_ROLE_SETTINGS = {
  // Every platform statement names its tables schema-qualified; pinning the path to pg_catalog
  // means no function or operator is ever resolved through a schema a tenant can write.
  search_path: 'pg_catalog',
  lock_timeout: '5s',
  statement_timeout: '60s',
  idle_in_transaction_session_timeout: '60s',
} as const;

/**
 * The DDL of onboarding and offboarding a tenant, and of the platform role. Every method runs on a
 * **dedicated** admin connection (never the platform pool), and every method is idempotent, so
 * provisioning can stop after any step and be run again.
 *
 * The admin is an ordinary role with CREATEROLE (and CREATEDB), as Aurora's master user is, never a
 * superuser. Every admin session pins its `search_path` to `pg_catalog` and bounds its waits with
 * `lock_timeout` and `statement_timeout`; locks it takes are row locks in the control schema,
 * which no tenant role can reach.
 *
 * @example
 * ```ts
 * const admin = new DatabaseAdmin({ adminUrl, platformRole: 'tenantflow_platform', tenantMigrations: await loadMigrations(TENANT_MIGRATIONS_DIR) });
 * await admin.withConnection(async (client) => {
 *   await admin.lockDown(client);
 *   await admin.ensureSchema(client, 'acme');
 *   await admin.ensureRole(client, 'acme', generatePassword());
 * });
 * ```
 */
export class DatabaseAdmin {
  readonly #options: Required<Omit<DatabaseAdminOptions, 'platformRole' | 'adminUrl' | 'catalog'>>;
  readonly #catalog: Queryable | undefined;
  readonly #adminUrl: string | undefined;
  readonly #platformRole: DatabaseAdminOptions['platformRole'];
  #platformRoleName: Promise<string> | undefined;
  /** Connections parked for the next use, most recent last. */
  readonly #idle: IdleConnection[] = [];
  /** Set once the tenants group is known to exist: it is created once and never dropped. */
  #tenantGroupExists = false;

  constructor(options: DatabaseAdminOptions) {
    const { platformRole, adminUrl, catalog, ...rest } = options;
    this.#adminUrl = adminUrl;
    this.#catalog = catalog;
    this.#options = {
      missingAdminLogin: () => new ConfigurationError('No admin database login is configured'),
      lockDownScope: 'cluster',
      tenantConnectionLimit: 20,
      tenantStatementTimeoutMs: 300_000,
      tenantIdleInTransactionTimeoutMs: 60_000,
      lockTimeoutMs: 5_000,
      statementTimeoutMs: 60_000,
      migrationStatementTimeoutMs: 300_000,
      applicationMigrations: [],
      idleConnections: 1,
      idleConnectionMs: 5_000,
      ...rest,
    };
    this.#platformRole = platformRole;
  }

  /**
   * Runs `work` on a dedicated admin connection that nothing else uses meanwhile. The session's
   * `search_path` is `pg_catalog` and its waits are bounded: state on a dedicated connection, never
   * on a pooled one (the exception isolation rule 1 allows).
   *
   * The connection may be one an earlier call left open (up to `idleConnections`, for
   * `idleConnectionMs`): every session-level thing is reset before it is used again (as
   * `DISCARD ALL` does), so nothing one tenant's provisioning set reaches the next. One whose work
   * failed is closed, never reused.
   */
  async withConnection<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = await this.#checkOut();
    let result: T;
    try {
      result = await work(client);
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    this.#park(client);
    return result;
  }

  /** Closes the admin connections kept open for reuse. The admin stays usable: the next use opens one. */
  async close(): Promise<void> {
    const idle = this.#idle.splice(0);
    await Promise.all(
      idle.map(({ client, timer }) => {
        clearTimeout(timer);
        return client.end().catch(() => undefined);
      }),
    );
  }

  /** The `SET`s every admin session starts with. */
  #sessionSettings(): string {
    return (
      `SET search_path = pg_catalog; SET lock_timeout = ${this.#options.lockTimeoutMs}; ` +
      `SET statement_timeout = ${this.#options.statementTimeoutMs}`
    );
  }

  async #checkOut(): Promise<pg.Client> {
    if (this.#adminUrl === undefined) {
      throw this.#options.missingAdminLogin();
    }
    for (let parked = this.#idle.pop(); parked !== undefined; parked = this.#idle.pop()) {
      clearTimeout(parked.timer);
      const { client } = parked;
      // A frozen process (a Lambda between invocations) runs no timer: the clock says it is stale.
      if (Date.now() - parked.parkedAt > this.#options.idleConnectionMs) {
        await client.end().catch(() => undefined);
        continue;
      }
      socketOf(client)?.ref();
      try {
        // What DISCARD ALL does, statement by statement: DISCARD ALL itself cannot run in a
        // multi-statement string, and this keeps the reset and the settings to one round trip.
        await client.query(
          'ROLLBACK; CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; DEALLOCATE ALL; UNLISTEN *; ' +
            `SELECT pg_advisory_unlock_all(); DISCARD PLANS; DISCARD SEQUENCES; DISCARD TEMP; ${this.#sessionSettings()}`,
        );
        return client;
      } catch {
        await client.end().catch(() => undefined);
      }
    }
    const client = new pg.Client({
      connectionString: this.#adminUrl,
      application_name: 'tenantflow-admin',
      connectionTimeoutMillis: ADMIN_CONNECT_TIMEOUT_MS,
    });
    // An idle connection the server closes must not crash the process; it is found dead and dropped.
    client.on('error', function ignoreErrorOfUnusedConnection() {});
    client.on('end', () => this.#forget(client));
    try {
      await client.connect();
      await client.query(this.#sessionSettings());
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    return client;
  }

  /** Keeps `client` for the next use, or closes it when enough are kept already. */
  #park(client: pg.Client): void {
    if (this.#idle.length >= this.#options.idleConnections) {
      void client.end().catch(() => undefined);
      return;
    }
    const timer = setTimeout(() => {
      this.#forget(client);
      void client.end().catch(() => undefined);
    }, this.#options.idleConnectionMs);
    // An idle admin connection never keeps the process alive.
    timer.unref();
    socketOf(client)?.unref();
    this.#idle.push({ client, parkedAt: Date.now(), timer });
  }

  #forget(client: pg.Client): void {
    const index = this.#idle.findIndex((parked) => parked.client === client);
    if (index >= 0) {
      const [parked] = this.#idle.splice(index, 1);
      if (parked !== undefined) {
        clearTimeout(parked.timer);
      }
    }
  }

  /** The admin role's name, from its connection string (undefined when the URL names none). */
  #adminName(): string | undefined {
    return this.#adminUrl === undefined ? undefined : connectionUser(this.#adminUrl);
  }

  /**
   * The group every tenant role is a member of, and through which it gets CONNECT on the database,
   * USAGE on `tenantflow_api` and EXECUTE on its functions: `<platform role>_tenants`.
   */
  async tenantGroupName(): Promise<string> {
    const name = `${await this.platformRoleName()}_tenants`;
    if (name.length > 63) {
      throw new MigrationError(`The platform role's name is too long to name its tenants group '${name}'`);
    }
    return name;
  }

  /**
   * Creates the tenants group if it does not exist (NOLOGIN, nothing privileged) and grants it
   * what every tenant role needs beyond its own schema, once, under the database ACL lock.
   */
  async #ensureTenantGroup(client: pg.Client): Promise<void> {
    const name = await this.tenantGroupName();
    const group = quoteIdent(name);
    if (!(await roleExists(client, name))) {
      await createRole(
        client,
        `CREATE ROLE ${group} WITH NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS`,
      );
    }
    await assertUnprivileged(client, name, 'tenants group');
    const { rows } = await client.query<{ granted: boolean }>(
      `SELECT has_database_privilege($1, current_database(), 'CONNECT')
              AND has_schema_privilege($1, $2, 'USAGE')
              AND (SELECT bool_and(has_function_privilege($1, f, 'EXECUTE')) FROM unnest($3::text[]) f) AS granted`,
      [name, TENANT_API_SCHEMA, TENANT_API_PROCEDURES],
    );
    if (rows[0]?.granted === true) {
      return;
    }
    await this.#withPlatformLock(client, DATABASE_ACL_LOCK, async () => {
      const { db } = await currentNames(client);
      await client.query(`GRANT CONNECT ON DATABASE ${quoteIdent(db)} TO ${group}`);
      await client.query(`GRANT USAGE ON SCHEMA ${quoteIdent(TENANT_API_SCHEMA)} TO ${group}`);
      for (const procedure of TENANT_API_PROCEDURES) {
        await client.query(`GRANT EXECUTE ON FUNCTION ${apiFunctionSql(procedure)} TO ${group}`);
      }
    });
  }

  /** The platform role's name. */
  platformRoleName(): Promise<string> {
    const role = this.#platformRole;
    this.#platformRoleName ??= typeof role === 'string' ? Promise.resolve(role) : role();
    return this.#platformRoleName;
  }

  /**
   * Once per database, idempotent: nobody may create objects in `public` or temporary tables, and
   * only roles granted CONNECT (the admin, the platform role and each tenant role) may connect.
   * Skips itself when already done.
   */
  async lockDown(client: pg.Client): Promise<void> {
    // has_*_privilege('public', …) answers from the ACL directly; exploding the ACLs instead grew
    // with every tenant's CONNECT entry and made this check the slowest step at 1,000 tenants.
    const { rows } = await client.query<{ needed: boolean }>(
      `SELECT has_schema_privilege('public', 'public', 'CREATE')
           OR has_database_privilege('public', current_database(), 'TEMPORARY')
           OR EXISTS (SELECT 1 FROM pg_database d
                       WHERE d.datallowconn
                         AND (d.datname = current_database() OR ($1 AND pg_has_role(current_user, d.datdba, 'USAGE')))
                         AND has_database_privilege('public', d.oid, 'CONNECT')) AS needed`,
      [this.#options.lockDownScope === 'cluster'],
    );
    if (rows[0]?.needed !== true) {
      return;
    }
    await this.#withPlatformLock(client, DATABASE_ACL_LOCK, async () => {
      await client.query('REVOKE CREATE ON SCHEMA public FROM PUBLIC');
      const { rows: databases } = await client.query<{ datname: string }>(
        `SELECT datname FROM pg_database d
          WHERE d.datallowconn
            AND (d.datname = current_database() OR ($1 AND pg_has_role(current_user, d.datdba, 'USAGE')))`,
        [this.#options.lockDownScope === 'cluster'],
      );
      for (const { datname } of databases) {
        // Another database's ACL is not under this database's lock: another platform on the same
        // cluster may be revoking it at this very moment.
        await retryConcurrentUpdate(
          client,
          `REVOKE CONNECT, TEMPORARY ON DATABASE ${quoteIdent(datname)} FROM PUBLIC`,
        );
      }
      const { db, me } = await currentNames(client);
      await client.query(`GRANT CONNECT ON DATABASE ${quoteIdent(db)} TO ${quoteIdent(me)}`);
    });
  }

  /**
   * Creates the platform role if it does not exist (with every privileged attribute off), or
   * checks the one that does; pins its `search_path` to `pg_catalog` and bounds its waits, as
   * role defaults (applied at login, not session state). The admin becomes a member of it, so it
   * can hand it the functions it owns and end its sessions.
   */
  async ensurePlatformRole(client: pg.Client, spec: PlatformRoleSpec): Promise<void> {
    const role = quoteIdent(spec.name);
    const verifier = client.escapeLiteral(scramSha256Verifier(spec.password));
    const { me } = await currentNames(client);
    if (spec.name === me) {
      throw new MigrationError(
        `The platform role must not be the admin role ('${me}'): give the platform its own login`,
      );
    }
    if (await roleExists(client, spec.name)) {
      await assertUnprivileged(client, spec.name, 'platform role');
      if (spec.resetPassword === true) {
        await client.query(`ALTER ROLE ${role} WITH LOGIN PASSWORD ${verifier}`);
      }
    } else {
      await createRole(
        client,
        `CREATE ROLE ${role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS PASSWORD ${verifier}`,
      );
    }
    await client.query(`GRANT ${role} TO CURRENT_USER WITH INHERIT TRUE, SET TRUE`);
    for (const [setting, value] of Object.entries(PLATFORM_ROLE_SETTINGS)) {
      await client.query(`ALTER ROLE ${role} SET ${setting} = ${client.escapeLiteral(value)}`);
    }
  }

  /**
   * The platform role's rights on the control schema: read and write its tables (the registry,
   * metrics, recovery records, leases), read its migration history; CONNECT on the database; and
   * ownership of the functions tenant roles call, so they run with the platform's rights, not the
   * admin's. Idempotent; run after every control-schema migration.
   */
  async grantPlatformAccess(client: pg.Client): Promise<void> {
    const platformName = await this.platformRoleName();
    await this.#ensureTenantGroup(client);
    if (platformName === (await currentNames(client)).me) {
      // One role for everything (a DATABASE_URL with no admin URL beside it): it owns it all already.
      return;
    }
    const platform = quoteIdent(platformName);
    const api = quoteIdent(TENANT_API_SCHEMA);
    const control = quoteIdent(CONTROL_SCHEMA);
    await this.#withPlatformLock(client, DATABASE_ACL_LOCK, async () => {
      const { db } = await currentNames(client);
      await client.query(`GRANT CONNECT ON DATABASE ${quoteIdent(db)} TO ${platform}`);
      await client.query(`GRANT USAGE ON SCHEMA ${control} TO ${platform}`);
      await client.query(
        `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${control} TO ${platform}`,
      );
      await client.query(`GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA ${control} TO ${platform}`);
      await client.query(
        `REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON ${qualified(CONTROL_SCHEMA, MIGRATIONS_TABLE)} FROM ${platform}`,
      );
      await client.query(`GRANT USAGE ON SCHEMA ${api} TO ${platform}`);
      const { rows: notOwned } = await client.query<{ procedure: string }>(
        `SELECT procedure FROM unnest($2::text[]) AS procedure
          WHERE (SELECT pg_get_userbyid(proowner) FROM pg_proc WHERE oid = procedure::regprocedure) IS DISTINCT FROM $1`,
        [platformName, TENANT_API_PROCEDURES],
      );
      if (notOwned.length > 0) {
        // PostgreSQL lets a function change owner only to a role with CREATE on its schema. The
        // platform role (never a tenant role) holds it inside this one transaction, so no other
        // session ever sees it: granted, used, revoked, committed together.
        await client.query(`GRANT CREATE ON SCHEMA ${api} TO ${platform}`);
        for (const { procedure } of notOwned) {
          await client.query(`ALTER FUNCTION ${apiFunctionSql(procedure)} OWNER TO ${platform}`);
        }
        await client.query(`REVOKE CREATE ON SCHEMA ${api} FROM ${platform}`);
      }
      for (const procedure of TENANT_API_PROCEDURES) {
        await client.query(`REVOKE ALL ON FUNCTION ${apiFunctionSql(procedure)} FROM PUBLIC`);
      }
    });
  }

  /**
   * Refuses a tenant id that names something that exists: a role called `<id>` or `<id>_user`, a
   * schema or a database called `<id>`, the admin or the platform role. Taking such a name would
   * put the tenant's schema on another role's `search_path` (`"$user"`), or hand the tenant an
   * object it did not get from provisioning. Run before anything is created for a new tenant.
   */
  async assertTenantIdAvailable(tenantId: string): Promise<void> {
    const role = tenantRoleName(tenantId);
    const platform = await this.platformRoleName();
    const adminName = this.#adminName();
    const check = (client: Queryable, admin: string | null) =>
      client.query<{ kind: string; name: string }>(
        `SELECT 'role' AS kind, rolname AS name FROM pg_roles WHERE rolname IN ($1, $2)
         UNION ALL SELECT 'schema', nspname FROM pg_namespace WHERE nspname = $1
         UNION ALL SELECT 'database', datname FROM pg_database WHERE datname = $1
         UNION ALL SELECT 'platform role', r FROM (VALUES (COALESCE($4::text, current_user::text)), ($3::text)) AS p(r)
                   WHERE r IN ($1, $2)`,
        [tenantId, role, platform, admin],
      );
    // The platform pool answers as well as an admin connection, without opening one, when the
    // admin's name is known from its URL.
    const { rows } =
      this.#catalog !== undefined && adminName !== undefined
        ? await check(this.#catalog, adminName)
        : await this.withConnection((client) => check(client, null));
    if (rows.length > 0) {
      const taken = [...new Set(rows.map((row) => `${row.kind} '${row.name}'`))].join(', ');
      throw new TenantIdUnavailableError(
        `Tenant id '${tenantId}' cannot be used: the database already has ${taken}. Choose another id.`,
      );
    }
  }

  /**
   * `CREATE SCHEMA "<id>"`, owned by the admin role. A schema that exists is accepted only if the
   * admin owns it (a resumed provisioning); one that anyone else owns is refused.
   */
  async ensureSchema(client: pg.Client, tenantId: string): Promise<void> {
    assertValidTenantId(tenantId);
    const owner = await schemaOwner(client, tenantId);
    if (owner === undefined) {
      try {
        await client.query(`CREATE SCHEMA ${quoteIdent(tenantId)}`);
        return;
      } catch (error) {
        if (sqlState(error) !== SQLSTATE.duplicateSchema) {
          throw error;
        }
      }
    }
    const { me } = await currentNames(client);
    const current = owner ?? (await schemaOwner(client, tenantId));
    if (current !== me) {
      throw new TenantIdUnavailableError(
        `Schema '${tenantId}' already exists and belongs to '${current}', not to the admin role: it was not created by provisioning, so tenant '${tenantId}' cannot use it`,
      );
    }
  }

  /**
   * Creates the login role `<id>_user` with `password` and every privileged attribute off, or
   * sets `password` on it if it exists (a resumed run). The password is sent as a SCRAM verifier,
   * never as plaintext. Creating it gives the admin ADMIN OPTION on it (PostgreSQL 16+), which is
   * all rotation needs. The admin takes the role's privileges (to end its sessions and drop what it
   * holds) only when offboarding it: a membership it kept for every tenant would make PostgreSQL
   * walk them all on each of the admin's privilege checks once the cache is invalidated, which
   * every onboarding does.
   */
  async ensureRole(client: pg.Client, tenantId: string, password: string): Promise<RoleOutcome> {
    const name = tenantRoleName(tenantId);
    const role = quoteIdent(name);
    const verifier = client.escapeLiteral(scramSha256Verifier(password));
    const limit = this.#options.tenantConnectionLimit;
    // NOSUPERUSER, NOREPLICATION and NOBYPASSRLS can be written only when creating the role (a
    // non-superuser cannot ALTER them); on a role that exists they are checked instead.
    const create = `CREATE ROLE ${role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS CONNECTION LIMIT ${limit} PASSWORD ${verifier}`;
    const alter = `ALTER ROLE ${role} WITH LOGIN NOCREATEDB NOCREATEROLE NOINHERIT CONNECTION LIMIT ${limit} PASSWORD ${verifier}`;
    // A new role gets its defaults ({@link pinSearchPath}'s) in the same implicit transaction, so
    // it never exists without them. Done here, before the tenants group is granted to it, because
    // PostgreSQL's check that the admin may alter a role walks every role the admin administers
    // (one per tenant) and rebuilds that walk's cache after each membership change: one rebuild
    // instead of two at every onboarding.
    if (
      !(await roleExists(client, name)) &&
      (await createRole(client, [create, ...this.#roleDefaults(tenantId)].join('; ')))
    ) {
      // Created just now, with every privileged attribute off: nothing to check.
      return { created: true, defaultsPinned: true };
    }
    // It existed, or another run created it between our check and our CREATE: take it over with
    // our password, once it is known to carry nothing privileged.
    await client.query(alter);
    await assertUnprivileged(client, name, 'tenant role');
    return { created: false, defaultsPinned: false };
  }

  /** Sets a new password on an existing tenant role (credential rotation). */
  async setPassword(client: pg.Client, tenantId: string, password: string): Promise<void> {
    const role = quoteIdent(tenantRoleName(tenantId));
    await client.query(
      `ALTER ROLE ${role} WITH PASSWORD ${client.escapeLiteral(scramSha256Verifier(password))}`,
    );
  }

  /**
   * The tenant role's rights: membership of the tenants group (CONNECT on this database, EXECUTE
   * on the task-completion entry point); USAGE (never CREATE) on its own schema; read and write on
   * the tables the admin role creates there (now and later, through default privileges) except the
   * bookkeeping, which it may only read. The platform role gets USAGE on the schema. Nothing on `tenantflow` or any other
   * schema is ever granted to the tenant. Also brings tenants provisioned by earlier versions to
   * these rules (they had CREATE on their schema, and write access to the bookkeeping).
   */
  async grantTenantAccess(client: pg.Client, tenantId: string): Promise<void> {
    const schema = quoteIdent(tenantId);
    const role = quoteIdent(tenantRoleName(tenantId));
    const platform = quoteIdent(await this.platformRoleName());
    const group = await this.tenantGroupName();
    if (!this.#tenantGroupExists) {
      if (!(await roleExists(client, group))) {
        // A database prepared by an earlier version (or with one role for everything) has no group yet.
        await this.#ensureTenantGroup(client);
      }
      this.#tenantGroupExists = true;
    }
    // Tables exist only once a migration has run, and every run creates the platform's history
    // table: without it there is nothing for the ON ALL grants (each a scan of all of pg_class,
    // which has no index by schema alone and grows with every tenant) nor the bookkeeping to fix.
    const { rows: history } = await client.query<{ migrated: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM pg_class
                       WHERE relname = $2 AND relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1)) AS migrated`,
      [tenantId, MIGRATIONS_TABLE],
    );
    const migrated = history[0]?.migrated !== false;
    // One round trip opens the transaction and sends every statement (a multi-statement string,
    // which PostgreSQL runs in order and stops at the first error, leaving the transaction
    // aborted for the ROLLBACK below): one round trip and one commit instead of one per grant.
    await client.query('BEGIN');
    try {
      await client.query(
        [
          `SET LOCAL lock_timeout = ${Math.max(1, Math.trunc(this.#options.lockTimeoutMs))}`,
          `SET LOCAL statement_timeout = ${Math.max(1, Math.trunc(this.#options.statementTimeoutMs))}`,
          // CONNECT and the entry point come with membership of the tenants group: one
          // pg_auth_members row per tenant, instead of an entry per tenant in three ACLs that every
          // GRANT rewrites whole (and serialises on). Inherited, never SET: the group is no
          // identity to assume.
          `GRANT ${quoteIdent(group)} TO ${role} WITH INHERIT TRUE, SET FALSE`,
          `REVOKE CREATE ON SCHEMA ${schema} FROM ${role}`,
          `GRANT USAGE ON SCHEMA ${schema} TO ${role}`,
          `GRANT USAGE ON SCHEMA ${schema} TO ${platform}`,
          `ALTER DEFAULT PRIVILEGES IN SCHEMA ${schema} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${role}`,
          `ALTER DEFAULT PRIVILEGES IN SCHEMA ${schema} GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO ${role}`,
          // Tables that already exist (a fleet run bringing a tenant to these rules) get the same rights.
          ...(migrated
            ? [
                `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${schema} TO ${role}`,
                `GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA ${schema} TO ${role}`,
              ]
            : []),
        ].join('; '),
      );
      if (migrated) {
        await this.#protectBookkeeping(client, tenantId, { roleExists: true });
      }
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }

  /**
   * `ALTER ROLE "<id>_user" SET search_path = "<id>"`: a default stored on the role, applied by
   * the server at login, not state set on a pooled session. No `public`: an unqualified name never
   * falls back to another schema. Also the role's default statement and idle-in-transaction
   * timeouts.
   */
  async pinSearchPath(client: pg.Client, tenantId: string): Promise<void> {
    // One string: one round trip, and one implicit transaction (all three or none).
    await client.query(this.#roleDefaults(tenantId).join('; '));
  }

  /** The tenant role's stored defaults, as `ALTER ROLE … SET` statements. */
  #roleDefaults(tenantId: string): string[] {
    const role = quoteIdent(tenantRoleName(tenantId));
    return [
      `ALTER ROLE ${role} SET search_path = ${quoteIdent(tenantId)}`,
      `ALTER ROLE ${role} SET statement_timeout = ${this.#options.tenantStatementTimeoutMs}`,
      `ALTER ROLE ${role} SET idle_in_transaction_session_timeout = ${this.#options.tenantIdleInTransactionTimeoutMs}`,
    ];
  }

  /**
   * Brings the tenant schema up to date with the tenant migrations.
   *
   * Tenant SQL never runs as the admin: a schema holding any object the admin does not own is
   * refused before a migration runs (its unqualified names would resolve to that object), with the
   * objects named. The tenant's rights are brought to the current rules first, even when the
   * schema is refused. A fleet run whose schema is up to date reads one row and changes nothing.
   */
  async migrateTenant(
    client: pg.Client,
    tenantId: string,
    options: { readonly alwaysProtectHistory?: boolean } = {},
  ): Promise<MigrationReport> {
    assertValidTenantId(tenantId);
    const sets = this.#migrationSets();
    const applied = await appliedVersions(
      client,
      tenantId,
      sets.map((set) => set.historyTable),
    );
    const pending = sets.some((set) =>
      set.migrations.some((migration) => !applied.get(set.historyTable)?.has(migration.version)),
    );
    const total = sets.reduce((count, set) => count + set.migrations.length, 0);
    if (!pending && options.alwaysProtectHistory !== true) {
      return { schema: tenantId, applied: [], alreadyApplied: total };
    }
    // Provisioning (alwaysProtectHistory) has just granted; a fleet run brings an older tenant's
    // rights to the current rules before anything else, refused schema or not.
    const hasRole = await roleExists(client, tenantRoleName(tenantId));
    if (
      options.alwaysProtectHistory !== true &&
      hasRole &&
      !(await this.#tenantRulesCurrent(client, tenantId))
    ) {
      await this.grantTenantAccess(client, tenantId);
    }
    const report = { schema: tenantId, applied: [] as string[], alreadyApplied: 0 };
    // Once a schema is known to hold only the admin's objects, the next set need not look again:
    // only a role with CREATE on it could add one, and the tenant role has none (its rights were
    // brought to the current rules above, or just granted by provisioning).
    let knownClean = false;
    for (const set of sets) {
      const migrated = await migrateSchema(client, tenantId, set.migrations, {
        historyTable: set.historyTable,
        createSchema: false,
        unqualifiedNamesInSchema: true,
        lock: (locking, schema) => lockPlatformResource(locking, `migrations:${schema}`),
        beforeApplying: async (checking) => {
          // The full scan of the schema's catalogs grows with the fleet; an indexed look at what the
          // tenant role owns tells first whether there can be anything to find.
          if (knownClean || !(await this.#mayHoldForeignObjects(checking, tenantId))) {
            knownClean = true;
            return;
          }
          const foreign = await this.foreignObjects(checking, tenantId);
          if (foreign.length > 0) {
            throw new MigrationError(describeForeignObjects(tenantId, foreign));
          }
        },
        afterApplying: () => this.#protectBookkeeping(client, tenantId, { roleExists: hasRole }),
        lockTimeoutMs: this.#options.lockTimeoutMs,
        statementTimeoutMs: this.#options.migrationStatementTimeoutMs,
      });
      const prefix = set.historyTable === MIGRATIONS_TABLE ? '' : `${set.name}/`;
      report.applied.push(...migrated.applied.map((name) => `${prefix}${name}`));
      report.alreadyApplied += migrated.alreadyApplied;
    }
    return report;
  }

  /**
   * Every set of migrations a tenant schema gets, in the order they run: the platform's, then the
   * application's (its registered workflows' tables).
   */
  tenantMigrationSets(): readonly Pick<TenantMigrationSet, 'name' | 'historyTable' | 'migrations'>[] {
    return this.#migrationSets();
  }

  /** The platform's migrations first, then each application set, in registration order. */
  #migrationSets(): readonly Pick<TenantMigrationSet, 'name' | 'historyTable' | 'migrations'>[] {
    return [
      { name: 'tenantflow', historyTable: MIGRATIONS_TABLE, migrations: this.#options.tenantMigrations },
      ...(this.#options.applicationMigrations ?? []),
    ];
  }

  /** Every migration history table of a tenant schema: bookkeeping the tenant may read, never write. */
  #historyTables(): string[] {
    return this.#migrationSets().map((set) => set.historyTable);
  }

  /**
   * The objects in the tenant's schema that the admin role does not own (tables, views,
   * sequences, functions, types, operators, and the rest a schema can hold): none exist unless a
   * tenant role created them while it still could (earlier versions granted CREATE).
   */
  async foreignObjects(client: Queryable, tenantId: string): Promise<ForeignObject[]> {
    const { rows } = await client.query<{ kind: string; name: string; owner: string }>(
      `WITH ns AS (SELECT oid FROM pg_namespace WHERE nspname = $1),
            objects (kind, name, owner) AS (
              SELECT 'schema', nspname::text, nspowner FROM pg_namespace WHERE oid IN (SELECT oid FROM ns)
              UNION ALL SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                                              WHEN 'S' THEN 'sequence' WHEN 'i' THEN 'index' WHEN 'f' THEN 'foreign table'
                                              WHEN 'p' THEN 'table' ELSE 'relation' END,
                               c.relname::text, c.relowner FROM pg_class c WHERE c.relnamespace IN (SELECT oid FROM ns)
              UNION ALL SELECT 'function', p.oid::regprocedure::text, p.proowner FROM pg_proc p WHERE p.pronamespace IN (SELECT oid FROM ns)
              UNION ALL SELECT 'type', t.typname::text, t.typowner FROM pg_type t WHERE t.typnamespace IN (SELECT oid FROM ns)
              UNION ALL SELECT 'operator', o.oid::regoperator::text, o.oprowner FROM pg_operator o WHERE o.oprnamespace IN (SELECT oid FROM ns)
              UNION ALL SELECT 'collation', co.collname::text, co.collowner FROM pg_collation co WHERE co.collnamespace IN (SELECT oid FROM ns)
              UNION ALL SELECT 'conversion', cv.conname::text, cv.conowner FROM pg_conversion cv WHERE cv.connamespace IN (SELECT oid FROM ns)
              UNION ALL SELECT 'operator class', oc.opcname::text, oc.opcowner FROM pg_opclass oc WHERE oc.opcnamespace IN (SELECT oid FROM ns)
              UNION ALL SELECT 'operator family', of.opfname::text, of.opfowner FROM pg_opfamily of WHERE of.opfnamespace IN (SELECT oid FROM ns)
              UNION ALL SELECT 'text search configuration', tc.cfgname::text, tc.cfgowner FROM pg_ts_config tc WHERE tc.cfgnamespace IN (SELECT oid FROM ns)
              UNION ALL SELECT 'text search dictionary', td.dictname::text, td.dictowner FROM pg_ts_dict td WHERE td.dictnamespace IN (SELECT oid FROM ns)
              UNION ALL SELECT 'statistics object', se.stxname::text, se.stxowner FROM pg_statistic_ext se WHERE se.stxnamespace IN (SELECT oid FROM ns))
       SELECT kind, name, pg_get_userbyid(owner)::text AS owner FROM objects
        WHERE owner <> (SELECT oid FROM pg_roles WHERE rolname = current_user)
        ORDER BY kind, name`,
      [tenantId],
    );
    return rows;
  }

  /**
   * Stops the tenant role from logging in, then ends every session it has, so its schema and role
   * can be dropped without a new session taking a lock on them in between.
   */
  async terminateTenantSessions(client: pg.Client, tenantId: string): Promise<void> {
    const name = tenantRoleName(tenantId);
    if (await roleExists(client, name)) {
      // A role from an earlier version has no membership for the admin yet: ending its sessions needs it.
      await client.query(`GRANT ${quoteIdent(name)} TO CURRENT_USER WITH INHERIT TRUE, SET FALSE`);
      await client.query(`ALTER ROLE ${quoteIdent(name)} WITH NOLOGIN`);
    }
    await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [name]);
  }

  /** `DROP SCHEMA "<id>" CASCADE`, if it exists. */
  async dropSchema(client: pg.Client, tenantId: string): Promise<void> {
    assertValidTenantId(tenantId);
    await this.#inTransaction(client, async () => {
      await client.query(`DROP SCHEMA IF EXISTS ${quoteIdent(tenantId)} CASCADE`);
    });
  }

  /**
   * Revokes what the role was granted (CONNECT included, for a role of an earlier version) and
   * drops it, if it exists. `DROP OWNED` needs the role's privileges, which the admin takes here
   * through a membership (no SET) that goes with the role.
   */
  async dropRole(client: pg.Client, tenantId: string): Promise<void> {
    const name = tenantRoleName(tenantId);
    if (!(await roleExists(client, name))) {
      return;
    }
    const role = quoteIdent(name);
    await client.query(`GRANT ${role} TO CURRENT_USER WITH INHERIT TRUE, SET FALSE`);
    await this.#withPlatformLock(client, DATABASE_ACL_LOCK, async () => {
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

  /**
   * Whether the tenant's schema may hold an object the admin did not create: the tenant role owns
   * something in this database (PostgreSQL records every owner but the bootstrap superuser in
   * `pg_shdepend`, indexed by owner), or the schema is not the admin's. Only a role with CREATE on
   * the schema can put an object there: the admin, which owns it, a superuser, and a tenant role
   * of an earlier version. So when this is false, {@link foreignObjects} would find nothing.
   */
  async #mayHoldForeignObjects(client: Queryable, tenantId: string): Promise<boolean> {
    const { rows } = await client.query<{ maybe: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM pg_shdepend d
                       WHERE d.refclassid = 'pg_authid'::regclass
                         AND d.refobjid = (SELECT oid FROM pg_roles WHERE rolname = $1)
                         AND d.deptype = 'o'
                         AND d.dbid = (SELECT oid FROM pg_database WHERE datname = current_database()))
              OR (SELECT nspowner FROM pg_namespace WHERE nspname = $2)
                 IS DISTINCT FROM (SELECT oid FROM pg_roles WHERE rolname = current_user) AS maybe`,
      [tenantRoleName(tenantId), tenantId],
    );
    return rows[0]?.maybe !== false;
  }

  /**
   * Whether the tenant's rights already follow the current rules (one catalog query), so a fleet
   * run does not serialise every tenant on the database ACL lock to grant what is there.
   */
  async #tenantRulesCurrent(client: Queryable, tenantId: string): Promise<boolean> {
    const { rows } = await client.query<{ current: boolean }>(
      `SELECT NOT has_schema_privilege($1, $2, 'CREATE')
              AND has_schema_privilege($1, $2, 'USAGE')
              AND has_schema_privilege($3, $2, 'USAGE')
              AND (SELECT bool_and(has_function_privilege($1, f, 'EXECUTE')) FROM unnest($4::text[]) f)
              AND NOT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                               WHERE n.nspname = $2 AND c.relname = ANY ($5::text[])
                                 AND has_table_privilege($1, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER'))
              AS current`,
      [
        tenantRoleName(tenantId),
        tenantId,
        await this.platformRoleName(),
        TENANT_API_PROCEDURES,
        [...BOOKKEEPING_TABLES, ...this.#historyTables()],
      ],
    );
    return rows[0]?.current === true;
  }

  /**
   * The bookkeeping (executions, task runs, migration history) is the platform's: the tenant role
   * may read its own, never write or lock it; the platform role reads and writes it.
   */
  async #protectBookkeeping(
    client: Queryable,
    tenantId: string,
    known: { readonly roleExists?: boolean } = {},
  ): Promise<void> {
    const roleName = tenantRoleName(tenantId);
    const hasRole = known.roleExists ?? (await roleExists(client, roleName));
    const role = quoteIdent(roleName);
    const platformName = await this.platformRoleName();
    const platform = quoteIdent(platformName);
    // Only the tables whose rights are not already right: a migration that alters a bookkeeping
    // table leaves its grants as they were, and a fleet run then sends no GRANT at all.
    const { rows } = await client.query<{ name: string }>(
      `SELECT c.relname AS name FROM pg_class c
        WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1)
          AND c.relkind = 'r' AND c.relname = ANY ($2::text[])
          AND (($3 AND (has_table_privilege($4, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
                        OR NOT has_table_privilege($4, c.oid, 'SELECT')))
               OR (NOT c.relname = ANY ($6::text[]) AND NOT (has_table_privilege($5, c.oid, 'SELECT') AND has_table_privilege($5, c.oid, 'INSERT')
                                            AND has_table_privilege($5, c.oid, 'UPDATE') AND has_table_privilege($5, c.oid, 'DELETE'))))`,
      [
        tenantId,
        [...BOOKKEEPING_TABLES, ...this.#historyTables()],
        hasRole,
        hasRole ? roleName : platformName,
        platformName,
        this.#historyTables(),
      ],
    );
    if (hasRole) {
      await this.#refuseOtherMemberships(client, tenantId);
    }
    const statements: string[] = [];
    for (const { name } of rows) {
      const table = qualified(tenantId, name);
      if (hasRole) {
        statements.push(`REVOKE ALL ON ${table} FROM ${role}`, `GRANT SELECT ON ${table} TO ${role}`);
      }
      if (!this.#historyTables().includes(name)) {
        statements.push(`GRANT SELECT, INSERT, UPDATE, DELETE ON ${table} TO ${platform}`);
      }
    }
    if (statements.length > 0) {
      // One round trip, inside the caller's transaction.
      await client.query(statements.join('; '));
    }
  }

  /**
   * A tenant role belongs to the tenants group and to nothing else. A membership a migration
   * granted would hand the tenant another role's rights (through `SET ROLE`, even without
   * inheritance), which no check of its own rights would show: refused, so the migration rolls back.
   */
  async #refuseOtherMemberships(client: Queryable, tenantId: string): Promise<void> {
    const { rows } = await client.query<{ name: string }>(
      `SELECT pg_get_userbyid(m.roleid) AS name FROM pg_auth_members m
        WHERE m.member = (SELECT oid FROM pg_roles WHERE rolname = $1) AND pg_get_userbyid(m.roleid) <> $2
        ORDER BY 1`,
      [tenantRoleName(tenantId), await this.tenantGroupName()],
    );
    if (rows.length > 0) {
      throw new MigrationError(
        `A migration of tenant '${tenantId}' made its role a member of ${rows.map((row) => `'${row.name}'`).join(', ')}: a tenant role may belong only to the tenants group, so the migration is refused`,
      );
    }
  }

  async #inTransaction(client: pg.Client, work: () => Promise<void>): Promise<void> {
    await client.query('BEGIN');
    try {
      await setTransactionLimits(client, {
        lockTimeoutMs: this.#options.lockTimeoutMs,
        statementTimeoutMs: this.#options.statementTimeoutMs,
      });
      await work();
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }

  async #withPlatformLock(client: pg.Client, name: string, work: () => Promise<void>): Promise<void> {
    await this.#inTransaction(client, async () => {
      await lockPlatformResource(client, name);
      await work();
    });
  }
}

/**
 * Runs an ACL change, inside the caller's transaction, again when PostgreSQL reports "tuple
 * concurrently updated" (XX000): two transactions changed the same catalog row at once, and the
 * loser may simply try again. A savepoint keeps the failed try from aborting the transaction.
 */
async function retryConcurrentUpdate(client: Queryable, statement: string, attempts = 5): Promise<void> {
  for (let attempt = 1; ; attempt += 1) {
    await client.query('SAVEPOINT acl_change');
    try {
      await client.query(statement);
      await client.query('RELEASE SAVEPOINT acl_change');
      return;
    } catch (error) {
      await client.query('ROLLBACK TO SAVEPOINT acl_change');
      const concurrent =
        sqlState(error) === SQLSTATE.internalError &&
        /concurrently updated/.test(String((error as Error).message));
      if (!concurrent || attempt >= attempts) {
        throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, 10 * attempt));
    }
  }
}

/** The client's socket, to let an idle connection not hold the process open. */
function socketOf(client: pg.Client): { ref(): void; unref(): void } | undefined {
  const stream = (client as unknown as { connection?: { stream?: { ref?: unknown; unref?: unknown } } })
    .connection?.stream;
  return typeof stream?.ref === 'function' && typeof stream.unref === 'function'
    ? (stream as { ref(): void; unref(): void })
    : undefined;
}

async function currentNames(client: Queryable): Promise<{ db: string; me: string }> {
  const { rows } = await client.query<{ db: string; me: string }>(
    'SELECT current_database() AS db, current_user AS me',
  );
  return rows[0] ?? { db: '', me: '' };
}

async function roleExists(client: Queryable, name: string): Promise<boolean> {
  const { rows } = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name]);
  return rows.length > 0;
}

async function schemaOwner(client: Queryable, schema: string): Promise<string | undefined> {
  const { rows } = await client.query<{ owner: string }>(
    'SELECT pg_get_userbyid(nspowner)::text AS owner FROM pg_namespace WHERE nspname = $1',
    [schema],
  );
  return rows[0]?.owner;
}

/** Runs a `CREATE ROLE`; false when the role appeared meanwhile (SQLSTATE 42710). */
async function createRole(client: Queryable, statement: string): Promise<boolean> {
  try {
    await client.query(statement);
    return true;
  } catch (error) {
    if (sqlState(error) !== SQLSTATE.duplicateObject) {
      throw error;
    }
    return false;
  }
}

/** Refuses a role that carries an attribute no tenantflow role may have. */
async function assertUnprivileged(client: Queryable, name: string, what: string): Promise<void> {
  const { rows } = await client.query<{ privileged: string[] }>(
    `SELECT array_remove(ARRAY[CASE WHEN rolsuper THEN 'SUPERUSER' END, CASE WHEN rolcreaterole THEN 'CREATEROLE' END,
                               CASE WHEN rolcreatedb THEN 'CREATEDB' END, CASE WHEN rolreplication THEN 'REPLICATION' END,
                               CASE WHEN rolbypassrls THEN 'BYPASSRLS' END], NULL) AS privileged
       FROM pg_roles WHERE rolname = $1`,
    [name],
  );
  const privileged = rows[0]?.privileged ?? [];
  if (privileged.length > 0) {
    throw new MigrationError(
      `The ${what} '${name}' has ${privileged.join(', ')}: tenantflow will not use a role with privileged attributes. Remove them (as a superuser) or drop the role.`,
    );
  }
}

/**
 * The versions applied to a tenant schema, per history table; none for a table that does not
 * exist yet. One round trip whatever the number of sets.
 */
async function appliedVersions(
  client: Queryable,
  schema: string,
  tables: readonly string[],
): Promise<Map<string, Set<number>>> {
  const { rows: found } = await client.query<{ name: string }>(
    // By (relname, relnamespace), pg_class's index: the catalog grows with every tenant's tables.
    `SELECT c.relname AS name FROM pg_class c
      WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1) AND c.relname = ANY ($2::text[])`,
    [schema, tables],
  );
  const applied = new Map<string, Set<number>>(tables.map((table) => [table, new Set()]));
  if (found.length === 0) {
    return applied;
  }
  const { rows } = await client.query<{ history: string; version: number }>(
    found
      .map(
        ({ name }, index) => `SELECT $${index + 1}::text AS history, version FROM ${qualified(schema, name)}`,
      )
      .join(' UNION ALL '),
    found.map(({ name }) => name),
  );
  for (const row of rows) {
    applied.get(row.history)?.add(row.version);
  }
  return applied;
}

const NAMED_OBJECTS = 10;

function describeForeignObjects(tenantId: string, objects: readonly ForeignObject[]): string {
  const named = objects
    .slice(0, NAMED_OBJECTS)
    .map((object) => `${object.kind} ${object.name} (owned by ${object.owner})`)
    .join(', ');
  const more = objects.length > NAMED_OBJECTS ? `, and ${objects.length - NAMED_OBJECTS} more` : '';
  return (
    `Schema '${tenantId}' was not migrated: it holds ${objects.length} object(s) the admin role did not create: ${named}${more}. ` +
    'Migrations never run where a tenant could have planted a name. Review and drop them (as the admin), then migrate again.'
  );
}
