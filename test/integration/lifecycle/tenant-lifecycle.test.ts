import { TenantAlreadyExistsError, ValidationError } from '@tenantflow/shared/kernel/errors';
import { ONBOARDING } from '@tenantflow/shared/lifecycle/lifecycle-asl';
import {
  executionHandle,
  runLifecycleStep,
  TenantLifecycle,
} from '@tenantflow/shared/lifecycle/tenant-lifecycle';
import { createLogger } from '@tenantflow/shared/logging/logger';
import {
  lifecycleExecutionName,
  PROVISIONING_STEPS,
  type ProvisioningStep,
} from '@tenantflow/shared/provisioning/provisioning-service';
import { TenantCredentials } from '@tenantflow/shared/provisioning/tenant-credentials';
import { createRecovery } from '@tenantflow/shared/runtime/recovery';
import { WorkflowRegistry } from '@tenantflow/shared/workflows/workflow-registry';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LocalOrchestrator } from '../../../local/local-orchestrator.js';
import { createTestPlatform, type TestPlatform } from '../../support/platform.js';

/** Steps that fail every time they are reached, by tenant: a failure no retry fixes. */
const failing = new Map<string, ProvisioningStep>();
/** The fine-grained steps reached, in order, by tenant. */
const reached = new Map<string, string[]>();
/** A step that waits, by tenant, until released. */
let gate: { tenantId: string; step: string; reached: () => void; release: Promise<void> } | undefined;

let env: TestPlatform;

beforeAll(async () => {
  env = await createTestPlatform({
    // Retries and Wait states without their delays: the counts and the order are the definition's.
    lifecycleWaitMs: 0,
    failpoints: {
      reach: async (point, { tenantId, name = '' }) => {
        if (point !== 'after-provisioning-step') {
          return;
        }
        if (failing.get(tenantId) === name) {
          throw new Error(`injected failure after step '${name}'`);
        }
        reached.set(tenantId, [...(reached.get(tenantId) ?? []), name]);
        if (gate?.tenantId === tenantId && gate.step === name) {
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

beforeEach(() => {
  failing.clear();
  gate = undefined;
});

/** Schemas, roles, secrets and registry rows that exist for a tenant. */
async function footprint(tenantId: string) {
  const { rows } = await env.adminPool.query<{ schemas: number; roles: number; rows: number }>(
    `SELECT (SELECT count(*)::int FROM pg_namespace WHERE nspname = $1) AS schemas,
            (SELECT count(*)::int FROM pg_roles WHERE rolname = $2) AS roles,
            (SELECT count(*)::int FROM tenantflow.tenants WHERE tenant_id = $1) AS rows`,
    [tenantId, `${tenantId}_user`],
  );
  const secrets = (await env.platform.secrets.list()).filter((id) => id === tenantId).length;
  return { ...rows[0], secrets };
}

async function logsInWithStoredSecret(tenantId: string): Promise<boolean> {
  const secret = await env.platform.secrets.get(tenantId);
  if (secret === undefined) {
    return false;
  }
  const client = new pg.Client({ connectionString: TenantCredentials.fromSecret(secret).connectionString });
  await client.connect();
  try {
    await client.query('SELECT 1');
    return true;
  } finally {
    await client.end();
  }
}

function describeOnboarding(tenantId: string, createdAt: Date) {
  return env.platform.lifecycleOrchestrator.describe(executionHandle(ONBOARDING, { tenantId, createdAt }));
}

describe('onboarding as a state machine', () => {
  it('registers the tenant as provisioning with a key that works once the execution has made it active', async () => {
    const tenantId = env.id('acme');
    const { tenant, apiKey } = await env.platform.lifecycle.onboard({ tenantId, name: 'Acme' });
    expect(tenant.status).toBe('provisioning');
    expect(apiKey.startsWith(`tfk_${tenantId}_`)).toBe(true);

    await env.platform.lifecycleOrchestrator.drain();

    const active = await env.platform.registry.get(tenantId);
    expect(active).toMatchObject({ status: 'active', active: true });
    expect(active?.currentStep).toBeUndefined();
    expect(active?.lastError).toBeUndefined();
    expect(reached.get(tenantId)).toEqual([...PROVISIONING_STEPS]);
    expect(await footprint(tenantId)).toEqual({ schemas: 1, roles: 1, rows: 1, secrets: 1 });
    expect(await logsInWithStoredSecret(tenantId)).toBe(true);
    // The key minted at registration is the one that authenticates: activation kept it.
    expect(await env.platform.authorizer.authenticate(`Bearer ${apiKey}`)).toEqual({
      kind: 'tenant',
      tenantId,
    });
    expect((await describeOnboarding(tenantId, tenant.createdAt)).status).toBe('succeeded');
  });

  it('shows the step under way while it runs, and refuses a second registration naming the status', async () => {
    const tenantId = env.id('slow');
    let release = () => {};
    const atMigrations = new Promise<void>((resolve) => {
      gate = { tenantId, step: 'grants', reached: resolve, release: new Promise((r) => (release = r)) };
    });
    await env.platform.lifecycle.onboard({ tenantId, name: 'Slow' });
    await atMigrations;

    expect(await env.platform.registry.get(tenantId)).toMatchObject({
      status: 'provisioning',
      currentStep: 'migrations',
    });
    const repeat = env.platform.lifecycle.onboard({ tenantId, name: 'Slow' });
    await expect(repeat).rejects.toThrow(TenantAlreadyExistsError);
    await expect(repeat).rejects.toThrow(/is provisioning \(step: migrations\)/);

    release();
    await env.platform.lifecycleOrchestrator.drain();
    expect((await env.platform.registry.get(tenantId))?.status).toBe('active');
    expect(await footprint(tenantId)).toEqual({ schemas: 1, roles: 1, rows: 1, secrets: 1 });
  });

  it('records the step and the error of a failure no retry fixes, and a redrive finishes from there', async () => {
    const tenantId = env.id('flaky');
    failing.set(tenantId, 'migrations');
    const { tenant, apiKey } = await env.platform.lifecycle.onboard({ tenantId, name: 'Flaky' });
    await env.platform.lifecycleOrchestrator.drain();

    const stopped = await env.platform.registry.get(tenantId);
    expect(stopped).toMatchObject({ status: 'provisioning', currentStep: 'migrations' });
    expect(stopped?.lastError).toMatch(/injected failure after step 'migrations'/);
    const failed = await describeOnboarding(tenantId, tenant.createdAt);
    expect(failed).toMatchObject({ status: 'failed', redrivable: true });

    failing.clear();
    const before = reached.get(tenantId)?.length ?? 0;
    const resumed = await env.platform.lifecycle.resume(stopped ?? tenant);
    expect(resumed.kind).toBe('redriven');
    await env.platform.lifecycleOrchestrator.drain();

    expect(await env.platform.registry.get(tenantId)).toMatchObject({ status: 'active' });
    expect((await env.platform.registry.get(tenantId))?.lastError).toBeUndefined();
    expect(reached.get(tenantId)?.slice(before)).toContain('activate');
    expect(await footprint(tenantId)).toEqual({ schemas: 1, roles: 1, rows: 1, secrets: 1 });
    expect(await logsInWithStoredSecret(tenantId)).toBe(true);
    expect(await env.platform.authorizer.authenticate(`Bearer ${apiKey}`)).toEqual({
      kind: 'tenant',
      tenantId,
    });
  });

  it('keeps a tenant whose execution could not be started, says why, and recovery starts it', async () => {
    const tenantId = env.id('unstarted');
    const down = new LocalOrchestrator({ definitions: {}, lambdas: {} });
    down.simulateCrash();
    const lifecycle = new TenantLifecycle({
      provisioning: env.platform.provisioning,
      registry: env.platform.registry,
      orchestrator: down,
      logger: createLogger('lifecycle-test'),
    });
    const { tenant, apiKey } = await lifecycle.onboard({ tenantId, name: 'Unstarted' });
    expect(tenant.status).toBe('provisioning');
    expect(tenant.lastError).toMatch(/Could not start the onboarding state machine.*recovery starts it/);
    expect((await describeOnboarding(tenantId, tenant.createdAt)).status).toBe('not_found');

    const summary = await createRecovery(env.platform.core, {
      provisioning: env.platform,
      lifecycle: env.platform.lifecycle,
      orchestrator: new LocalOrchestrator({ definitions: {}, lambdas: {} }),
      workflows: new WorkflowRegistry(),
      logger: createLogger('lifecycle-test'),
      options: { staleAfterSeconds: 0 },
    }).run();
    expect(summary.findings.stuck_provisioning).toBeGreaterThanOrEqual(1);
    await env.platform.lifecycleOrchestrator.drain();

    expect((await env.platform.registry.get(tenantId))?.status).toBe('active');
    expect(await env.platform.authorizer.authenticate(`Bearer ${apiKey}`)).toEqual({
      kind: 'tenant',
      tenantId,
    });
  });

  it('refuses a step of an earlier registration of the same id, changing nothing', async () => {
    const tenantId = env.id('reborn');
    const { tenant: first } = await env.platform.lifecycle.onboard({ tenantId, name: 'Reborn' });
    await env.platform.lifecycleOrchestrator.drain();
    await env.platform.registry.setStatus(tenantId, 'inactive', ['active']);
    await env.platform.lifecycle.offboard(tenantId);
    await env.platform.lifecycleOrchestrator.drain();
    // Registered again, its onboarding not started yet: the first registration's execution name is stale.
    const { tenant: second } = await env.platform.provisioning.register({ tenantId, name: 'Reborn again' });
    const step = (createdAt: Date) =>
      runLifecycleStep(env.platform.provisioning, {
        tenantId,
        executionId: lifecycleExecutionName(tenantId, createdAt),
        lifecycle: ONBOARDING,
        step: 'schema-and-role',
      });

    await expect(step(first.createdAt)).rejects.toThrow(/belongs to an earlier registration/);
    expect(await footprint(tenantId)).toEqual({ schemas: 0, roles: 0, rows: 1, secrets: 0 });
    expect(await step(second.createdAt)).toEqual({ done: true });
    expect(await footprint(tenantId)).toMatchObject({ schemas: 1, roles: 1 });
  });

  it('refuses a step that is not one of its lifecycle', async () => {
    const tenantId = env.id('nosuch');
    await expect(
      runLifecycleStep(env.platform.provisioning, {
        tenantId,
        executionId: `${tenantId}-x`,
        lifecycle: ONBOARDING,
        step: 'registry',
      }),
    ).rejects.toThrow(ValidationError);
  });
});

describe('offboarding as a state machine', () => {
  it('moves an inactive tenant to deprovisioning at once, and the execution removes all it owned', async () => {
    const tenantId = env.id('leaving');
    await env.platform.lifecycle.onboard({ tenantId, name: 'Leaving' });
    await env.platform.lifecycleOrchestrator.drain();
    await env.platform.registry.setStatus(tenantId, 'inactive', ['active']);

    const leaving = await env.platform.lifecycle.offboard(tenantId);
    expect(leaving.status).toBe('deprovisioning');
    await env.platform.lifecycleOrchestrator.drain();

    expect(await env.platform.registry.get(tenantId)).toBeUndefined();
    expect(await footprint(tenantId)).toEqual({ schemas: 0, roles: 0, rows: 0, secrets: 0 });
  });

  it('removes what an onboarding that stopped for good created, but not while it still runs', async () => {
    const tenantId = env.id('abandoned');
    let release = () => {};
    const atMigrations = new Promise<void>((resolve) => {
      gate = { tenantId, step: 'grants', reached: resolve, release: new Promise((r) => (release = r)) };
    });
    await env.platform.lifecycle.onboard({ tenantId, name: 'Abandoned' });
    await atMigrations;
    await expect(env.platform.lifecycle.offboard(tenantId)).rejects.toThrow(
      /still being onboarded \(step: migrations\); it can be deleted once its onboarding has finished or stopped/,
    );
    failing.set(tenantId, 'search-path');
    release();
    await env.platform.lifecycleOrchestrator.drain();
    expect(await env.platform.registry.get(tenantId)).toMatchObject({
      status: 'provisioning',
      currentStep: 'migrations',
    });
    expect(await footprint(tenantId)).toEqual({ schemas: 1, roles: 1, rows: 1, secrets: 1 });

    expect((await env.platform.lifecycle.offboard(tenantId)).status).toBe('deprovisioning');
    await env.platform.lifecycleOrchestrator.drain();

    expect(await footprint(tenantId)).toEqual({ schemas: 0, roles: 0, rows: 0, secrets: 0 });
  });

  it('refuses an active tenant and starts nothing', async () => {
    const tenantId = env.id('staying');
    await env.platform.lifecycle.onboard({ tenantId, name: 'Staying' });
    await env.platform.lifecycleOrchestrator.drain();

    await expect(env.platform.lifecycle.offboard(tenantId)).rejects.toThrow(
      /must be inactive.*Deactivate it first/,
    );
    await env.platform.lifecycleOrchestrator.drain();
    expect(await footprint(tenantId)).toEqual({ schemas: 1, roles: 1, rows: 1, secrets: 1 });
  });
});
