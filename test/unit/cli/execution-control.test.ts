import { describe, expect, it } from 'vitest';
import { type CliDependencies, runCli } from '../../../cli/src/program.js';

interface Seen {
  readonly method: string;
  readonly path: string;
  readonly authorization: string | null;
  readonly body: string | undefined;
}

/** The CLI against an API that answers every request with `answer`, recording what it was sent. */
function harness(answer: { status: number; body: unknown }) {
  const seen: Seen[] = [];
  const out: string[] = [];
  const err: string[] = [];
  const deps: CliDependencies = {
    env: { TENANTFLOW_TENANT_KEY: 'tfk_acme_key' },
    out: (text) => out.push(text),
    err: (text) => err.push(text),
    fetch: (async (input: string | URL | Request, init?: RequestInit) => {
      seen.push({
        method: init?.method ?? 'GET',
        path: new URL(String(input)).pathname,
        authorization: new Headers(init?.headers).get('authorization'),
        body: typeof init?.body === 'string' ? init.body : undefined,
      });
      return new Response(JSON.stringify(answer.body), { status: answer.status });
    }) as typeof fetch,
    credentials: async () => ({ accessKeyId: 'AKID', secretAccessKey: 'secret' }),
    stackOutputs: async () => undefined,
    readFile: async () => {
      throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
    },
    runScript: async () => 0,
  };
  return {
    run: (argv: string[]) => runCli(argv, deps),
    seen,
    stdout: () => out.join('\n'),
    stderr: () => err.join('\n'),
  };
}

const EXECUTION_ID = '0b6f0f7e-6c1a-4f55-9a53-3c1f0d1f6a10';

describe('tenantflow executions cancel', () => {
  it("POSTs to the execution's cancel route with the tenant key and prints the answer", async () => {
    const cli = harness({
      status: 202,
      body: {
        executionId: EXECUTION_ID,
        status: 'aborted',
        cancelledAt: '2026-01-01T00:00:00.000Z',
        cancelledBy: 'tenant_api_key',
        alreadyCancelled: false,
      },
    });

    const code = await cli.run(['executions', 'cancel', 'acme', EXECUTION_ID]);

    expect(code).toBe(0);
    expect(cli.seen).toEqual([
      {
        method: 'POST',
        path: `/tenants/acme/executions/${EXECUTION_ID}/cancel`,
        authorization: 'Bearer tfk_acme_key',
        body: undefined,
      },
    ]);
    expect(cli.stdout()).toMatch(/^status:\s+aborted$/m);
    expect(cli.stdout()).toMatch(/^cancelledBy:\s+tenant_api_key$/m);
  });

  it('exits 1 with the API message when the execution already ended (409)', async () => {
    const cli = harness({
      status: 409,
      body: {
        error: {
          code: 'EXECUTION_STATE_CONFLICT',
          message: `Execution '${EXECUTION_ID}' is already succeeded; only a pending or running execution can be cancelled`,
        },
      },
    });

    const code = await cli.run(['executions', 'cancel', 'acme', EXECUTION_ID]);

    expect(code).toBe(1);
    expect(cli.stderr()).toContain('is already succeeded');
  });
});

describe('tenantflow executions rerun', () => {
  it("POSTs to the execution's rerun route and prints the answer as JSON with --json", async () => {
    const answer = { executionId: EXECUTION_ID, status: 'running', rerunCount: 1 };
    const cli = harness({ status: 202, body: answer });

    const code = await cli.run(['executions', 'rerun', 'acme', EXECUTION_ID, '--json', '--key', 'tfk_other']);

    expect(code).toBe(0);
    expect(cli.seen).toMatchObject([
      {
        method: 'POST',
        path: `/tenants/acme/executions/${EXECUTION_ID}/rerun`,
        authorization: 'Bearer tfk_other',
      },
    ]);
    expect(JSON.parse(cli.stdout())).toEqual(answer);
  });

  it('exits 1 when the tenant is at its concurrency limit (429)', async () => {
    const cli = harness({
      status: 429,
      body: { error: { code: 'LIMIT_EXCEEDED', message: 'limits.maxConcurrentExecutions = 1' } },
    });

    expect(await cli.run(['executions', 'rerun', 'acme', EXECUTION_ID])).toBe(1);
    expect(cli.stderr()).toContain('limits.maxConcurrentExecutions');
  });

  it('exits 2 without an execution id', async () => {
    const cli = harness({ status: 202, body: {} });

    expect(await cli.run(['executions', 'rerun', 'acme'])).toBe(2);
    expect(cli.seen).toEqual([]);
  });
});
