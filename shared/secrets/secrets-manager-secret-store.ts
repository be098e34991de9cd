import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CreateSecretCommand,
  DeleteSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  paginateListSecrets,
  RestoreSecretCommand,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { ConfigurationError } from '../kernel/errors.js';
import { assertValidTenantId, isValidTenantId } from '../kernel/tenant-id.js';
import type { SecretStore, TenantSecret } from './secret-store.js';
import { MalformedSecretError, parseTenantSecret, serializeTenantSecret } from './tenant-secret.js';

/** The tag every tenant secret carries, with the tenant id as its value. */
export const TENANT_TAG_KEY = 'tenant';

/** The tag naming the stage a secret belongs to, for cost reports and IAM conditions. */
export const STAGE_TAG_KEY = 'tenantflow:stage';

/**
 * Characters Secrets Manager allows in a name, minus `/`: a stage is one path segment, so the
 * prefix `tenantflow/<stage>/tenants/` of one stage is never a prefix of another stage's.
 */
const STAGE_PATTERN = /^[A-Za-z0-9_+=.@-]{1,64}$/;

/**
 * The name prefix shared by every tenant secret of `stage`: `tenantflow/<stage>/tenants/`.
 *
 * @example
 * ```ts
 * tenantSecretPrefix('prod'); // 'tenantflow/prod/tenants/'
 * ```
 */
export function tenantSecretPrefix(stage: string): string {
  if (!STAGE_PATTERN.test(stage)) {
    throw new ConfigurationError(
      `Invalid stage ${JSON.stringify(stage)} for secret names: use 1-64 letters, digits or _+=.@- (no '/')`,
    );
  }
  return `tenantflow/${stage}/tenants/`;
}

/**
 * The Secrets Manager name of a tenant's database credentials: `tenantflow/<stage>/tenants/<tenantId>`.
 * Throws a `ValidationError` for an invalid tenant id, so a name is never built from untrusted input.
 *
 * @example
 * ```ts
 * tenantSecretName('prod', 'acme'); // 'tenantflow/prod/tenants/acme'
 * ```
 */
export function tenantSecretName(stage: string, tenantId: string): string {
  assertValidTenantId(tenantId);
  return `${tenantSecretPrefix(stage)}${tenantId}`;
}

export interface SecretsManagerSecretStoreProps {
  /** The Secrets Manager client, built once at module scope by the caller. */
  readonly client: SecretsManagerClient;
  /** The deployment stage, the second segment of every secret name. */
  readonly stage: string;
  /**
   * How long a secret read from Secrets Manager is served from memory. `0` turns the cache off.
   * @default 30_000
   */
  readonly cacheTtlMs?: number;
  /**
   * The clock the cache runs on, in milliseconds; tests inject a fake one.
   * @default Date.now
   */
  readonly now?: () => number;
}

interface CacheEntry {
  readonly secret: TenantSecret;
  readonly expiresAt: number;
}

/** Past this many cached tenants the oldest entry is dropped, so a long-lived process stays small. */
const MAX_CACHE_ENTRIES = 1_000;

/**
 * Force-deletion finishes asynchronously in AWS, so a `put` right after a `delete` may briefly see
 * the old secret vanish or still be scheduled for deletion. AWS asks callers to back off and retry.
 */
const MAX_PUT_ATTEMPTS = 4;
const PUT_RETRY_BASE_DELAY_MS = 100;

/**
 * {@link SecretStore} over AWS Secrets Manager: one secret per tenant, named
 * `tenantflow/<stage>/tenants/<tenantId>`, tagged `tenant=<tenantId>` and `tenantflow:stage=<stage>`,
 * whose value is the JSON of the {@link TenantSecret} (the RDS secret shape plus `schema`, so AWS's
 * PostgreSQL rotation function can rotate it).
 *
 * Reads are cached in memory for `cacheTtlMs`, because a Lambda connects as a tenant on most
 * invocations and Secrets Manager bills and throttles per call. A `put` or `delete` through this
 * instance invalidates its entry at once; a change made elsewhere (another Lambda, a rotation) is
 * seen within the TTL, or at once after {@link SecretsManagerSecretStore.invalidate}, which a caller
 * should use when the cached password is refused.
 *
 * Needs `secretsmanager:CreateSecret, PutSecretValue, GetSecretValue, DescribeSecret, DeleteSecret,
 * RestoreSecret, TagResource` on `tenantflow/<stage>/tenants/*` and `ListSecrets` on `*`.
 *
 * @example
 * ```ts
 * const client = new SecretsManagerClient({});
 * const secrets = new SecretsManagerSecretStore({ client, stage: 'prod' });
 * const arn = await secrets.put('acme', { engine: 'postgres', host, port: 5432, username: 'acme_user', password, dbname: 'app', schema: 'acme' });
 * const secret = await secrets.get('acme');
 * ```
 */
export class SecretsManagerSecretStore implements SecretStore {
  private readonly client: SecretsManagerClient;
  private readonly stage: string;
  private readonly prefix: string;
  private readonly cacheTtlMs: number;
  private readonly now: () => number;
  private readonly cache = new Map<string, CacheEntry>();
  /**
   * Bumped by every invalidation. A read that started before an invalidation must not cache what it
   * fetched, or a `get` racing a `put` could put the old value back in the cache for a whole TTL.
   */
  private epoch = 0;

  constructor(props: SecretsManagerSecretStoreProps) {
    this.client = props.client;
    this.stage = props.stage;
    this.prefix = tenantSecretPrefix(props.stage);
    this.cacheTtlMs = props.cacheTtlMs ?? 30_000;
    this.now = props.now ?? Date.now;
    if (!Number.isFinite(this.cacheTtlMs) || this.cacheTtlMs < 0) {
      throw new ConfigurationError(`cacheTtlMs must be a finite number >= 0 (got ${this.cacheTtlMs})`);
    }
  }

  /**
   * Creates the tenant's secret, or stores a new version of it. A secret scheduled for deletion
   * (deleted outside this store, with a recovery window) is restored first, because a `put` means
   * the tenant must have credentials. Returns the secret's ARN.
   */
  async put(tenantId: string, secret: TenantSecret): Promise<string> {
    const name = tenantSecretName(this.stage, tenantId);
    const value = serializeTenantSecret(tenantId, secret);
    // One token for the whole put: SDK retries of a call whose response was lost, and our own
    // retries below, then cannot add a second version. A fresh token per put (rather than one
    // derived from the value) keeps A -> B -> A rotation working: AWS treats a known token with the
    // same value as a no-op, which would leave B current.
    const token = randomUUID();
    this.invalidate(tenantId);
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          return await this.createOrUpdate(tenantId, name, value, token);
        } catch (error) {
          if (attempt >= MAX_PUT_ATTEMPTS || !isDeletionRace(error)) {
            throw error;
          }
          await sleep(PUT_RETRY_BASE_DELAY_MS * 2 ** (attempt - 1));
        }
      }
    } finally {
      // Again after the write: a get that started meanwhile may have cached the old value.
      this.invalidate(tenantId);
    }
  }

  async get(tenantId: string): Promise<TenantSecret | undefined> {
    const name = tenantSecretName(this.stage, tenantId);
    const cached = this.cache.get(tenantId);
    if (cached !== undefined) {
      if (cached.expiresAt > this.now()) {
        return cached.secret;
      }
      this.cache.delete(tenantId);
    }
    const epochAtStart = this.epoch;
    let text: string | undefined;
    try {
      const response = await this.client.send(new GetSecretValueCommand({ SecretId: name }));
      text = response.SecretString;
    } catch (error) {
      // A secret scheduled for deletion cannot be read and is not listed: for us it is gone.
      // Misses are not cached: during provisioning another process may create it any moment.
      if (isErrorNamed(error, 'ResourceNotFoundException') || isScheduledForDeletion(error)) {
        return undefined;
      }
      throw error;
    }
    if (text === undefined) {
      throw new MalformedSecretError(tenantId, name, ['a binary secret, expected a JSON SecretString']);
    }
    const secret = parseTenantSecret(text, tenantId, name);
    if (this.cacheTtlMs > 0 && this.epoch === epochAtStart) {
      this.remember(tenantId, secret);
    }
    return secret;
  }

  /**
   * Deletes the tenant's secret with `ForceDeleteWithoutRecovery`. Without it Secrets Manager keeps
   * the name for a 7-30 day recovery window, and a tenant id could not be provisioned again until
   * it ends. Credentials of a deprovisioned tenant are worthless (its role is dropped with it), so
   * a recovery window protects nothing. Returns `false` when there was no readable secret,
   * including one already scheduled for deletion elsewhere (which is purged all the same).
   */
  async delete(tenantId: string): Promise<boolean> {
    const name = tenantSecretName(this.stage, tenantId);
    this.invalidate(tenantId);
    // AWS answers a forced delete of a missing secret with success (so retries are safe), so the
    // only way to tell "deleted" from "was not there" is to look first.
    let scheduledForDeletion: boolean;
    try {
      const described = await this.client.send(new DescribeSecretCommand({ SecretId: name }));
      scheduledForDeletion = described.DeletedDate !== undefined;
    } catch (error) {
      if (isErrorNamed(error, 'ResourceNotFoundException')) {
        return false;
      }
      throw error;
    }
    try {
      await this.client.send(new DeleteSecretCommand({ SecretId: name, ForceDeleteWithoutRecovery: true }));
    } catch (error) {
      if (isErrorNamed(error, 'ResourceNotFoundException')) {
        return false;
      }
      throw error;
    } finally {
      this.invalidate(tenantId);
    }
    return !scheduledForDeletion;
  }

  /**
   * Ids of the tenants of this stage that have a secret, sorted. Secrets scheduled for deletion are
   * left out, as are names under the prefix that are not a valid tenant id.
   */
  async list(): Promise<string[]> {
    const tenantIds = new Set<string>();
    const pages = paginateListSecrets(
      { client: this.client, pageSize: 100 },
      {
        // Both filters are prefix matches in AWS (tag-key `tenant` also matches `tenantflow:stage`),
        // so they only narrow the listing; the exact check on the name is done below.
        Filters: [
          { Key: 'tag-key', Values: [TENANT_TAG_KEY] },
          { Key: 'name', Values: [this.prefix] },
        ],
        IncludePlannedDeletion: false,
      },
    );
    for await (const page of pages) {
      for (const entry of page.SecretList ?? []) {
        const name = entry.Name;
        if (name === undefined || !name.startsWith(this.prefix) || entry.DeletedDate !== undefined) {
          continue;
        }
        const tenantId = name.slice(this.prefix.length);
        if (isValidTenantId(tenantId)) {
          tenantIds.add(tenantId);
        }
      }
    }
    return [...tenantIds].sort();
  }

  /**
   * Forgets the cached secret of a tenant, so the next `get` reads Secrets Manager. Call it when
   * the database refuses the cached password: the secret was probably rotated elsewhere.
   */
  invalidate(tenantId: string): void {
    this.epoch++;
    this.cache.delete(tenantId);
  }

  private remember(tenantId: string, secret: TenantSecret): void {
    this.cache.delete(tenantId);
    if (this.cache.size >= MAX_CACHE_ENTRIES) {
      // Maps iterate in insertion order, so the first key is the entry cached longest ago.
      const oldest = this.cache.keys().next();
      if (oldest.done !== true) {
        this.cache.delete(oldest.value);
      }
    }
    this.cache.set(tenantId, { secret, expiresAt: this.now() + this.cacheTtlMs });
  }

  private async createOrUpdate(
    tenantId: string,
    name: string,
    value: string,
    token: string,
  ): Promise<string> {
    try {
      const created = await this.client.send(
        new CreateSecretCommand({
          Name: name,
          Description: `Database credentials of tenantflow tenant '${tenantId}' (stage ${this.stage})`,
          SecretString: value,
          ClientRequestToken: token,
          Tags: [
            { Key: TENANT_TAG_KEY, Value: tenantId },
            { Key: STAGE_TAG_KEY, Value: this.stage },
          ],
        }),
      );
      return created.ARN ?? name;
    } catch (error) {
      if (isScheduledForDeletion(error)) {
        // What AWS answers when the name belongs to a secret in its recovery window.
        await this.client.send(new RestoreSecretCommand({ SecretId: name }));
      } else if (isErrorNamed(error, 'ResourceExistsException')) {
        // moto answers ResourceExists even for a secret scheduled for deletion, and then lets
        // PutSecretValue succeed on it while it stays deleted; AWS would have refused the put.
        // Looking costs one call on the rotation path only, and is correct on both.
        const described = await this.client.send(new DescribeSecretCommand({ SecretId: name }));
        if (described.DeletedDate !== undefined) {
          await this.client.send(new RestoreSecretCommand({ SecretId: name }));
        }
      } else {
        throw error;
      }
    }
    const updated = await this.client.send(
      new PutSecretValueCommand({ SecretId: name, SecretString: value, ClientRequestToken: token }),
    );
    return updated.ARN ?? name;
  }
}

function isErrorNamed(error: unknown, name: string): boolean {
  return error instanceof Error && error.name === name;
}

/**
 * Secrets Manager reports an operation on a secret in its recovery window as an
 * `InvalidRequestException` whose message mentions the deletion ("scheduled for deletion",
 * "marked for deletion"; moto: "marked deleted"). There is no more specific code to match.
 */
function isScheduledForDeletion(error: unknown): boolean {
  return isErrorNamed(error, 'InvalidRequestException') && /delet/i.test((error as Error).message);
}

/** The secret vanished, or was still being deleted, between two calls of one `put`. */
function isDeletionRace(error: unknown): boolean {
  return isErrorNamed(error, 'ResourceNotFoundException') || isScheduledForDeletion(error);
}
