import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';

/** Secrets the local platform generates once and keeps across restarts, in `<home>/local-secrets.json` (0600). */
export interface LocalSecrets {
  /** Superuser password of the embedded PostgreSQL, fixed when its data directory is first created. */
  readonly postgresPassword: string;
  /** Admin bearer token, used when `TENANTFLOW_ADMIN_TOKEN` is not set. */
  readonly adminToken: string;
  /** Password of the `tenantflow_admin` database role (DDL: provisioning, migrations). */
  readonly adminRolePassword: string;
  /** Password of the `tenantflow_platform` database role (everything that runs per request). */
  readonly platformRolePassword: string;
  /**
   * Port of the embedded PostgreSQL, chosen once and then kept: tenant secrets record host and
   * port, so a server that moved to another port would strand every tenant's credentials.
   */
  readonly postgresPort?: number | undefined;
}

const localSecretsSchema = z.object({
  postgresPassword: z.string().min(16),
  adminToken: z.string().min(24),
  adminRolePassword: z.string().min(16),
  platformRolePassword: z.string().min(16),
  postgresPort: z.number().int().min(1).max(65535).optional(),
});

/**
 * Reads the local secrets, generating and saving any that are missing. The file is written to a
 * temporary name and renamed, so a crash never leaves a half-written file; its mode is 0600.
 */
export async function loadOrCreateLocalSecrets(home: string, postgresPort?: number): Promise<LocalSecrets> {
  await mkdir(home, { recursive: true, mode: 0o755 });
  const file = join(home, 'local-secrets.json');
  let existing: Partial<LocalSecrets> = {};
  try {
    existing = localSecretsSchema.partial().parse(JSON.parse(await readFile(file, 'utf8')));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new Error(
        `${file} is unreadable or corrupt; fix or remove it (the admin token will be regenerated)`,
        {
          cause: error,
        },
      );
    }
  }
  const secrets: LocalSecrets = {
    postgresPassword: existing.postgresPassword ?? randomBytes(24).toString('base64url'),
    adminToken: existing.adminToken ?? `tfa_${randomBytes(24).toString('base64url')}`,
    adminRolePassword: existing.adminRolePassword ?? randomBytes(24).toString('base64url'),
    platformRolePassword: existing.platformRolePassword ?? randomBytes(24).toString('base64url'),
    postgresPort: existing.postgresPort ?? postgresPort,
  };
  if (
    secrets.postgresPassword !== existing.postgresPassword ||
    secrets.adminToken !== existing.adminToken ||
    secrets.adminRolePassword !== existing.adminRolePassword ||
    secrets.platformRolePassword !== existing.platformRolePassword ||
    secrets.postgresPort !== existing.postgresPort
  ) {
    const temporary = `${file}.${process.pid}.tmp`;
    await writeFile(temporary, `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600 });
    await rename(temporary, file);
  }
  return secrets;
}
