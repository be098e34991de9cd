import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MigrationError } from '../errors.js';
import { type Queryable, qualified, quoteIdent } from './sql.js';

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
}

const MIGRATION_FILE = /^(\d{4})_([a-z0-9_]+)\.sql$/;
const MIGRATIONS_TABLE = 'schema_migrations';

/**
 * Reads `NNNN_description.sql` files from `directory`, ordered by version. Any other `.sql` file,
 * or two files with one version, is an error: a misnamed migration must not be skipped silently.
 *
 * @example
 * ```ts
 * const migrations = await loadMigrations(new URL('../../migrations/control', import.meta.url).pathname);
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
 * Concurrency: the transaction first takes a transaction-scoped advisory lock keyed on the schema,
 * so two processes migrating at once serialise, and the second finds nothing left to do. The lock
 * is released by COMMIT/ROLLBACK, so it leaves no session state behind.
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
  const { createSchema = true, unqualifiedNamesInSchema = false } = options;
  const table = qualified(schema, MIGRATIONS_TABLE);
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [
      `tenantflow:migrations:${schema}`,
    ]);
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
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${table} (
         version integer PRIMARY KEY,
         name text NOT NULL,
         checksum text NOT NULL,
         applied_at timestamptz NOT NULL DEFAULT now()
       )`,
    );
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
    await client.query('COMMIT');
    return {
      schema,
      applied: pending.map((m) => m.name),
      alreadyApplied: migrations.length - pending.length,
    };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}
