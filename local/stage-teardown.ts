import {
  DeleteSecretCommand,
  paginateListSecrets,
  type SecretListEntry,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { isValidTenantId } from '@tenantflow/shared/kernel/tenant-id';
import {
  STAGE_TAG_KEY,
  TENANT_TAG_KEY,
  tenantSecretPrefix,
} from '@tenantflow/shared/secrets/secrets-manager-secret-store';

/**
 * A stage name that reads like production: `prod`, `production`, `eu-prod`, `prd`, `live`. Its
 * tenant secrets are deleted only when the caller says yes explicitly: a production cluster kept by
 * `protectData` still has the tenants' roles, and their passwords are only in these secrets.
 */
const PRODUCTION_LIKE = /prod|prd|(^|[-_.])live([-_.]|$)/i;

/** Whether `stage` is named like a production stage (see `--yes`). */
export function looksLikeProduction(stage: string): boolean {
  return PRODUCTION_LIKE.test(stage);
}

/** Thrown when a production-like stage is torn down without being confirmed. */
export class UnconfirmedTeardownError extends Error {
  constructor(stage: string, options?: ErrorOptions) {
    super(
      `Stage '${stage}' is named like production: its tenant secrets are deleted only when confirmed (--yes).`,
      options,
    );
    this.name = 'UnconfirmedTeardownError';
  }
}

/** A tenant secret of the stage, as Secrets Manager lists it. */
export interface StageTenantSecret {
  readonly name: string;
  readonly arn: string | undefined;
  readonly tenantId: string;
  /** Already deleted with a recovery window (still listed, not billed, restorable until then). */
  readonly scheduledForDeletion: Date | undefined;
}

/** A secret under the stage's prefix that is left alone, and why. */
export interface SkippedSecret {
  readonly name: string;
  readonly reason: string;
}

export interface StageTenantSecrets {
  readonly prefix: string;
  readonly secrets: readonly StageTenantSecret[];
  readonly skipped: readonly SkippedSecret[];
}

/**
 * The tenant secrets of `stage`: the secrets named `tenantflow/<stage>/tenants/<tenantId>` and
 * tagged `tenant=<tenantId>` (as `SecretsManagerSecretStore` creates them), including those already
 * scheduled for deletion. A secret under the prefix whose name is not a tenant id, whose `tenant`
 * tag is missing or names another tenant, or whose stage tag names another stage is reported as
 * skipped, never deleted: tenantflow did not create it.
 *
 * @example
 * ```ts
 * const { secrets } = await listStageTenantSecrets(new SecretsManagerClient({}), 'dev');
 * ```
 */
export async function listStageTenantSecrets(
  client: SecretsManagerClient,
  stage: string,
): Promise<StageTenantSecrets> {
  const prefix = tenantSecretPrefix(stage);
  const secrets: StageTenantSecret[] = [];
  const skipped: SkippedSecret[] = [];
  const pages = paginateListSecrets(
    { client, pageSize: 100 },
    // The name filter is a prefix match (and so may also match other names); checked exactly below.
    { Filters: [{ Key: 'name', Values: [prefix] }], IncludePlannedDeletion: true },
  );
  for await (const page of pages) {
    for (const entry of page.SecretList ?? []) {
      const name = entry.Name;
      if (name === undefined || !name.startsWith(prefix)) {
        continue;
      }
      const refusal = notATenantSecret(entry, name.slice(prefix.length), stage);
      if (refusal !== undefined) {
        skipped.push({ name, reason: refusal });
        continue;
      }
      secrets.push({
        name,
        arn: entry.ARN,
        tenantId: name.slice(prefix.length),
        scheduledForDeletion: entry.DeletedDate,
      });
    }
  }
  secrets.sort((a, b) => a.name.localeCompare(b.name));
  skipped.sort((a, b) => a.name.localeCompare(b.name));
  return { prefix, secrets, skipped };
}

function notATenantSecret(entry: SecretListEntry, tenantId: string, stage: string): string | undefined {
  if (!isValidTenantId(tenantId)) {
    return 'its name does not end in a tenant id';
  }
  const tags = new Map((entry.Tags ?? []).map((tag) => [tag.Key, tag.Value]));
  if (tags.get(TENANT_TAG_KEY) !== tenantId) {
    return `it is not tagged ${TENANT_TAG_KEY}=${tenantId}`;
  }
  const taggedStage = tags.get(STAGE_TAG_KEY);
  if (taggedStage !== undefined && taggedStage !== stage) {
    return `it is tagged ${STAGE_TAG_KEY}=${taggedStage}`;
  }
  return undefined;
}

export interface StageTeardownOptions {
  /** Secrets Manager in the stage's account and region. */
  readonly client: SecretsManagerClient;
  readonly stage: string;
  /**
   * Delete at once, without a recovery window (`ForceDeleteWithoutRecovery`): the names are free
   * again at once, and the secrets cannot be restored. Also purges secrets already scheduled for
   * deletion.
   * @default false: Secrets Manager's default recovery window (30 days), during which a secret can
   * be restored and is not billed
   */
  readonly forceDelete?: boolean;
  /** Required for a stage named like production ({@link looksLikeProduction}). @default false */
  readonly confirmed?: boolean;
  /** List what would be deleted, delete nothing. @default false */
  readonly dryRun?: boolean;
}

/** What happened to one tenant secret. */
export type TenantSecretOutcome =
  | {
      readonly kind: 'scheduled';
      readonly secret: StageTenantSecret;
      readonly deletionDate: Date | undefined;
    }
  | { readonly kind: 'deleted'; readonly secret: StageTenantSecret }
  /** Already scheduled for deletion, and not forced: left to its recovery window. */
  | { readonly kind: 'already-scheduled'; readonly secret: StageTenantSecret }
  | { readonly kind: 'would-delete'; readonly secret: StageTenantSecret }
  | { readonly kind: 'failed'; readonly secret: StageTenantSecret; readonly error: string };

export interface StageTeardownReport {
  readonly stage: string;
  readonly prefix: string;
  readonly outcomes: readonly TenantSecretOutcome[];
  readonly skipped: readonly SkippedSecret[];
}

/**
 * Deletes the tenant secrets of a stage ({@link listStageTenantSecrets}): what `cdk destroy`
 * cannot, since provisioning created them at run time. With a recovery window unless
 * `forceDelete`. A stage named like production is refused unless `confirmed`. A deletion that fails
 * is reported and the others go on, so a second run finishes the job.
 *
 * Needs `secretsmanager:ListSecrets` and `secretsmanager:DeleteSecret` on
 * `tenantflow/<stage>/tenants/*`.
 *
 * @example
 * ```ts
 * const report = await deleteStageTenantSecrets({ client: new SecretsManagerClient({}), stage: 'dev' });
 * ```
 */
export async function deleteStageTenantSecrets(options: StageTeardownOptions): Promise<StageTeardownReport> {
  const { client, stage } = options;
  if (looksLikeProduction(stage) && options.confirmed !== true && options.dryRun !== true) {
    throw new UnconfirmedTeardownError(stage);
  }
  const { prefix, secrets, skipped } = await listStageTenantSecrets(client, stage);
  const outcomes: TenantSecretOutcome[] = [];
  for (const secret of secrets) {
    if (secret.scheduledForDeletion !== undefined && options.forceDelete !== true) {
      outcomes.push({ kind: 'already-scheduled', secret });
      continue;
    }
    if (options.dryRun === true) {
      outcomes.push({ kind: 'would-delete', secret });
      continue;
    }
    try {
      const response = await client.send(
        new DeleteSecretCommand({
          SecretId: secret.arn ?? secret.name,
          ...(options.forceDelete === true ? { ForceDeleteWithoutRecovery: true } : {}),
        }),
      );
      outcomes.push(
        options.forceDelete === true
          ? { kind: 'deleted', secret }
          : { kind: 'scheduled', secret, deletionDate: response.DeletionDate },
      );
    } catch (error) {
      outcomes.push({
        kind: 'failed',
        secret,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }
  return { stage, prefix, outcomes, skipped };
}

/**
 * The report as an operator reads it: one line per secret, then the counts.
 *
 * @example
 * ```ts
 * console.log(formatTeardownReport(report).join('\n'));
 * ```
 */
export function formatTeardownReport(report: StageTeardownReport): string[] {
  const lines: string[] = [];
  const day = (date: Date | undefined) => (date === undefined ? 'later' : date.toISOString().slice(0, 10));
  for (const outcome of report.outcomes) {
    const name = outcome.secret.name;
    switch (outcome.kind) {
      case 'scheduled':
        lines.push(`scheduled for deletion  ${name}  (restorable until ${day(outcome.deletionDate)})`);
        break;
      case 'deleted':
        lines.push(`deleted                 ${name}`);
        break;
      case 'already-scheduled':
        lines.push(
          `already scheduled       ${name}  (deleted on ${day(outcome.secret.scheduledForDeletion)}; --force-delete purges it now)`,
        );
        break;
      case 'would-delete':
        lines.push(`would delete            ${name}`);
        break;
      case 'failed':
        lines.push(`FAILED                  ${name}: ${outcome.error}`);
        break;
    }
  }
  for (const skipped of report.skipped) {
    lines.push(`left alone              ${skipped.name}  (${skipped.reason})`);
  }
  const count = (kind: TenantSecretOutcome['kind']) =>
    report.outcomes.filter((outcome) => outcome.kind === kind).length;
  lines.push(
    `${report.outcomes.length} tenant secret(s) under ${report.prefix}: ${count('scheduled')} scheduled for deletion, ` +
      `${count('deleted')} deleted, ${count('already-scheduled')} already scheduled, ` +
      `${count('would-delete')} would be deleted, ${count('failed')} failed; ${report.skipped.length} left alone`,
  );
  return lines;
}
