import { CONTROL_SCHEMA, type Queryable, qualified, SQLSTATE, single, sqlState } from '../db/sql.js';
import { TenantAlreadyExistsError } from '../kernel/errors.js';
import {
  emptyTenantConfig,
  MAX_CONFIG_BYTES,
  MAX_METADATA_BYTES,
  profileTooLarge,
  type TenantConfig,
} from './tenant-config.js';
import {
  type ClaimRequest,
  type ClaimResult,
  emptyStatusCounts,
  type NewTenant,
  type RemoveTenantOutcome,
  type StatusChange,
  type TenantInfo,
  type TenantPage,
  type TenantPageQuery,
  type TenantProfilePatch,
  type TenantRegistry,
  type TenantStatus,
} from './tenant-registry.js';

interface TenantRow extends Record<string, unknown> {
  tenant_id: string;
  name: string;
  status: TenantStatus;
  metadata: Record<string, unknown>;
  config: TenantConfig;
  created_at: Date;
  last_error: string | null;
  current_step: string | null;
}

const TENANTS = qualified(CONTROL_SCHEMA, 'tenants');
const MERGE_PATCH = qualified(CONTROL_SCHEMA, 'jsonb_merge_patch');
const COLUMNS = 'tenant_id, name, status, metadata, config, created_at, last_error, current_step';

/**
 * The {@link TenantRegistry} kept in the `tenantflow.tenants` control table.
 *
 * It works over the platform pool: every statement is a single, schema-qualified, parameterised
 * query, so it is safe behind RDS Proxy and never pins a session. Run `migrateControlSchema()`
 * before first use.
 *
 * @example
 * ```ts
 * const tenants = new TenantContextSwitch(new PgTenantRegistry(pool), new ProvisioningRegistration(provisioning));
 * ```
 */
export class PgTenantRegistry implements TenantRegistry {
  readonly #changeListeners = new Set<(tenantId: string) => void>();

  constructor(private readonly db: Queryable) {}

  /**
   * Calls `listener` with a tenant's id after this registry changed its status, profile or
   * config, or removed it: what caches a tenant in this process forget it by. Returns the unsubscribe.
   * A change made by another process is not seen here; such caches are bounded in time.
   */
  onChange(listener: (tenantId: string) => void): () => void {
    this.#changeListeners.add(listener);
    return () => this.#changeListeners.delete(listener);
  }

  #changed(tenantId: string): void {
    for (const listener of this.#changeListeners) {
      listener(tenantId);
    }
  }

  async create(tenant: NewTenant): Promise<TenantInfo> {
    try {
      const { rows } = await this.db.query<TenantRow>(
        `INSERT INTO ${TENANTS} (tenant_id, name, status, metadata, config, api_key_hash)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${COLUMNS}`,
        [
          tenant.tenantId,
          tenant.name,
          tenant.status,
          JSON.stringify(tenant.metadata),
          JSON.stringify(tenant.config ?? emptyTenantConfig()),
          tenant.apiKeyHash ?? null,
        ],
      );
      return toTenantInfo(single(rows, 'the tenant registry'));
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

  async listPage(query: TenantPageQuery): Promise<TenantPage> {
    // Keyset, never OFFSET: the primary key's index starts each page right after the last id of the
    // previous one. One row more than asked says whether there is a next page.
    const { rows } = await this.db.query<TenantRow>(
      `SELECT ${COLUMNS} FROM ${TENANTS}
        WHERE ($1::text IS NULL OR tenant_id > $1::text) AND ($2::text IS NULL OR status = $2::text)
        ORDER BY tenant_id
        LIMIT $3`,
      [query.after ?? null, query.status ?? null, query.limit + 1],
    );
    const tenants = rows.slice(0, query.limit).map(toTenantInfo);
    return { tenants, next: rows.length > query.limit ? tenants.at(-1)?.tenantId : undefined };
  }

  async setStatus(
    tenantId: string,
    status: TenantStatus,
    allowedFrom?: readonly TenantStatus[],
  ): Promise<StatusChange> {
    const { rows } = await this.db.query<TenantRow>(
      `UPDATE ${TENANTS} SET status = $2, updated_at = now()
        WHERE tenant_id = $1 AND ($3::text[] IS NULL OR status = ANY($3::text[]))
        RETURNING ${COLUMNS}`,
      [tenantId, status, allowedFrom ?? null],
    );
    this.#changed(tenantId);
    if (rows[0] !== undefined) {
      return { kind: 'updated', tenant: toTenantInfo(rows[0]) };
    }
    const current = await this.get(tenantId);
    return current === undefined ? { kind: 'not_found' } : { kind: 'status_mismatch', tenant: current };
  }

  async claim(tenantId: string, request: ClaimRequest): Promise<TenantInfo | undefined> {
    const { rows } = await this.db.query<TenantRow>(
      `UPDATE ${TENANTS}
          SET lease_owner = $3, lease_expires_at = now() + make_interval(secs => $4::double precision / 1000),
              updated_at = now(), current_step = COALESCE($5::text, current_step)
        WHERE tenant_id = $1 AND status = $2
          AND (lease_owner IS NULL OR lease_owner = $3 OR lease_expires_at < now())
        RETURNING ${COLUMNS}`,
      [tenantId, request.status, request.owner, request.leaseMs, request.step ?? null],
    );
    return rows[0] === undefined ? undefined : toTenantInfo(rows[0]);
  }

  async releaseClaim(tenantId: string, owner: string, result: ClaimResult): Promise<TenantInfo | undefined> {
    // A field is written only when the result names it (the boolean flags), so one statement
    // serves success, failure and partial progress.
    const { rows } = await this.db.query<TenantRow>(
      `UPDATE ${TENANTS}
          SET lease_owner = NULL, lease_expires_at = NULL, updated_at = now(),
              status       = COALESCE($3::text, status),
              last_error   = CASE WHEN $4::boolean THEN $5::text ELSE last_error END,
              secret_ref   = CASE WHEN $6::boolean THEN $7::text ELSE secret_ref END,
              api_key_hash = CASE WHEN $8::boolean THEN $9::text ELSE api_key_hash END,
              current_step = CASE WHEN $10::boolean THEN $11::text ELSE current_step END
        WHERE tenant_id = $1 AND lease_owner = $2
        RETURNING ${COLUMNS}`,
      [
        tenantId,
        owner,
        result.status ?? null,
        result.lastError !== undefined,
        result.lastError ?? null,
        result.secretRef !== undefined,
        result.secretRef ?? null,
        result.apiKeyHash !== undefined,
        result.apiKeyHash ?? null,
        result.currentStep !== undefined,
        result.currentStep ?? null,
      ],
    );
    this.#changed(tenantId);
    return rows[0] === undefined ? undefined : toTenantInfo(rows[0]);
  }

  async replaceApiKeyHash(
    tenantId: string,
    apiKeyHash: string,
    allowedFrom: readonly TenantStatus[],
  ): Promise<StatusChange> {
    const { rows } = await this.db.query<TenantRow>(
      `UPDATE ${TENANTS} SET api_key_hash = $2, updated_at = now()
        WHERE tenant_id = $1 AND status = ANY($3::text[])
        RETURNING ${COLUMNS}`,
      [tenantId, apiKeyHash, allowedFrom],
    );
    if (rows[0] !== undefined) {
      return { kind: 'updated', tenant: toTenantInfo(rows[0]) };
    }
    // Only to say why nothing changed; the decision was the UPDATE's alone.
    const current = await this.get(tenantId);
    return current === undefined ? { kind: 'not_found' } : { kind: 'status_mismatch', tenant: current };
  }

  async getCredentialRefs(tenantId: string) {
    const { rows } = await this.db.query<{ api_key_hash: string | null; secret_ref: string | null }>(
      `SELECT api_key_hash, secret_ref FROM ${TENANTS} WHERE tenant_id = $1`,
      [tenantId],
    );
    const row = rows[0];
    return row === undefined
      ? undefined
      : { apiKeyHash: row.api_key_hash ?? undefined, secretRef: row.secret_ref ?? undefined };
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
    const outcome = single(rows, 'the tenant registry');
    this.#changed(tenantId);
    if (outcome.removed) {
      return 'removed';
    }
    return outcome.existed ? 'status_mismatch' : 'not_found';
  }

  async updateProfile(tenantId: string, patch: TenantProfilePatch): Promise<TenantInfo | undefined> {
    // One statement, so two concurrent PATCHes each apply in full and neither is lost; the size
    // limits hold for the merged result, so repeated patches cannot grow a tenant without bound.
    const merged = {
      metadata: `${MERGE_PATCH}(metadata, COALESCE($3::jsonb, '{}'::jsonb))`,
      config: `${MERGE_PATCH}(config, COALESCE($4::jsonb, '{}'::jsonb))`,
    };
    const { rows } = await this.db.query<TenantRow>(
      `UPDATE ${TENANTS}
          SET name = COALESCE($2::text, name), metadata = ${merged.metadata}, config = ${merged.config},
              updated_at = now()
        WHERE tenant_id = $1
          AND octet_length(${merged.metadata}::text) <= $5 AND octet_length(${merged.config}::text) <= $6
        RETURNING ${COLUMNS}`,
      [
        tenantId,
        patch.name ?? null,
        patch.metadata === undefined ? null : JSON.stringify(patch.metadata),
        patch.config === undefined ? null : JSON.stringify(patch.config),
        MAX_METADATA_BYTES,
        MAX_CONFIG_BYTES,
      ],
    );
    this.#changed(tenantId);
    if (rows[0] !== undefined) {
      return toTenantInfo(rows[0]);
    }
    if ((await this.get(tenantId)) === undefined) {
      return undefined;
    }
    throw profileTooLarge();
  }

  async findByApiKeyHash(apiKeyHash: string): Promise<TenantInfo | undefined> {
    const { rows } = await this.db.query<TenantRow>(
      `SELECT ${COLUMNS} FROM ${TENANTS} WHERE api_key_hash = $1`,
      [apiKeyHash],
    );
    return rows[0] === undefined ? undefined : toTenantInfo(rows[0]);
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
    config: { ...emptyTenantConfig(), ...row.config },
    ...(row.last_error === null ? {} : { lastError: row.last_error }),
    ...(row.current_step === null ? {} : { currentStep: row.current_step }),
  };
}
