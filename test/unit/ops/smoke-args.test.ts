import { describe, expect, it } from 'vitest';
import { parseSmokeArgs, SmokeUsageError } from '../../../ops/smoke-args.js';

const TOKEN = 'local-admin-token-0123456789abcdef';
const AWS_URL = 'https://abc123def4.execute-api.eu-west-1.amazonaws.com/prod';

describe('parseSmokeArgs', () => {
  it('reads a local run with a bearer admin token, with the default timeouts', () => {
    // Act
    const command = parseSmokeArgs(['--api', 'http://127.0.0.1:3000', '--admin-token', TOKEN], {});

    // Assert
    expect(command).toEqual({
      kind: 'run',
      api: new URL('http://127.0.0.1:3000'),
      adminAuth: { kind: 'bearer', token: TOKEN },
      tenantTimeoutMs: 300_000,
      executionTimeoutMs: 300_000,
    });
  });

  it('signs with SigV4 for the region of an execute-api URL, keeping the stage in the base URL', () => {
    const command = parseSmokeArgs([`--api=${AWS_URL}`], {});

    expect(command).toMatchObject({ kind: 'run', adminAuth: { kind: 'sigv4', region: 'eu-west-1' } });
    expect(command.kind === 'run' && command.api.pathname).toBe('/prod');
  });

  it('prefers --region, then the URL, then AWS_REGION, then AWS_DEFAULT_REGION', () => {
    const custom = 'https://api.example.com/v1';
    expect(parseSmokeArgs(['--api', AWS_URL, '--region', 'us-east-2'], {})).toMatchObject({
      adminAuth: { region: 'us-east-2' },
    });
    expect(parseSmokeArgs(['--api', AWS_URL], { AWS_REGION: 'us-east-2' })).toMatchObject({
      adminAuth: { region: 'eu-west-1' },
    });
    expect(parseSmokeArgs(['--api', custom], { AWS_REGION: 'ap-southeast-2' })).toMatchObject({
      adminAuth: { region: 'ap-southeast-2' },
    });
    expect(parseSmokeArgs(['--api', custom], { AWS_DEFAULT_REGION: 'sa-east-1' })).toMatchObject({
      adminAuth: { region: 'sa-east-1' },
    });
  });

  it('reads the timeouts in seconds', () => {
    const command = parseSmokeArgs(
      ['--api', AWS_URL, '--tenant-timeout', '600', '--execution-timeout', '1.5'],
      {},
    );

    expect(command).toMatchObject({ tenantTimeoutMs: 600_000, executionTimeoutMs: 1500 });
  });

  it('asks for help with --help or -h, whatever else is given', () => {
    expect(parseSmokeArgs(['--help'], {})).toEqual({ kind: 'help' });
    expect(parseSmokeArgs(['--api', 'nonsense', '-h'], {})).toEqual({ kind: 'help' });
  });

  it.each([
    [[], /--api <url> is required/],
    [['--api'], /--api/],
    [['--api', 'not a url', '--admin-token', TOKEN], /--api must be an http\(s\) URL/],
    [['--api', 'ftp://example.com', '--admin-token', TOKEN], /--api must be an http\(s\) URL, not ftp:/],
    [['--api', `${AWS_URL}?x=1`], /without a query/],
    [['--api', AWS_URL, '--bogus'], /bogus/],
    [['--api', AWS_URL, 'extra'], /extra/],
    [
      ['--api', 'http://127.0.0.1:3000'],
      /cannot tell which region to sign for from 127\.0\.0\.1:3000.*--admin-token/,
    ],
    [['--api', AWS_URL, '--region', 'Mars'], /--region must be an AWS region such as eu-west-1, not 'Mars'/],
    [['--api', 'http://127.0.0.1:3000', '--admin-token', TOKEN, '--region', 'eu-west-1'], /SigV4 only/],
    [['--api', 'http://127.0.0.1:3000', '--admin-token', ' '], /--admin-token must not be empty/],
    [
      ['--api', AWS_URL, '--tenant-timeout', '0'],
      /--tenant-timeout must be a positive number of seconds, not '0'/,
    ],
    [['--api', AWS_URL, '--execution-timeout', '5m'], /--execution-timeout must be a positive number/],
  ])('refuses %j, saying what to change', (argv, message) => {
    // Act
    const parse = () => parseSmokeArgs(argv, {});

    // Assert
    expect(parse).toThrow(SmokeUsageError);
    expect(parse).toThrow(message);
  });
});
