import pg from 'pg';

/** One statement of a pipeline. Values are sent as text (or NULL): cast them in the SQL. */
export interface PipelinedStatement {
  readonly text: string;
  readonly values?: readonly (string | null)[];
}

/**
 * The extended-protocol messages `pg` writes, as its own `Query` writes them. Not in `pg`'s types;
 * stable across pg 8 (pg-cursor and pg-query-stream drive the same methods).
 */
interface ProtocolConnection {
  readonly stream: { cork?: () => void; uncork?: () => void };
  parse(message: { text: string; name: string; types: readonly number[] }): void;
  bind(message: {
    portal: string;
    statement: string;
    values: readonly (string | null)[];
    binary: boolean;
  }): void;
  describe(message: { type: 'P'; name: string }): void;
  execute(message: { portal: string; rows: number }): void;
  sync(): void;
}

/**
 * Several statements, each with bound parameters, sent in one write and answered in one round
 * trip: Parse, Bind, Describe and Execute for each, then a single Sync. PostgreSQL runs them in
 * order and stops at the first error, skipping the rest until the Sync. So `BEGIN` followed by a
 * statement opens a transaction and runs the statement in it, and a statement followed by `COMMIT`
 * commits only if the statement succeeded: after an error the transaction is left open and failed,
 * and the caller rolls it back.
 *
 * The parameters stay out of the query text, as with any bound parameter: nothing of them shows in
 * `pg_stat_activity`. Unnamed statements and portals only, so nothing outlives the round trip on
 * the connection (no session state).
 */
class PipelinedQuery extends pg.Query {
  readonly #statements: readonly PipelinedStatement[];

  constructor(
    statements: readonly PipelinedStatement[],
    callback: (error: Error | null, results: unknown) => void,
  ) {
    super({ text: statements.map((statement) => statement.text).join(';\n') });
    this.#statements = statements;
    (this as unknown as { callback: typeof callback }).callback = callback;
  }

  // A field, not a method: that is how pg's types declare `Submittable.submit`.
  override submit = (connection: unknown): Error | null => {
    const protocol = connection as ProtocolConnection;
    protocol.stream.cork?.();
    try {
      for (const statement of this.#statements) {
        protocol.parse({ text: statement.text, name: '', types: [] });
        protocol.bind({ portal: '', statement: '', values: statement.values ?? [], binary: false });
        protocol.describe({ type: 'P', name: '' });
        protocol.execute({ portal: '', rows: 0 });
      }
      protocol.sync();
    } finally {
      protocol.stream.uncork?.();
    }
    return null;
  };
}

/**
 * Runs `statements` in one round trip on `client` (see {@link PipelinedQuery}) and resolves with
 * one result per statement, in order. Rejects with the first statement's error that failed; the
 * statements after it did not run.
 *
 * @example
 * ```ts
 * const [, claim] = await pipelined(client, [{ text: 'BEGIN' }, { text: 'SELECT $1::int AS n', values: ['1'] }]);
 * claim.rows; // [{ n: 1 }], inside the transaction BEGIN opened
 * ```
 */
export function pipelined(
  client: pg.ClientBase,
  statements: readonly PipelinedStatement[],
): Promise<pg.QueryResult[]> {
  if (statements.length === 0) {
    return Promise.resolve([]);
  }
  return new Promise((resolve, reject) => {
    const query = new PipelinedQuery(statements, (error, results) => {
      if (error !== null) {
        reject(error);
        return;
      }
      // pg hands back one result for a single statement and an array for several.
      resolve(Array.isArray(results) ? (results as pg.QueryResult[]) : [results as pg.QueryResult]);
    });
    (client as unknown as { query: (submittable: unknown) => unknown }).query(query);
  });
}
