import type { ApiClient, ApiRequest, ApiResponse } from '../../../ops/api-client.js';

/**
 * An in-memory tenantflow API, as the smoke test sees it over HTTP, with knobs for what a real
 * deployment could do: provision and delete asynchronously (202), fail a workflow, leak across
 * tenants, refuse a delete, stop an offboarding halfway.
 */
export interface FakeTenantflowOptions {
  /**
   * `async`: `POST /tenants` answers 202 without an API key; the tenant is `provisioning` for a few
   * reads. `accepted`: as tenantflow's onboarding state machine answers, 202 with the API key, the
   * tenant `provisioning` (with its `currentStep`) for a few reads; the key
   * authenticates once the tenant is active.
   */
  readonly provisioning?: 'sync' | 'async' | 'accepted';
  /** What an async provisioning ends in. @default 'active' */
  readonly provisionedStatus?: string;
  /**
   * `async`: `DELETE` answers 202 with the tenant `deprovisioning`, which stays readable (with its
   * `currentStep`) for a few reads, as tenantflow's offboarding state machine does.
   */
  readonly deletion?: 'sync' | 'async';
  /** With `deletion: 'async'`: the offboarding stops at its `login` step with this `lastError`, and the tenant stays. */
  readonly deletionStopsWith?: string;
  /** An answer to `DELETE` instead of deleting (a stuck tenant). */
  readonly deleteRefusal?: number;
  readonly workflows?: readonly string[];
  /** The final status of an execution of `workflow` with `input`. @default 'succeeded' */
  readonly outcome?: (workflow: string, input: unknown) => string;
  /** The status another tenant's key gets on a tenant's routes. @default 403 */
  readonly crossTenantStatus?: number;
}

interface FakeTenant {
  status: string;
  reads: number;
  apiKey?: string;
  deleted?: boolean;
}

const PENDING_READS = 2;

/** What `currentStep` reads while a tenant is onboarded or offboarded (the first step of each). */
const STEP_UNDER_WAY: Readonly<Record<string, string>> = {
  provisioning: 'schema-and-role',
  deprovisioning: 'schema-and-role',
};

export class FakeTenantflow {
  readonly calls: string[] = [];
  readonly tenants = new Map<string, FakeTenant>();
  readonly #executions = new Map<
    string,
    { tenantId: string; workflow: string; status: string; reads: number }
  >();
  readonly #options: FakeTenantflowOptions;

  constructor(options: FakeTenantflowOptions = {}) {
    this.#options = options;
  }

  readonly admin: ApiClient = {
    auth: 'fake admin',
    refusalHint: 'check the fake admin credentials',
    send: async (request) => this.#admin(request),
  };

  tenantClient(apiKey: string): ApiClient {
    return { auth: 'fake tenant key', send: async (request) => this.#tenant(apiKey, request) };
  }

  #admin(request: ApiRequest): ApiResponse {
    this.calls.push(`admin ${request.method} ${request.path}`);
    const path = request.path.split('/').slice(1);
    if (request.path === '/health') {
      return json(200, { status: 'ok', stage: 'fake' });
    }
    if (request.method === 'POST' && request.path === '/tenants') {
      const { tenantId } = request.body as { tenantId: string };
      const apiKey = `tfk_${tenantId}_secret`;
      if (this.#options.provisioning === 'async') {
        this.tenants.set(tenantId, { status: 'provisioning', reads: 0 });
        return json(202, { tenantId, status: 'provisioning' });
      }
      if (this.#options.provisioning === 'accepted') {
        this.tenants.set(tenantId, { status: 'provisioning', reads: 0, apiKey });
        return json(202, { tenantId, status: 'provisioning', apiKey });
      }
      this.tenants.set(tenantId, { status: 'active', reads: 0, apiKey });
      return json(201, { tenantId, status: 'active', apiKey });
    }
    const tenantId = path[1] ?? '';
    const tenant = this.tenants.get(tenantId);
    if (tenant === undefined) {
      return json(404, { error: { code: 'TENANT_NOT_FOUND', message: `Tenant '${tenantId}' not found` } });
    }
    if (request.method === 'GET' && path.length === 2) {
      tenant.reads += 1;
      const stopsWith = this.#options.deletionStopsWith;
      if (tenant.deleted === true && stopsWith !== undefined) {
        return json(200, { tenantId, status: tenant.status, currentStep: 'login', lastError: stopsWith });
      }
      if (tenant.deleted === true && tenant.reads > PENDING_READS) {
        this.tenants.delete(tenantId);
        return json(404, { error: { code: 'TENANT_NOT_FOUND', message: 'gone' } });
      }
      if (tenant.status === 'provisioning' && tenant.reads > PENDING_READS) {
        tenant.status = this.#options.provisionedStatus ?? 'active';
      }
      const currentStep = STEP_UNDER_WAY[tenant.status];
      return json(200, {
        tenantId,
        status: tenant.status,
        ...(currentStep === undefined ? {} : { currentStep }),
      });
    }
    if (request.method === 'POST' && path[2] === 'api-key') {
      tenant.apiKey = `tfk_${tenantId}_issued`;
      return json(201, { tenantId, apiKey: tenant.apiKey });
    }
    if (request.method === 'POST' && path[2] === 'deactivate') {
      tenant.status = 'inactive';
      return json(200, { tenantId, status: tenant.status });
    }
    if (request.method === 'DELETE') {
      if (this.#options.deleteRefusal !== undefined) {
        return json(this.#options.deleteRefusal, {
          error: { code: 'TENANT_STATE_CONFLICT', message: 'stuck' },
        });
      }
      if (this.#options.deletion === 'async') {
        tenant.status = 'deprovisioning';
        tenant.deleted = true;
        tenant.reads = 0;
        return json(202, { tenantId, status: tenant.status });
      }
      this.tenants.delete(tenantId);
      return { status: 204, body: undefined, text: '' };
    }
    return json(404, { error: { code: 'ROUTE_NOT_FOUND', message: request.path } });
  }

  #tenant(apiKey: string, request: ApiRequest): ApiResponse {
    this.calls.push(`${apiKey} ${request.method} ${request.path}`);
    const caller = [...this.tenants].find(([, tenant]) => tenant.apiKey === apiKey)?.[0];
    if (caller === undefined) {
      return json(401, { error: { code: 'UNAUTHENTICATED', message: 'bad key' } });
    }
    if (this.tenants.get(caller)?.status === 'provisioning') {
      // The key returned by an accepted POST /tenants works once the tenant is active.
      return json(401, { error: { code: 'UNAUTHENTICATED', message: 'not active yet' } });
    }
    if (request.path === '/workflows') {
      return json(200, { workflows: (this.#options.workflows ?? []).map((name) => ({ name })) });
    }
    const [, , tenantId, resource, executionId] = request.path.split('/');
    if (tenantId !== caller) {
      const status = this.#options.crossTenantStatus ?? 403;
      return json(
        status,
        status === 200 ? { executions: [] } : { error: { code: 'FORBIDDEN', message: 'no' } },
      );
    }
    const own = [...this.#executions.values()].filter((execution) => execution.tenantId === tenantId);
    if (resource === 'metrics') {
      const final = own.filter((execution) => execution.status !== 'running');
      return json(200, {
        tenantId,
        executionsFinished: final.length,
        executionsSucceeded: final.filter((execution) => execution.status === 'succeeded').length,
        executionsFailed: final.filter((execution) => execution.status === 'failed').length,
        averageDurationMs: 12,
      });
    }
    if (request.method === 'POST') {
      const { workflow, input } = request.body as { workflow: string; input: unknown };
      const id = `exec-${this.#executions.size + 1}`;
      const status = this.#options.outcome?.(workflow, input) ?? 'succeeded';
      this.#executions.set(id, { tenantId, workflow, status, reads: 0 });
      return json(202, { executionId: id, status: 'running' });
    }
    if (executionId !== undefined) {
      const execution = this.#executions.get(executionId);
      if (execution === undefined) {
        return json(404, { error: { code: 'EXECUTION_NOT_FOUND', message: executionId } });
      }
      execution.reads += 1;
      const status = execution.reads > PENDING_READS ? execution.status : 'running';
      return json(200, {
        executionId,
        status,
        error: status === 'failed' ? `Task 'publish' failed after 2 attempt(s)` : null,
      });
    }
    return json(200, { executions: own.map(({ workflow, status }) => ({ workflow, status })) });
  }
}

function json(status: number, body: unknown): ApiResponse {
  return { status, body, text: JSON.stringify(body) };
}
