import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { build, type Metafile } from 'esbuild';
import { type Distribution, distribution, timed } from './support.js';

const run = promisify(execFile);

/** The Lambda entry points measured, the task runner first. */
export const HANDLER_ENTRIES = [
  'functions/workflow/run-task.ts',
  'functions/workflow/finalize.ts',
  'functions/api/executions.ts',
  'functions/api/authorizer.ts',
] as const;

/** The issue's targets for a handler bundle, on this machine. */
export const BUNDLE_TARGETS = { maxKb: 500, maxImportMs: 150 } as const;

/** `pg` is CommonJS and calls `require`, which an ES module bundle does not have. */
const REQUIRE_SHIM =
  "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);";

/** The repository root: the entries are relative to it, wherever the benchmarks are run from. */
const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Imports before timing starts: the first one reads the bundle from disk into the page cache. */
export const WARM_UP_IMPORTS = 1;

/** A child that has not exited this long after its import holds something open (a socket, a timer). */
const IMPORT_TIMEOUT_MS = 30_000;

export interface BundleInput {
  /** A file, or a package (`node_modules/<name>`, every file of it). */
  readonly name: string;
  /** Bytes it contributes to the minified bundle. */
  readonly bytes: number;
}

/**
 * How a bundle is packaged. `runtime-sdk` is how CDK's NodejsFunction ships a Node.js 22 function
 * by default: `@aws-sdk/*` left out, because the Lambda runtime provides AWS SDK v3. The
 * `self-contained` bundle carries its own copy.
 */
export type BundlePackaging = 'runtime-sdk' | 'self-contained';
export const BUNDLE_PACKAGINGS: readonly BundlePackaging[] = ['runtime-sdk', 'self-contained'];

export interface HandlerBundleResult {
  readonly entry: string;
  readonly packaging: BundlePackaging;
  /** The `.mjs` bundle, source map not included. */
  readonly bytes: number;
  /** The external source map beside it. */
  readonly mapBytes: number;
  /** Module initialisation: `await import(bundle)` in a fresh `node`, ms. */
  readonly importMs: Distribution;
  /** The whole child process: node start, the import, exit. */
  readonly processMs: Distribution;
  /** `typeof handler` after an import with an empty environment: 'function' when building is lazy. */
  readonly handlerType: string;
  readonly topFiles: readonly BundleInput[];
  readonly topPackages: readonly BundleInput[];
}

/**
 * Each handler bundled the way a Lambda ships it: esbuild's JS API, platform node, ESM, target
 * node22, minified, external source map, with a `require` shim for `pg`. Reports the bundle's size
 * and, as a cold-start proxy, the time a fresh `node` takes to import it: `imports` processes one
 * after another, each with an **empty environment**, so an import that needed configuration (a
 * handler built at import instead of on its first invocation) fails here. The biggest inputs come
 * from esbuild's metafile (bytes in the minified output).
 */
export async function benchmarkHandlerBundles(imports: number): Promise<HandlerBundleResult[]> {
  // Inside the repository, so a `runtime-sdk` bundle resolves `@aws-sdk/*` from node_modules, as
  // it would from the Lambda runtime's own copy.
  const outdir = await mkdtemp(join(ROOT, '.bench-bundles-'));
  try {
    const results: HandlerBundleResult[] = [];
    for (const entry of HANDLER_ENTRIES) {
      for (const packaging of BUNDLE_PACKAGINGS) {
        results.push(await measureBundle(entry, packaging, outdir, imports));
      }
    }
    return results;
  } finally {
    await rm(outdir, { recursive: true, force: true });
  }
}

async function measureBundle(
  entry: string,
  packaging: BundlePackaging,
  outdir: string,
  imports: number,
): Promise<HandlerBundleResult> {
  const outfile = join(outdir, `${basename(entry, '.ts')}.${packaging}.mjs`);
  const built = await build({
    absWorkingDir: ROOT,
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    minify: true,
    sourcemap: 'external',
    banner: { js: REQUIRE_SHIM },
    external: packaging === 'runtime-sdk' ? ['@aws-sdk/*'] : [],
    metafile: true,
    logLevel: 'warning',
  });
  const output = outputOf(built.metafile, outfile);

  const importMs: number[] = [];
  const processMs: number[] = [];
  let handlerType = '';
  for (let index = 0; index < WARM_UP_IMPORTS + imports; index += 1) {
    const child = await timed(() => importInFreshNode(outfile));
    handlerType = child.result.handlerType;
    if (index >= WARM_UP_IMPORTS) {
      importMs.push(child.result.importMs);
      processMs.push(child.ms);
    }
  }

  return {
    entry,
    packaging,
    bytes: (await stat(outfile)).size,
    mapBytes: (await stat(`${outfile}.map`)).size,
    importMs: distribution(importMs),
    processMs: distribution(processMs),
    handlerType,
    topFiles: largest(
      Object.entries(output.inputs).map(([name, input]) => ({ name, bytes: input.bytesInOutput })),
    ),
    topPackages: largest(byPackage(output.inputs)),
  };
}

export interface FreshNodeOptions {
  /** Flags for the child `node` (`--enable-source-maps`, as Lambda functions are deployed). */
  readonly nodeArgs?: readonly string[];
  /** The child's working directory (a stand-in for `/var/task`, say). */
  readonly cwd?: string;
}

/**
 * `await import(bundle)` in a new `node` with nothing in its environment, timed inside the child
 * so node's own start-up is left out: the wall time, and the CPU time the process spent meanwhile
 * (every thread), which other load on a shared machine inflates far less than the wall time. The child must exit by itself: a handler module that opened
 * a connection or started a timer at import would keep it alive until the timeout.
 */
export async function importInFreshNode(
  file: string,
  options: FreshNodeOptions = {},
): Promise<{ importMs: number; cpuMs: number; handlerType: string }> {
  const script = [
    'const cpu = process.cpuUsage();',
    'const start = performance.now();',
    `const module = await import(${JSON.stringify(pathToFileURL(file).href)});`,
    'const importMs = performance.now() - start;',
    'const { user, system } = process.cpuUsage(cpu);',
    'console.log(JSON.stringify({ importMs, cpuMs: (user + system) / 1000, handlerType: typeof module.handler }));',
  ].join('\n');
  const { stdout } = await run(
    process.execPath,
    [...(options.nodeArgs ?? []), '--input-type=module', '--eval', script],
    {
      env: {},
      timeout: IMPORT_TIMEOUT_MS,
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    },
  );
  return JSON.parse(stdout) as { importMs: number; cpuMs: number; handlerType: string };
}

function outputOf(metafile: Metafile, outfile: string): Metafile['outputs'][string] {
  const found = Object.entries(metafile.outputs).find(([path]) => outfile.endsWith(basename(path)));
  if (found === undefined || !found[0].endsWith('.mjs')) {
    throw new Error(`esbuild reported no output for ${outfile}`);
  }
  return found[1];
}

/** Inputs grouped by package: `node_modules/@scope/name/…` → `@scope/name`; the project's own files as one. */
function byPackage(inputs: Metafile['outputs'][string]['inputs']): BundleInput[] {
  const totals = new Map<string, number>();
  for (const [path, input] of Object.entries(inputs)) {
    const name = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path)?.[1] ?? '(tenantflow sources)';
    totals.set(name, (totals.get(name) ?? 0) + input.bytesInOutput);
  }
  return [...totals].map(([name, bytes]) => ({ name, bytes }));
}

function largest(inputs: readonly BundleInput[], count = 5): BundleInput[] {
  return [...inputs].sort((a, b) => b.bytes - a.bytes).slice(0, count);
}
