import { resolve } from 'node:path';
import { LocalSecretStore } from '../secrets/local-secret-store.js';
import type { SecretStore } from '../secrets/secret-store.js';
import { SecretsManagerSecretStore } from '../secrets/secrets-manager-secret-store.js';
import type { PlatformCore } from './core.js';

/** The tenant secrets' store the configuration names: Secrets Manager in AWS, files locally. */
export function createSecretStore(core: Pick<PlatformCore, 'config' | 'secretsManager'>): SecretStore {
  const { config } = core;
  if (config.secrets.backend === 'local') {
    return new LocalSecretStore({ directory: resolve(config.secrets.directory) });
  }
  return new SecretsManagerSecretStore({ client: core.secretsManager(), stage: config.stage });
}
