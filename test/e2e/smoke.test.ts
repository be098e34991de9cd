import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { type CommandResult, npmStartForSuite, runCommand } from '../support/e2e.js';
import { apiClient } from '../support/http.js';

/**
 * `npm run smoke`, the command users run after `cdk deploy`, run as they run it (through npm, in a
 * process of its own) against `npm start`: the same steps and the same report as against AWS, with
 * the bearer adapter in place of the SigV4 one.
 */

const ADMIN_TOKEN = 'e2e-admin-token-smoke-0123456789ab';

const server = npmStartForSuite('tenantflow-e2e-smoke-', { TENANTFLOW_ADMIN_TOKEN: ADMIN_TOKEN });

function npmRunSmoke(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<CommandResult> {
  return runCommand('npm', ['run', '--silent', 'smoke', '--', ...args], { ...process.env, ...env });
}

describe('npm run smoke', () => {
  it('passes against npm start, runs every example, and leaves no tenant behind', async () => {
    // Act
    const result = await npmRunSmoke(['--api', server.started.url, '--admin-token', ADMIN_TOKEN]);

    // Assert
    expect(result.stdout).toMatch(/^Verdict: PASSED \(13 of 13 steps passed in .*\)$/m);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    for (const workflow of ['tenant_isolation', 'configurable_processing', 'report_pipeline']) {
      expect(result.stdout).toMatch(new RegExp(`PASS {2}run ${workflow} .* succeeded \\(execution `));
    }
    expect(result.stdout).toMatch(
      /PASS {2}cross-tenant key refused .* refused \(GET 403, GET 403, POST 403\)/,
    );
    expect(result.stdout).toMatch(
      /PASS {2}GET \/tenants\/smoke_[0-9a-f]{8}_a\/metrics .* 3 finished: 3 succeeded/,
    );
    const tenants = await apiClient(server.started.url, ADMIN_TOKEN)('GET', '/tenants');
    expect(tenants.body.tenants).toEqual([]);
  }, 120_000);

  it('fails with a clear message and a non-zero exit code when the admin token is wrong', async () => {
    // Act
    const result = await npmRunSmoke([
      '--api',
      server.started.url,
      '--admin-token',
      'not-the-admin-token-0123456789',
    ]);

    // Assert
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^Verdict: FAILED \(1 failed, /m);
    expect(result.stdout).toMatch(
      /first failure: onboard smoke_[0-9a-f]{8}_a: POST \/tenants: expected 201 or 202, got 401 UNAUTHENTICATED: .*--admin-token must be the server's admin token/,
    );
    expect(result.stdout).toMatch(
      /PASS {2}offboard smoke_[0-9a-f]{8}_a .* nothing to offboard: never created/,
    );
  }, 60_000);

  it('refuses a command line without --api, with the usage, exit code 2', async () => {
    // Act
    const result = await npmRunSmoke(['--admin-token', ADMIN_TOKEN]);

    // Assert
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('smoke: --api <url> is required');
    expect(result.stderr).toContain('Usage: npm run smoke -- --api <url> [options]');
  }, 60_000);

  it('signs the admin calls with SigV4 from the AWS credentials chain when no admin token is given', async () => {
    // Prepare: a stand-in for API Gateway that records the requests and refuses the admin route
    // as IAM authorization does when the identity may not invoke it.
    const seen: { method?: string; url?: string; headers: IncomingHttpHeaders }[] = [];
    const gateway = createServer((request, response) => {
      seen.push({ method: request.method, url: request.url, headers: request.headers });
      response.setHeader('content-type', 'application/json');
      if (request.url === '/dev/health') {
        response.end(JSON.stringify({ status: 'ok', stage: 'dev' }));
        return;
      }
      response.statusCode = 403;
      response.end(
        JSON.stringify({ Message: 'User: arn:aws:iam::123456789012:user/smoke is not authorized' }),
      );
    });
    await new Promise<void>((resolve) => gateway.listen(0, '127.0.0.1', resolve));
    const { port } = gateway.address() as AddressInfo;

    try {
      // Act
      const result = await npmRunSmoke(['--api', `http://127.0.0.1:${port}/dev`, '--region', 'eu-west-1'], {
        AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
        AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
        AWS_SESSION_TOKEN: 'session-token-example',
        // The credentials chain skips the environment's keys when a profile is named.
        AWS_PROFILE: '',
        AWS_EC2_METADATA_DISABLED: 'true',
      });

      // Assert
      expect(result.code, result.stdout + result.stderr).toBe(1);
      expect(result.stdout).toContain('admin calls with SigV4 (eu-west-1)');
      expect(result.stdout).toMatch(
        /FAIL {2}onboard smoke_\w+ .*got 403: User: arn:aws:iam::123456789012:user\/smoke is not authorized \(.*execute-api:Invoke/,
      );
      const create = seen.find((request) => request.method === 'POST' && request.url === '/dev/tenants');
      expect(create?.headers.authorization).toMatch(
        /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/execute-api\/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature=[0-9a-f]{64}$/,
      );
      expect(create?.headers['x-amz-security-token']).toBe('session-token-example');
    } finally {
      gateway.close();
    }
  }, 60_000);
});
