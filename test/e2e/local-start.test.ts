import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  exited,
  isAlive,
  killTenantflow,
  postmasterPid as postmasterPidOf,
  startTenantflow as startProcess,
} from '../../local/tenantflow-process.js';
import { apiClient } from '../support/http.js';
import { onboardOverHttp, waitForTenant } from '../support/onboarding.js';

const postmasterPid = () => postmasterPidOf(home);

/**
 * Drives `npm start`'s entry point as a user would: a separate process on a free port, with its
 * own embedded PostgreSQL under a fresh TENANTFLOW_HOME, over real HTTP.
 */

const ADMIN_TOKEN = 'e2e-admin-token-0123456789abcdef';
let home: string;

const startTenantflow = () => startProcess(home, { TENANTFLOW_ADMIN_TOKEN: ADMIN_TOKEN });

/** Connects with the tenant's stored credentials, as task code would. */
async function asTenant(tenantId: string, work: (client: pg.Client) => Promise<void>): Promise<void> {
  const secret = JSON.parse(await readFile(join(home, 'secrets', `${tenantId}.json`), 'utf8'));
  const client = new pg.Client({
    host: secret.host,
    port: secret.port,
    database: secret.dbname,
    user: secret.username,
    password: secret.password,
  });
  await client.connect();
  try {
    await work(client);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'tenantflow-e2e-'));
  // The embedded PostgreSQL runs as the `postgres` OS user when tests run as root.
  await chmod(home, 0o755);
});

afterAll(async () => {
  await killTenantflow(home);
  await rm(home, { recursive: true, force: true });
});

describe('npm start', () => {
  it('serves the admin API, keeps tenants across a restart, and recovers from a killed run', async () => {
    // First start: initialises the embedded cluster.
    const first = await startTenantflow();
    const api = apiClient(first.url, ADMIN_TOKEN);
    expect(first.output()).toContain(`Authorization: Bearer ${ADMIN_TOKEN}`);
    expect(first.output()).toMatch(/curl -s -X POST http:\/\/127\.0\.0\.1:\d+\/tenants/);
    expect((await api('GET', '/health')).body).toMatchObject({ status: 'ok' });
    const created = await api('POST', '/tenants', { body: { tenantId: 'acme', name: 'Acme Corp' } });
    expect(created.status).toBe(202);
    expect(created.headers.get('location')).toBe('tenants/acme');
    expect(created.body).toMatchObject({ tenantId: 'acme', status: 'provisioning' });
    expect(created.body.apiKey).toMatch(/^tfk_acme_/);
    // The onboarding state machine, run in-process, makes it active within moments.
    await waitForTenant(api, 'acme', 'active', 10_000);

    // The stored credentials log in as acme's own role, which can use acme's tables and nothing
    // else: it may read, not write, the platform's bookkeeping, and create nothing anywhere.
    await asTenant('acme', async (client) => {
      await client.query(
        `INSERT INTO example_results (execution_id, workflow, tenant_id, payload) VALUES ('e1', 'demo', 'acme', '{}')`,
      );
      expect((await client.query('SELECT execution_id FROM acme.example_results')).rows).toEqual([
        { execution_id: 'e1' },
      ]);
      expect((await client.query('SELECT id FROM executions')).rows).toEqual([]);
      await expect(
        client.query(`INSERT INTO executions (id, workflow) VALUES ('e1', 'demo')`),
      ).rejects.toThrow(/permission denied/);
      await expect(client.query('SELECT * FROM tenantflow.tenants')).rejects.toThrow(/permission denied/);
      await expect(client.query('CREATE TABLE public.x (i int)')).rejects.toThrow(/permission denied/);
      await expect(client.query('CREATE TABLE acme.x (i int)')).rejects.toThrow(/permission denied/);
      // The server's own roles are production's: the admin is not a superuser, the platform has no CREATEROLE.
      const roles = await client.query(
        `SELECT rolname, rolsuper, rolcreaterole FROM pg_roles
          WHERE rolname IN ('tenantflow_admin', 'tenantflow_platform') ORDER BY rolname`,
      );
      expect(roles.rows).toEqual([
        { rolname: 'tenantflow_admin', rolsuper: false, rolcreaterole: true },
        { rolname: 'tenantflow_platform', rolsuper: false, rolcreaterole: false },
      ]);
    });

    // Ctrl-C (SIGINT) stops the server and PostgreSQL cleanly.
    first.child.kill('SIGINT');
    expect(await exited(first.child)).toBe(0);
    const pidAfterCleanStop = await postmasterPid();
    expect(pidAfterCleanStop === undefined || !isAlive(pidAfterCleanStop)).toBe(true);

    // Restart: the tenant is still there.
    const second = await startTenantflow();
    const afterRestart = await apiClient(second.url, ADMIN_TOKEN)('GET', '/tenants/acme');
    expect(afterRestart.status).toBe(200);
    expect(afterRestart.body.name).toBe('Acme Corp');
    // PostgreSQL came back on the same port, so the stored tenant credentials still work.
    await asTenant('acme', async (client) => {
      expect((await client.query('SELECT execution_id FROM example_results')).rows).toEqual([
        { execution_id: 'e1' },
      ]);
    });

    // Kill -9: PostgreSQL is left running, holding the data directory.
    await onboardOverHttp(apiClient(second.url, ADMIN_TOKEN), { tenantId: 'globex', name: 'Globex' });
    second.child.kill('SIGKILL');
    await exited(second.child);
    const stalePid = await postmasterPid();
    expect(stalePid).toBeDefined();
    expect(isAlive(stalePid as number)).toBe(true);

    // The next start detects the stale server, stops it, and carries on with the same data.
    const third = await startTenantflow();
    expect(third.output()).toContain(`Stopped a PostgreSQL (pid ${stalePid})`);
    expect(isAlive(stalePid as number)).toBe(false);
    const tenants = await apiClient(third.url, ADMIN_TOKEN)('GET', '/tenants');
    expect(tenants.body.tenants.map((t: { tenantId: string }) => t.tenantId)).toEqual(['acme', 'globex']);

    third.child.kill('SIGTERM');
    expect(await exited(third.child)).toBe(0);
  }, 120_000);
});
