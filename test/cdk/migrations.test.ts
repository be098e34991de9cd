import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatabaseMigrations } from '../../cdk/constructs/database-migrations.js';
import { PROJECT_ROOT, SharedLayer } from '../../cdk/constructs/shared-layer.js';
import { TenantFunction } from '../../cdk/constructs/tenant-function.js';
import { createTestDatabase } from '../support/database.js';
import {
  buildPlatform,
  buildTestData,
  logicalIdIn,
  type PlatformFixture,
  TEST_PROXY_ENDPOINT,
  unacknowledgedNagFindings,
} from './platform-fixture.js';

const run = promisify(execFile);

type Json = Record<string, unknown>;
interface TemplateResource {
  readonly Type: string;
  readonly Properties: Json;
  readonly DependsOn?: string[];
}

/** One synthesis of the platform for the whole file (it bundles every function and the layer). */
let fixture: PlatformFixture;
let resources: Record<string, TemplateResource>;
let outputs: Record<string, Json>;
let outdir: string;

beforeAll(() => {
  outdir = mkdtempSync(join(tmpdir(), 'tenantflow-migrations-cdk-'));
  fixture = buildPlatform({ outdir });
  const template = Template.fromStack(fixture.stack).toJSON();
  resources = template.Resources as Record<string, TemplateResource>;
  outputs = template.Outputs as Record<string, Json>;
}, 120_000);

afterAll(() => {
  rmSync(outdir, { recursive: true, force: true });
});

const logicalId = (construct: IConstruct) => logicalIdIn(fixture.stack, construct);

function resource(id: string): TemplateResource {
  const found = resources[id];
  if (found === undefined) {
    throw new Error(`No resource ${id}`);
  }
  return found;
}

function ofType(type: string): Array<[string, TemplateResource]> {
  return Object.entries(resources).filter(([, candidate]) => candidate.Type === type);
}

const migrations = () => fixture.stack.migrations;
const migrateId = () => logicalId(migrations().function);
const migrateProps = () => resource(migrateId()).Properties;
const triggerId = () => logicalId(migrations().trigger.node.findChild('Default'));

/** The trigger provider CDK adds once per stack: its function and role. */
function provider(): { handler: TemplateResource; role: TemplateResource } {
  const [[, handler] = []] = ofType('AWS::Lambda::Function').filter(
    ([, fn]) => fn.Properties.Handler === '__entrypoint__.handler',
  );
  if (handler === undefined) {
    throw new Error('No trigger provider');
  }
  const roleId = ((handler.Properties.Role as Json)['Fn::GetAtt'] as [string, string])[0];
  return { handler, role: resource(roleId) };
}

/** A bundled asset's directory in the cloud assembly (`asset.<hash>`). */
function assetDirectory(s3Key: unknown): string {
  return join(outdir, `asset.${String(s3Key).replace(/\.zip$/, '')}`);
}

describe('DatabaseMigrations', () => {
  describe('the migrate function', () => {
    it('is a TenantFunction: Node.js 22 on arm64, in the lambdas subnets, with the shared layer', () => {
      // Prepare
      const props = migrateProps();
      const lambdaSubnets = fixture.data.vpc.selectSubnets({ subnetGroupName: 'lambdas' }).subnetIds;
      const vpcConfig = props.VpcConfig as { SubnetIds: unknown[]; SecurityGroupIds: unknown[] };

      // Assert
      expect(migrations().function).toBeInstanceOf(TenantFunction);
      expect(migrations().function.entry).toBe('functions/ops/migrate.ts');
      expect(props).toMatchObject({
        FunctionName: 'tenantflow-qa-migrate',
        Handler: 'index.handler',
        Runtime: 'nodejs22.x',
        Architectures: ['arm64'],
        TracingConfig: { Mode: 'Active' },
        Timeout: 14 * 60,
      });
      expect(props.Layers).toEqual([{ Ref: logicalId(fixture.stack.layer.layer) }]);
      expect(vpcConfig.SubnetIds).toHaveLength(lambdaSubnets.length);
      expect(JSON.stringify(vpcConfig.SubnetIds)).toMatch(/lambdas/i);
      expect(JSON.stringify(vpcConfig.SubnetIds)).not.toMatch(/database/i);
      expect(JSON.stringify(vpcConfig.SecurityGroupIds)).toMatch(/LambdaSecurityGroup/);
    });

    it('connects like every function (proxy, TLS, platform secret), with the admin login for DDL, migrating 8 tenants at once', () => {
      // Prepare
      const environment = (props: Json) => (props.Environment as { Variables: Json }).Variables;

      // Assert
      expect(environment(migrateProps())).toMatchObject({
        TENANTFLOW_STAGE: 'qa',
        TENANTFLOW_DATABASE_HOST: TEST_PROXY_ENDPOINT,
        TENANTFLOW_DATABASE_PORT: '5432',
        TENANTFLOW_DATABASE_NAME: 'tenantflow',
        TENANTFLOW_DATABASE_SSL: 'require',
        TENANTFLOW_MIGRATE_CONCURRENCY: '8',
        // The fixture installs the examples: migrate creates their table in every tenant schema.
        TENANTFLOW_EXAMPLES: 'on',
      });
      expect(JSON.stringify(environment(migrateProps()).TENANTFLOW_DATABASE_SECRET_ARN)).toMatch(
        /PlatformSecret/,
      );
      expect(JSON.stringify(environment(migrateProps()).TENANTFLOW_ADMIN_DATABASE_SECRET_ARN)).toMatch(
        /AdminSecret/,
      );
    });

    it('reads the platform and the admin secrets, and is granted no tenant secret, workflow or other function', () => {
      // Prepare
      const roleId = logicalId(migrations().function.executionRole);
      const statements = ofType('AWS::IAM::Policy')
        .filter(([, policy]) =>
          (policy.Properties.Roles as Json[]).some((ref) => (ref as { Ref?: string }).Ref === roleId),
        )
        .flatMap(([, policy]) => (policy.Properties.PolicyDocument as { Statement: Json[] }).Statement);
      const actions = statements.flatMap((statement) => [statement.Action].flat() as string[]);

      const secretReads = statements
        .filter((statement) => JSON.stringify(statement.Action).includes('secretsmanager:'))
        .map((statement) => ({
          actions: ([statement.Action].flat() as string[]).sort(),
          secret: JSON.stringify(statement.Resource),
        }));
      const environment = (migrateProps().Environment as { Variables: Json }).Variables;

      // Assert: each secret its environment names, read-only, and no other.
      expect(secretReads).toHaveLength(2);
      expect(secretReads.map((read) => read.secret).sort()).toEqual(
        [
          JSON.stringify(environment.TENANTFLOW_ADMIN_DATABASE_SECRET_ARN),
          JSON.stringify(environment.TENANTFLOW_DATABASE_SECRET_ARN),
        ].sort(),
      );
      for (const read of secretReads) {
        expect(read.actions).toEqual(['secretsmanager:GetSecretValue']);
      }
      expect(JSON.stringify(statements)).not.toContain('tenants/*');
      expect(actions.some((action) => /^(states|lambda):/.test(action))).toBe(false);
      expect(resource(roleId).Properties.ManagedPolicyArns).toBeUndefined();
    });

    it('is named in an output, for operators re-running the migrations', () => {
      expect(outputs.MigrateFunctionName).toMatchObject({ Value: { Ref: migrateId() } });
    });
  });

  describe('the trigger', () => {
    it("invokes the migrate function's current version synchronously, waiting longer than its timeout and less than the provider runs", () => {
      // Prepare
      const trigger = resource(triggerId());
      const versionId = (trigger.Properties.HandlerArn as { Ref: string }).Ref;
      const timeoutMs = Number(trigger.Properties.Timeout);

      // Assert
      expect(trigger.Type).toBe('Custom::Trigger');
      expect(resource(versionId)).toMatchObject({
        Type: 'AWS::Lambda::Version',
        Properties: { FunctionName: { Ref: migrateId() } },
      });
      expect(trigger.Properties).toMatchObject({
        InvocationType: 'RequestResponse',
        ExecuteOnHandlerChange: true,
      });
      expect(timeoutMs).toBeGreaterThan((migrateProps().Timeout as number) * 1000);
      expect(timeoutMs).toBeLessThan((provider().handler.Properties.Timeout as number) * 1000);
    });

    it('runs before every other function of the stack is created or updated, and after nothing of theirs', () => {
      // Prepare
      const others = Object.entries(fixture.stack.functions);
      const trigger = triggerId();

      // Assert
      expect(others.map(([key]) => key).sort()).toEqual([
        'authorizer',
        'executionsApi',
        'finalize',
        'health',
        'provisioningStep',
        'recovery',
        'runTask',
        'scheduleFire',
        'schedulesApi',
        'tenantsApi',
      ]);
      for (const [key, fn] of others) {
        expect(resource(logicalId(fn)).DependsOn ?? [], key).toContain(trigger);
      }
      expect(resource(migrateId()).DependsOn ?? []).not.toContain(trigger);
      expect(resource(trigger).DependsOn ?? []).toEqual([]);
    });

    it("lets its provider invoke only the migrate function's versions, with nothing else but its own logs", () => {
      // Prepare
      const { role } = provider();
      const statements = (
        role.Properties.Policies as Array<{ PolicyDocument: { Statement: Json[] } }>
      ).flatMap((policy) => policy.PolicyDocument.Statement);

      // Assert
      expect(role.Properties.ManagedPolicyArns).toEqual([
        // biome-ignore lint/suspicious/noTemplateCurlyInString: CloudFormation's Fn::Sub syntax, not a JavaScript template
        { 'Fn::Sub': 'arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole' },
      ]);
      expect(statements).toEqual([
        {
          Effect: 'Allow',
          Action: ['lambda:InvokeFunction'],
          Resource: [{ 'Fn::Join': ['', [{ 'Fn::GetAtt': [migrateId(), 'Arn'] }, ':*']] }],
        },
      ]);
    });

    it('leaves cdk-nag with nothing unacknowledged', () => {
      expect(unacknowledgedNagFindings(fixture.stack)).toEqual([]);
    });
  });

  describe('the bundle', () => {
    it('runs: with the shared layer beside it, it migrates a fresh database, control schema first', async () => {
      // Prepare: a stand-in for /opt (a copy of the layer, plus the runtime's SDK) and for
      // /var/task (a copy of the function's package, whose node_modules is that layer).
      const sandbox = join(outdir, 'migrate-sandbox');
      const sharedLayer = resource(logicalId(fixture.stack.layer.layer));
      const opt = join(sandbox, 'opt', 'nodejs', 'node_modules');
      mkdirSync(join(sandbox, 'opt', 'nodejs'), { recursive: true });
      cpSync(
        join(assetDirectory((sharedLayer.Properties.Content as Json).S3Key), 'nodejs', 'node_modules'),
        opt,
        {
          recursive: true,
        },
      );
      symlinkSync(join(PROJECT_ROOT, 'node_modules', '@aws-sdk'), join(opt, '@aws-sdk'));
      const task = join(sandbox, 'task');
      cpSync(assetDirectory((migrateProps().Code as Json).S3Key), task, { recursive: true });
      symlinkSync(opt, join(task, 'node_modules'));
      const database = await createTestDatabase('tf_migrate_bundle');

      try {
        // Act
        const invoke = `const m = await import(${JSON.stringify(join(task, 'index.mjs'))});
          const summary = await m.handler({}, { getRemainingTimeInMillis: () => 840000 });
          console.log(JSON.stringify(summary)); process.exit(0);`;
        const { stdout } = await run(process.execPath, ['--input-type=module', '-e', invoke], {
          cwd: task,
          env: {
            PATH: process.env.PATH,
            DATABASE_URL: database.url,
            TENANTFLOW_STAGE: 'qa',
            TENANTFLOW_SECRETS: 'secrets-manager',
            TENANTFLOW_MIGRATE_CONCURRENCY: '8',
            AWS_REGION: 'eu-west-1',
            POWERTOOLS_LOG_LEVEL: 'SILENT',
          },
        });
        const summary = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as {
          control: { applied: string[] };
          complete: boolean;
        };

        // Assert: the control migrations came from the layer's copy of the shared package.
        expect(readdirSync(task).sort()).toEqual(['index.mjs', 'index.mjs.map', 'node_modules']);
        expect(summary.control.applied).toEqual(
          readdirSync(join(opt, fixture.stack.layer.packageName, 'migrations', 'control'))
            .filter((file) => file.endsWith('.sql'))
            .sort(),
        );
        expect(summary.control.applied).toEqual(
          readdirSync(join(PROJECT_ROOT, 'shared', 'migrations', 'control'))
            .filter((file) => file.endsWith('.sql'))
            .sort(),
        );
        expect(summary.complete).toBe(true);
      } finally {
        await database.drop();
      }
    }, 60_000);
  });

  describe('re-running on change', () => {
    /** What bundling the functions and the layer reads from the project. */
    const PROJECT_FILES = [
      'package.json',
      'package-lock.json',
      'tsconfig.json',
      'cdk',
      'functions',
      'shared',
      'workflows',
      'examples',
    ];

    /**
     * The trigger's `HandlerArn` (the version's logical id) of a DatabaseMigrations built from a
     * copy of this project whose `shared/migrations/` `prepare` may change, synthesized into that
     * copy's own `cdk.out`. Each copy is somewhere else, so equal ids also show that the assets'
     * hashes do not depend on where the project is.
     */
    function handlerVersionWith(prepare: (migrations: string) => void): string {
      const root = mkdtempSync(join(tmpdir(), 'tenantflow-migrations-root-'));
      try {
        for (const entry of PROJECT_FILES) {
          cpSync(join(PROJECT_ROOT, entry), join(root, entry), { recursive: true });
        }
        symlinkSync(join(PROJECT_ROOT, 'node_modules'), join(root, 'node_modules'));
        prepare(join(root, 'shared', 'migrations'));
        const app = new App({ outdir: join(root, 'cdk.out') });
        const data = buildTestData(app);
        const stack = new Stack(app, 'Probe');
        const layer = new SharedLayer(stack, 'SharedLayer', { projectRoot: root });
        const probe = new DatabaseMigrations(stack, 'Migrations', {
          stage: 'qa',
          layer,
          database: { proxy: data.proxy, platformSecret: data.platformSecret, databaseName: 'tenantflow' },
          adminSecret: data.adminSecret,
          network: { vpc: data.vpc, securityGroup: data.lambdaSecurityGroup },
          logRetentionDays: 30,
          projectRoot: root,
          runBefore: [],
        });
        const template = Template.fromStack(stack).toJSON() as {
          Resources: Record<string, TemplateResource>;
        };
        const trigger = template.Resources[logicalIdIn(stack, probe.trigger.node.findChild('Default'))];
        return String((trigger?.Properties.HandlerArn as { Ref?: string } | undefined)?.Ref);
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    }

    it('publishes a new version, and so runs again, when a control or a tenant migration is added (they ship in the layer), and only then', () => {
      // Act
      const unchanged = [handlerVersionWith(() => {}), handlerVersionWith(() => {})];
      const newControl = handlerVersionWith((dir) =>
        writeFileSync(join(dir, 'control', '9999_probe.sql'), 'SELECT 1;\n'),
      );
      const newTenant = handlerVersionWith((dir) =>
        writeFileSync(join(dir, 'tenant', '9999_probe.sql'), 'SELECT 1;\n'),
      );

      // Assert
      expect(unchanged[0]).toBe(unchanged[1]);
      expect(newControl).not.toBe(unchanged[0]);
      expect(newTenant).not.toBe(unchanged[0]);
      expect(newTenant).not.toBe(newControl);
    }, 120_000);

    it('publishes a new version, and so runs again, when the examples are installed or removed (their table is a tenant migration)', () => {
      // Prepare: each probe in a cloud assembly of its own, at the same depth, as a deployment's.
      const versionWith = (examples: boolean): string => {
        const probeOutdir = mkdtempSync(join(tmpdir(), 'tenantflow-migrations-examples-'));
        try {
          const app = new App({ outdir: probeOutdir });
          const data = buildTestData(app);
          const stack = new Stack(app, 'Probe');
          const probe = new DatabaseMigrations(stack, 'Migrations', {
            stage: 'qa',
            layer: new SharedLayer(stack, 'SharedLayer'),
            database: { proxy: data.proxy, platformSecret: data.platformSecret, databaseName: 'tenantflow' },
            adminSecret: data.adminSecret,
            network: { vpc: data.vpc, securityGroup: data.lambdaSecurityGroup },
            logRetentionDays: 30,
            runBefore: [],
          });
          probe.function.registerExamples(examples);
          const template = Template.fromStack(stack).toJSON() as {
            Resources: Record<string, TemplateResource>;
          };
          const trigger = template.Resources[logicalIdIn(stack, probe.trigger.node.findChild('Default'))];
          return String((trigger?.Properties.HandlerArn as { Ref?: string } | undefined)?.Ref);
        } finally {
          rmSync(probeOutdir, { recursive: true, force: true });
        }
      };

      // Act
      const withExamples = [versionWith(true), versionWith(true)];
      const withoutExamples = versionWith(false);

      // Assert
      expect(withExamples[0]).toMatch(/^MigrationsFunctionCurrentVersion/);
      expect(withExamples[0]).toBe(withExamples[1]);
      expect(withoutExamples).not.toBe(withExamples[0]);
    }, 120_000);

    it("refuses a timeout the trigger's provider could not wait for", () => {
      // Prepare
      const app = new App();
      const data = buildTestData(app);
      const stack = new Stack(app, 'TooLong');

      // Act & Assert
      expect(
        () =>
          new DatabaseMigrations(stack, 'Migrations', {
            stage: 'qa',
            layer: fixture.stack.layer,
            database: { proxy: data.proxy, platformSecret: data.platformSecret, databaseName: 'tenantflow' },
            adminSecret: data.adminSecret,
            network: { vpc: data.vpc, securityGroup: data.lambdaSecurityGroup },
            logRetentionDays: 30,
            runBefore: [],
            timeout: Duration.minutes(15),
          }),
      ).toThrow(/must leave 30 seconds inside the trigger provider's 15 minutes/);
    });
  });
});
