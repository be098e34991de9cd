import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);

/** cfn-lint is a Python program; on a workstation without it this suite says so, in CI it fails. */
async function hasCfnLint(): Promise<boolean> {
  try {
    await run('cfn-lint', ['--version']);
    return true;
  } catch {
    return false;
  }
}

const cfnLintAvailable = await hasCfnLint();
if (!cfnLintAvailable && process.env.CI === 'true') {
  throw new Error('cfn-lint is required in CI (pip install cfn-lint)');
}

/**
 * `npx cdk synth` as a user runs it, offline and without AWS credentials, then cfn-lint on every
 * template it wrote: the deployable artefact itself, not a test's in-memory copy.
 */
describe.skipIf(!cfnLintAvailable)('npx cdk synth, then cfn-lint (pip install cfn-lint if skipped)', () => {
  let outdir: string;
  let synth: { stdout: string; stderr: string };

  beforeAll(async () => {
    outdir = await mkdtemp(join(tmpdir(), 'tenantflow-cdk-out-'));
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      AWS_EC2_METADATA_DISABLED: 'true',
      CDK_DISABLE_VERSION_CHECK: '1',
      CDK_DISABLE_CLI_TELEMETRY: 'true',
      // No credentials and no region: synth must not need them.
      AWS_ACCESS_KEY_ID: '',
      AWS_SECRET_ACCESS_KEY: '',
      AWS_PROFILE: '',
      AWS_REGION: '',
      AWS_DEFAULT_REGION: '',
    };
    synth = await run('npx', ['cdk', 'synth', '--no-notices', '-q', '-o', outdir], {
      env,
      maxBuffer: 64 * 1024 * 1024,
    });
  }, 240_000);

  afterAll(async () => {
    await rm(outdir, { recursive: true, force: true });
  });

  it('synthesizes both stacks offline, quietly: no warning, no error, nothing but progress', async () => {
    const templates = (await readdir(outdir)).filter((file) => file.endsWith('.template.json'));
    expect(templates.sort()).toEqual([
      'tenantflow-dev-data.template.json',
      'tenantflow-dev-platform.template.json',
    ]);
    // What the CLI always says on a clean synth; anything else (a warning, an annotation) fails.
    const progress = [
      /^Bundling asset /,
      /^npm warn Unknown (user|env) config/,
      /^Successfully synthesized to /,
      /^Supply a stack id /,
      /^\d+ feature flags are not configured/,
    ];
    const said = `${synth.stdout}\n${synth.stderr}`
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !progress.some((pattern) => pattern.test(line)));
    expect(said).toEqual([]);
  });

  it('passes cfn-lint with no error and no warning (W3005, redundant DependsOn from CDK, ignored by name)', async () => {
    const templates = (await readdir(outdir))
      .filter((file) => file.endsWith('.template.json'))
      .map((file) => join(outdir, file));
    const lint = await run('cfn-lint', ['--ignore-checks', 'W3005', '--', ...templates]).then(
      (result) => ({ code: 0, output: result.stdout + result.stderr }),
      (error: { code?: number; stdout?: string; stderr?: string }) => ({
        code: error.code ?? 1,
        output: `${error.stdout ?? ''}${error.stderr ?? ''}`,
      }),
    );
    expect(lint.output).toBe('');
    expect(lint.code).toBe(0);
  }, 120_000);
});
