import { CONTROL_SCHEMA, type Queryable, qualified, SQLSTATE, sqlState } from '../db/sql.js';
import { TenantAlreadyExistsError } from '../errors.js';
import {
  emptyStatusCounts,
  type NewTenant,
  type RemoveTenantOutcome,
  type TenantInfo,
  type TenantRegistry,
  type TenantStatus,
} from './tenant-registry.js';

interface TenantRow extends Record<string, unknown> {
  tenant_id: string;
  name: string;
  status: TenantStatus;
  metadata: Record<string, unknown>;
  created_at: Date;
}

const TENANTS = qualified(CONTROL_SCHEMA, 'tenants');
const COLUMNS = 'tenant_id, name, status, metadata, created_at';

/**
 * The {@link TenantRegistry} kept in the `tenantflow.tenants` control table.
 *
 * It works over the platform pool: every statement is a single, schema-qualified, parameterised
 * query, so it is safe behind RDS Proxy and never pins a session. Run `migrateControlSchema()`
 * before first use.
 *
 * @example
 * ```ts
 * const tenants = new TenantContextSwitch(new PgTenantRegistry(pool));
 * ```
 */
export class PgTenantRegistry implements TenantRegistry {
  constructor(private readonly db: Queryable) {}

  async create(tenant: NewTenant): Promise<TenantInfo> {
    try {
      const { rows } = await this.db.query<TenantRow>(
        `INSERT INTO ${TENANTS} (tenant_id, name, status, metadata) VALUES ($1, $2, $3, $4) RETURNING ${COLUMNS}`,
        [tenant.tenantId, tenant.name, tenant.status, JSON.stringify(tenant.metadata)],
      );
      return toTenantInfo(single(rows));
    } catch (error) {
      if (sqlState(error) === SQLSTATE.uniqueViolation) {
        throw new TenantAlreadyExistsError(tenant.tenantId, { cause: error });
      }
      throw error;
    }
  }

  async get(tenantId: string): Promise<TenantInfo | undefined> {
    const { rows } = await this.db.query<TenantRow>(
      `SELECT ${COLUMNS} FROM ${TENANTS} WHERE tenant_id = $1`,
      [tenantId],
    );
    return rows[0] === undefined ? undefined : toTenantInfo(rows[0]);
  }

  async list(): Promise<TenantInfo[]> {
    const { rows } = await this.db.query<TenantRow>(`SELECT ${COLUMNS} FROM ${TENANTS} ORDER BY tenant_id`);
    return rows.map(toTenantInfo);
  }

  async setStatus(tenantId: string, status: TenantStatus): Promise<TenantInfo | undefined> {
    const { rows } = await this.db.query<TenantRow>(
      `UPDATE ${TENANTS} SET status = $2, updated_at = now() WHERE tenant_id = $1 RETURNING ${COLUMNS}`,
      [tenantId, status],
    );
    return rows[0] === undefined ? undefined : toTenantInfo(rows[0]);
  }

  async remove(tenantId: string, onlyIfStatus?: TenantStatus): Promise<RemoveTenantOutcome> {
    // One statement decides and deletes, so a concurrent status change cannot slip in between.
    const { rows } = await this.db.query<{ removed: boolean; existed: boolean }>(
      `WITH target AS (SELECT tenant_id, status FROM ${TENANTS} WHERE tenant_id = $1),
            deleted AS (
              DELETE FROM ${TENANTS} t USING target
               WHERE t.tenant_id = target.tenant_id AND ($2::text IS NULL OR t.status = $2::text)
               RETURNING t.tenant_id)
       SELECT EXISTS (SELECT 1 FROM deleted) AS removed, EXISTS (SELECT 1 FROM target) AS existed`,
      [tenantId, onlyIfStatus ?? null],
    );
    const outcome = single(rows);
    if (outcome.removed) {
      return 'removed';
    }
    return outcome.existed ? 'status_mismatch' : 'not_found';
  }

  async countByStatus(): Promise<Record<TenantStatus, number>> {
    const { rows } = await this.db.query<{ status: TenantStatus; count: number }>(
      `SELECT status, count(*)::int AS count FROM ${TENANTS} GROUP BY status`,
    );
    const counts = emptyStatusCounts();
    for (const row of rows) {
      counts[row.status] = row.count;
    }
    return counts;
  }
}

function toTenantInfo(row: TenantRow): TenantInfo {
  return {
    tenantId: row.tenant_id,
    name: row.name,
    status: row.status,
    active: row.status === 'active',
    createdAt: row.created_at,
    metadata: row.metadata,
  };
}

function single<T>(rows: T[]): T {
  const [row] = rows;
  if (row === undefined) {
    throw new Error('Expected exactly one row from the tenant registry');
  }
  return row;
}
