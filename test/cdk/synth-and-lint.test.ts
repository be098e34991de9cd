import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installedWorkflows } from '../../workflows/index.js';
import { skipWithout } from '../support/required-tools.js';

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

const cfnLintMissing = skipWithout({
  name: 'cfn-lint',
  found: await hasCfnLint(),
  skipping: 'the cdk synth and cfn-lint suite',
  installHint: 'pip install cfn-lint',
});

/** What a synthesized template holds that these tests look at. */
interface TemplateJson {
  readonly Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
}

async function templateOf(outdir: string, stack: 'data' | 'platform'): Promise<TemplateJson> {
  return JSON.parse(
    await readFile(join(outdir, `tenantflow-dev-${stack}.template.json`), 'utf8'),
  ) as TemplateJson;
}

/** One `npx cdk synth`: where it wrote, and what it said. */
interface Synth {
  readonly outdir: string;
  readonly said: string;
}

/**
 * `npx cdk synth` as a user runs it, offline and without AWS credentials, then cfn-lint on every
 * template it wrote: the deployable artefact itself, not a test's in-memory copy. Both ways a
 * deployment can go: without the example workflows (the default, `cdk.json` as it is) and with
 * them (`-c examples=true`). The app runs cdk-nag's checks on every synth and fails it on a finding
 * that is not acknowledged, so a clean synth is also a clean cdk-nag report.
 */
describe.skipIf(cfnLintMissing)('npx cdk synth, then cfn-lint (pip install cfn-lint if skipped)', () => {
  const INSTALLATIONS = [
    {
      title: 'without the examples (the default)',
      args: [],
      examples: false,
      natGateways: 0,
      gatewayEndpoints: [],
    },
    {
      title: 'with the examples (-c examples=true)',
      args: ['-c', 'examples=true'],
      examples: true,
      natGateways: 0,
      gatewayEndpoints: [],
    },
    {
      title:
        'with egress through one NAT gateway and an S3 gateway endpoint (-c egress=nat-one -c gatewayEndpoints=s3)',
      args: ['-c', 'egress=nat-one', '-c', 'gatewayEndpoints=s3'],
      examples: false,
      natGateways: 1,
      gatewayEndpoints: ['s3'],
    },
  ] as const;
  const synths = new Map<string, Synth>();

  async function synthesize(args: readonly string[]): Promise<Synth> {
    const outdir = await mkdtemp(join(tmpdir(), 'tenantflow-cdk-out-'));
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
    const { stdout, stderr } = await run(
      'npx',
      ['cdk', 'synth', '--no-notices', '-q', '-o', outdir, ...args],
      {
        env,
        maxBuffer: 64 * 1024 * 1024,
      },
    );
    return { outdir, said: `${stdout}\n${stderr}` };
  }

  function synthOf(title: string): Synth {
    const synth = synths.get(title);
    if (synth === undefined) {
      throw new Error(`No synth for ${title}`);
    }
    return synth;
  }

  beforeAll(async () => {
    // Each synth writes its own cloud assembly; they can run side by side.
    const results = await Promise.all(INSTALLATIONS.map((installation) => synthesize(installation.args)));
    INSTALLATIONS.forEach((installation, index) => {
      const synth = results[index];
      if (synth !== undefined) {
        synths.set(installation.title, synth);
      }
    });
  }, 360_000);

  afterAll(async () => {
    for (const { outdir } of synths.values()) {
      await rm(outdir, { recursive: true, force: true });
    }
  });

  describe.each(INSTALLATIONS)('$title', (installation) => {
    it('synthesizes both stacks offline, quietly: no warning, no error, nothing but progress', async () => {
      // Prepare
      const synth = synthOf(installation.title);
      const templates = (await readdir(synth.outdir)).filter((file) => file.endsWith('.template.json'));
      // What the CLI always says on a clean synth; anything else (a warning, an annotation) fails.
      const progress = [
        /^Bundling asset /,
        /^npm warn Unknown (user|env) config/,
        /^Successfully synthesized to /,
        /^Supply a stack id /,
        /^\d+ feature flags are not configured/,
      ];

      // Act
      const said = synth.said
        .split('\n')
        .map((line) => line.trim())
        .filter((line) => line !== '' && !progress.some((pattern) => pattern.test(line)));

      // Assert
      expect(templates.sort()).toEqual([
        'tenantflow-dev-data.template.json',
        'tenantflow-dev-platform.template.json',
      ]);
      expect(said).toEqual([]);
    });

    it(`deploys the tenant lifecycle's state machines and ${installation.examples ? 'one per example workflow' : 'no workflow state machine'}, and tells the functions so`, async () => {
      // Prepare
      const template = await templateOf(synthOf(installation.title).outdir, 'platform');
      const resources = Object.values(template.Resources);

      // Act
      const machines = resources
        .filter((resource) => resource.Type === 'AWS::StepFunctions::StateMachine')
        .map((resource) => resource.Properties?.StateMachineName)
        .sort();
      const examplesSettings = resources
        .filter((resource) => resource.Type === 'AWS::Lambda::Function')
        .map(
          (resource) =>
            (resource.Properties?.Environment as { Variables?: Record<string, unknown> } | undefined)
              ?.Variables?.TENANTFLOW_EXAMPLES,
        )
        .filter((value) => value !== undefined);

      // Assert: run-task, the executions, tenants and schedules APIs, the provisioning step,
      // recovery, schedule firing and migrate load the workflows or their tables
      // (function-grants.test.ts has the table).
      const workflowMachines = installedWorkflows({ examples: installation.examples })
        .names()
        .map((name) => `tenantflow-dev-${name}`);
      expect(machines).toEqual(
        [...workflowMachines, 'tenantflow-dev-onboarding', 'tenantflow-dev-offboarding'].sort(),
      );
      expect(workflowMachines.length > 0).toBe(installation.examples);
      expect(examplesSettings).toEqual(Array(8).fill(installation.examples ? 'on' : 'off'));
    });

    it(`has ${installation.natGateways} NAT gateway(s) and the gateway endpoints asked for (${installation.gatewayEndpoints.join(', ') || 'none'}), read from the command line`, async () => {
      // Prepare
      const resources = Object.values(
        (await templateOf(synthOf(installation.title).outdir, 'data')).Resources,
      );

      // Act
      const natGateways = resources.filter((resource) => resource.Type === 'AWS::EC2::NatGateway');
      const gatewayEndpoints = resources
        .filter(
          (resource) =>
            resource.Type === 'AWS::EC2::VPCEndpoint' && resource.Properties?.VpcEndpointType === 'Gateway',
        )
        .map(
          (resource) => JSON.stringify(resource.Properties?.ServiceName).match(/\.([a-z0-9-]+)"\]\]\}$/)?.[1],
        );

      // Assert
      expect(natGateways).toHaveLength(installation.natGateways);
      expect(gatewayEndpoints.sort()).toEqual([...installation.gatewayEndpoints]);
    });

    it('passes cfn-lint with no error and no warning (W3005, redundant DependsOn from CDK, ignored by name)', async () => {
      // Prepare
      const { outdir } = synthOf(installation.title);
      const templates = (await readdir(outdir))
        .filter((file) => file.endsWith('.template.json'))
        .map((file) => join(outdir, file));

      // Act
      const lint = await run('cfn-lint', ['--ignore-checks', 'W3005', '--', ...templates]).then(
        (result) => ({ code: 0, output: result.stdout + result.stderr }),
        (error: { code?: number; stdout?: string; stderr?: string }) => ({
          code: error.code ?? 1,
          output: `${error.stdout ?? ''}${error.stderr ?? ''}`,
        }),
      );

      // Assert
      expect(templates).toHaveLength(2);
      expect(lint.output).toBe('');
      expect(lint.code).toBe(0);
    }, 120_000);
  });
});
