import { DatabaseAdmin } from '@tenantflow/shared/provisioning/database-admin';
import type { ProvisioningStep } from '@tenantflow/shared/provisioning/provisioning-service';
import { TenantCredentials } from '@tenantflow/shared/provisioning/tenant-credentials';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, type TestPlatform } from '../../support/platform.js';

/** Throw once after `step` of the tenant named here. */
const failures = new Map<string, ProvisioningStep>();

let env: TestPlatform;
let platformRole: string;

beforeAll(async () => {
  env = await createTestPlatform({
    failpoints: {
      reach: (_point, { tenantId, name }) => {
        if (name !== undefined && failures.get(tenantId) === name) {
          failures.delete(tenantId);
          throw new Error(`injected failure after step '${name}'`);
        }
      },
    },
  });
  platformRole = await env.platform.admin.platformRoleName();
});

afterAll(async () => {
  await env?.cleanup();
});

function adminFor(options: { idleConnections?: number; idleConnectionMs?: number } = {}): DatabaseAdmin {
  return new DatabaseAdmin({ adminUrl: env.databaseUrl, platformRole, tenantMigrations: [], ...options });
}

async function backendPid(client: pg.Client): Promise<number> {
  const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  return rows[0]?.pid ?? -1;
}

async function isConnected(pid: number): Promise<boolean> {
  const { rows } = await env.adminPool.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid]);
  return rows.length > 0;
}

describe('DatabaseAdmin connections kept between uses', () => {
  it('reuses the connection, with nothing one use set reaching the next', async () => {
    const admin = adminFor();
    const { rows: defaults } = await env.adminPool.query<{ work_mem: string }>(
      "SELECT current_setting('work_mem') AS work_mem",
    );
    const defaultWorkMem = defaults[0]?.work_mem;
    try {
      const first = await admin.withConnection(async (client) => {
        // Everything session-level a use could leave behind.
        await client.query(`SET search_path = public; SET work_mem = '7MB'; SET lock_timeout = 1`);
        await client.query('SELECT pg_advisory_lock(4242)');
        await client.query('CREATE TEMPORARY TABLE left_behind (n int)');
        await client.query('PREPARE left_plan AS SELECT 1');
        await client.query('LISTEN left_channel');
        await client.query('BEGIN');
        await client.query(`SET LOCAL ROLE ${JSON.stringify(platformRole)}`);
        await client.query('COMMIT');
        await client.query(`SET ROLE ${JSON.stringify(platformRole)}`);
        return backendPid(client);
      });
      const seen = await admin.withConnection(async (client) => {
        const { rows } = await client.query<Record<string, unknown>>(
          `SELECT pg_backend_pid() AS pid, current_user::text AS "user", current_setting('search_path') AS search_path,
                  current_setting('work_mem') AS work_mem, current_setting('lock_timeout') AS lock_timeout,
                  (SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS advisory_locks,
                  to_regclass('pg_temp.left_behind') IS NULL AS no_temp_table,
                  (SELECT count(*)::int FROM pg_prepared_statements) AS prepared,
                  (SELECT count(*)::int FROM pg_listening_channels()) AS listening`,
        );
        return rows[0];
      });
      expect(seen).toEqual({
        pid: first,
        user: new URL(env.databaseUrl).username,
        search_path: 'pg_catalog',
        work_mem: defaultWorkMem,
        lock_timeout: '5s',
        advisory_locks: 0,
        no_temp_table: true,
        prepared: 0,
        listening: 0,
      });
    } finally {
      await admin.close();
    }
  });

  it('closes a connection whose work failed instead of reusing it', async () => {
    const admin = adminFor();
    try {
      let failedPid = -1;
      await expect(
        admin.withConnection(async (client) => {
          failedPid = await backendPid(client);
          await client.query('BEGIN');
          await client.query('SELECT 1/0');
        }),
      ).rejects.toThrow(/division by zero/);
      const next = await admin.withConnection(backendPid);
      expect(next).not.toBe(failedPid);
      await expect.poll(() => isConnected(failedPid)).toBe(false);
    } finally {
      await admin.close();
    }
  });

  it('opens a new connection when the kept one was ended by the server, and close() ends the kept one', async () => {
    const admin = adminFor();
    const first = await admin.withConnection(backendPid);
    await env.adminPool.query('SELECT pg_terminate_backend($1)', [first]);
    await expect.poll(() => isConnected(first)).toBe(false);
    const second = await admin.withConnection(backendPid);
    expect(second).not.toBe(first);
    expect(await isConnected(second)).toBe(true);
    await admin.close();
    await expect.poll(() => isConnected(second)).toBe(false);
  });

  it('keeps none with idleConnections 0, and lets a kept one go after idleConnectionMs', async () => {
    const none = adminFor({ idleConnections: 0 });
    const a = await none.withConnection(backendPid);
    const b = await none.withConnection(backendPid);
    expect(b).not.toBe(a);
    await expect.poll(() => isConnected(a)).toBe(false);

    const brief = adminFor({ idleConnectionMs: 50 });
    const kept = await brief.withConnection(backendPid);
    await expect.poll(() => isConnected(kept), { timeout: 5_000 }).toBe(false);
    expect(await brief.withConnection(backendPid)).not.toBe(kept);
    await brief.close();
  });
});

describe('provision() in one call', () => {
  it('takes one claim: a failure records the error and the onboarding step it stopped at', async () => {
    const tenantId = env.id('stopped');
    failures.set(tenantId, 'grants');
    await expect(env.platform.provisioning.provision({ tenantId, name: 'Stopped' })).rejects.toThrow(
      "injected failure after step 'grants'",
    );
    const stopped = await env.platform.registry.get(tenantId);
    expect(stopped).toMatchObject({ status: 'provisioning', currentStep: 'migrations' });
    expect(stopped?.lastError).toContain("injected failure after step 'grants'");
    // The claim was released: a re-run takes it at once and finishes.
    const { tenant } = await env.platform.provisioning.provision({ tenantId, name: 'Stopped' });
    expect(tenant).toMatchObject({ status: 'active' });
    expect(tenant.currentStep).toBeUndefined();
    const refs = await env.platform.registry.getCredentialRefs(tenantId);
    expect(refs?.secretRef).toEqual(expect.any(String));
  });

  it('gives the role the password it stores: the stored secret logs in', async () => {
    const tenantId = env.id('onepassword');
    await env.platform.provisioning.provision({ tenantId, name: 'One password' });
    const secret = await env.platform.secrets.get(tenantId);
    if (secret === undefined) {
      throw new Error('no secret stored');
    }
    const client = new pg.Client({ connectionString: TenantCredentials.fromSecret(secret).connectionString });
    await client.connect();
    try {
      const { rows } = await client.query<{ user: string }>('SELECT current_user::text AS user');
      expect(rows[0]?.user).toBe(`${tenantId}_user`);
    } finally {
      await client.end();
    }
  });
});
