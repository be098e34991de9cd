import { describe, expect, it } from 'vitest';
import { type CommandResult, npmStartForSuite, printedJson, runCommand } from '../support/e2e.js';

/**
 * `npx tenantflow executions cancel|rerun`, run as a user runs them against one `npm start`: a
 * report that failed for want of a setting is rerun once the setting is there, and finishes
 * without running again the tasks it had committed.
 */

const TENANT = 'cli_rerun_e2e';
const ADMIN_TOKEN = 'cli-execution-control-e2e-admin-token';

const server = npmStartForSuite('tenantflow-e2e-cli-control-', { TENANTFLOW_ADMIN_TOKEN: ADMIN_TOKEN });

function tenantflow(args: readonly string[], key?: string): Promise<CommandResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, TENANTFLOW_HOME: server.home };
  delete env.TENANTFLOW_ADMIN_TOKEN;
  delete env.TENANTFLOW_TENANT_KEY;
  if (key !== undefined) {
    env.TENANTFLOW_TENANT_KEY = key;
  }
  return runCommand(
    process.execPath,
    ['node_modules/.bin/tenantflow', '--api', server.started.url, '--admin-token', ADMIN_TOKEN, ...args],
    env,
  );
}

const json = printedJson;

describe('npx tenantflow executions cancel and rerun', () => {
  it('reruns a failed execution to success, and refuses to cancel or rerun it once it succeeded', async () => {
    const created = json<{ apiKey: string }>(
      await tenantflow(['--json', 'tenants', 'create', TENANT, '--name', 'Rerun Corp', '--wait']),
    );
    const key = created.apiKey;

    // No settings.allowedDestinations yet: `publish` fails for good, after the other tasks committed.
    const input = JSON.stringify({ rows: [{ id: 'r1', amount: 5 }], destination: 'warehouse' });
    const failed = await tenantflow(
      ['--json', 'executions', 'start', TENANT, 'report_pipeline', '--input', input, '--wait'],
      key,
    );
    expect(failed.code, failed.stderr).toBe(4);
    const { executionId, status } = JSON.parse(failed.stdout) as { executionId: string; status: string };
    expect(status).toBe('failed');

    const patched = await fetch(`${server.started.url}/tenants/${TENANT}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ config: { settings: { allowedDestinations: ['warehouse'] } } }),
    });
    expect(patched.status).toBe(200);

    const rerun = await tenantflow(['executions', 'rerun', TENANT, executionId], key);
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(rerun.stdout).toMatch(/^status:\s+running$/m);
    expect(rerun.stdout).toMatch(/^rerunCount:\s+1$/m);

    type View = { status: string; rerunCount: number; tasks: { taskId: string; attempt: number }[] };
    let view: View | undefined;
    for (let i = 0; i < 120; i++) {
      const seen = json<View>(await tenantflow(['--json', 'executions', 'get', TENANT, executionId], key));
      view = seen;
      if (seen.status !== 'running') {
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(view?.status).toBe('succeeded');
    expect(view?.rerunCount).toBe(1);
    // `enrich` had committed on its third attempt before the failure: the rerun did not run it again.
    expect(view?.tasks.find((task) => task.taskId === 'enrich')?.attempt).toBe(3);

    const cancel = await tenantflow(['executions', 'cancel', TENANT, executionId], key);
    expect(cancel.code).toBe(1);
    expect(cancel.stderr).toContain('is already succeeded');
    const again = await tenantflow(['executions', 'rerun', TENANT, executionId], key);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('only a failed execution can be rerun');
  }, 90_000);

  it('exits 1 for an execution the tenant does not have', async () => {
    const unknown = await tenantflow([
      'executions',
      'cancel',
      TENANT,
      '00000000-0000-4000-8000-000000000000',
    ]);

    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('does not exist');
  });
});
