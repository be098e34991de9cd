import { describe, expect, it } from 'vitest';
import {
  isLocalApi,
  resolveApiUrl,
  selectAdminAuth,
  selectTenantToken,
} from '../../../cli/src/connection.js';
import { CliUsageError } from '../../../cli/src/exit-codes.js';

const LOCAL = new URL('http://127.0.0.1:3000');
const AWS = new URL('https://abc123def4.execute-api.eu-west-1.amazonaws.com/prod');
const FILE_TOKEN = 'tfa_from-the-local-secrets-file';

/** A file system holding only `files`; anything else is ENOENT. */
function filesystem(files: Record<string, string>) {
  return async (path: string) => {
    const text = files[path];
    if (text === undefined) {
      throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
    }
    return text;
  };
}

const noStacks = async () => undefined;

describe('selectAdminAuth', () => {
  it('takes --admin-token first, against any API', async () => {
    const env = { TENANTFLOW_ADMIN_TOKEN: 'from-env-0123456789abcdefgh' };

    const local = await selectAdminAuth(LOCAL, { adminToken: 'given' }, env, filesystem({}));
    const remote = await selectAdminAuth(AWS, { adminToken: 'given' }, env, filesystem({}));

    expect(local).toEqual({ kind: 'bearer', token: 'given', source: '--admin-token' });
    expect(remote).toEqual({ kind: 'bearer', token: 'given', source: '--admin-token' });
  });

  it('locally, then takes TENANTFLOW_ADMIN_TOKEN, then the token npm start saved under TENANTFLOW_HOME', async () => {
    const files = filesystem({ '/srv/tf/local-secrets.json': JSON.stringify({ adminToken: FILE_TOKEN }) });

    const fromEnv = await selectAdminAuth(
      LOCAL,
      {},
      { TENANTFLOW_ADMIN_TOKEN: 'env-token', TENANTFLOW_HOME: '/srv/tf' },
      files,
    );
    const fromFile = await selectAdminAuth(
      new URL('http://localhost:4000'),
      {},
      { TENANTFLOW_HOME: '/srv/tf' },
      files,
    );

    expect(fromEnv).toEqual({ kind: 'bearer', token: 'env-token', source: 'TENANTFLOW_ADMIN_TOKEN' });
    expect(fromFile).toEqual({ kind: 'bearer', token: FILE_TOKEN, source: '/srv/tf/local-secrets.json' });
  });

  it('reads ./.tenantflow/local-secrets.json without TENANTFLOW_HOME', async () => {
    const files = filesystem({
      '.tenantflow/local-secrets.json': JSON.stringify({ adminToken: FILE_TOKEN }),
    });

    expect(await selectAdminAuth(LOCAL, {}, {}, files)).toMatchObject({ token: FILE_TOKEN });
  });

  it('says where it looked when a local API has no token anywhere', async () => {
    await expect(selectAdminAuth(LOCAL, {}, {}, filesystem({}))).rejects.toThrow(
      /no admin token for http:\/\/127\.0\.0\.1:3000: .*--admin-token.*TENANTFLOW_ADMIN_TOKEN.*\.tenantflow\/local-secrets\.json/,
    );
  });

  it('signs with SigV4 for a remote API, ignoring a local TENANTFLOW_ADMIN_TOKEN, for the region of the URL', async () => {
    const auth = await selectAdminAuth(AWS, {}, { TENANTFLOW_ADMIN_TOKEN: 'local-only' }, filesystem({}));

    expect(auth).toEqual({ kind: 'sigv4', region: 'eu-west-1' });
  });

  it('prefers --region, then the URL, then AWS_REGION', async () => {
    const custom = new URL('https://api.example.com/v1');
    const none = filesystem({});

    expect(await selectAdminAuth(AWS, { region: 'us-east-2' }, {}, none)).toEqual({
      kind: 'sigv4',
      region: 'us-east-2',
    });
    expect(await selectAdminAuth(custom, {}, { AWS_REGION: 'ap-southeast-2' }, none)).toEqual({
      kind: 'sigv4',
      region: 'ap-southeast-2',
    });
    await expect(selectAdminAuth(custom, {}, {}, none)).rejects.toThrow(/pass --region/);
    await expect(selectAdminAuth(custom, { region: 'Europe' }, {}, none)).rejects.toThrow(CliUsageError);
  });
});

describe('selectTenantToken', () => {
  it('takes --key, then TENANTFLOW_TENANT_KEY, then a local admin token', async () => {
    const env = { TENANTFLOW_TENANT_KEY: 'tfk_env', TENANTFLOW_ADMIN_TOKEN: 'admin-env' };

    expect(await selectTenantToken(LOCAL, 'tfk_flag', {}, env, filesystem({}))).toBe('tfk_flag');
    expect(await selectTenantToken(LOCAL, undefined, {}, env, filesystem({}))).toBe('tfk_env');
    expect(
      await selectTenantToken(LOCAL, undefined, {}, { TENANTFLOW_ADMIN_TOKEN: 'admin-env' }, filesystem({})),
    ).toBe('admin-env');
  });

  it('asks for the key against a remote API, where the admin calls are signed instead', async () => {
    await expect(selectTenantToken(AWS, undefined, {}, {}, filesystem({}))).rejects.toThrow(/--key <key>/);
  });
});

describe('resolveApiUrl', () => {
  it('defaults to npm start, and takes --api as given', async () => {
    expect((await resolveApiUrl({}, noStacks)).href).toBe('http://127.0.0.1:3000/');
    expect((await resolveApiUrl({ api: AWS.href }, noStacks)).href).toBe(AWS.href);
  });

  it("reads --stage's URL from the ApiUrl output of tenantflow-<stage>-platform, in --region", async () => {
    const asked: [string, string | undefined][] = [];
    const outputs = async (stack: string, region: string | undefined) => {
      asked.push([stack, region]);
      return { ApiUrl: AWS.href };
    };

    const url = await resolveApiUrl({ stage: 'prod', region: 'eu-west-1' }, outputs);

    expect(url.href).toBe(AWS.href);
    expect(asked).toEqual([['tenantflow-prod-platform', 'eu-west-1']]);
  });

  it.each([
    [{ api: 'http://x', stage: 'dev' }, noStacks, /--api and --stage/],
    [{ stage: 'dev' }, noStacks, /no CloudFormation stack tenantflow-dev-platform/],
    [{ stage: 'dev' }, async () => ({ Other: 'x' }), /has no ApiUrl output/],
    [{ stage: 'a b' }, noStacks, /--stage must be a stage name/],
    [{ api: 'ftp://x' }, noStacks, /--api must be an http\(s\) URL/],
  ])('refuses %j as a usage error', async (options, outputs, message) => {
    const attempt = resolveApiUrl(options, outputs);

    await expect(attempt).rejects.toThrow(CliUsageError);
    await expect(attempt).rejects.toThrow(message);
  });
});

describe('isLocalApi', () => {
  it('treats 127.0.0.1, localhost and ::1 as local, anything else as remote', () => {
    expect(
      ['http://127.0.0.1:3000', 'http://localhost', 'http://[::1]:3000'].map((u) => isLocalApi(new URL(u))),
    ).toEqual([true, true, true]);
    expect(isLocalApi(AWS)).toBe(false);
  });
});
