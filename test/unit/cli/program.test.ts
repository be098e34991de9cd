import { describe, expect, it } from 'vitest';
import { type CliDependencies, runCli } from '../../../cli/src/program.js';

const TOKEN = 'admin-token-0123456789abcdef';

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly authorization: string | null;
  readonly body: unknown;
}

type Route = (request: Seen) => { status: number; body?: unknown } | undefined;

/** The CLI wired to an API made of `routes` (first match answers), recording what it was sent. */
function harness(routes: Route[], env: NodeJS.ProcessEnv = { TENANTFLOW_ADMIN_TOKEN: TOKEN }) {
  const seen: Seen[] = [];
  const out: string[] = [];
  const err: string[] = [];
  const scripts: [string, readonly string[]][] = [];
  let clock = 0;
  const fetchFake = async (input: string | URL | Request, init?: RequestInit) => {
    const headers = new Headers(init?.headers);
    const request: Seen = {
      method: init?.method ?? 'GET',
      url: String(input),
      authorization: headers.get('authorization'),
      body: typeof init?.body === 'string' ? JSON.parse(init.body) : undefined,
    };
    seen.push(request);
    for (const route of routes) {
      const answer = route(request);
      if (answer !== undefined) {
        return new Response(answer.body === undefined ? null : JSON.stringify(answer.body), {
          status: answer.status,
        });
      }
    }
    return new Response(JSON.stringify({ error: { code: 'ROUTE_NOT_FOUND', message: 'no route' } }), {
      status: 404,
    });
  };
  const deps: CliDependencies = {
    env,
    out: (text) => out.push(text),
    err: (text) => err.push(text),
    fetch: fetchFake as typeof fetch,
    credentials: async () => ({ accessKeyId: 'AKID', secretAccessKey: 'secret' }),
    stackOutputs: async () => undefined,
    readFile: async () => {
      throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
    },
    runScript: async (script, args) => {
      scripts.push([script, args]);
      return 0;
    },
    sleep: async (ms) => {
      clock += ms;
    },
    now: () => clock,
  };
  return {
    run: (argv: string[]) => runCli(argv, deps),
    seen,
    stdout: () => out.join('\n'),
    stderr: () => err.join('\n'),
    scripts,
  };
}

const on =
  (method: string, path: RegExp, answer: (request: Seen) => { status: number; body?: unknown }): Route =>
  (request) =>
    request.method === method && path.test(new URL(request.url).pathname + new URL(request.url).search)
      ? answer(request)
      : undefined;

describe('tenantflow tenants list', () => {
  it('follows nextToken until it is absent, and prints every page as one table', async () => {
    // Prepare
    const cli = harness([
      on('GET', /^\/tenants\?nextToken=p2$/, () => ({
        status: 200,
        body: { tenants: [{ tenantId: 'b', name: 'B', status: 'active', createdAt: '2026-01-02' }] },
      })),
      on('GET', /^\/tenants$/, () => ({
        status: 200,
        body: {
          tenants: [{ tenantId: 'a', name: 'A', status: 'inactive', createdAt: '2026-01-01' }],
          nextToken: 'p2',
        },
      })),
    ]);

    // Act
    const code = await cli.run(['tenants', 'list']);

    // Assert
    expect(code).toBe(0);
    expect(cli.stdout()).toBe(
      [
        'ID  NAME  STATUS    CREATED',
        'a   A     inactive  2026-01-01',
        'b   B     active    2026-01-02',
      ].join('\n'),
    );
    expect(cli.seen.map((request) => request.authorization)).toEqual([`Bearer ${TOKEN}`, `Bearer ${TOKEN}`]);
  });

  it('passes --status on every page, keeps only that status, and prints JSON with --json', async () => {
    const cli = harness([
      on('GET', /^\/tenants\?status=active$/, () => ({
        status: 200,
        // A server without the filter answers every tenant.
        body: {
          tenants: [
            { tenantId: 'a', status: 'active' },
            { tenantId: 'b', status: 'inactive' },
          ],
        },
      })),
    ]);

    const code = await cli.run(['--json', 'tenants', 'list', '--status', 'active']);

    expect(code).toBe(0);
    expect(JSON.parse(cli.stdout())).toEqual({ tenants: [{ tenantId: 'a', status: 'active' }] });
  });

  it('refuses an unknown --status as a usage error, before calling the API', async () => {
    const cli = harness([]);

    expect(await cli.run(['tenants', 'list', '--status', 'sleeping'])).toBe(2);
    expect(cli.stderr()).toContain("argument 'sleeping' is invalid");
    expect(cli.seen).toEqual([]);
  });
});

describe('tenantflow tenants create', () => {
  it('sends the body, and with --wait polls until active, keeping the API key it was given', async () => {
    let polls = 0;
    const cli = harness([
      on('POST', /^\/tenants$/, () => ({
        status: 202,
        body: { tenantId: 'acme', status: 'provisioning', apiKey: 'tfk_acme_x' },
      })),
      on('GET', /^\/tenants\/acme$/, () => {
        polls += 1;
        return { status: 200, body: { tenantId: 'acme', status: polls < 3 ? 'provisioning' : 'active' } };
      }),
    ]);

    const code = await cli.run([
      '--json',
      'tenants',
      'create',
      'acme',
      '--name',
      'Acme',
      '--config',
      '{"limits":{"max_items_per_workflow":100}}',
      '--wait',
    ]);

    expect(code).toBe(0);
    expect(cli.seen[0]?.body).toEqual({
      tenantId: 'acme',
      name: 'Acme',
      config: { limits: { max_items_per_workflow: 100 } },
    });
    expect(polls).toBe(3);
    expect(JSON.parse(cli.stdout())).toEqual({ tenantId: 'acme', status: 'active', apiKey: 'tfk_acme_x' });
  });

  it('exits 4 when --wait times out, naming the step and the last error', async () => {
    const cli = harness([
      on('POST', /^\/tenants$/, () => ({ status: 202, body: { tenantId: 'acme', status: 'provisioning' } })),
      on('GET', /^\/tenants\/acme$/, () => ({
        status: 200,
        body: {
          tenantId: 'acme',
          status: 'provisioning',
          currentStep: 'login',
          lastError: 'proxy unavailable',
        },
      })),
    ]);

    const code = await cli.run(['tenants', 'create', 'acme', '--name', 'Acme', '--wait', '--timeout', '2']);

    expect(code).toBe(4);
    expect(cli.stderr()).toContain(
      'gave up waiting for tenant acme to become active after 2 s (status provisioning, step login, last error: proxy unavailable)',
    );
  });

  it.each([
    [['tenants', 'create', 'acme'], "required option '--name <name>' not specified"],
    [['tenants', 'create', 'acme', '--name', 'A', '--metadata', '{oops'], '--metadata must be JSON'],
    [['tenants', 'create', 'acme', '--name', 'A', '--timeout', '-1'], 'must be a positive number of seconds'],
    [['tenants', 'frobnicate'], "unknown command 'frobnicate'"],
    [['--api', 'x', 'tenants', 'list'], '--api must be an http(s) URL'],
    [['--api', 'http://x', '--stage', 'dev', 'tenants', 'list'], '--api and --stage both name the API'],
  ])('exits 2 on the usage error of %j', async (argv, message) => {
    const cli = harness([]);

    expect(await cli.run(argv)).toBe(2);
    expect(cli.stderr()).toContain(message);
  });
});

describe('tenantflow exit codes', () => {
  it("exits 1 on a 4xx, printing the API's error code and message", async () => {
    const cli = harness([
      on('GET', /^\/tenants\/ghost$/, () => ({
        status: 404,
        body: { error: { code: 'TENANT_NOT_FOUND', message: "Tenant 'ghost' not found" } },
      })),
    ]);

    expect(await cli.run(['tenants', 'get', 'ghost'])).toBe(1);
    expect(cli.stderr()).toBe(
      "tenantflow: GET /tenants/ghost: 404 TENANT_NOT_FOUND: Tenant 'ghost' not found",
    );
  });

  it('exits 3 on a 5xx', async () => {
    const cli = harness([
      on('POST', /^\/tenants\/acme\/rotate-credentials$/, () => ({
        status: 500,
        body: { error: { code: 'INTERNAL_ERROR', message: 'Internal error' } },
      })),
    ]);

    expect(await cli.run(['tenants', 'rotate', 'acme'])).toBe(3);
    expect(cli.stderr()).toContain('500 INTERNAL_ERROR: Internal error');
  });

  it('exits 0 for --help and 2 for no command at all, with the usage', async () => {
    const help = harness([]);
    const bare = harness([]);

    expect(await help.run(['--help'])).toBe(0);
    expect(help.stdout()).toContain('Exit codes:');
    expect(await bare.run([])).toBe(2);
    expect(bare.stderr()).toContain('Usage: tenantflow');
  });
});

describe('tenantflow executions', () => {
  it("starts with the tenant's key, waits, and exits 4 when the execution failed", async () => {
    const cli = harness(
      [
        on('POST', /^\/tenants\/acme\/executions$/, () => ({
          status: 202,
          body: { executionId: 'e1', status: 'running' },
        })),
        on('GET', /^\/tenants\/acme\/executions\/e1$/, () => ({
          status: 200,
          body: { status: 'failed', error: 'boom' },
        })),
      ],
      { TENANTFLOW_TENANT_KEY: 'tfk_acme_key' },
    );

    const code = await cli.run([
      'executions',
      'start',
      'acme',
      'report_pipeline',
      '--input',
      '{"rows":[]}',
      '--wait',
    ]);

    expect(code).toBe(4);
    expect(cli.seen[0]).toMatchObject({
      authorization: 'Bearer tfk_acme_key',
      body: { workflow: 'report_pipeline', input: { rows: [] } },
    });
    expect(cli.stdout()).toMatch(/^status:\s+failed$/m);
  });

  it('lists one page with --status and --limit, and says how to get the next', async () => {
    const cli = harness([
      on('GET', /^\/tenants\/acme\/executions\?status=succeeded&limit=2$/, () => ({
        status: 200,
        body: {
          executions: [{ executionId: 'e1', workflow: 'w', status: 'succeeded', createdAt: '2026-01-01' }],
          nextToken: 'n2',
        },
      })),
    ]);

    const code = await cli.run([
      'executions',
      'list',
      'acme',
      '--status',
      'succeeded',
      '--limit',
      '2',
      '--key',
      'tfk_k',
    ]);

    expect(code).toBe(0);
    expect(cli.stdout()).toBe(
      'EXECUTION ID  WORKFLOW  STATUS     CREATED\ne1            w         succeeded  2026-01-01',
    );
    expect(cli.stderr()).toBe('More: add --next-token n2');
  });
});

describe('tenantflow migrate, recover, smoke', () => {
  it('runs the npm scripts, passing the remaining arguments on', async () => {
    const cli = harness([]);

    expect(await cli.run(['migrate'])).toBe(0);
    expect(await cli.run(['recover', '--verbose'])).toBe(0);

    expect(cli.scripts).toEqual([
      ['migrate', []],
      ['recover', ['--verbose']],
    ]);
  });

  it('gives smoke the API and the admin token it resolved, then the rest', async () => {
    const cli = harness([]);

    await cli.run(['smoke', '--api', 'http://localhost:4000', '--tenant-timeout', '600']);

    expect(cli.scripts).toEqual([
      ['smoke', ['--api', 'http://localhost:4000/', '--admin-token', TOKEN, '--tenant-timeout', '600']],
    ]);
  });
});

describe('tenantflow schedules', () => {
  const SCHEDULE = {
    scheduleId: 's1',
    tenantId: 'acme',
    workflow: 'report_pipeline',
    expression: 'cron(0 9 ? * MON-FRI *)',
    timezone: 'Europe/Paris',
    input: { rows: [] },
    state: 'enabled',
    nextDueAt: '2026-03-30T07:00:00.000Z',
  };

  it("creates with the tenant's key, sending the expression, time zone, input and state", async () => {
    const cli = harness(
      [on('POST', /^\/tenants\/acme\/schedules$/, () => ({ status: 201, body: SCHEDULE }))],
      { TENANTFLOW_TENANT_KEY: 'tfk_acme_key' },
    );

    const code = await cli.run([
      'schedules',
      'create',
      'acme',
      'report_pipeline',
      'cron(0 9 ? * MON-FRI *)',
      '--timezone',
      'Europe/Paris',
      '--input',
      '{"rows":[]}',
      '--paused',
    ]);

    expect(code).toBe(0);
    expect(cli.seen[0]).toMatchObject({
      authorization: 'Bearer tfk_acme_key',
      body: {
        workflow: 'report_pipeline',
        expression: 'cron(0 9 ? * MON-FRI *)',
        timezone: 'Europe/Paris',
        input: { rows: [] },
        state: 'paused',
      },
    });
    expect(cli.stdout()).toMatch(/^nextDueAt:\s+2026-03-30T07:00:00.000Z$/m);
  });

  it('lists one page as a table and says how to get the next', async () => {
    const cli = harness([
      on('GET', /^\/tenants\/acme\/schedules\?limit=1$/, () => ({
        status: 200,
        body: { schedules: [SCHEDULE], nextToken: 'n2' },
      })),
    ]);

    const code = await cli.run(['schedules', 'list', 'acme', '--limit', '1', '--key', 'tfk_k']);

    expect(code).toBe(0);
    expect(cli.stdout()).toBe(
      [
        'SCHEDULE ID  WORKFLOW         EXPRESSION               TIMEZONE      STATE    NEXT DUE',
        's1           report_pipeline  cron(0 9 ? * MON-FRI *)  Europe/Paris  enabled  2026-03-30T07:00:00.000Z',
      ].join('\n'),
    );
    expect(cli.stderr()).toBe('More: add --next-token n2');
  });

  it('pauses and resumes with PATCH state, and updates only what is given', async () => {
    const cli = harness([
      on('PATCH', /^\/tenants\/acme\/schedules\/s1$/, (request) => ({
        status: 200,
        body: { ...SCHEDULE, ...(request.body as object) },
      })),
    ]);

    expect(await cli.run(['schedules', 'pause', 'acme', 's1', '--key', 'k'])).toBe(0);
    expect(await cli.run(['schedules', 'resume', 'acme', 's1', '--key', 'k'])).toBe(0);
    expect(
      await cli.run(['schedules', 'update', 'acme', 's1', '--expression', 'rate(1 hour)', '--key', 'k']),
    ).toBe(0);

    expect(cli.seen.map((request) => request.body)).toEqual([
      { state: 'paused' },
      { state: 'enabled' },
      { expression: 'rate(1 hour)' },
    ]);
  });

  it('refuses an update that changes nothing (exit 2) without calling the API', async () => {
    const cli = harness([]);

    const code = await cli.run(['schedules', 'update', 'acme', 's1', '--key', 'k']);

    expect(code).toBe(2);
    expect(cli.seen).toEqual([]);
    expect(cli.stderr()).toContain('at least one of --workflow, --expression, --timezone, --input');
  });

  it("deletes (204), and exits with the API's error when there is no such schedule", async () => {
    const cli = harness([
      on('DELETE', /^\/tenants\/acme\/schedules\/s1$/, () => ({ status: 204 })),
      on('DELETE', /^\/tenants\/acme\/schedules\/s2$/, () => ({
        status: 404,
        body: {
          error: { code: 'SCHEDULE_NOT_FOUND', message: "Schedule 's2' does not exist for tenant 'acme'" },
        },
      })),
    ]);

    expect(await cli.run(['schedules', 'delete', 'acme', 's1', '--key', 'k'])).toBe(0);
    expect(cli.stdout()).toBe('Schedule s1 deleted.');
    const missing = await cli.run(['schedules', 'delete', 'acme', 's2', '--key', 'k']);

    expect(missing).not.toBe(0);
    expect(cli.stderr()).toContain('404 SCHEDULE_NOT_FOUND');
  });
});
