import { withDedicatedClient } from '@tenantflow/shared/db/connections';
import { quoteIdent } from '@tenantflow/shared/db/sql';
import { ConfigurationError } from '@tenantflow/shared/kernel/errors';
import { DatabaseAdmin } from '@tenantflow/shared/provisioning/database-admin';
import { prepareControlSchema } from '@tenantflow/shared/provisioning/database-migrator';
import { scramSha256Verifier } from '@tenantflow/shared/provisioning/passwords';
import type pg from 'pg';

/** The admin role `npm start` creates when it is given a superuser: what Aurora's master user is. */
export const LOCAL_ADMIN_ROLE = 'tenantflow_admin';
/** The platform role every request runs as, locally and in AWS. */
export const LOCAL_PLATFORM_ROLE = 'tenantflow_platform';

/**
 * The platform role's name locally: `TENANTFLOW_PLATFORM_ROLE`, so that several installations (or
 * test suites) can share one server, each with a platform role of its own.
 */
export function localPlatformRole(env: NodeJS.ProcessEnv = process.env): string {
  const name = env.TENANTFLOW_PLATFORM_ROLE ?? LOCAL_PLATFORM_ROLE;
  if (!/^[a-z][a-z0-9_]{0,62}$/.test(name)) {
    throw new ConfigurationError(
      `TENANTFLOW_PLATFORM_ROLE must be 1-63 lowercase letters, digits or underscores, starting with a letter (got '${name}')`,
    );
  }
  return name;
}

export interface LocalRolePasswords {
  readonly admin: string;
  readonly platform: string;
}

/** How the local platform logs in: the admin for DDL, the platform role for everything else. */
export interface LocalDatabaseLogins {
  readonly adminUrl: string;
  readonly platformUrl: string;
  /** The control migrations preparing the database applied (none when it was up to date). */
  readonly controlApplied: readonly string[];
}

/**
 * Gives a local database the roles production has (DESIGN: roles and the threat model), then
 * prepares its control schema. `url` may log in as:
 * - a **superuser** (the embedded PostgreSQL, or a throwaway server's): it is used only to create
 *   `tenantflow_admin` (CREATEROLE, CREATEDB, not a superuser, as Aurora's master user is), to make
 *   it the database's owner, and to hand it what an earlier version created as the superuser;
 * - a **non-superuser with CREATEROLE** that owns the database: it is the admin.
 *
 * Either way the admin then creates `tenantflow_platform`, the role requests run as. Passwords come
 * from `.tenantflow/local-secrets.json`.
 *
 * @example
 * ```ts
 * const { adminUrl, platformUrl } = await prepareLocalDatabase(superuserUrl, { admin, platform });
 * ```
 */
export async function prepareLocalDatabase(
  url: string,
  passwords: LocalRolePasswords,
): Promise<LocalDatabaseLogins> {
  let adminUrl = url;
  await withDedicatedClient(url, async (client) => {
    const { rows } = await client.query<{ rolsuper: boolean; rolcreaterole: boolean; me: string }>(
      'SELECT rolsuper, rolcreaterole, rolname AS me FROM pg_roles WHERE rolname = current_user',
    );
    const me = rows[0];
    if (me?.rolsuper === true) {
      await bootstrapAdmin(client, passwords.admin);
      adminUrl = withLogin(url, LOCAL_ADMIN_ROLE, passwords.admin);
    } else if (me?.rolcreaterole !== true) {
      throw new ConfigurationError(
        `DATABASE_URL logs in as '${me?.me}', which is neither a superuser nor a role with CREATEROLE: tenantflow needs one of them to create the platform and tenant roles`,
      );
    }
  });
  const platformRole = localPlatformRole();
  const admin = new DatabaseAdmin({ adminUrl, platformRole, tenantMigrations: [] });
  const control = await prepareControlSchema(admin, {
    platformRole: { name: platformRole, password: passwords.platform, resetPassword: true },
  });
  return {
    adminUrl,
    platformUrl: withLogin(url, platformRole, passwords.platform),
    controlApplied: control.applied,
  };
}

/** `url` logging in as `user` with `password`. */
export function withLogin(url: string, user: string, password: string): string {
  const parsed = new URL(url);
  parsed.username = encodeURIComponent(user);
  parsed.password = encodeURIComponent(password);
  return parsed.toString();
}

/**
 * As the superuser: the admin role (created, or its password and attributes renewed), owner of this
 * database; and everything an earlier version created as the superuser in the control schema and
 * the tenant schemas handed to it, with the tenant roles it made, so the admin can manage them.
 */
async function bootstrapAdmin(client: pg.Client, password: string): Promise<void> {
  await createAdminRole(client, LOCAL_ADMIN_ROLE, password);
  await adoptEarlierObjects(client);
}

/**
 * As a superuser: the role `name` made (or renewed as) what Aurora's master user is, CREATEROLE and
 * CREATEDB and nothing more, with `password`, and made the owner of the current database. Also
 * closes template1, which is the superuser's, so the admin's lock-down cannot. What `npm start` and
 * the test set-up do to a cluster of their own.
 */
export async function createAdminRole(client: pg.Client, name: string, password: string): Promise<void> {
  const role = quoteIdent(name);
  const verifier = client.escapeLiteral(scramSha256Verifier(password));
  const attributes = 'LOGIN NOSUPERUSER CREATEROLE CREATEDB NOREPLICATION NOBYPASSRLS';
  const { rows: existing } = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name]);
  await client.query(
    `${existing.length === 0 ? 'CREATE' : 'ALTER'} ROLE ${role} WITH ${attributes} PASSWORD ${verifier}`,
  );
  const { rows: database } = await client.query<{ db: string }>('SELECT current_database() AS db');
  await client.query(`ALTER DATABASE ${quoteIdent(database[0]?.db ?? '')} OWNER TO ${role}`);
  // On Aurora template1 is rdsadmin's; see the README's isolation section for what that leaves open.
  await client.query('REVOKE CONNECT ON DATABASE template1 FROM PUBLIC');
}

/**
 * Before the admin role existed, `npm start` ran everything as the superuser: the control schema,
 * each tenant's schema and tables, and the tenant roles were the superuser's. Hand them to the
 * admin. Objects a tenant role created itself (earlier versions let it) are left alone: the next
 * migration of that schema reports them and refuses to run there.
 */
async function adoptEarlierObjects(client: pg.Client): Promise<void> {
  const { rows: registry } = await client.query<{ exists: boolean }>(
    "SELECT to_regclass('tenantflow.tenants') IS NOT NULL AS exists",
  );
  const tenants =
    registry[0]?.exists === true
      ? (await client.query<{ tenant_id: string }>('SELECT tenant_id FROM tenantflow.tenants')).rows.map(
          (row) => row.tenant_id,
        )
      : [];
  const schemas = ['tenantflow', 'tenantflow_api', ...tenants];
  const admin = quoteIdent(LOCAL_ADMIN_ROLE);
  const { rows: objects } = await client.query<{ statement: string }>(
    `WITH superusers AS (SELECT oid FROM pg_roles WHERE rolsuper),
          target AS (SELECT oid, nspname FROM pg_namespace WHERE nspname = ANY ($1::text[]))
     SELECT format('ALTER SCHEMA %I OWNER TO %s', nspname, $2::text) AS statement
       FROM pg_namespace WHERE oid IN (SELECT oid FROM target) AND nspowner IN (SELECT oid FROM superusers)
     UNION ALL
     SELECT format('ALTER %s %I.%I OWNER TO %s',
                   CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'
                                  WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
                   t.nspname, c.relname, $2::text)
       FROM pg_class c JOIN target t ON t.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND c.relowner IN (SELECT oid FROM superusers)
        -- a sequence owned by a column moves with its table
        AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                                                 AND d.objid = c.oid AND d.deptype IN ('a', 'i')))
     UNION ALL
     SELECT format('ALTER FUNCTION %s OWNER TO %s', p.oid::regprocedure, $2::text)
       FROM pg_proc p JOIN target t ON t.oid = p.pronamespace WHERE p.proowner IN (SELECT oid FROM superusers)`,
    [schemas, admin],
  );
  for (const { statement } of objects) {
    await client.query(statement);
  }
  const { rows: roles } = await client.query<{ rolname: string }>(
    `SELECT r.rolname FROM pg_roles r
      WHERE r.rolname = ANY ($1::text[])
        AND NOT EXISTS (SELECT 1 FROM pg_auth_members m
                         WHERE m.roleid = r.oid AND m.member = (SELECT oid FROM pg_roles WHERE rolname = $2)
                           AND m.admin_option)`,
    [[...tenants.map((tenantId) => `${tenantId}_user`), localPlatformRole()], LOCAL_ADMIN_ROLE],
  );
  for (const { rolname } of roles) {
    await client.query(`GRANT ${quoteIdent(rolname)} TO ${admin} WITH ADMIN OPTION`);
  }
}
