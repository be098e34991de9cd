import { randomBytes } from 'node:crypto';
import type { ApiClient, ApiRequest, ApiResponse } from './api-client.js';
import {
  formatVerdict,
  runSteps,
  SmokeCheckError,
  type SmokeReport,
  type SmokeStep,
} from './smoke-runner.js';

/**
 * The smoke test users run after a deploy: the API answers, a tenant can be onboarded and run every
 * deployed workflow, another tenant's key is refused on its routes, metrics count the runs, and
 * both throwaway tenants are removed again, whatever failed before.
 */

export interface SmokeTestDependencies {
  /** Calls the admin routes (bearer admin token, or SigV4). */
  readonly admin: ApiClient;
  /** Calls a tenant's routes with its API key. */
  readonly tenantClient: (apiKey: string) => ApiClient;
  readonly print: (line: string) => void;
  readonly tenantTimeoutMs: number;
  readonly executionTimeoutMs: number;
  /** @default 1000 */
  readonly pollIntervalMs?: number;
  /** Makes the tenant ids `smoke_<runId>_a` and `_b`. @default 8 random hex digits */
  readonly runId?: string;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  /**
   * Once aborted (Ctrl-C), the steps left are skipped and a wait in progress stops, but the
   * throwaway tenants are still offboarded.
   */
  readonly signal?: AbortSignal;
}

/** Where report_pipeline's `publish` may write: the smoke tenant allows exactly this destination. */
export const SMOKE_DESTINATION = 's3://tenantflow-smoke-test';

/**
 * Inputs for the example workflows (see each file in `examples/`) under which they must succeed.
 * report_pipeline fails for a destination the tenant does not allow; the smoke tenant allows this one.
 */
export const EXAMPLE_INPUTS: Readonly<Record<string, unknown>> = {
  tenant_isolation: { values: [1, 2, 3] },
  configurable_processing: { items: [1, 2, 3, 4, 5] },
  report_pipeline: { rows: [{ id: 'smoke', amount: 1 }], destination: SMOKE_DESTINATION },
};

const FINAL_EXECUTION_STATUSES = new Set(['succeeded', 'failed', 'aborted']);

/** A tenant status that will not become `active` without an operator. */
const DEAD_END_TENANT_STATUS = /fail|error|inactive|deprovisioning/i;

interface SmokeTenant {
  readonly id: string;
  /** `maybe`: the create call's outcome is unknown (a 5xx or a lost response), so clean up anyway. */
  created: 'no' | 'yes' | 'maybe';
  apiKey?: string;
  /** Why offboarding it failed, for the final report. */
  leftover?: string;
}

export async function runSmokeTest(deps: SmokeTestDependencies): Promise<SmokeReport> {
  const runId = deps.runId ?? randomBytes(4).toString('hex');
  const tenants = { a: newTenant(`smoke_${runId}_a`), b: newTenant(`smoke_${runId}_b`) };
  deps.print(`admin calls with ${deps.admin.auth}; throwaway tenants ${tenants.a.id} and ${tenants.b.id}`);
  const report = await runSteps(smokeSteps(deps, tenants), {
    print: deps.print,
    now: deps.now,
    signal: deps.signal,
  });
  deps.print(formatVerdict(report));
  const leftovers = [tenants.a, tenants.b].filter((tenant) => tenant.leftover !== undefined);
  for (const tenant of leftovers) {
    deps.print(
      `  not cleaned up: tenant ${tenant.id} (${tenant.leftover}); remove it with ` +
        `POST /tenants/${tenant.id}/deactivate, then DELETE /tenants/${tenant.id}`,
    );
  }
  return report;
}

function newTenant(id: string): SmokeTenant {
  return { id, created: 'no' };
}

function smokeSteps(deps: SmokeTestDependencies, tenants: { a: SmokeTenant; b: SmokeTenant }): SmokeStep[] {
  const { admin } = deps;
  const poll = poller(deps, deps.signal);
  // Offboarding runs after an interruption too, so its waits are not interrupted.
  const pollCleanup = poller(deps, undefined);
  const finished: { workflow: string; status: string }[] = [];

  const keyOf = (tenant: SmokeTenant): ApiClient => {
    if (tenant.apiKey === undefined) {
      throw new SmokeCheckError(`no API key for tenant ${tenant.id}`);
    }
    return deps.tenantClient(tenant.apiKey);
  };

  const onboard = (tenant: SmokeTenant, config: unknown): SmokeStep => ({
    name: `onboard ${tenant.id}`,
    run: async () => {
      const request: ApiRequest = {
        method: 'POST',
        path: '/tenants',
        body: {
          tenantId: tenant.id,
          name: 'tenantflow smoke test (throwaway)',
          metadata: { smokeTest: true },
          config,
        },
      };
      let response: ApiResponse;
      try {
        response = await admin.send(request);
      } catch (error) {
        tenant.created = 'maybe';
        throw error;
      }
      if (response.status >= 500) {
        tenant.created = 'maybe';
      }
      expectStatus(request, response, [201, 202], admin);
      tenant.created = 'yes';
      const apiKey = field(response.body, 'apiKey');
      if (typeof apiKey === 'string') {
        tenant.apiKey = apiKey;
      }
      return {
        detail:
          response.status === 201
            ? `201: provisioned synchronously, status ${String(field(response.body, 'status'))}`
            : '202: provisioning asynchronously',
      };
    },
  });

  const becomesActive = (tenant: SmokeTenant): SmokeStep => ({
    name: `${tenant.id} becomes active`,
    run: async (note) => {
      const request: ApiRequest = { method: 'GET', path: `/tenants/${tenant.id}` };
      const status = await poll(
        `tenant ${tenant.id}`,
        deps.tenantTimeoutMs,
        '--tenant-timeout',
        note,
        async () => {
          const response = await admin.send(request);
          expectStatus(request, response, [200], admin);
          const status = String(field(response.body, 'status'));
          const lastError = field(response.body, 'lastError');
          if (DEAD_END_TENANT_STATUS.test(status)) {
            throw new SmokeCheckError(
              `tenant ${tenant.id} is ${status}, not active${typeof lastError === 'string' ? `: ${lastError}` : ''}`,
            );
          }
          return { done: status === 'active', state: tenantProgress(response.body) };
        },
      );
      if (tenant.apiKey !== undefined) {
        return { detail: status };
      }
      // Provisioning that runs after the response may not hand the key back in it: issue one now.
      const issue: ApiRequest = { method: 'POST', path: `/tenants/${tenant.id}/api-key` };
      const issued = await admin.send(issue);
      expectStatus(issue, issued, [201], admin);
      const apiKey = field(issued.body, 'apiKey');
      if (typeof apiKey !== 'string') {
        throw new SmokeCheckError(`POST /tenants/${tenant.id}/api-key returned no apiKey`);
      }
      tenant.apiKey = apiKey;
      return { detail: `${status}; API key issued with POST /tenants/${tenant.id}/api-key` };
    },
  });

  const runWorkflow = (workflow: string): SmokeStep => {
    const known = Object.hasOwn(EXAMPLE_INPUTS, workflow);
    return {
      name: `run ${workflow}`,
      run: async (note) => {
        const tenant = keyOf(tenants.a);
        const start: ApiRequest = {
          method: 'POST',
          path: `/tenants/${tenants.a.id}/executions`,
          body: { workflow, input: known ? EXAMPLE_INPUTS[workflow] : {} },
        };
        const started = await tenant.send(start);
        if (!known && started.status === 400) {
          return {
            detail: `not an example: it refused the input {} (${describeResponse(started)}); not judged`,
          };
        }
        expectStatus(start, started, [202], tenant);
        const executionId = field(started.body, 'executionId');
        if (typeof executionId !== 'string') {
          throw new SmokeCheckError(`POST ${start.path} returned no executionId`);
        }
        const read: ApiRequest = {
          method: 'GET',
          path: `/tenants/${tenants.a.id}/executions/${executionId}`,
        };
        let execution: unknown;
        const status = await poll(
          `execution ${executionId}`,
          deps.executionTimeoutMs,
          '--execution-timeout',
          note,
          async () => {
            const response = await tenant.send(read);
            expectStatus(read, response, [200], tenant);
            execution = response.body;
            const status = String(field(response.body, 'status'));
            return { done: FINAL_EXECUTION_STATUSES.has(status), state: status };
          },
        );
        finished.push({ workflow, status });
        const error = field(execution, 'error');
        const outcome = `${status}${typeof error === 'string' ? `: ${error}` : ''} (execution ${executionId})`;
        if (!known) {
          return { detail: `not an example, run with input {}: ${outcome}; not judged` };
        }
        if (status !== 'succeeded') {
          throw new SmokeCheckError(`expected succeeded, got ${outcome}`);
        }
        return { detail: outcome };
      },
    };
  };

  const listWorkflows: SmokeStep = {
    name: 'GET /workflows',
    run: async () => {
      const tenant = keyOf(tenants.a);
      const request: ApiRequest = { method: 'GET', path: '/workflows' };
      const response = await tenant.send(request);
      expectStatus(request, response, [200], tenant);
      const listed = field(response.body, 'workflows');
      if (!Array.isArray(listed)) {
        throw new SmokeCheckError(
          `GET /workflows: expected {workflows: [...]}, got ${describeResponse(response)}`,
        );
      }
      const names = listed.map((workflow) => String(field(workflow, 'name')));
      const examples = names.filter((name) => Object.hasOwn(EXAMPLE_INPUTS, name));
      return {
        detail:
          names.length === 0
            ? 'no workflows deployed: nothing to run'
            : `${names.join(', ')} (${examples.length} example(s), ${names.length - examples.length} other(s))`,
        next: names.map(runWorkflow),
      };
    },
  };

  const crossTenantRefusal: SmokeStep = {
    name: 'cross-tenant key refused',
    run: async () => {
      const own = keyOf(tenants.b);
      const ownRequest: ApiRequest = { method: 'GET', path: `/tenants/${tenants.b.id}/executions` };
      // Without this, a key refused everywhere would pass as isolation.
      expectStatus(ownRequest, await own.send(ownRequest), [200], own);
      const other = keyOf(tenants.a);
      const attempts: ApiRequest[] = [
        { method: 'GET', path: `/tenants/${tenants.b.id}/executions` },
        { method: 'GET', path: `/tenants/${tenants.b.id}/metrics` },
        {
          method: 'POST',
          path: `/tenants/${tenants.b.id}/executions`,
          body: { workflow: 'tenant_isolation', input: {} },
        },
      ];
      const refusals: string[] = [];
      for (const attempt of attempts) {
        const response = await other.send(attempt);
        if (response.status !== 401 && response.status !== 403) {
          throw new SmokeCheckError(
            `${attempt.method} ${attempt.path} with ${tenants.a.id}'s key: expected 403 or 401, got ${describeResponse(response)}`,
          );
        }
        refusals.push(`${attempt.method} ${response.status}`);
      }
      return {
        detail: `${tenants.b.id}'s own key accepted; ${tenants.a.id}'s refused (${refusals.join(', ')})`,
      };
    },
  };

  const metrics: SmokeStep = {
    name: `GET /tenants/${tenants.a.id}/metrics`,
    run: async () => {
      const tenant = keyOf(tenants.a);
      const request: ApiRequest = { method: 'GET', path: `/tenants/${tenants.a.id}/metrics` };
      const response = await tenant.send(request);
      expectStatus(request, response, [200], tenant);
      const count = (name: string) => field(response.body, name);
      if (count('executionsFinished') !== finished.length) {
        throw new SmokeCheckError(
          `expected executionsFinished ${finished.length} (the executions this run finished), got ${response.text}`,
        );
      }
      return {
        detail: `${finished.length} finished: ${String(count('executionsSucceeded'))} succeeded, ${String(count('executionsFailed'))} failed; average ${String(count('averageDurationMs'))} ms`,
      };
    },
  };

  const offboard = (tenant: SmokeTenant): SmokeStep => ({
    name: `offboard ${tenant.id}`,
    always: true,
    run: async (note) => {
      if (tenant.created === 'no') {
        return { detail: 'nothing to offboard: never created' };
      }
      try {
        return { detail: await offboardTenant(tenant, note) };
      } catch (error) {
        tenant.leftover = error instanceof Error ? error.message : String(error);
        throw error;
      }
    },
  });

  const offboardTenant = async (tenant: SmokeTenant, note: (line: string) => void): Promise<string> => {
    const deactivate: ApiRequest = { method: 'POST', path: `/tenants/${tenant.id}/deactivate` };
    const deactivated = await admin.send(deactivate);
    if (deactivated.status === 404) {
      return tenant.created === 'maybe'
        ? 'nothing to offboard: its creation did not go through'
        : 'nothing to offboard: already gone (404)';
    }
    // Deletion says why it cannot go ahead more precisely than a refused deactivation does.
    if (deactivated.status !== 200) {
      note(`POST ${deactivate.path}: ${describeResponse(deactivated)}; trying DELETE anyway`);
    }
    const remove: ApiRequest = { method: 'DELETE', path: `/tenants/${tenant.id}` };
    const removed = await admin.send(remove);
    expectStatus(remove, removed, [202, 204], admin);
    if (removed.status === 204) {
      return 'deactivated, then deleted (204)';
    }
    const read: ApiRequest = { method: 'GET', path: `/tenants/${tenant.id}` };
    // Accepted: the tenant is gone once its offboarding ends; until then it reads as deprovisioning,
    // with the step under way, or the one it stopped at and why.
    await pollCleanup(`tenant ${tenant.id}`, deps.tenantTimeoutMs, '--tenant-timeout', note, async () => {
      const response = await admin.send(read);
      if (response.status === 404) {
        return { done: true, state: 'gone (404)' };
      }
      expectStatus(read, response, [200], admin);
      return { done: false, state: tenantProgress(response.body) };
    });
    return 'deactivated, then deleted (202, gone once polled)';
  };

  return [
    {
      name: 'GET /health',
      run: async () => {
        const request: ApiRequest = { method: 'GET', path: '/health' };
        const response = await admin.send(request);
        expectStatus(request, response, [200], admin);
        if (field(response.body, 'status') !== 'ok') {
          throw new SmokeCheckError(`expected status ok, got ${response.text}`);
        }
        return { detail: `ok, stage ${String(field(response.body, 'stage'))}` };
      },
    },
    onboard(tenants.a, { settings: { allowedDestinations: [SMOKE_DESTINATION] } }),
    becomesActive(tenants.a),
    listWorkflows,
    onboard(tenants.b, {}),
    becomesActive(tenants.b),
    crossTenantRefusal,
    metrics,
    offboard(tenants.b),
    offboard(tenants.a),
  ];
}

type Probe = () => Promise<{ readonly done: boolean; readonly state: string }>;

/** `provisioning (step: login)`, `deprovisioning (step: secret; last error: …)`, or the bare status. */
function tenantProgress(tenant: unknown): string {
  const status = String(field(tenant, 'status'));
  const currentStep = field(tenant, 'currentStep');
  const lastError = field(tenant, 'lastError');
  const notes = [
    ...(typeof currentStep === 'string' ? [`step: ${currentStep}`] : []),
    ...(typeof lastError === 'string' ? [`last error: ${lastError}`] : []),
  ];
  return notes.length === 0 ? status : `${status} (${notes.join('; ')})`;
}

/** Calls `probe` until it is done or `timeoutMs` has passed, noting each change of state. */
function poller(deps: SmokeTestDependencies, signal: AbortSignal | undefined) {
  const now = deps.now ?? Date.now;
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const interval = deps.pollIntervalMs ?? 1000;
  return async (
    what: string,
    timeoutMs: number,
    flag: string,
    note: (line: string) => void,
    probe: Probe,
  ) => {
    const deadline = now() + timeoutMs;
    let last: string | undefined;
    for (;;) {
      const { done, state } = await probe();
      if (done) {
        return state;
      }
      if (state !== last) {
        note(`${what}: ${state}`);
        last = state;
      }
      if (now() >= deadline) {
        throw new SmokeCheckError(`${what} still ${state} after ${Math.round(timeoutMs / 1000)} s (${flag})`);
      }
      if (signal?.aborted === true) {
        throw new SmokeCheckError(`interrupted while ${what} was ${state}`);
      }
      await sleep(interval);
    }
  };
}

function expectStatus(
  request: ApiRequest,
  response: ApiResponse,
  expected: readonly number[],
  client: ApiClient,
): void {
  if (expected.includes(response.status)) {
    return;
  }
  const refused = (response.status === 401 || response.status === 403) && client.refusalHint !== undefined;
  throw new SmokeCheckError(
    `${request.method} ${request.path}: expected ${expected.join(' or ')}, got ${describeResponse(response)}` +
      (refused ? ` (${client.refusalHint})` : ''),
  );
}

/** `401 UNAUTHENTICATED: ...` for tenantflow's errors, the message for API Gateway's own. */
export function describeResponse(response: ApiResponse): string {
  const error = field(response.body, 'error');
  const code = field(error, 'code');
  const message =
    field(error, 'message') ?? field(response.body, 'message') ?? field(response.body, 'Message');
  if (typeof message === 'string') {
    return `${response.status}${typeof code === 'string' ? ` ${code}` : ''}: ${message}`;
  }
  const text = response.text.length > 200 ? `${response.text.slice(0, 200)}…` : response.text;
  return text === '' ? String(response.status) : `${response.status}: ${text}`;
}

function field(value: unknown, name: string): unknown {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[name] : undefined;
}
