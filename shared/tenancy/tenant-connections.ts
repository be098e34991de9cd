import pg from 'pg';
import { surviveConnectionLossWhileCheckedOut } from '../db/connections.js';
import { type PipelinedStatement, pipelined } from '../db/pipelined-query.js';
import { type Queryable, SQLSTATE, sqlState } from '../db/sql.js';
import { TenantContextRequiredError, TenantNotFoundError } from '../kernel/errors.js';
import { assertValidTenantId } from '../kernel/tenant-id.js';
import type { SecretStore } from '../secrets/secret-store.js';
import { getCurrentTenantId } from './tenant-context.js';

/**
 * What task code gets: a connection that is logged in **as the tenant's own role**. Unqualified
 * names resolve to the tenant's schema through the role's default `search_path`; PostgreSQL, not
 * tenantflow, refuses everything outside that schema.
 */
export interface TenantDb extends Queryable {
  readonly tenantId: string;
  /**
   * Runs `work` in one transaction on one connection; rolls back if it throws. When `signal`
   * aborts, the connection is closed at once, which rolls the transaction back on the server.
   */
  transaction<T>(
    work: (client: Queryable, opened: pg.QueryResult | undefined) => Promise<T>,
    options?: TransactionOptions<T>,
  ): Promise<T>;
}

export interface TransactionOptions<T> {
  readonly signal?: AbortSignal;
  /**
   * Sent with `BEGIN` in the same round trip, as the transaction's first statement; its result is
   * `work`'s second argument. If it fails, `work` does not run and the transaction rolls back.
   */
  readonly withBegin?: PipelinedStatement;
  /**
   * Sent with `COMMIT` in the same round trip, after `work` returned `value`. If it fails, the
   * server skips that COMMIT, the transaction rolls back and its error is thrown.
   */
  readonly withCommit?: (value: T) => PipelinedStatement;
}

export interface TenantConnectionsOptions {
  readonly secrets: Pick<SecretStore, 'get'>;
  /** Tenants whose pools are kept open at once (least recently used are closed first). Default 8. */
  readonly maxTenants?: number;
  /** Connections per tenant pool. Default 2 (one Lambda invocation at a time). */
  readonly maxConnectionsPerTenant?: number;
  readonly idleTimeoutMillis?: number;
  /** Evicts the cached secret after an authentication failure, so a rotated password is re-read. */
  readonly invalidateSecret?: (tenantId: string) => void;
  /**
   * TLS for tenant-role connections, which go through the same RDS Proxy as the platform's.
   * @default undefined (pg's default: no TLS unless `PGSSLMODE` says so)
   */
  readonly ssl?: pg.ClientConfig['ssl'];
}

const connectionDefaults = { maxTenants: 8, maxConnectionsPerTenant: 2, idleTimeoutMillis: 30_000 };

/**
 * Per-tenant `pg` pools in a small LRU, bounded in total at `maxTenants × maxConnectionsPerTenant`
 * connections. Each pool reads the tenant's password from the SecretStore **on every new
 * connection**, so a rotated password is picked up on the next connect without restarting.
 *
 * @example
 * ```ts
 * const connections = new TenantConnections({ secrets });
 * const db = await connections.tenantDb('acme');
 * await db.query('SELECT count(*) FROM executions'); // acme.executions, as acme_user
 * ```
 */
export class TenantConnections {
  readonly #options: Required<Omit<TenantConnectionsOptions, 'invalidateSecret' | 'ssl'>> &
    Pick<TenantConnectionsOptions, 'invalidateSecret' | 'ssl'>;
  /** Insertion order is recency order: a hit is moved to the end, eviction takes the first. */
  readonly #pools = new Map<string, pg.Pool>();
  readonly #creating = new Map<string, Promise<pg.Pool>>();

  constructor(options: TenantConnectionsOptions) {
    this.#options = { ...connectionDefaults, ...options };
  }

  /** A connection handle for `tenantId`. Fails closed when the tenant has no credentials. */
  async tenantDb(tenantId: string): Promise<TenantDb> {
    assertValidTenantId(tenantId);
    // Resolve the pool now, so a tenant without credentials fails here, and again on each use,
    // so a handle stays valid after its pool was evicted or replaced by a rotation.
    await this.#pool(tenantId);
    return {
      tenantId,
      query: (text, values) =>
        this.#withRetryOnAuthFailure(tenantId, async () => (await this.#pool(tenantId)).query(text, values)),
      transaction: async (work, options) => {
        const client = await this.#withRetryOnAuthFailure(tenantId, async () =>
          (await this.#pool(tenantId)).connect(),
        );
        let destroyed = false;
        // An abandoned transaction (its work timed out) must not be finished by late queries of
        // that work in autocommit mode: closing the connection makes the server roll it back and
        // every later query on it fail.
        const destroy = () => {
          if (!destroyed) {
            destroyed = true;
            client.release(new Error('transaction abandoned'));
          }
        };
        if (options?.signal?.aborted) {
          destroy();
          throw options.signal.reason;
        }
        options?.signal?.addEventListener('abort', destroy, { once: true });
        try {
          let opened: pg.QueryResult | undefined;
          if (options?.withBegin === undefined) {
            await client.query('BEGIN');
          } else {
            [, opened] = await pipelined(client, [{ text: 'BEGIN' }, options.withBegin]);
          }
          const result = await work(client, opened);
          if (options?.withCommit === undefined) {
            await client.query('COMMIT');
          } else {
            await pipelined(client, [options.withCommit(result), { text: 'COMMIT' }]);
          }
          return result;
        } catch (error) {
          if (!destroyed) {
            await client.query('ROLLBACK').catch(destroy);
          }
          throw error;
        } finally {
          options?.signal?.removeEventListener('abort', destroy);
          if (!destroyed) {
            client.release();
          }
        }
      },
    } as TenantDb;
  }

  /** The connection of the tenant in the current `switch()`; throws outside one (fail closed). */
  async currentTenantDb(): Promise<TenantDb> {
    const tenantId = getCurrentTenantId();
    if (tenantId === undefined) {
      throw new TenantContextRequiredError('No tenant context is active: tenantDb needs a tenant switch()');
    }
    return this.tenantDb(tenantId);
  }

  /** Closes the tenant's pool, e.g. after its credentials changed or it was removed. */
  async forget(tenantId: string): Promise<void> {
    const pool = this.#pools.get(tenantId);
    this.#pools.delete(tenantId);
    this.#options.invalidateSecret?.(tenantId);
    await pool?.end().catch(() => undefined);
  }

  /** The bound on tenant-role connections: pools kept open at once × connections per pool. */
  get limits(): { readonly maxTenants: number; readonly maxConnectionsPerTenant: number } {
    return {
      maxTenants: this.#options.maxTenants,
      maxConnectionsPerTenant: this.#options.maxConnectionsPerTenant,
    };
  }

  /** How many tenant pools are open: for tests and metrics. */
  get openPools(): number {
    return this.#pools.size;
  }

  async close(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((pool) => pool.end().catch(() => undefined)));
  }

  async #pool(tenantId: string): Promise<pg.Pool> {
    const existing = this.#pools.get(tenantId);
    if (existing !== undefined) {
      this.#pools.delete(tenantId);
      this.#pools.set(tenantId, existing);
      return existing;
    }
    // Concurrent first uses of one tenant share one creation: each making its own pool would open
    // connections outside the bound, kept by no one.
    let creating = this.#creating.get(tenantId);
    if (creating === undefined) {
      creating = this.#createPool(tenantId).finally(() => this.#creating.delete(tenantId));
      this.#creating.set(tenantId, creating);
    }
    return creating;
  }

  async #createPool(tenantId: string): Promise<pg.Pool> {
    const secret = await this.#options.secrets.get(tenantId);
    if (secret === undefined) {
      throw new TenantNotFoundError(
        tenantId,
        `Tenant '${tenantId}' has no database credentials (is it provisioned?)`,
      );
    }
    const pool = new pg.Pool({
      host: secret.host,
      port: secret.port,
      database: secret.dbname,
      user: secret.username,
      ssl: this.#options.ssl,
      // A function, so every new connection reads the current password: rotation needs no restart.
      password: async () => {
        const current = await this.#options.secrets.get(tenantId);
        if (current === undefined) {
          throw new TenantNotFoundError(tenantId, `Tenant '${tenantId}' no longer has database credentials`);
        }
        return current.password;
      },
      max: this.#options.maxConnectionsPerTenant,
      idleTimeoutMillis: this.#options.idleTimeoutMillis,
      // Not the tenant's id: pg_stat_activity shows every session's application_name to every role.
      application_name: 'tenantflow-task',
    });
    pool.on('error', function discardDeadIdleTenantClient() {});
    pool.on('connect', surviveConnectionLossWhileCheckedOut);
    this.#pools.set(tenantId, pool);
    while (this.#pools.size > this.#options.maxTenants) {
      const [oldest] = this.#pools.keys();
      if (oldest === undefined) {
        break;
      }
      const evicted = this.#pools.get(oldest);
      this.#pools.delete(oldest);
      // Queries already running on the evicted pool finish; end() waits for checked-out clients.
      void evicted?.end().catch(() => undefined);
    }
    return pool;
  }

  /** A password rotated by another process is seen after the cached secret expires; don't wait for that. */
  async #withRetryOnAuthFailure<T>(tenantId: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (isEndedPoolError(error)) {
        // The pool was evicted between being looked up and being used: the retry gets a live one.
        return work();
      }
      if (sqlState(error) !== SQLSTATE.invalidPassword) {
        throw error;
      }
      this.#options.invalidateSecret?.(tenantId);
      return work();
    }
  }
}

/** What `pg.Pool` throws when used after `end()`; it has no code, only this message. */
function isEndedPoolError(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('Cannot use a pool after calling end');
}
