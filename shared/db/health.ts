import type { Queryable } from './sql.js';

export type DatabaseHealth = { readonly ok: true } | { readonly ok: false; readonly error: unknown };

/** One round trip to the database. Never throws: the caller decides what unhealthy means. */
export async function checkDatabase(db: Queryable): Promise<DatabaseHealth> {
  try {
    await db.query('SELECT 1');
    return { ok: true };
  } catch (error) {
    return { ok: false, error };
  }
}
