import { describe, expect, it } from 'vitest';
import { EXAMPLE_INPUTS, runSmokeTest, SMOKE_DESTINATION } from '../../../ops/smoke-test.js';
import { FakeTenantflow, type FakeTenantflowOptions } from './fake-tenantflow-api.js';

const EXAMPLES = ['tenant_isolation', 'configurable_processing', 'report_pipeline'];

/** Runs the smoke test against a fake API on a fake clock (each poll advances it by a second). */
async function smoke(
  options: FakeTenantflowOptions,
  timeouts = { tenantTimeoutMs: 60_000, executionTimeoutMs: 60_000 },
) {
  const api = new FakeTenantflow(options);
  const lines: string[] = [];
  let clock = 0;
  const report = await runSmokeTest({
    admin: api.admin,
    tenantClient: (apiKey) => api.tenantClient(apiKey),
    print: (line) => lines.push(line),
    ...timeouts,
    runId: 'test',
    now: () => clock,
    sleep: async (ms) => {
      clock += ms;
    },
  });
  const line = (fragment: string) => lines.find((candidate) => candidate.includes(fragment)) ?? '';
  return { api, report, output: lines.join('\n'), line };
}

describe('runSmokeTest', () => {
  it('passes against an API that provisions and deletes synchronously, running every listed workflow', async () => {
    // Act
    const { api, report, output, line } = await smoke({ workflows: EXAMPLES });

    // Assert
    expect(report.passed).toBe(true);
    expect(report.results.map((result) => `${result.status} ${result.name}`)).toEqual([
      'PASS GET /health',
      'PASS onboard smoke_test_a',
      'PASS smoke_test_a becomes active',
      'PASS GET /workflows',
      'PASS run tenant_isolation',
      'PASS run configurable_processing',
      'PASS run report_pipeline',
      'PASS onboard smoke_test_b',
      'PASS smoke_test_b becomes active',
      'PASS cross-tenant key refused',
      'PASS GET /tenants/smoke_test_a/metrics',
      'PASS offboard smoke_test_b',
      'PASS offboard smoke_test_a',
    ]);
    expect(line('run report_pipeline')).toMatch(/PASS .* succeeded \(execution exec-3\)/);
    expect(output).toMatch(/^Verdict: PASSED \(13 of 13 steps passed in \d/m);
    expect(api.tenants.size).toBe(0);
    // Each example ran with the input under which it succeeds, as the tenant that was onboarded.
    expect(api.calls).toContain('tfk_smoke_test_a_secret POST /tenants/smoke_test_a/executions');
    expect(EXAMPLE_INPUTS.report_pipeline).toMatchObject({ destination: SMOKE_DESTINATION });
    expect(api.calls.filter((call) => call.startsWith('admin POST /tenants/smoke_test_'))).toEqual([
      'admin POST /tenants/smoke_test_b/deactivate',
      'admin POST /tenants/smoke_test_a/deactivate',
    ]);
  });

  it('waits for asynchronous provisioning and deletion (202), and issues the key provisioning did not return', async () => {
    // Act
    const { api, report, line, output } = await smoke({
      provisioning: 'async',
      deletion: 'async',
      workflows: ['tenant_isolation'],
    });

    // Assert
    expect(report.passed).toBe(true);
    expect(line('onboard smoke_test_a')).toContain('202: provisioning asynchronously');
    expect(line('smoke_test_a becomes active')).toContain(
      'API key issued with POST /tenants/smoke_test_a/api-key',
    );
    expect(output).toContain('tenant smoke_test_a: provisioning');
    expect(line('offboard smoke_test_a')).toContain('202, gone once polled');
    expect(api.tenants.size).toBe(0);
  });

  it('follows tenantflow through 202s: the key from the create works once active, and a delete is polled to 404', async () => {
    // Act
    const { api, report, line, output } = await smoke({
      provisioning: 'accepted',
      deletion: 'async',
      workflows: ['tenant_isolation'],
    });

    // Assert
    expect(report.passed).toBe(true);
    expect(line('onboard smoke_test_a')).toContain('202: provisioning asynchronously');
    expect(output).toContain('tenant smoke_test_a: provisioning (step: schema-and-role)');
    // The key the 202 carried is the one used, once the tenant was active: none was issued.
    expect(line('smoke_test_a becomes active')).toMatch(/PASS .*active$/);
    expect(api.calls.filter((call) => call.endsWith('/api-key'))).toEqual([]);
    expect(api.calls).toContain('tfk_smoke_test_a_secret POST /tenants/smoke_test_a/executions');
    expect(line('run tenant_isolation')).toMatch(/PASS .*succeeded/);
    // Deleted only once a read answered 404, after reads that showed the offboarding under way.
    expect(output).toContain('tenant smoke_test_b: deprovisioning (step: schema-and-role)');
    expect(line('offboard smoke_test_b')).toMatch(/PASS .*202, gone once polled/);
    expect(line('offboard smoke_test_a')).toMatch(/PASS .*202, gone once polled/);
    const afterDelete = api.calls.slice(api.calls.indexOf('admin DELETE /tenants/smoke_test_a'));
    expect(afterDelete.filter((call) => call === 'admin GET /tenants/smoke_test_a')).toHaveLength(3);
    expect(api.tenants.size).toBe(0);
  });

  it('fails an offboarding that stops, saying at which step and why, and reports the tenant left behind', async () => {
    // Act
    const { report, line, output } = await smoke(
      { workflows: [], deletion: 'async', deletionStopsWith: 'ProxyBusyError: the proxy is modifying' },
      { tenantTimeoutMs: 2000, executionTimeoutMs: 60_000 },
    );

    // Assert
    expect(report.passed).toBe(false);
    expect(line('offboard smoke_test_b')).toMatch(
      /FAIL .*tenant smoke_test_b still deprovisioning \(step: login; last error: ProxyBusyError: the proxy is modifying\) after 2 s \(--tenant-timeout\)/,
    );
    // A stopped offboarding does not stop the next one.
    expect(line('offboard smoke_test_a')).toMatch(/FAIL .*smoke_test_a still deprovisioning/);
    expect(output).toContain('not cleaned up: tenant smoke_test_b (tenant smoke_test_b still deprovisioning');
  });

  it('runs a workflow it does not know with {} and reports its outcome without judging it', async () => {
    // Act
    const { report, line, api } = await smoke({
      workflows: ['tenant_isolation', 'nightly_billing'],
      outcome: (workflow) => (workflow === 'nightly_billing' ? 'failed' : 'succeeded'),
    });

    // Assert
    expect(report.passed).toBe(true);
    expect(line('run nightly_billing')).toMatch(
      /PASS .*not an example, run with input \{\}: failed: Task 'publish'/,
    );
    expect(api.calls).toContain('tfk_smoke_test_a_secret POST /tenants/smoke_test_a/executions');
  });

  it('fails when an example does not succeed, skips what builds on it, and still offboards what it created', async () => {
    // Act
    const { report, line, output, api } = await smoke({
      workflows: EXAMPLES,
      outcome: (workflow) => (workflow === 'configurable_processing' ? 'failed' : 'succeeded'),
    });

    // Assert
    expect(report.passed).toBe(false);
    expect(line('run configurable_processing')).toMatch(
      /FAIL .*expected succeeded, got failed: Task 'publish'/,
    );
    expect(line('run report_pipeline')).toMatch(/SKIP .*after an earlier failure/);
    expect(line('onboard smoke_test_b')).toMatch(/SKIP/);
    expect(line('offboard smoke_test_b')).toMatch(/PASS .*nothing to offboard: never created/);
    expect(line('offboard smoke_test_a')).toMatch(/PASS .*deleted \(204\)/);
    expect(api.tenants.size).toBe(0);
    expect(output).toMatch(
      /^Verdict: FAILED \(1 failed, 5 skipped, 7 passed of 13 steps, in .*\)\n {2}first failure: run configurable_processing: expected succeeded/m,
    );
  });

  it("fails when one tenant's key is accepted on another tenant's routes", async () => {
    // Act
    const { report, line } = await smoke({ workflows: [], crossTenantStatus: 200 });

    // Assert
    expect(report.passed).toBe(false);
    expect(line('cross-tenant key refused')).toMatch(
      /FAIL .*GET \/tenants\/smoke_test_b\/executions with smoke_test_a's key: expected 403 or 401, got 200/,
    );
  });

  it('fails on a tenant whose provisioning ends in a failed state', async () => {
    // Act
    const { report, line, api } = await smoke({
      provisioning: 'async',
      provisionedStatus: 'provisioning_failed',
    });

    // Assert
    expect(report.passed).toBe(false);
    expect(line('smoke_test_a becomes active')).toMatch(
      /FAIL .*tenant smoke_test_a is provisioning_failed, not active/,
    );
    expect(line('offboard smoke_test_a')).toMatch(/PASS/);
    expect(api.tenants.size).toBe(0);
  });

  it('gives up on a tenant still provisioning after the timeout, naming the flag that sets it', async () => {
    // Act
    const { report, line } = await smoke(
      { provisioning: 'async' },
      { tenantTimeoutMs: 1000, executionTimeoutMs: 60_000 },
    );

    // Assert
    expect(report.passed).toBe(false);
    expect(line('smoke_test_a becomes active')).toMatch(
      /FAIL .*tenant smoke_test_a still provisioning \(step: schema-and-role\) after 1 s \(--tenant-timeout\)/,
    );
  });

  it('reports a tenant it could not offboard, with how to remove it, and fails the run', async () => {
    // Act
    const { report, line, output } = await smoke({ workflows: [], deleteRefusal: 409 });

    // Assert
    expect(report.passed).toBe(false);
    expect(line('offboard smoke_test_b')).toMatch(
      /FAIL .*DELETE \/tenants\/smoke_test_b: expected 202 or 204, got 409 TENANT_STATE_CONFLICT: stuck/,
    );
    // A failed cleanup does not stop the next one.
    expect(line('offboard smoke_test_a')).toMatch(/FAIL/);
    expect(output).toContain(
      'not cleaned up: tenant smoke_test_a (DELETE /tenants/smoke_test_a: expected 202 or 204, got 409 TENANT_STATE_CONFLICT: stuck); ' +
        'remove it with POST /tenants/smoke_test_a/deactivate, then DELETE /tenants/smoke_test_a',
    );
  });

  it('offboards a tenant whose creation failed with a 5xx, in case it went through', async () => {
    // Prepare: the create call fails after the tenant was registered.
    const api = new FakeTenantflow({ workflows: [] });
    const admin = {
      ...api.admin,
      send: async (request: Parameters<typeof api.admin.send>[0]) => {
        const response = await api.admin.send(request);
        return request.method === 'POST' && request.path === '/tenants'
          ? { status: 504, body: { message: 'Endpoint request timed out' }, text: '' }
          : response;
      },
    };
    const lines: string[] = [];

    // Act
    const report = await runSmokeTest({
      admin,
      tenantClient: (apiKey) => api.tenantClient(apiKey),
      print: (line) => lines.push(line),
      tenantTimeoutMs: 1000,
      executionTimeoutMs: 1000,
      runId: 'test',
    });

    // Assert
    expect(report.passed).toBe(false);
    expect(lines.join('\n')).toMatch(/FAIL {2}onboard smoke_test_a .*got 504: Endpoint request timed out/);
    expect(lines.join('\n')).toMatch(/PASS {2}offboard smoke_test_a .*deleted \(204\)/);
    expect(api.tenants.size).toBe(0);
  });

  it('stops waiting when interrupted, skips the steps left, and still offboards what it created', async () => {
    // Prepare: Ctrl-C while the first tenant is provisioning.
    const api = new FakeTenantflow({ provisioning: 'async', deletion: 'async' });
    const interrupt = new AbortController();
    const lines: string[] = [];

    // Act
    const report = await runSmokeTest({
      admin: api.admin,
      tenantClient: (apiKey) => api.tenantClient(apiKey),
      print: (line) => lines.push(line),
      tenantTimeoutMs: 60_000,
      executionTimeoutMs: 60_000,
      runId: 'test',
      sleep: async () => interrupt.abort(),
      signal: interrupt.signal,
    });

    // Assert
    const output = lines.join('\n');
    expect(report.passed).toBe(false);
    expect(output).toMatch(
      /FAIL {2}smoke_test_a becomes active .*interrupted while tenant smoke_test_a was provisioning/,
    );
    expect(output).toMatch(/SKIP {2}GET \/workflows .*interrupted/);
    expect(output).toMatch(/PASS {2}offboard smoke_test_a .*deleted \(202, gone once polled\)/);
    expect(api.tenants.size).toBe(0);
  });
});
