import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { type AwsCredentialsProvider, bearerClient, type Fetch } from '../../ops/api-client.js';
import { call, type PollOptions, pollUntil, send } from './api-calls.js';
import {
  adminClient,
  type ConnectionOptions,
  DEFAULT_API,
  resolveApiUrl,
  type StackOutputs,
  selectAdminAuth,
  selectTenantToken,
} from './connection.js';
import { CliFailure, CliUsageError, EXIT, EXIT_CODES_HELP } from './exit-codes.js';
import { formatJson, formatKeyValues, formatTable } from './format.js';

/** Everything the CLI reaches outside itself, so tests can stand in for it. */
export interface CliDependencies {
  readonly env: NodeJS.ProcessEnv;
  /** Writes a line of output (stdout). */
  readonly out: (text: string) => void;
  /** Writes a line of diagnostics (stderr). */
  readonly err: (text: string) => void;
  readonly fetch?: Fetch;
  /** The caller's AWS credentials, for SigV4. */
  readonly credentials: AwsCredentialsProvider;
  readonly stackOutputs: StackOutputs;
  readonly readFile: (path: string) => Promise<string>;
  /** Runs `npm run <script> -- <args>` in the repository and resolves with its exit code. */
  readonly runScript: (script: string, args: readonly string[]) => Promise<number>;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly now?: () => number;
}

interface GlobalOptions extends ConnectionOptions {
  readonly json?: boolean;
}

const POLL_INTERVAL_MS = 500;
const DEFAULT_WAIT_SECONDS = 300;
const TENANT_COLUMNS = { ID: 'tenantId', NAME: 'name', STATUS: 'status', CREATED: 'createdAt' };
const EXECUTION_COLUMNS = {
  'EXECUTION ID': 'executionId',
  WORKFLOW: 'workflow',
  STATUS: 'status',
  CREATED: 'createdAt',
};
const TENANT_STATUSES = ['provisioning', 'active', 'inactive', 'deprovisioning'];
const EXECUTION_STATUSES = ['pending', 'running', 'succeeded', 'failed', 'aborted'];
const SCHEDULE_COLUMNS = {
  'SCHEDULE ID': 'scheduleId',
  WORKFLOW: 'workflow',
  EXPRESSION: 'expression',
  TIMEZONE: 'timezone',
  STATE: 'state',
  'NEXT DUE': 'nextDueAt',
};

const HELP_FOOTER = `
Credentials:
  Admin routes (tenants ...): --admin-token if given; against a local API (127.0.0.1, localhost),
  else TENANTFLOW_ADMIN_TOKEN, else the adminToken npm start saved in
  $TENANTFLOW_HOME/local-secrets.json (default ./.tenantflow); anywhere else, SigV4 with your AWS
  credentials for --region, the execute-api URL's region, or AWS_REGION.
  Tenant routes (executions, schedules ...): --key, else TENANTFLOW_TENANT_KEY, else the admin token as above.

${EXIT_CODES_HELP}`;

/**
 * Runs `tenantflow` with `argv` (without node and the script) and resolves with its exit code.
 *
 * @example
 * process.exitCode = await runCli(['tenants', 'list', '--json'], dependencies);
 */
export async function runCli(argv: readonly string[], deps: CliDependencies): Promise<number> {
  let exitCode: number = EXIT.ok;
  const program = createProgram(deps, (code) => {
    exitCode = code;
  });
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help asked for is a success; help shown because a command was missing, and every parse
      // error, are usage errors. Commander has printed the message already.
      return error.code === 'commander.helpDisplayed' || error.code === 'commander.version'
        ? EXIT.ok
        : EXIT.usage;
    }
    if (error instanceof CliUsageError) {
      deps.err(`tenantflow: ${error.message}`);
      return EXIT.usage;
    }
    if (error instanceof CliFailure) {
      deps.err(`tenantflow: ${error.message}`);
      return error.exitCode;
    }
    deps.err(`tenantflow: ${error instanceof Error ? error.message : String(error)}`);
    return EXIT.failed;
  }
}

function createProgram(deps: CliDependencies, setExitCode: (code: number) => void): Command {
  const poll = (timeoutSeconds: number): PollOptions => ({
    timeoutMs: timeoutSeconds * 1000,
    intervalMs: POLL_INTERVAL_MS,
    sleep: deps.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms))),
    now: deps.now ?? Date.now,
  });
  const print = (json: boolean | undefined, body: unknown, human: () => string) =>
    deps.out(json === true ? formatJson(body) : human());

  /** The API URL, options and admin client for an admin command. */
  const admin = async (command: Command) => {
    const options = command.optsWithGlobals<GlobalOptions>();
    const api = await resolveApiUrl(options, deps.stackOutputs);
    const auth = await selectAdminAuth(api, options, deps.env, deps.readFile);
    const client = adminClient(api, auth, { fetch: deps.fetch, credentials: deps.credentials });
    return { api, options, client };
  };
  /** The same for a tenant route, with the tenant's key (`--key`). */
  const tenant = async (command: Command) => {
    const options = command.optsWithGlobals<GlobalOptions & { key?: string }>();
    const api = await resolveApiUrl(options, deps.stackOutputs);
    const token = await selectTenantToken(api, options.key, options, deps.env, deps.readFile);
    const client = bearerClient(api, token, { fetch: deps.fetch ?? fetch });
    return { api, options, client };
  };

  const program = new Command('tenantflow')
    .description(
      'The tenantflow API from the command line: tenants, workflow executions, schedules, and the local scripts.',
    )
    .configureOutput({
      writeOut: (text) => deps.out(text.replace(/\n$/, '')),
      writeErr: (text) => deps.err(text.replace(/\n$/, '')),
    })
    .exitOverride()
    .showHelpAfterError('(add --help for usage)')
    .addOption(new Option('--api <url>', `the API's base URL, stage included (default: ${DEFAULT_API})`))
    .addOption(
      new Option(
        '--stage <stage>',
        'find the API URL in the ApiUrl output of stack tenantflow-<stage>-platform',
      ),
    )
    .option('--region <region>', "AWS region for SigV4 and --stage (default: the URL's, else AWS_REGION)")
    .option('--admin-token <token>', 'bearer admin token for the admin routes')
    .option('--json', 'print the JSON body instead of a table')
    .addHelpText('after', HELP_FOOTER);

  const tenants = program
    .command('tenants')
    .description('register, inspect and remove tenants (admin routes)');

  tenants
    .command('list')
    .description('list the tenants, every page (GET /tenants)')
    .addOption(new Option('--status <status>', 'only tenants with this status').choices(TENANT_STATUSES))
    .action(async (options: { status?: string }, command: Command) => {
      const { api, client, options: globals } = await admin(command);
      const all: Record<string, unknown>[] = [];
      const seen = new Set<string>();
      let nextToken: string | undefined;
      do {
        const request = {
          method: 'GET',
          path: '/tenants',
          query: { status: options.status, nextToken },
        } as const;
        const body = (await call(client, api, request)).body as {
          tenants?: Record<string, unknown>[];
          nextToken?: unknown;
        };
        all.push(...(body.tenants ?? []));
        nextToken = typeof body.nextToken === 'string' && body.nextToken !== '' ? body.nextToken : undefined;
        if (nextToken !== undefined && seen.has(nextToken)) {
          throw new CliFailure(`GET /tenants returned the page token ${nextToken} twice`, EXIT.failed);
        }
        if (nextToken !== undefined) {
          seen.add(nextToken);
        }
      } while (nextToken !== undefined);
      // A server without the status filter ignores the parameter; filter here too, to the same end.
      const rows = options.status === undefined ? all : all.filter((row) => row.status === options.status);
      print(globals.json, { tenants: rows }, () => formatTable(rows, TENANT_COLUMNS));
    });

  tenants
    .command('create <tenantId>')
    .description('register a tenant (POST /tenants); prints its API key, shown this once')
    .requiredOption('--name <name>', 'the display name')
    .option('--metadata <json>', 'a JSON object kept with the tenant', parseJsonOption('--metadata'))
    .option('--config <json>', 'the tenant config (settings, features, limits)', parseJsonOption('--config'))
    .option('--wait', 'wait until onboarding has made it active')
    .option('--timeout <seconds>', 'how long --wait waits', parseSeconds, DEFAULT_WAIT_SECONDS)
    .action(
      async (
        tenantId: string,
        options: { name: string; metadata?: unknown; config?: unknown; wait?: boolean; timeout: number },
        command: Command,
      ) => {
        const { api, client, options: globals } = await admin(command);
        const created = (
          await call(client, api, {
            method: 'POST',
            path: '/tenants',
            body: {
              tenantId,
              name: options.name,
              ...(options.metadata === undefined ? {} : { metadata: options.metadata }),
              ...(options.config === undefined ? {} : { config: options.config }),
            },
          })
        ).body as Record<string, unknown>;
        let shown = created;
        if (options.wait === true) {
          let last = created;
          const active = await pollUntil(
            `tenant ${tenantId} to become active`,
            async () => {
              last = (await call(client, api, { method: 'GET', path: tenantPath(tenantId) })).body as Record<
                string,
                unknown
              >;
              return last.status === 'active' ? last : undefined;
            },
            () => describeTenantState(last),
            poll(options.timeout),
          );
          // The key is in the registration's answer only: keep it in what is printed.
          shown = { ...active, apiKey: created.apiKey };
        }
        print(globals.json, shown, () => formatKeyValues(shown));
        if (globals.json !== true) {
          deps.err('The apiKey is shown only this once: keep it (tenants api-key issues a new one).');
        }
      },
    );

  const simpleTenantCommand = (name: string, description: string, method: 'GET' | 'POST', suffix: string) =>
    tenants
      .command(`${name} <tenantId>`)
      .description(description)
      .action(async (tenantId: string, _options: unknown, command: Command) => {
        const { api, client, options: globals } = await admin(command);
        const body = (await call(client, api, { method, path: `${tenantPath(tenantId)}${suffix}` }))
          .body as Record<string, unknown>;
        print(globals.json, body, () => formatKeyValues(body));
      });
  simpleTenantCommand('get', 'show a tenant (GET /tenants/{id})', 'GET', '');
  simpleTenantCommand('activate', 'activate a tenant (POST /tenants/{id}/activate)', 'POST', '/activate');
  simpleTenantCommand(
    'deactivate',
    'deactivate a tenant (POST /tenants/{id}/deactivate)',
    'POST',
    '/deactivate',
  );
  simpleTenantCommand(
    'rotate',
    "rotate the tenant's database password (POST /tenants/{id}/rotate-credentials)",
    'POST',
    '/rotate-credentials',
  );
  simpleTenantCommand(
    'api-key',
    'issue a new API key, shown once; the previous one stops working (POST /tenants/{id}/api-key)',
    'POST',
    '/api-key',
  );

  tenants
    .command('delete <tenantId>')
    .description('remove a deactivated tenant and everything it owns (DELETE /tenants/{id})')
    .option('--wait', 'wait until offboarding has removed it (GET answers 404)')
    .option('--timeout <seconds>', 'how long --wait waits', parseSeconds, DEFAULT_WAIT_SECONDS)
    .action(async (tenantId: string, options: { wait?: boolean; timeout: number }, command: Command) => {
      const { api, client, options: globals } = await admin(command);
      const request = { method: 'DELETE', path: tenantPath(tenantId) } as const;
      const deleted = (await call(client, api, request)).body as Record<string, unknown>;
      if (options.wait === true) {
        let last: Record<string, unknown> = deleted;
        await pollUntil(
          `tenant ${tenantId} to be removed`,
          async () => {
            const get = { method: 'GET', path: tenantPath(tenantId) } as const;
            const response = await send(client, api, get);
            if (response.status === 404) {
              return true;
            }
            last = (await call(client, api, get)).body as Record<string, unknown>;
            return undefined;
          },
          () => describeTenantState(last),
          poll(options.timeout),
        );
      }
      print(globals.json, deleted, () =>
        options.wait === true ? `Tenant ${tenantId} deleted.` : formatKeyValues(deleted),
      );
    });

  const executions = program
    .command('executions')
    .description("start, read, cancel and rerun a tenant's workflow executions (tenant routes)");
  const keyOption = () =>
    new Option('--key <apiKey>', "the tenant's API key (default: $TENANTFLOW_TENANT_KEY)");

  executions
    .command('start <tenantId> <workflow>')
    .description('start a workflow (POST /tenants/{id}/executions)')
    .option('--input <json>', "the workflow's input", parseJsonOption('--input'))
    .addOption(keyOption())
    .option('--wait', 'wait until the execution finishes; exit code 4 unless it succeeded')
    .option('--timeout <seconds>', 'how long --wait waits', parseSeconds, DEFAULT_WAIT_SECONDS)
    .action(
      async (
        tenantId: string,
        workflow: string,
        options: { input?: unknown; wait?: boolean; timeout: number },
        command: Command,
      ) => {
        const { api, client, options: globals } = await tenant(command);
        const started = (
          await call(client, api, {
            method: 'POST',
            path: `${tenantPath(tenantId)}/executions`,
            body: { workflow, ...(options.input === undefined ? {} : { input: options.input }) },
          })
        ).body as Record<string, unknown>;
        if (options.wait !== true) {
          print(globals.json, started, () => formatKeyValues(started));
          return;
        }
        const executionId = String(started.executionId);
        let last = started;
        const finished = await pollUntil(
          `execution ${executionId} to finish`,
          async () => {
            last = (await call(client, api, { method: 'GET', path: executionPath(tenantId, executionId) }))
              .body as Record<string, unknown>;
            return last.status === 'pending' || last.status === 'running' ? undefined : last;
          },
          () => `status ${String(last.status)}`,
          poll(options.timeout),
        );
        print(globals.json, finished, () => formatKeyValues({ executionId, ...finished }));
        if (finished.status !== 'succeeded') {
          setExitCode(EXIT.waitFailed);
        }
      },
    );

  executions
    .command('get <tenantId> <executionId>')
    .description('show an execution and its tasks (GET /tenants/{id}/executions/{executionId})')
    .addOption(keyOption())
    .action(async (tenantId: string, executionId: string, _options: unknown, command: Command) => {
      const { api, client, options: globals } = await tenant(command);
      const body = (await call(client, api, { method: 'GET', path: executionPath(tenantId, executionId) }))
        .body as Record<string, unknown>;
      print(globals.json, body, () => formatKeyValues(body));
    });

  executions
    .command('cancel <tenantId> <executionId>')
    .description(
      'cancel a pending or running execution: it ends aborted (POST /tenants/{id}/executions/{executionId}/cancel)',
    )
    .addOption(keyOption())
    .action(async (tenantId: string, executionId: string, _options: unknown, command: Command) => {
      const { api, client, options: globals } = await tenant(command);
      const body = (
        await call(client, api, { method: 'POST', path: `${executionPath(tenantId, executionId)}/cancel` })
      ).body as Record<string, unknown>;
      print(globals.json, body, () => formatKeyValues(body));
    });

  executions
    .command('rerun <tenantId> <executionId>')
    .description(
      'rerun a failed execution from its failed task (POST /tenants/{id}/executions/{executionId}/rerun)',
    )
    .addOption(keyOption())
    .action(async (tenantId: string, executionId: string, _options: unknown, command: Command) => {
      const { api, client, options: globals } = await tenant(command);
      const body = (
        await call(client, api, { method: 'POST', path: `${executionPath(tenantId, executionId)}/rerun` })
      ).body as Record<string, unknown>;
      print(globals.json, body, () => formatKeyValues(body));
    });

  executions
    .command('list <tenantId>')
    .description("list a tenant's executions, newest first, one page (GET /tenants/{id}/executions)")
    .addOption(
      new Option('--status <status>', 'only executions with this status').choices(EXECUTION_STATUSES),
    )
    .option('--limit <n>', 'how many (1-100, default 20)', parsePositiveInteger)
    .option('--next-token <token>', 'the page after the one that printed this token')
    .addOption(keyOption())
    .action(
      async (
        tenantId: string,
        options: { status?: string; limit?: number; nextToken?: string },
        command: Command,
      ) => {
        const { api, client, options: globals } = await tenant(command);
        const body = (
          await call(client, api, {
            method: 'GET',
            path: `${tenantPath(tenantId)}/executions`,
            query: {
              status: options.status,
              limit: options.limit === undefined ? undefined : String(options.limit),
              nextToken: options.nextToken,
            },
          })
        ).body as { executions?: Record<string, unknown>[]; nextToken?: string };
        print(globals.json, body, () => formatTable(body.executions ?? [], EXECUTION_COLUMNS));
        if (globals.json !== true && typeof body.nextToken === 'string') {
          deps.err(`More: add --next-token ${body.nextToken}`);
        }
      },
    );

  const schedules = program
    .command('schedules')
    .description("create, read, pause and delete a tenant's workflow schedules (tenant routes)");

  /** Sends a schedule request with the tenant's key and prints the schedule it answers. */
  const scheduleCall = async (
    command: Command,
    request: { method: 'GET' | 'POST' | 'PATCH'; path: string; body?: Record<string, unknown> },
  ) => {
    const { api, client, options: globals } = await tenant(command);
    const body = (await call(client, api, request)).body as Record<string, unknown>;
    print(globals.json, body, () => formatKeyValues(body));
  };

  schedules
    .command('list <tenantId>')
    .description("list a tenant's schedules, oldest first, one page (GET /tenants/{id}/schedules)")
    .option('--limit <n>', 'how many (1-100, default 50)', parsePositiveInteger)
    .option('--next-token <token>', 'the page after the one that printed this token')
    .addOption(keyOption())
    .action(async (tenantId: string, options: { limit?: number; nextToken?: string }, command: Command) => {
      const { api, client, options: globals } = await tenant(command);
      const body = (
        await call(client, api, {
          method: 'GET',
          path: `${tenantPath(tenantId)}/schedules`,
          query: {
            limit: options.limit === undefined ? undefined : String(options.limit),
            nextToken: options.nextToken,
          },
        })
      ).body as { schedules?: Record<string, unknown>[]; nextToken?: string };
      print(globals.json, body, () => formatTable(body.schedules ?? [], SCHEDULE_COLUMNS));
      if (globals.json !== true && typeof body.nextToken === 'string') {
        deps.err(`More: add --next-token ${body.nextToken}`);
      }
    });

  schedules
    .command('create <tenantId> <workflow> <expression>')
    .description(
      "start a workflow on a schedule: 'cron(0 9 ? * MON-FRI *)' or 'rate(1 hour)' (POST /tenants/{id}/schedules)",
    )
    .option('--timezone <zone>', 'the IANA time zone cron fields are read in (default UTC)')
    .option('--input <json>', "the workflow's input at each firing", parseJsonOption('--input'))
    .option('--paused', 'create it paused')
    .addOption(keyOption())
    .action(
      async (
        tenantId: string,
        workflow: string,
        expression: string,
        options: { timezone?: string; input?: unknown; paused?: boolean },
        command: Command,
      ) =>
        scheduleCall(command, {
          method: 'POST',
          path: `${tenantPath(tenantId)}/schedules`,
          body: {
            workflow,
            expression,
            ...(options.timezone === undefined ? {} : { timezone: options.timezone }),
            ...(options.input === undefined ? {} : { input: options.input }),
            ...(options.paused === true ? { state: 'paused' } : {}),
          },
        }),
    );

  schedules
    .command('get <tenantId> <scheduleId>')
    .description('show a schedule and when it is next due (GET /tenants/{id}/schedules/{scheduleId})')
    .addOption(keyOption())
    .action(async (tenantId: string, scheduleId: string, _options: unknown, command: Command) =>
      scheduleCall(command, { method: 'GET', path: schedulePath(tenantId, scheduleId) }),
    );

  for (const [name, state, what] of [
    ['pause', 'paused', 'stop firing a schedule, keeping it'],
    ['resume', 'enabled', 'fire a paused schedule again'],
  ] as const) {
    schedules
      .command(`${name} <tenantId> <scheduleId>`)
      .description(`${what} (PATCH /tenants/{id}/schedules/{scheduleId} with state ${state})`)
      .addOption(keyOption())
      .action(async (tenantId: string, scheduleId: string, _options: unknown, command: Command) =>
        scheduleCall(command, { method: 'PATCH', path: schedulePath(tenantId, scheduleId), body: { state } }),
      );
  }

  schedules
    .command('update <tenantId> <scheduleId>')
    .description(
      "change a schedule's workflow, expression, time zone or input (PATCH /tenants/{id}/schedules/{scheduleId})",
    )
    .option('--workflow <name>', 'the workflow it starts')
    .option('--expression <expression>', "e.g. 'cron(0 9 ? * MON-FRI *)' or 'rate(1 hour)'")
    .option('--timezone <zone>', 'the IANA time zone cron fields are read in')
    .option('--input <json>', "the workflow's input at each firing", parseJsonOption('--input'))
    .addOption(keyOption())
    .action(
      async (
        tenantId: string,
        scheduleId: string,
        options: { workflow?: string; expression?: string; timezone?: string; input?: unknown },
        command: Command,
      ) => {
        const changes = Object.fromEntries(
          Object.entries({
            workflow: options.workflow,
            expression: options.expression,
            timezone: options.timezone,
            input: options.input,
          }).filter(([, value]) => value !== undefined),
        );
        if (Object.keys(changes).length === 0) {
          throw new CliUsageError(
            'schedules update needs at least one of --workflow, --expression, --timezone, --input',
          );
        }
        await scheduleCall(command, {
          method: 'PATCH',
          path: schedulePath(tenantId, scheduleId),
          body: changes,
        });
      },
    );

  schedules
    .command('delete <tenantId> <scheduleId>')
    .description('delete a schedule; it fires no more (DELETE /tenants/{id}/schedules/{scheduleId})')
    .addOption(keyOption())
    .action(async (tenantId: string, scheduleId: string, _options: unknown, command: Command) => {
      const { api, client, options: globals } = await tenant(command);
      await call(client, api, { method: 'DELETE', path: schedulePath(tenantId, scheduleId) });
      print(globals.json, { scheduleId, deleted: true }, () => `Schedule ${scheduleId} deleted.`);
    });

  const script = (name: string, description: string) =>
    program
      .command(name)
      .description(description)
      .helpOption(false)
      .allowUnknownOption()
      .allowExcessArguments()
      .argument('[args...]', `passed on to npm run ${name}`);
  script('migrate', 'npm run migrate: migrate the local control schema and every tenant schema').action(
    async (args: string[]) => setExitCode(await deps.runScript('migrate', args)),
  );
  script('recover', 'npm run recover: one local recovery pass over every tenant').action(
    async (args: string[]) => setExitCode(await deps.runScript('recover', args)),
  );
  script(
    'smoke',
    'npm run smoke: the smoke test, against this API (--api/--stage) with these credentials',
  ).action(async (args: string[], _options: unknown, command: Command) => {
    const options = command.optsWithGlobals<GlobalOptions>();
    const api = await resolveApiUrl(options, deps.stackOutputs);
    const auth = await selectAdminAuth(api, options, deps.env, deps.readFile);
    const authArgs = auth.kind === 'bearer' ? ['--admin-token', auth.token] : ['--region', auth.region];
    setExitCode(await deps.runScript('smoke', ['--api', api.href, ...authArgs, ...args]));
  });

  return program;
}

function tenantPath(tenantId: string): string {
  return `/tenants/${encodeURIComponent(tenantId)}`;
}

function schedulePath(tenantId: string, scheduleId: string): string {
  return `${tenantPath(tenantId)}/schedules/${encodeURIComponent(scheduleId)}`;
}

function executionPath(tenantId: string, executionId: string): string {
  return `${tenantPath(tenantId)}/executions/${encodeURIComponent(executionId)}`;
}

function describeTenantState(tenant: Readonly<Record<string, unknown>>): string {
  const step = typeof tenant.currentStep === 'string' ? `, step ${tenant.currentStep}` : '';
  const error = typeof tenant.lastError === 'string' ? `, last error: ${tenant.lastError}` : '';
  return `status ${String(tenant.status)}${step}${error}`;
}

function parseJsonOption(flag: string) {
  return (value: string): unknown => {
    try {
      return JSON.parse(value);
    } catch (error) {
      throw new InvalidArgumentError(
        `${flag} must be JSON (${error instanceof Error ? error.message : String(error)})`,
      );
    }
  };
}

function parseSeconds(value: string): number {
  const seconds = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value.trim()) || !(seconds > 0)) {
    throw new InvalidArgumentError('must be a positive number of seconds');
  }
  return seconds;
}

function parsePositiveInteger(value: string): number {
  if (!/^\d+$/.test(value.trim()) || Number(value) < 1) {
    throw new InvalidArgumentError('must be a whole number of at least 1');
  }
  return Number(value);
}
