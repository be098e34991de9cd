/**
 * Where tenant database credentials live: the {@link SecretStore} port and its two adapters,
 * Secrets Manager in AWS and files under `.tenantflow/secrets/` in local mode.
 *
 * @example
 * ```ts
 * import { LocalSecretStore, type SecretStore } from '@tenantflow/shared/secrets';
 * const secrets: SecretStore = new LocalSecretStore();
 * ```
 */
export {
  DEFAULT_LOCAL_SECRET_DIRECTORY,
  LocalSecretStore,
  type LocalSecretStoreProps,
} from './local-secret-store.js';
export type { SecretStore, TenantSecret } from './secret-store.js';
export {
  SecretsManagerSecretStore,
  type SecretsManagerSecretStoreProps,
  STAGE_TAG_KEY,
  TENANT_TAG_KEY,
  tenantSecretName,
  tenantSecretPrefix,
} from './secrets-manager-secret-store.js';
export {
  MalformedSecretError,
  parseTenantSecret,
  serializeTenantSecret,
  tenantSecretProblems,
} from './tenant-secret.js';
