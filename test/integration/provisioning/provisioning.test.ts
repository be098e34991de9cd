import {
  TenantAlreadyExistsError,
  TenantStateConflictError,
  ValidationError,
} from '@tenantflow/shared/kernel/errors';
import {
  DEPROVISIONING_STEPS,
  type DeprovisioningStep,
  PROVISIONING_STEPS,
  ProvisioningInProgressError,
  type ProvisioningStep,
} from '@tenantflow/shared/provisioning/provisioning-service';
import { TenantCredentials } from '@tenantflow/shared/provisioning/tenant-credentials';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, type TestPlatform } from '../../support/platform.js';

/** Failure injection: throw once after `step` of `tenantId`. */
const failures = new Map<string, ProvisioningStep | DeprovisioningStep>();
let gate:
  | { tenantId: string; step: ProvisioningStep; reached: () => void; release: Promise<void> }
  | undefined;

let env: TestPlatform;

beforeAll(async () => {
  env = await createTestPlatform({
    failpoints: {
      reach: async (_point, { tenantId, name: step }) => {
        if (failures.get(tenantId) === step) {
          failures.delete(tenantId);
          throw new Error(`injected failure after step '${step}'`);
        }
        if (gate?.tenantId === tenantId && gate.step === step) {
          gate.reached();
          await gate.release;
        }
      },
    },
  });
});

afterAll(async () => {
  await env?.cleanup();
});

async function adminQuery<R extends pg.QueryResultRow>(sql: string, values: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: env.databaseUrl });
  await client.connect();
  try {
    return (await client.query<R>(sql, values)).rows;
  } finally {
    await client.end();
  }
}

/** Counts what exists for a tenant: schemas, roles, secrets and registry rows. */
async function footprint(tenantId: string) {
  const [row] = await adminQuery<{ schemas: number; roles: number; rows: number }>(
    `SELECT (SELECT count(*)::int FROM pg_namespace WHERE nspname = $1) AS schemas,
            (SELECT count(*)::int FROM pg_roles WHERE rolname = $2) AS roles,
            (SELECT count(*)::int FROM tenantflow.tenants WHERE tenant_id = $1) AS rows`,
    [tenantId, `${tenantId}_user`],
  );
  const secrets = (await env.platform.secrets.list()).filter((id) => id === tenantId).length;
  return { ...row, secrets };
}

/** Logs in with the stored secret and reads the tenant's own table: role and secret agree. */
async function canLogInWithStoredSecret(tenantId: string): Promise<boolean> {
  const secret = await env.platform.secrets.get(tenantId);
  if (secret === undefined) {
    return false;
  }
  const client = new pg.Client({ connectionString: TenantCredentials.fromSecret(secret).connectionString });
  try {
    await client.connect();
    await client.query('SELECT count(*) FROM executions');
    return true;
  } finally {
    await client.end().catch(() => undefined);
  }
}

describe('ProvisioningService', () => {
  it('provisions a tenant: active, schema, role, secret, migrated tables, a hashed API key', async () => {
    const tenantId = env.id('fresh');

    const { tenant, apiKey } = await env.platform.provisioning.provision({ tenantId, name: 'Fresh' });

    expect(tenant).toMatchObject({ tenantId, status: 'active', active: true });
    expect(await footprint(tenantId)).toEqual({ schemas: 1, roles: 1, rows: 1, secrets: 1 });
    expect(await canLogInWithStoredSecret(tenantId)).toBe(true);
    const refs = await env.platform.registry.getCredentialRefs(tenantId);
    expect(refs?.apiKeyHash).toMatch(/^[0-9a-f]{64}$/);
    expect(refs?.apiKeyHash).not.toContain(apiKey);
    const secret = await env.platform.secrets.get(tenantId);
    expect(secret).toMatchObject({ engine: 'postgres', username: `${tenantId}_user`, schema: tenantId });
    expect(secret?.password).toMatch(/^[A-Za-z0-9]{32}$/);
  });

  it.each(PROVISIONING_STEPS.map((step) => [step]))(
    'completes on a re-run after a failure right after step %s, with no orphan',
    async (step) => {
      const tenantId = env.id(`p_${step.replaceAll('-', '_')}`);
      failures.set(tenantId, step);

      await expect(env.platform.provisioning.provision({ tenantId, name: 'Resumable' })).rejects.toThrow(
        `injected failure after step '${step}'`,
      );
      const afterFailure = await env.platform.registry.get(tenantId);
      if (step === 'activate') {
        // The failure came after the tenant was committed active: nothing is left to resume.
        expect(afterFailure?.status).toBe('active');
      } else {
        expect(afterFailure?.status).toBe('provisioning');
        expect(afterFailure?.lastError).toContain(`injected failure after step '${step}'`);
        const { tenant } = await env.platform.provisioning.provision({ tenantId, name: 'Resumable' });
        expect(tenant.status).toBe('active');
        expect(tenant.lastError).toBeUndefined();
      }

      expect(await footprint(tenantId)).toEqual({ schemas: 1, roles: 1, rows: 1, secrets: 1 });
      expect(await canLogInWithStoredSecret(tenantId)).toBe(true);
    },
  );

  it('refuses to provision an already provisioned tenant', async () => {
    const tenantId = env.id('twice');
    await env.platform.provisioning.provision({ tenantId, name: 'Twice' });
    await expect(env.platform.provisioning.provision({ tenantId, name: 'Twice' })).rejects.toBeInstanceOf(
      TenantAlreadyExistsError,
    );
  });

  it('refuses a resume with a different name, and creates nothing for an invalid id', async () => {
    const tenantId = env.id('mismatch');
    failures.set(tenantId, 'schema');
    await expect(env.platform.provisioning.provision({ tenantId, name: 'First' })).rejects.toThrow();

    await expect(env.platform.provisioning.provision({ tenantId, name: 'Second' })).rejects.toBeInstanceOf(
      TenantStateConflictError,
    );
    await expect(
      env.platform.provisioning.provision({ tenantId: 'Bad-Id', name: 'x' }),
    ).rejects.toBeInstanceOf(ValidationError);
    expect(await env.platform.registry.get('Bad-Id')).toBeUndefined();
  });

  it('refuses a retry while a run is in flight, and ends with exactly one tenant', async () => {
    const tenantId = env.id('inflight');
    let reached: () => void = () => {};
    let release: () => void = () => {};
    const atSchema = new Promise<void>((resolve) => {
      reached = resolve;
    });
    gate = {
      tenantId,
      step: 'schema',
      reached,
      release: new Promise<void>((resolve) => {
        release = resolve;
      }),
    };

    const first = env.platform.provisioning.provision({ tenantId, name: 'In flight' });
    await atSchema;
    const retry = env.platform.provisioning.provision({ tenantId, name: 'In flight' });
    await expect(retry).rejects.toBeInstanceOf(ProvisioningInProgressError);
    release();
    gate = undefined;

    expect((await first).tenant.status).toBe('active');
    expect(await footprint(tenantId)).toEqual({ schemas: 1, roles: 1, rows: 1, secrets: 1 });
  });

  describe('deprovisioning', () => {
    it('refuses an active tenant', async () => {
      const tenantId = env.id('busy');
      await env.platform.provisioning.provision({ tenantId, name: 'Busy' });
      await expect(env.platform.provisioning.deprovision(tenantId)).rejects.toBeInstanceOf(
        TenantStateConflictError,
      );
      expect(await footprint(tenantId)).toEqual({ schemas: 1, roles: 1, rows: 1, secrets: 1 });
    });

    it.each(DEPROVISIONING_STEPS.map((step) => [step]))(
      'completes on a re-run after a failure right after step %s, leaving nothing behind',
      async (step) => {
        const tenantId = env.id(`d_${step.replaceAll('-', '_')}`);
        await env.platform.provisioning.provision({ tenantId, name: 'Leaving' });
        await env.platform.tenants.deactivateTenant(tenantId);
        failures.set(tenantId, step);

        await expect(env.platform.provisioning.deprovision(tenantId)).rejects.toThrow(
          `injected failure after step '${step}'`,
        );
        if (step !== 'registry') {
          const afterFailure = await env.platform.registry.get(tenantId);
          expect(afterFailure?.status).toBe('deprovisioning');
          expect(afterFailure?.lastError).toContain('injected failure');
          await env.platform.provisioning.deprovision(tenantId);
        }

        expect(await footprint(tenantId)).toEqual({ schemas: 0, roles: 0, rows: 0, secrets: 0 });
      },
    );
  });

  it('provisions, rotates, deprovisions and provisions the same id again, all as an admin that is not a superuser', async () => {
    // Prepare: the run's admin is an ordinary CREATEROLE role, as Aurora's master user is.
    const admin = await env.platform.admin.withConnection(
      async (client) =>
        (
          await client.query<{ rolsuper: boolean; rolcreaterole: boolean }>(
            'SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user',
          )
        ).rows[0],
    );
    expect(admin).toEqual({ rolsuper: false, rolcreaterole: true });
    const tenantId = env.id('again');

    // Act
    await env.platform.provisioning.provision({ tenantId, name: 'First' });
    await env.platform.provisioning.rotateCredentials(tenantId);
    await env.platform.tenants.deactivateTenant(tenantId);
    await env.platform.provisioning.deprovision(tenantId);
    const gone = await footprint(tenantId);
    const second = await env.platform.provisioning.provision({ tenantId, name: 'Second' });

    // Assert
    expect(gone).toEqual({ schemas: 0, roles: 0, rows: 0, secrets: 0 });
    expect(second.tenant).toMatchObject({ tenantId, name: 'Second', status: 'active' });
    expect(await footprint(tenantId)).toEqual({ schemas: 1, roles: 1, rows: 1, secrets: 1 });
    const db = await env.platform.tenantConnections.tenantDb(tenantId);
    const { rows } = await db.query<{ me: string }>('SELECT current_user AS me');
    expect(rows[0]?.me).toBe(`${tenantId}_user`);
  });

  describe('rotateCredentials', () => {
    it('sets a new password that works, and the old one stops working', async () => {
      const tenantId = env.id('rotating');
      await env.platform.provisioning.provision({ tenantId, name: 'Rotating' });
      const before = await env.platform.secrets.get(tenantId);
      const db = await env.platform.tenantConnections.tenantDb(tenantId);
      await db.query('SELECT 1');

      await env.platform.provisioning.rotateCredentials(tenantId);

      const after = await env.platform.secrets.get(tenantId);
      expect(after?.password).not.toBe(before?.password);
      expect(await canLogInWithStoredSecret(tenantId)).toBe(true);
      if (before === undefined) {
        throw new Error('no secret before rotation');
      }
      const stale = new pg.Client({
        connectionString: TenantCredentials.fromSecret(before).connectionString,
      });
      stale.on('error', () => {});
      await expect(stale.connect()).rejects.toThrow(/password authentication failed/);
      // tenantDb picks up the new password on its next connection.
      const again = await env.platform.tenantConnections.tenantDb(tenantId);
      expect((await again.query('SELECT current_user AS u')).rows[0]?.u).toBe(`${tenantId}_user`);
    });
  });
});

describe('TenantCredentials', () => {
  it('masks the password in toString, toJSON and inspect', async () => {
    const credentials = new TenantCredentials({
      username: 'acme_user',
      password: 'Sup3rSecretPassw0rdSup3rSecretPa',
      schemaName: 'acme',
      host: 'db',
      port: 5432,
      database: 'app',
    });
    const { inspect } = await import('node:util');

    for (const rendered of [String(credentials), JSON.stringify(credentials), inspect(credentials)]) {
      expect(rendered).not.toContain('Sup3rSecret');
      expect(rendered).toContain('acme_user');
    }
    expect(credentials.password).toBe('Sup3rSecretPassw0rdSup3rSecretPa');
    expect(credentials.connectionString).toContain('Sup3rSecret');
  });
});
