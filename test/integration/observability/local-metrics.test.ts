import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineTask } from '@tenantflow/shared/workflows/task';
import { defineWorkflow } from '@tenantflow/shared/workflows/workflow';
import { WorkflowRegistry } from '@tenantflow/shared/workflows/workflow-registry';
import { afterAll, beforeAll, describe, expect, inject, it, type MockInstance, vi } from 'vitest';
import { type LocalPlatform, startLocalPlatform } from '../../../local/local-platform.js';
import { createTestDatabase } from '../../support/database.js';
import { apiClient } from '../../support/http.js';
import { dropTenantRoles, tenantIdSuffix } from '../../support/tenants.js';

/**
 * The platform's metrics as `npm start` records them: a real execution on the local platform
 * (embedded wiring, real PostgreSQL) writes EMF records, with the tenant as a property, for its
 * start, its task's duration and its success.
 */

const ADMIN_TOKEN = 'test-admin-token-observability-0123456789';
const suffix = tenantIdSuffix();
const acme = `acme_${suffix}`;

const workflows = new WorkflowRegistry([
  defineWorkflow({
    name: 'measured',
    tasks: [defineTask({ id: 'count', run: (ctx) => ctx.set('counted', true) })],
  }),
]);

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let home: string;
let local: LocalPlatform;
let stdout: MockInstance<typeof process.stdout.write>;

/** The EMF records written on stdout since the suite began. */
function emfRecords(): Array<
  Record<string, unknown> & { _aws: { CloudWatchMetrics: Array<{ Dimensions: string[][] }> } }
> {
  return stdout.mock.calls
    .flatMap(([chunk]) => String(chunk).split('\n'))
    .filter((line) => line.includes('"_aws"'))
    .map((line) => JSON.parse(line));
}

beforeAll(async () => {
  // The test run turns metrics off (vitest.config.ts); this suite reads what the platform writes.
  vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
  stdout = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  database = await createTestDatabase();
  home = await mkdtemp(join(tmpdir(), 'tenantflow-observability-'));
  local = await startLocalPlatform({
    home,
    port: 0,
    databaseUrl: database.url,
    adminToken: ADMIN_TOKEN,
    workflows,
    retryIntervalMs: 0,
    log: () => undefined,
  });
});

afterAll(async () => {
  stdout?.mockRestore();
  vi.unstubAllEnvs();
  await local?.stop();
  await database?.drop();
  await dropTenantRoles(inject('superuserUrl'), suffix);
  await rm(home, { recursive: true, force: true });
});

describe('local metrics', () => {
  it('records an execution started and succeeded, and its task duration, by tenant', async () => {
    // Prepare
    const admin = apiClient(local.url, ADMIN_TOKEN);
    const created = await admin('POST', '/tenants', { body: { tenantId: acme, name: 'Acme' } });
    expect(created.status).toBe(202);
    await local.platform.lifecycleOrchestrator.drain();
    const tenant = apiClient(local.url, created.body.apiKey);

    // Act
    const started = await tenant('POST', `/tenants/${acme}/executions`, { body: { workflow: 'measured' } });
    expect(started.status).toBe(202);
    const { executionId } = started.body;
    await local.orchestrator.drain();
    expect((await tenant('GET', `/tenants/${acme}/executions/${executionId}`)).body.status).toBe('succeeded');
    local.platform.core.metricSink.flush();

    // Assert
    const mine = emfRecords().filter((record) => record.tenantId === acme);
    const startedRecord = mine.find((record) => 'ExecutionsStarted' in record);
    expect(startedRecord).toMatchObject({
      ExecutionsStarted: 1,
      workflow: 'measured',
      executionId,
      stage: 'local',
    });
    expect(startedRecord?._aws.CloudWatchMetrics[0]?.Dimensions).toEqual([
      ['service', 'stage', 'workflow'],
      ['service', 'stage'],
    ]);
    const task = mine.find((record) => 'TaskDuration' in record);
    expect(task).toMatchObject({ workflow: 'measured', executionId, taskId: 'count', TaskErrors: 0 });
    expect(task?.TaskDuration).toEqual(expect.any(Number));
    expect(mine.find((record) => 'ExecutionsSucceeded' in record)).toMatchObject({
      ExecutionsSucceeded: 1,
      executionId,
    });
    expect(mine.find((record) => 'ProvisioningDuration' in record)).toMatchObject({
      lifecycle: 'onboarding',
    });
    for (const record of mine) {
      expect(record._aws.CloudWatchMetrics[0]?.Dimensions.flat()).not.toContain('tenantId');
    }
  });
});
