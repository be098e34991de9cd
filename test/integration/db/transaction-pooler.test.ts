import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@tenantflow/shared/config/config';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createLocalRuntime, type LocalRuntime } from '../../../local/local-runtime.js';
import { workflows } from '../../../workflows/index.js';
import { createTestDatabase } from '../../support/database.js';
import {
  findPgBouncer,
  PGBOUNCER_INSTALL_HINT,
  type RunningPgBouncer,
  startPgBouncer,
} from '../../support/pgbouncer.js';
import { prepareTestDatabase } from '../../support/platform.js';
import { skipWithout } from '../../support/required-tools.js';
import { dropTenantRoles, tenantIdSuffix } from '../../support/tenants.js';

const executable = await findPgBouncer();
const pgbouncerMissing = skipWithout({
  name: 'pgbouncer',
  found: executable !== undefined,
  skipping: 'the transaction-pooler suite',
  installHint: PGBOUNCER_INSTALL_HINT,
});

/** What of a server session's state would reach the next client of that session. */
async function sessionState(client: pg.Client) {
  const { rows } = await client.query<{
    search_path: string;
    session_settings: string[];
    prepared: number;
    temp_schema: boolean;
    advisory_locks: number;
    listening: number;
  }>(
    `SELECT current_setting('search_path') AS search_path,
            -- pgbouncer itself SETs each client's application_name on the session it hands over.
            ARRAY(SELECT name FROM pg_settings WHERE source = 'session' AND name <> 'application_name'
                   ORDER BY name) AS session_settings,
            (SELECT count(*)::int FROM pg_prepared_statements) AS prepared,
            pg_my_temp_schema() <> 0 AS temp_schema,
            (SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS advisory_locks,
            (SELECT count(*)::int FROM pg_listening_channels()) AS listening`,
  );
  return rows[0];
}

/**
 * DESIGN's first isolation rule, proven: platform code leaves no session state on pooled
 * connections. The platform pool here goes through pgbouncer in transaction mode with ONE server
 * session, so every platform statement of every tenant's work shares that session, as it may
 * through RDS Proxy; the admin role (DDL, migrations) and the tenant roles connect directly, as they
 * do on dedicated connections in AWS.
 */
describe.skipIf(pgbouncerMissing)(
  pgbouncerMissing
    ? `Platform SQL through a transaction pooler (skipped: pgbouncer is not installed; ${PGBOUNCER_INSTALL_HINT})`
    : 'Platform SQL through a transaction pooler (pgbouncer, one shared server session)',
  () => {
    let database: Awaited<ReturnType<typeof createTestDatabase>>;
    let pooler: RunningPgBouncer;
    let runtime: LocalRuntime;
    let home: string;
    const suffix = tenantIdSuffix();
    const observers: pg.Client[] = [];

    /** A client of the pooler, as any other process sharing the proxy would be. */
    async function poolerClient(): Promise<pg.Client> {
      const client = new pg.Client({ connectionString: pooler.url });
      await client.connect();
      observers.push(client);
      return client;
    }

    beforeAll(async () => {
      database = await createTestDatabase('tf_pooler');
      // The platform role logs in through the pooler, as it does through RDS Proxy; DDL goes direct.
      const { platformUrl } = await prepareTestDatabase(database.url, suffix);
      pooler = await startPgBouncer(executable as string, new URL(platformUrl), { serverConnections: 1 });
      home = await mkdtemp(join(tmpdir(), 'tenantflow-pooler-'));
      const direct = new URL(database.url);
      runtime = await createLocalRuntime({
        config: loadConfig({
          TENANTFLOW_LOCAL: '1',
          DATABASE_URL: pooler.url,
          TENANTFLOW_ADMIN_DATABASE_URL: database.url,
          TENANTFLOW_TENANT_DB_HOST: direct.hostname,
          TENANTFLOW_TENANT_DB_PORT: direct.port,
          TENANTFLOW_SECRETS: 'local',
          TENANTFLOW_SECRETS_DIR: join(home, 'secrets'),
          TENANTFLOW_DB_POOL_MAX: '8',
        }),
        home,
        workflows,
        retryIntervalMs: 0,
      });
    });

    afterAll(async () => {
      await Promise.all(observers.map((client) => client.end().catch(() => undefined)));
      await runtime?.orchestrator.drain();
      await runtime?.platform.close();
      await pooler?.stop();
      await database?.drop();
      await dropTenantRoles(inject('superuserUrl'), suffix);
      await rm(home, { recursive: true, force: true });
    });

    it('would catch a leak: a SET by one client of the pooler is what the next client finds', async () => {
      const first = await poolerClient();
      const second = await poolerClient();
      try {
        await first.query('SET search_path TO leaked_by_first_client');
        expect((await sessionState(second))?.search_path).toBe('leaked_by_first_client');
      } finally {
        await second.query('RESET search_path');
      }
      // The platform role's own default, stored on the role, not set on the session.
      expect((await sessionState(second))?.search_path).toBe('pg_catalog');
    });

    it('onboards tenants, runs their workflows at once, recovers and reports, leaving the shared session as it found it', async () => {
      const { platform, executions, orchestrator } = runtime;
      const tenants = ['alpha', 'beta', 'gamma'].map((name) => `${name}_${suffix}`);
      for (const tenantId of tenants) {
        await platform.tenantAdmin.register({ tenantId, name: tenantId });
      }
      // Their onboarding state machines run every step through the pooler too.
      await platform.lifecycleOrchestrator.drain();
      for (const tenantId of tenants) {
        expect(await platform.registry.get(tenantId)).toMatchObject({ status: 'active' });
      }

      const started = await Promise.all(
        tenants.flatMap((tenantId) => [
          executions.start(tenantId, { workflow: 'tenant_isolation', input: { values: [1, 2, 3] } }),
          executions.start(tenantId, { workflow: 'tenant_isolation', input: { values: [4, 5] } }),
        ]),
      );
      await orchestrator.drain();
      const summary = await runtime.recover({ trigger: 'pooler test' });

      for (const [index, { executionId }] of started.entries()) {
        const tenantId = tenants[Math.floor(index / 2)] as string;
        const view = await executions.get(tenantId, executionId);
        expect(view.status, `${tenantId} ${executionId}`).toBe('succeeded');
        // The tenant's own role saw its own rows only (one or both of its runs, by then).
        expect(view.context.visibleResults).toMatchObject({ tenants: [tenantId] });
      }
      for (const tenantId of tenants) {
        expect((await executions.list(tenantId, { limit: 10 })).executions).toHaveLength(2);
        expect(await platform.registry.get(tenantId)).toMatchObject({ status: 'active' });
      }
      expect(summary.outcomes.failed).toBe(0);

      // Every platform statement above ran on the pooler's one server session: nothing stayed on it.
      expect(await sessionState(await poolerClient())).toEqual({
        search_path: 'pg_catalog',
        session_settings: [],
        prepared: 0,
        temp_schema: false,
        advisory_locks: 0,
        listening: 0,
      });
    });
  },
);
