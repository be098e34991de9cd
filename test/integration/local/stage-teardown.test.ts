import { randomBytes } from 'node:crypto';
import {
  CreateSecretCommand,
  DeleteSecretCommand,
  DescribeSecretCommand,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { SecretsManagerSecretStore } from '@tenantflow/shared/secrets/secrets-manager-secret-store';
import { afterAll, describe, expect, inject, it } from 'vitest';
import {
  deleteStageTenantSecrets,
  formatTeardownReport,
  listStageTenantSecrets,
  looksLikeProduction,
  UnconfirmedTeardownError,
} from '../../../local/stage-teardown.js';
import { motoSecretsManager } from '../../support/database-secrets.js';
import { MOTO_INSTALL_HINT } from '../../support/moto-setup.js';
import { tenantSecret } from '../../support/secret-store.contract.js';

const motoEndpoint = inject('motoEndpoint');
const motoMissing = motoEndpoint === '';

const clients: SecretsManagerClient[] = [];
afterAll(() => {
  for (const client of clients) {
    client.destroy();
  }
});

/** A stage no other test uses, so tests share one moto_server without seeing each other's secrets. */
const uniqueStage = (prefix = 't') => `${prefix}${randomBytes(5).toString('hex')}`;

/** A stage with `tenantIds` provisioned the way the platform does it (through the secret store). */
async function stageWithTenants(tenantIds: readonly string[], stage = uniqueStage()) {
  const client = motoSecretsManager(motoEndpoint);
  clients.push(client);
  const store = new SecretsManagerSecretStore({ client, stage, cacheTtlMs: 0 });
  for (const tenantId of tenantIds) {
    await store.put(tenantId, tenantSecret(tenantId));
  }
  return { client, store, stage };
}

/** Whether Secrets Manager still has the secret, and whether it is scheduled for deletion. */
async function stateOf(client: SecretsManagerClient, name: string): Promise<'active' | 'scheduled' | 'gone'> {
  try {
    const described = await client.send(new DescribeSecretCommand({ SecretId: name }));
    return described.DeletedDate === undefined ? 'active' : 'scheduled';
  } catch (error) {
    if (error instanceof Error && error.name === 'ResourceNotFoundException') {
      return 'gone';
    }
    throw error;
  }
}

describe('looksLikeProduction', () => {
  it.each(['prod', 'production', 'eu-prod', 'prod-2', 'prd', 'live', 'eu-live'])(
    'takes %s for production',
    (stage) => {
      expect(looksLikeProduction(stage)).toBe(true);
    },
  );

  it.each(['dev', 'staging', 'qa', 'sandbox-alice', 'delivery'])(
    'does not take %s for production',
    (stage) => {
      expect(looksLikeProduction(stage)).toBe(false);
    },
  );
});

describe.skipIf(motoMissing)(
  motoMissing
    ? `stage teardown on moto_server (skipped: moto_server is not on the PATH; install it with ${MOTO_INSTALL_HINT})`
    : 'stage teardown on moto_server',
  () => {
    it("lists the stage's tenant secrets, and no other stage's", async () => {
      // Prepare
      const { client, stage } = await stageWithTenants(['acme', 'globex']);
      const other = await stageWithTenants(['acme'], `${stage}x`);

      // Act
      const listed = await listStageTenantSecrets(client, stage);

      // Assert: `<stage>x` shares the text prefix, not the path segment.
      expect(listed.prefix).toBe(`tenantflow/${stage}/tenants/`);
      expect(listed.secrets.map((secret) => secret.tenantId)).toEqual(['acme', 'globex']);
      expect(listed.secrets.every((secret) => secret.scheduledForDeletion === undefined)).toBe(true);
      expect(listed.skipped).toEqual([]);
      expect((await listStageTenantSecrets(other.client, other.stage)).secrets).toHaveLength(1);
    });

    it('schedules every tenant secret for deletion with the recovery window by default', async () => {
      // Prepare
      const { client, stage, store } = await stageWithTenants(['acme', 'globex']);

      // Act
      const report = await deleteStageTenantSecrets({ client, stage });

      // Assert
      expect(report.outcomes.map((outcome) => [outcome.kind, outcome.secret.tenantId])).toEqual([
        ['scheduled', 'acme'],
        ['scheduled', 'globex'],
      ]);
      expect(await stateOf(client, `tenantflow/${stage}/tenants/acme`)).toBe('scheduled');
      expect(await stateOf(client, `tenantflow/${stage}/tenants/globex`)).toBe('scheduled');
      expect(await store.list()).toEqual([]);
      const lines = formatTeardownReport(report);
      expect(lines[0]).toMatch(
        new RegExp(
          `^scheduled for deletion  tenantflow/${stage}/tenants/acme  \\(restorable until \\d{4}-\\d{2}-\\d{2}\\)$`,
        ),
      );
      expect(lines.at(-1)).toContain('2 tenant secret(s)');
      expect(lines.at(-1)).toContain('2 scheduled for deletion');
    });

    it('deletes without a recovery window with forceDelete, secrets already scheduled included', async () => {
      // Prepare: globex was deleted earlier with a recovery window.
      const { client, stage } = await stageWithTenants(['acme', 'globex']);
      await client.send(new DeleteSecretCommand({ SecretId: `tenantflow/${stage}/tenants/globex` }));

      // Act
      const report = await deleteStageTenantSecrets({ client, stage, forceDelete: true });

      // Assert
      expect(report.outcomes.map((outcome) => [outcome.kind, outcome.secret.tenantId])).toEqual([
        ['deleted', 'acme'],
        ['deleted', 'globex'],
      ]);
      expect(await stateOf(client, `tenantflow/${stage}/tenants/acme`)).toBe('gone');
      expect(await stateOf(client, `tenantflow/${stage}/tenants/globex`)).toBe('gone');
      expect((await listStageTenantSecrets(client, stage)).secrets).toEqual([]);
    });

    it('leaves a secret already scheduled for deletion to its recovery window without forceDelete', async () => {
      // Prepare
      const { client, stage } = await stageWithTenants(['acme']);
      await client.send(new DeleteSecretCommand({ SecretId: `tenantflow/${stage}/tenants/acme` }));

      // Act
      const report = await deleteStageTenantSecrets({ client, stage });

      // Assert
      expect(report.outcomes.map((outcome) => outcome.kind)).toEqual(['already-scheduled']);
      expect(await stateOf(client, `tenantflow/${stage}/tenants/acme`)).toBe('scheduled');
    });

    it('leaves alone a secret under the prefix that tenantflow did not create', async () => {
      // Prepare: one without the tenant tag, one whose name is not a tenant id.
      const { client, stage } = await stageWithTenants(['acme']);
      const untagged = `tenantflow/${stage}/tenants/handmade`;
      const notATenant = `tenantflow/${stage}/tenants/Not A Tenant`;
      await client.send(new CreateSecretCommand({ Name: untagged, SecretString: '{}' }));
      await client.send(
        new CreateSecretCommand({
          Name: notATenant,
          SecretString: '{}',
          Tags: [{ Key: 'tenant', Value: 'x' }],
        }),
      );

      // Act
      const report = await deleteStageTenantSecrets({ client, stage, forceDelete: true });

      // Assert
      expect(report.outcomes.map((outcome) => outcome.secret.tenantId)).toEqual(['acme']);
      expect(report.skipped).toEqual([
        { name: untagged, reason: 'it is not tagged tenant=handmade' },
        { name: notATenant, reason: 'its name does not end in a tenant id' },
      ]);
      expect(await stateOf(client, untagged)).toBe('active');
      expect(await stateOf(client, notATenant)).toBe('active');
    });

    it('deletes nothing on a dry run', async () => {
      // Prepare
      const { client, stage } = await stageWithTenants(['acme']);

      // Act
      const report = await deleteStageTenantSecrets({ client, stage, dryRun: true });

      // Assert
      expect(report.outcomes.map((outcome) => outcome.kind)).toEqual(['would-delete']);
      expect(await stateOf(client, `tenantflow/${stage}/tenants/acme`)).toBe('active');
    });

    it('refuses a stage named like production unless confirmed, before deleting anything', async () => {
      // Prepare
      const { client, stage } = await stageWithTenants(['acme'], uniqueStage('prod-'));

      // Act
      const refused = await deleteStageTenantSecrets({ client, stage }).then(
        () => undefined,
        (error: unknown) => error,
      );
      const stateAfterRefusal = await stateOf(client, `tenantflow/${stage}/tenants/acme`);
      const confirmed = await deleteStageTenantSecrets({ client, stage, confirmed: true });

      // Assert
      expect(refused).toBeInstanceOf(UnconfirmedTeardownError);
      expect(stateAfterRefusal).toBe('active');
      expect(confirmed.outcomes.map((outcome) => outcome.kind)).toEqual(['scheduled']);
    });

    it('reports a deletion that fails and goes on with the others', async () => {
      // Prepare: a client whose DeleteSecret fails for acme only (as a missing permission would).
      const { client, stage } = await stageWithTenants(['acme', 'globex']);
      client.middlewareStack.add(
        (next) => async (args) => {
          const input = args.input as { SecretId?: string; Filters?: unknown };
          if (typeof input.SecretId === 'string' && input.SecretId.includes('/tenants/acme')) {
            throw Object.assign(new Error('not authorized to perform: secretsmanager:DeleteSecret'), {
              name: 'AccessDeniedException',
            });
          }
          return next(args);
        },
        { step: 'initialize', name: 'denyAcme' },
      );

      // Act
      const report = await deleteStageTenantSecrets({ client, stage });

      // Assert
      expect(report.outcomes.map((outcome) => [outcome.kind, outcome.secret.tenantId])).toEqual([
        ['failed', 'acme'],
        ['scheduled', 'globex'],
      ]);
      expect(formatTeardownReport(report)[0]).toContain('FAILED');
    });
  },
);
