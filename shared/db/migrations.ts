import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MigrationError } from '../kernel/errors.js';
import { type Queryable, qualified, quoteIdent, SQLSTATE } from './sql.js';

/** One forward-only migration, loaded from `NNNN_description.sql`. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
  /** SHA-256 of the file's text; an applied migration whose file later changes is refused. */
  readonly checksum: string;
}

export interface MigrationReport {
  readonly schema: string;
  /** Names of the migrations this run applied, in order. */
  readonly applied: readonly string[];
  /** How many were already applied before this run. */
  readonly alreadyApplied: number;
}

export interface MigrateSchemaOptions {
  /** Create the schema when missing (control schema), or refuse (tenant schemas). Default true. */
  readonly createSchema?: boolean;
  /** Resolve the migrations' unqualified names in `schema` (tenant migrations). Default false. */
  readonly unqualifiedNamesInSchema?: boolean;
  /**
   * Serialises migrations of one schema: called first in the transaction, it must take a lock that
   * lasts until COMMIT and that no tenant role can take.
   * @default {@link lockControlSchemaMigrations}
   */
  readonly lock?: (client: Queryable, schema: string, waitMs: number) => Promise<void>;
  /**
   * Called in the transaction, under the lock, when migrations are pending, before the first runs:
   * throw to refuse the schema (e.g. it holds an object the admin does not own).
   */
  readonly beforeApplying?: (client: Queryable, pending: readonly Migration[]) => Promise<void>;
  /** Called in the transaction after the pending migrations ran, before COMMIT. */
  readonly afterApplying?: (client: Queryable, applied: readonly Migration[]) => Promise<void>;
  /** How long to wait for a lock a statement needs before the migration fails. Default 5 s. */
  readonly lockTimeoutMs?: number;
  /** How long one statement may run. Default 5 min. */
  readonly statementTimeoutMs?: number;
  /** The table, in `schema`, that records what was applied. Default `schema_migrations`. */
  readonly historyTable?: string;
}

const MIGRATION_FILE = /^(\d{4})_([a-z0-9_]+)\.sql$/;
const MIGRATION_NAME = /^(\d{4})_([a-z0-9_]+)$/;
const SET_NAME = /^[a-z][a-z0-9_]{0,39}$/;

/** Where a schema's migration history is kept: the platform's own, and each set's beside it. */
export const MIGRATIONS_TABLE = 'schema_migrations';

/**
 * The per-tenant tables an application ships with its workflows: a name, and migrations applied to
 * every tenant schema after the platform's own, with their history in a table of their own
 * (`schema_migrations_<name>`), so an application's numbering never collides with the platform's.
 */
export interface TenantMigrationSet {
  readonly name: string;
  /** `schema_migrations_<name>`, in each tenant schema. */
  readonly historyTable: string;
  readonly migrations: readonly Migration[];
}

/**
 * Declares an application's tenant tables, in TypeScript so they travel with the workflows that
 * use them (into each Lambda bundle as well). Each migration is named `NNNN_description`, written
 * with unqualified names, forward-only and checksummed like the platform's: an applied migration
 * whose SQL later changes is refused. Register the set with the workflows
 * (`new WorkflowRegistry(workflows, { tenantMigrations: [set] })`); provisioning applies it to each
 * new tenant and `npm run migrate` (the migrate function in AWS) to every existing one.
 *
 * @example
 * ```ts
 * export const ordersTables = defineTenantMigrations('orders', [
 *   { name: '0001_orders', sql: 'CREATE TABLE orders (id bigint PRIMARY KEY, total_cents integer NOT NULL)' },
 * ]);
 * ```
 */
export function defineTenantMigrations(
  name: string,
  migrations: readonly { readonly name: string; readonly sql: string }[],
): TenantMigrationSet {
  const problems: string[] = [];
  if (!SET_NAME.test(name)) {
    problems.push(
      `the set name '${name}' must be lowercase letters, digits and underscores, starting with a letter (at most 40)`,
    );
  }
  const seen = new Map<number, string>();
  const parsed: Migration[] = [];
  for (const migration of migrations) {
    const match = MIGRATION_NAME.exec(migration.name);
    if (match === null || match[1] === undefined) {
      problems.push(`'${migration.name}' is not named NNNN_description (lowercase, digits, underscores)`);
      continue;
    }
    const version = Number(match[1]);
    const clash = seen.get(version);
    if (clash !== undefined) {
      problems.push(`'${clash}' and '${migration.name}' share version ${version}`);
    }
    seen.set(version, migration.name);
    parsed.push({ version, name: migration.name, sql: migration.sql, checksum: checksumOf(migration.sql) });
  }
  if (problems.length > 0) {
    throw new MigrationError(`Tenant migrations '${name}' are not valid: ${problems.join('; ')}`);
  }
  return {
    name,
    historyTable: `${MIGRATIONS_TABLE}_${name}`,
    migrations: parsed.sort((a, b) => a.version - b.version),
  };
}

/**
 * Reads `NNNN_description.sql` files from `directory`, ordered by version. Any other `.sql` file,
 * or two files with one version, is an error: a misnamed migration must not be skipped silently.
 *
 * @example
 * ```ts
 * const migrations = await loadMigrations(new URL('../migrations/control', import.meta.url).pathname);
 * ```
 */
export async function loadMigrations(directory: string): Promise<Migration[]> {
  const files = (await readdir(directory)).filter((file) => file.endsWith('.sql')).sort();
  const migrations: Migration[] = [];
  const seen = new Map<number, string>();
  for (const file of files) {
    const match = MIGRATION_FILE.exec(file);
    if (match === null || match[1] === undefined || match[2] === undefined) {
      throw new MigrationError(
        `Migration file '${file}' in ${directory} is not named NNNN_description.sql (lowercase, digits, underscores)`,
      );
    }
    const version = Number(match[1]);
    const clash = seen.get(version);
    if (clash !== undefined) {
      throw new MigrationError(`Migrations '${clash}' and '${file}' share version ${version}`);
    }
    seen.set(version, file);
    const sql = await readFile(join(directory, file), 'utf8');
    migrations.push({ version, name: file, sql, checksum: checksumOf(sql) });
  }
  return migrations;
}

export function checksumOf(sql: string): string {
  return createHash('sha256').update(sql).digest('hex');
}

/**
 * Brings `schema` up to date with `migrations`, in one transaction, over a **dedicated**
 * connection (never a pooled one: this is the admin/migration exception of the isolation rules).
 *
 * Concurrency: the transaction first takes a lock (`options.lock`) that no tenant role can take,
 * so two processes migrating at once serialise, and the second finds nothing left to do. The lock
 * is released by COMMIT/ROLLBACK, so it leaves no session state behind. `lock_timeout` and
 * `statement_timeout` are set for the transaction: a lock held elsewhere fails it in bounded time.
 *
 * Atomicity: all pending migrations commit together or not at all; a failure leaves the schema
 * exactly as it was, and the error names the migration that failed.
 *
 * Integrity: an applied migration whose checksum no longer matches its file is refused, because
 * forward-only means history is never edited.
 *
 * @example
 * ```ts
 * await withDedicatedClient(url, (client) => migrateSchema(client, 'tenantflow', migrations));
 * ```
 */
export async function migrateSchema(
  client: Queryable,
  schema: string,
  migrations: readonly Migration[],
  options: MigrateSchemaOptions = {},
): Promise<MigrationReport> {
  const {
    createSchema = true,
    unqualifiedNamesInSchema = false,
    lock = lockControlSchemaMigrations,
    lockTimeoutMs = 5_000,
    statementTimeoutMs = 300_000,
    historyTable = MIGRATIONS_TABLE,
  } = options;
  const table = qualified(schema, historyTable);
  await client.query('BEGIN');
  try {
    // A lock a tenant holds (on one of its tables, say) makes this migration fail in bounded time
    // instead of waiting for ever: fleet runs report the tenant and go on with the others.
    await setTransactionLimits(client, { lockTimeoutMs, statementTimeoutMs });
    await lock(client, schema, lockTimeoutMs);
    if (createSchema) {
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
    } else {
      const { rows: found } = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
      if (found.length === 0) {
        throw new MigrationError(
          `Schema '${schema}' does not exist; it is created when the tenant is provisioned`,
        );
      }
    }
    if (unqualifiedNamesInSchema) {
      // Tenant migrations are written with unqualified names, so one file serves every tenant
      // schema. SET LOCAL lasts until COMMIT/ROLLBACK and this is a dedicated, unpooled admin
      // connection: the migration exception of the isolation rules, not session state.
      await client.query(`SET LOCAL search_path TO ${quoteIdent(schema)}`);
    }
    await client.query(createHistoryTableSql(schema, historyTable));
    const { rows } = await client.query<{ version: number; name: string; checksum: string }>(
      `SELECT version, name, checksum FROM ${table} ORDER BY version`,
    );
    const appliedByVersion = new Map(rows.map((row) => [row.version, row]));
    for (const migration of migrations) {
      const applied = appliedByVersion.get(migration.version);
      if (applied !== undefined && applied.checksum !== migration.checksum) {
        throw new MigrationError(
          `Migration ${migration.name} was changed after it was applied to schema '${schema}' ` +
            `(recorded checksum ${applied.checksum.slice(0, 12)}…, file ${migration.checksum.slice(0, 12)}…). ` +
            'Migrations are forward-only: add a new migration instead of editing an applied one.',
        );
      }
    }
    const pending = migrations.filter((migration) => !appliedByVersion.has(migration.version));
    if (pending.length > 0) {
      await options.beforeApplying?.(client, pending);
    }
    for (const migration of pending) {
      try {
        await client.query(migration.sql);
      } catch (cause) {
        throw new MigrationError(`Migration ${migration.name} failed on schema '${schema}'`, { cause });
      }
      await client.query(`INSERT INTO ${table} (version, name, checksum) VALUES ($1, $2, $3)`, [
        migration.version,
        migration.name,
        migration.checksum,
      ]);
    }
    if (pending.length > 0) {
      await options.afterApplying?.(client, pending);
    }
    await client.query('COMMIT');
    return {
      schema,
      applied: pending.map((m) => m.name),
      alreadyApplied: migrations.length - pending.length,
    };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw describeMigrationTimeout(error, schema, { lockTimeoutMs, statementTimeoutMs });
  }
}

/** `CREATE TABLE IF NOT EXISTS` of a migration history table, schema-qualified. */
export function createHistoryTableSql(schema: string, historyTable: string): string {
  return `CREATE TABLE IF NOT EXISTS ${qualified(schema, historyTable)} (
         version integer PRIMARY KEY,
         name text NOT NULL,
         checksum text NOT NULL,
         applied_at timestamptz NOT NULL DEFAULT now()
       )`;
}

/** The migrations of one history table that {@link migrationTransactionSql} applies and records. */
export interface PendingMigrations {
  /** The history table, in the schema. */
  readonly historyTable: string;
  /** The history table does not exist yet: it is created first. */
  readonly createHistory: boolean;
  /** The migrations to apply, in order; none of them may be in the history already. */
  readonly migrations: readonly Migration[];
}

export interface MigrationTransactionOptions {
  /** `SET LOCAL statement_timeout` of the transaction (each statement of the string on its own). */
  readonly statementTimeoutMs: number;
  /** Quotes a string value as an SQL literal: the driver's own (`pg`'s `escapeLiteral`). */
  readonly quoteLiteral: (value: string) => string;
  /**
   * Statements that take the schema's migration lock, first in the transaction, under the
   * session's `lock_timeout`: a lock no tenant role can take, held until COMMIT.
   */
  readonly lock: readonly string[];
  /** Statements run right after a history table is created (its grants). */
  readonly afterCreatingHistory?: (historyTable: string) => readonly string[];
  /**
   * Statements run after the migrations, with `search_path` back to `pg_catalog`, before COMMIT:
   * checks that raise an error, so the whole transaction rolls back.
   */
  readonly beforeCommit?: readonly string[];
}

/**
 * One schema's pending migrations as a single transaction in a single simple-query string, which
 * PostgreSQL runs in one round trip (no parameters: every value is quoted with `quoteLiteral`,
 * every identifier with {@link quoteIdent}): `BEGIN`, the timeouts, the lock, the history tables
 * it creates, the history rows, the migrations under `SET LOCAL search_path`, the checks, `COMMIT`.
 *
 * The history rows go in before the migrations run: a migration recorded meanwhile by another run
 * (one the caller's earlier read did not see) fails the transaction on the history's primary key
 * before any of its DDL runs, so nothing is applied twice. PostgreSQL stops at the first statement
 * that fails, leaving the transaction aborted: the caller sends ROLLBACK, and the schema is as it
 * was. What the caller cannot learn from the one error is which migration failed; run
 * {@link migrateSchema} for that.
 *
 * Tenant migrations are written with unqualified names, so they run under
 * `SET LOCAL search_path TO <schema>` (transaction-scoped, on a dedicated connection).
 */
export function migrationTransactionSql(
  schema: string,
  pending: readonly PendingMigrations[],
  options: MigrationTransactionOptions,
): string {
  const statements = [
    'BEGIN',
    `SET LOCAL statement_timeout = ${Math.max(1, Math.trunc(options.statementTimeoutMs))}`,
    ...options.lock,
  ];
  for (const { historyTable, createHistory, migrations } of pending) {
    if (createHistory) {
      statements.push(
        createHistoryTableSql(schema, historyTable),
        ...(options.afterCreatingHistory?.(historyTable) ?? []),
      );
    }
    if (migrations.length > 0) {
      const rows = migrations.map((migration) => {
        if (!Number.isSafeInteger(migration.version)) {
          throw new MigrationError(`Migration ${migration.name} has no integer version`);
        }
        return `(${migration.version}, ${options.quoteLiteral(migration.name)}, ${options.quoteLiteral(migration.checksum)})`;
      });
      statements.push(
        `INSERT INTO ${qualified(schema, historyTable)} (version, name, checksum) VALUES ${rows.join(', ')}`,
      );
    }
  }
  statements.push(`SET LOCAL search_path TO ${quoteIdent(schema)}`);
  for (const { migrations } of pending) {
    // On a line of its own: a migration whose last line is a comment must not swallow what follows.
    statements.push(...migrations.map((migration) => `${migration.sql}\n`));
  }
  statements.push('SET LOCAL search_path TO pg_catalog', ...(options.beforeCommit ?? []), 'COMMIT');
  return statements.join(';\n');
}

/**
 * `SET LOCAL lock_timeout` and `statement_timeout`: every privileged transaction bounds how long it
 * can be made to wait, so nothing a tenant locks stalls the platform. Transaction-scoped, so it
 * leaves no session state behind.
 */
export async function setTransactionLimits(
  client: Queryable,
  limits: { readonly lockTimeoutMs: number; readonly statementTimeoutMs: number },
): Promise<void> {
  await client.query(
    `SET LOCAL lock_timeout = ${Math.max(1, Math.trunc(limits.lockTimeoutMs))}; ` +
      `SET LOCAL statement_timeout = ${Math.max(1, Math.trunc(limits.statementTimeoutMs))}`,
  );
}

/**
 * The default migration lock of {@link migrateSchema}. Once the control schema exists, a table
 * lock on its migration history, which only the admin can take (tenant roles have no access to the
 * schema; the platform role may only read it, and readers do not conflict). On a database
 * without it (the very first migration, before any tenant role exists), a transaction-scoped
 * advisory try-lock, retried until `waitMs` has passed: any role can take any advisory key, so
 * nothing here ever waits on one without a deadline.
 */
export async function lockControlSchemaMigrations(
  client: Queryable,
  schema: string,
  waitMs = 5_000,
): Promise<void> {
  const { rows } = await client.query<{ exists: boolean }>('SELECT to_regclass($1) IS NOT NULL AS exists', [
    qualified(schema, MIGRATIONS_TABLE),
  ]);
  if (rows[0]?.exists === true) {
    await client.query(`LOCK TABLE ${qualified(schema, MIGRATIONS_TABLE)} IN SHARE ROW EXCLUSIVE MODE`);
    return;
  }
  const deadline = Date.now() + waitMs;
  for (let pause = 10; ; pause = Math.min(pause * 2, 250)) {
    const { rows: taken } = await client.query<{ locked: boolean }>(
      'SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0)) AS locked',
      [`tenantflow:migrations:${schema}`],
    );
    if (taken[0]?.locked === true) {
      return;
    }
    if (Date.now() >= deadline) {
      throw new MigrationError(
        `Schema '${schema}' was not created: another session held its migration lock for more than ${waitMs} ms. Run the migrations again.`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
}

/**
 * Turns a lock or statement timeout into a message that says what happened and what to do; any
 * other error is returned as it is.
 */
export function describeMigrationTimeout(
  error: unknown,
  schema: string,
  limits: { readonly lockTimeoutMs: number; readonly statementTimeoutMs: number },
): unknown {
  // A migration's own statement fails wrapped in a MigrationError; the SQLSTATE is on its cause.
  const code =
    error instanceof MigrationError
      ? (error.cause as { code?: unknown } | undefined)?.code
      : (error as { code?: unknown }).code;
  // Keep which migration it was, when it was one, and what PostgreSQL said.
  const cause = error instanceof MigrationError ? error.cause : error;
  const said = cause instanceof Error ? cause.message : String(cause);
  const where = error instanceof MigrationError ? ` (${error.message}: ${said})` : ` (${said})`;
  if (code === SQLSTATE.lockNotAvailable) {
    return new MigrationError(
      `Schema '${schema}' was not migrated: a lock it needs was held by another session for more than ${limits.lockTimeoutMs} ms (lock_timeout)${where}. Nothing was changed; run the migrations again once that session has ended.`,
      { cause: error },
    );
  }
  if (code === SQLSTATE.queryCanceled) {
    return new MigrationError(
      `Schema '${schema}' was not migrated: a statement ran longer than ${limits.statementTimeoutMs} ms (statement_timeout)${where}. Nothing was changed.`,
      { cause: error },
    );
  }
  return error;
}
