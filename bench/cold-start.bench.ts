/**
 * The deployment packages as CDK builds them, and their module initialisation as a cold-start
 * proxy. The `handler-bundle` benchmark times esbuild bundles it builds itself; this one
 * synthesizes a stage as `cdk synth` does (`addTenantflowStacks`, stage `bench`, offline) and
 * measures what would be uploaded: the shared layer and each function's asset directory.
 */
import { execFile } from 'node:child_process';
import { cp, lstat, mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { App, type CfnElement } from 'aws-cdk-lib';
import { addTenantflowStacks } from '../cdk/tenantflow-app.js';
import { importInFreshNode, WARM_UP_IMPORTS } from './handler-bundle.bench.js';
import { type Distribution, distribution, timed } from './support.js';

const run = promisify(execFile);

/** The repository root: the runtime's stand-in SDK comes from its node_modules. */
const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface AssetSizes {
  /** Bytes of every file in the asset directory. */
  readonly bytes: number;
  readonly files: number;
  /** The directory zipped (`zip -qrX`, default deflate level); undefined where there is no `zip`. */
  readonly zipBytes: number | undefined;
}

export interface LayerResult {
  readonly sizes: AssetSizes;
  /** Bytes per package under `nodejs/node_modules`, largest first. */
  readonly packages: ReadonlyArray<{ readonly name: string; readonly bytes: number }>;
  /** `shared/` compiled into the layer (`@tenantflow/shared`); undefined if the layer has none. */
  readonly platform:
    | {
        readonly name: string;
        readonly modules: number;
        readonly jsBytes: number;
        readonly mapBytes: number;
        readonly sqlBytes: number;
      }
    | undefined;
}

export interface FunctionPackageResult {
  /** The function's short name (`tenants-api`: `tenantflow-qa-` left off). */
  readonly name: string;
  readonly handler: string;
  readonly sizes: AssetSizes;
  /** The bundle (`index.mjs`, from the handler `index.handler`) and the source map it names. */
  readonly mjsBytes: number;
  readonly mapBytes: number;
  /** `await import(bundle)` in a fresh `node --enable-source-maps`, as the functions are deployed. */
  readonly initMs: Distribution;
  /** The CPU time of the same imports: steadier than {@link initMs} on a loaded machine. */
  readonly initCpuMs: Distribution;
  /** The same in a plain `node`: what resolving and reading the source maps costs. */
  readonly initWithoutSourceMapsMs: Distribution;
  /** The whole `--enable-source-maps` child: node start, the import, exit. */
  readonly processMs: Distribution;
  /** `typeof handler` after an import with an empty environment: 'function' when building is lazy. */
  readonly handlerType: string;
}

export interface ColdStartResult {
  /** Building the app (both stacks of the stage) and synthesizing it, bundling included. */
  readonly synthMs: number;
  readonly layer: LayerResult;
  readonly functions: readonly FunctionPackageResult[];
}

interface TemplateResource {
  readonly Type: string;
  readonly Properties: Record<string, unknown>;
}

/**
 * Synthesizes the platform once into a temporary cloud assembly, then, for every function that
 * uses the shared layer: its package's sizes, and its module initialisation timed `imports` times
 * (after {@link WARM_UP_IMPORTS} untimed imports) in a fresh `node` with an empty environment, with
 * and without `--enable-source-maps`, interleaved.
 *
 * Each import runs from a stand-in for Lambda's file system: a copy of the function's package (for
 * `/var/task`) whose `node_modules` is a copy of the layer's `nodejs/node_modules` (for `/opt`),
 * with the project's `@aws-sdk` beside it for the SDK the Node.js runtime provides. Nothing else
 * of the project is reachable from there, so an import the layer does not satisfy fails.
 */
export async function benchmarkColdStart(imports: number): Promise<ColdStartResult> {
  const outdir = await mkdtemp(join(tmpdir(), 'tenantflow-bench-cdk-'));
  try {
    const synth = await timed(async () => {
      const app = new App({ outdir, context: { stage: 'bench' } });
      const { platform } = addTenantflowStacks(app);
      const assembly = app.synth();
      const template = assembly.getStackArtifact(platform.artifactId).template as {
        Resources: Record<string, TemplateResource>;
      };
      const layerId = platform.getLogicalId(platform.layer.layer.node.defaultChild as CfnElement);
      return { template, layerId, sharedPackage: platform.layer.packageName };
    });
    const { template, layerId, sharedPackage } = synth.result;
    const assetOf = (code: unknown) =>
      join(outdir, `asset.${(code as { S3Key: string }).S3Key.replace(/\.zip$/, '')}`);
    const layerDirectory = assetOf(template.Resources[layerId]?.Properties.Content);

    const sandbox = join(outdir, 'sandbox');
    const opt = join(sandbox, 'opt', 'nodejs', 'node_modules');
    await cp(join(layerDirectory, 'nodejs', 'node_modules'), opt, { recursive: true });
    await symlink(join(ROOT, 'node_modules', '@aws-sdk'), join(opt, '@aws-sdk'));

    const functions: FunctionPackageResult[] = [];
    for (const resource of Object.values(template.Resources)) {
      const layers = (resource.Properties.Layers as unknown[] | undefined) ?? [];
      if (
        resource.Type !== 'AWS::Lambda::Function' ||
        !layers.some((layer) => (layer as { Ref?: string }).Ref === layerId)
      ) {
        continue;
      }
      const handler = resource.Properties.Handler as string;
      const name = String(resource.Properties.FunctionName).replace(/^tenantflow-[a-z0-9]+-/, '');
      const directory = assetOf(resource.Properties.Code);
      const task = join(sandbox, name);
      await cp(directory, task, { recursive: true });
      await symlink(opt, join(task, 'node_modules'));
      const bundle = `${handler.replace(/\.[^.]+$/, '')}.mjs`;
      functions.push({
        name,
        handler,
        sizes: await assetSizes(directory),
        mjsBytes: (await lstat(join(directory, bundle))).size,
        mapBytes: (await lstat(await sourceMapOf(join(directory, bundle)))).size,
        ...(await timeInit(join(task, bundle), task, imports)),
      });
    }

    return { synthMs: synth.ms, layer: await layerResult(layerDirectory, sharedPackage), functions };
  } finally {
    await rm(outdir, { recursive: true, force: true });
  }
}

/** The file a bundle's `sourceMappingURL` comment names. */
async function sourceMapOf(bundle: string): Promise<string> {
  const url = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(await readFile(bundle, 'utf8'))?.[1];
  if (url === undefined) {
    throw new Error(`${bundle} names no source map`);
  }
  return join(dirname(bundle), url);
}

async function timeInit(
  bundle: string,
  cwd: string,
  imports: number,
): Promise<
  Pick<
    FunctionPackageResult,
    'initMs' | 'initCpuMs' | 'initWithoutSourceMapsMs' | 'processMs' | 'handlerType'
  >
> {
  const withMaps = { nodeArgs: ['--enable-source-maps'], cwd };
  const withoutMaps = { cwd };
  const initMs: number[] = [];
  const initCpuMs: number[] = [];
  const initWithoutSourceMapsMs: number[] = [];
  const processMs: number[] = [];
  let handlerType = '';
  for (let index = 0; index < WARM_UP_IMPORTS + imports; index += 1) {
    const mapped = await timed(() => importInFreshNode(bundle, withMaps));
    const plain = await importInFreshNode(bundle, withoutMaps);
    handlerType = mapped.result.handlerType;
    if (index >= WARM_UP_IMPORTS) {
      initMs.push(mapped.result.importMs);
      initCpuMs.push(mapped.result.cpuMs);
      processMs.push(mapped.ms);
      initWithoutSourceMapsMs.push(plain.importMs);
    }
  }
  return {
    initMs: distribution(initMs),
    initCpuMs: distribution(initCpuMs),
    initWithoutSourceMapsMs: distribution(initWithoutSourceMapsMs),
    processMs: distribution(processMs),
    handlerType,
  };
}

async function layerResult(directory: string, sharedPackage: string): Promise<LayerResult> {
  const nodeModules = join(directory, 'nodejs', 'node_modules');
  const packages: Array<{ name: string; bytes: number }> = [];
  for (const entry of await readdir(nodeModules)) {
    const names = entry.startsWith('@')
      ? (await readdir(join(nodeModules, entry))).map((name) => `${entry}/${name}`)
      : [entry];
    for (const name of names) {
      packages.push({
        name,
        bytes: (await filesOf(join(nodeModules, name))).reduce((sum, file) => sum + file.bytes, 0),
      });
    }
  }
  packages.sort((a, b) => b.bytes - a.bytes);

  const platformFiles = packages.some((entry) => entry.name === sharedPackage)
    ? await filesOf(join(nodeModules, sharedPackage))
    : undefined;
  const bytesOf = (files: readonly FileSize[], suffix: string) =>
    files.filter((file) => file.path.endsWith(suffix)).reduce((sum, file) => sum + file.bytes, 0);
  return {
    sizes: await assetSizes(directory),
    packages,
    platform:
      platformFiles === undefined
        ? undefined
        : {
            name: sharedPackage,
            modules: platformFiles.filter((file) => file.path.endsWith('.js')).length,
            jsBytes: bytesOf(platformFiles, '.js'),
            mapBytes: bytesOf(platformFiles, '.js.map'),
            sqlBytes: bytesOf(platformFiles, '.sql'),
          },
  };
}

interface FileSize {
  readonly path: string;
  readonly bytes: number;
}

/** Every regular file below `directory` (symbolic links are not followed: the assets hold none). */
async function filesOf(directory: string): Promise<FileSize[]> {
  const files: FileSize[] = [];
  for (const entry of await readdir(directory, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) {
      const path = join(entry.parentPath, entry.name);
      files.push({ path, bytes: (await lstat(path)).size });
    }
  }
  return files;
}

async function assetSizes(directory: string): Promise<AssetSizes> {
  const files = await filesOf(directory);
  return {
    bytes: files.reduce((sum, file) => sum + file.bytes, 0),
    files: files.length,
    zipBytes: await zippedBytes(directory),
  };
}

async function zippedBytes(directory: string): Promise<number | undefined> {
  const scratch = await mkdtemp(join(tmpdir(), 'tenantflow-bench-zip-'));
  try {
    const archive = join(scratch, 'asset.zip');
    try {
      await run('zip', ['-qrX', archive, '.'], { cwd: directory });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        return undefined;
      }
      throw error;
    }
    return (await lstat(archive)).size;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
