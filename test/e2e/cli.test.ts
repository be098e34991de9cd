import { CloudFormationClient, CreateStackCommand, DeleteStackCommand } from '@aws-sdk/client-cloudformation';
import { describe, expect, inject, it } from 'vitest';
import { type CommandResult, npmStartForSuite, printedJson, runCommand } from '../support/e2e.js';

/**
 * `npx tenantflow`, run as a user runs it (the bin npm links into node_modules/.bin, in a process
 * of its own) against one `npm start`. The server generates its admin token; the CLI finds it in
 * TENANTFLOW_HOME as it would in ./.tenantflow.
 */

const motoEndpoint = inject('motoEndpoint');
const TENANT = 'cli_e2e';

const server = npmStartForSuite('tenantflow-e2e-cli-', { TENANTFLOW_ADMIN_TOKEN: '' });

function tenantflow(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<CommandResult> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, TENANTFLOW_HOME: server.home, ...env };
  delete childEnv.TENANTFLOW_ADMIN_TOKEN;
  delete childEnv.TENANTFLOW_TENANT_KEY;
  return runCommand(process.execPath, ['node_modules/.bin/tenantflow', ...args], childEnv);
}

const json = printedJson;

describe('npx tenantflow', () => {
  it('walks a tenant through its life: create --wait, list, get, a workflow, deactivate, delete --wait', async () => {
    const api = ['--api', server.started.url];

    // Register, and wait for onboarding.
    const created = json<{ status: string; apiKey: string }>(
      await tenantflow([
        ...api,
        '--json',
        'tenants',
        'create',
        TENANT,
        '--name',
        'CLI Corp',
        '--config',
        '{"limits":{"max_items_per_workflow":100}}',
        '--wait',
      ]),
    );
    expect(created.status).toBe('active');
    expect(created.apiKey).toMatch(new RegExp(`^tfk_${TENANT}_`));

    // The table and the JSON.
    const table = await tenantflow([...api, 'tenants', 'list']);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/^ID\s+NAME\s+STATUS\s+CREATED$/m);
    expect(table.stdout).toMatch(new RegExp(`^${TENANT}\\s+CLI Corp\\s+active\\s+\\d{4}-`, 'm'));
    const listed = json<{ tenants: { tenantId: string }[] }>(
      await tenantflow([...api, 'tenants', 'list', '--json']),
    );
    expect(listed.tenants.map((tenant) => tenant.tenantId)).toEqual([TENANT]);
    const get = await tenantflow([...api, 'tenants', 'get', TENANT]);
    expect(get.code, get.stderr).toBe(0);
    expect(get.stdout).toMatch(/^status:\s+active$/m);
    expect(get.stdout).toMatch(/^config:\s+\{.*"limits":\{"max_items_per_workflow":100\}\}$/m);

    // As the tenant, with its key, run a workflow to its end.
    const execution = json<{ status: string; context: { processedItems: number } }>(
      await tenantflow(
        [
          ...api,
          '--json',
          'executions',
          'start',
          TENANT,
          'configurable_processing',
          '--input',
          '{"items":[1,2,3]}',
          '--wait',
        ],
        { TENANTFLOW_TENANT_KEY: created.apiKey },
      ),
    );
    expect(execution.status).toBe('succeeded');
    expect(execution.context.processedItems).toBe(3);

    // Its schedules: create, list, pause, delete; the one left is removed with the tenant.
    const asTenant = { TENANTFLOW_TENANT_KEY: created.apiKey };
    const schedule = json<{ scheduleId: string; state: string; nextDueAt: string }>(
      await tenantflow(
        [
          ...api,
          '--json',
          'schedules',
          'create',
          TENANT,
          'configurable_processing',
          'cron(0 9 ? * MON-FRI *)',
          '--timezone',
          'Europe/Paris',
          '--input',
          '{"items":[1]}',
        ],
        asTenant,
      ),
    );
    expect(schedule.state).toBe('enabled');
    expect(Date.parse(schedule.nextDueAt)).toBeGreaterThan(Date.now());
    const hourly = json<{ scheduleId: string }>(
      await tenantflow(
        [...api, '--json', 'schedules', 'create', TENANT, 'configurable_processing', 'rate(1 hour)'],
        asTenant,
      ),
    );
    const schedules = await tenantflow([...api, 'schedules', 'list', TENANT], asTenant);
    expect(schedules.code, schedules.stderr).toBe(0);
    expect(schedules.stdout).toMatch(/^SCHEDULE ID\s+WORKFLOW\s+EXPRESSION\s+TIMEZONE\s+STATE\s+NEXT DUE$/m);
    expect(schedules.stdout).toContain('cron(0 9 ? * MON-FRI *)');
    const paused = await tenantflow([...api, 'schedules', 'pause', TENANT, schedule.scheduleId], asTenant);
    expect(paused.code, paused.stderr).toBe(0);
    expect(paused.stdout).toMatch(/^state:\s+paused$/m);
    const badExpression = await tenantflow(
      [...api, 'schedules', 'update', TENANT, schedule.scheduleId, '--expression', 'cron(0 9 * * MON *)'],
      asTenant,
    );
    expect(badExpression.code).toBe(1);
    expect(badExpression.stderr).toContain("exactly one of them must be '?'");
    const removed = await tenantflow([...api, 'schedules', 'delete', TENANT, hourly.scheduleId], asTenant);
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout).toContain(`Schedule ${hourly.scheduleId} deleted.`);

    // Deactivate, then remove.
    const deactivated = await tenantflow([...api, 'tenants', 'deactivate', TENANT]);
    expect(deactivated.code, deactivated.stderr).toBe(0);
    expect(deactivated.stdout).toMatch(/^status:\s+inactive$/m);
    const deleted = await tenantflow([...api, 'tenants', 'delete', TENANT, '--wait']);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(deleted.stdout).toContain(`Tenant ${TENANT} deleted.`);
    expect(
      json<{ tenants: unknown[] }>(await tenantflow([...api, 'tenants', 'list', '--json'])).tenants,
    ).toEqual([]);
  }, 90_000);

  it("exits 1 with the API's message for an unknown tenant", async () => {
    const result = await tenantflow(['--api', server.started.url, 'tenants', 'get', 'nobody_here']);

    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /^tenantflow: GET \/tenants\/nobody_here: 404 TENANT_NOT_FOUND: .*nobody_here/m,
    );
  });

  it('exits 1 when the API refuses the credentials, and 2 on a usage error', async () => {
    const refused = await tenantflow([
      '--api',
      server.started.url,
      '--admin-token',
      'not-the-admin-token-012345',
      'tenants',
      'list',
    ]);
    const usage = await tenantflow(['--api', server.started.url, 'tenants', 'create', 'x']);

    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('401 UNAUTHENTICATED');
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("required option '--name <name>' not specified");
  });

  it('exits 3 when nothing answers at the API URL', async () => {
    const result = await tenantflow([
      '--api',
      'http://127.0.0.1:9',
      '--admin-token',
      'x'.repeat(24),
      'tenants',
      'list',
    ]);

    expect(result.code).toBe(3);
    expect(result.stderr).toContain('cannot reach http://127.0.0.1:9/');
  });

  it.skipIf(motoEndpoint === '')(
    'finds the API of --stage in its CloudFormation stack (moto_server)',
    async () => {
      // Prepare: a stand-in for a deployed stage whose ApiUrl output is this server.
      const stage = `cli${Date.now().toString(36)}`;
      const aws = {
        region: 'us-east-1',
        credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
      };
      const cloudFormation = new CloudFormationClient({ ...aws, endpoint: motoEndpoint });
      const stackName = `tenantflow-${stage}-platform`;
      await cloudFormation.send(
        new CreateStackCommand({
          StackName: stackName,
          TemplateBody: JSON.stringify({
            Resources: { Topic: { Type: 'AWS::SNS::Topic' } },
            Outputs: { ApiUrl: { Value: server.started.url } },
          }),
        }),
      );
      const awsEnv = {
        AWS_ENDPOINT_URL_CLOUDFORMATION: motoEndpoint,
        AWS_REGION: 'us-east-1',
        AWS_ACCESS_KEY_ID: 'testing',
        AWS_SECRET_ACCESS_KEY: 'testing',
        AWS_PROFILE: '',
        AWS_EC2_METADATA_DISABLED: 'true',
      };

      try {
        // Act
        const found = await tenantflow(['--stage', stage, '--json', 'tenants', 'list'], awsEnv);
        const direct = await tenantflow(['--api', server.started.url, '--json', 'tenants', 'list']);
        const missing = await tenantflow(['--stage', `${stage}x`, 'tenants', 'list'], awsEnv);

        // Assert
        expect(json<{ tenants: unknown[] }>(found)).toEqual(json<{ tenants: unknown[] }>(direct));
        expect(missing.code).toBe(2);
        expect(missing.stderr).toContain(`no CloudFormation stack tenantflow-${stage}x-platform`);
      } finally {
        await cloudFormation.send(new DeleteStackCommand({ StackName: stackName }));
        cloudFormation.destroy();
      }
    },
    60_000,
  );
});
