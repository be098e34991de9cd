/**
 * What `npm run bench` prints for machines beside its tables: one `RESULT <name> key=value …` line
 * per benchmark, and which benchmarks a run selects (`npm run bench -- <name>…`).
 */

/** Every benchmark by name, in the order a full run takes them. */
export const BENCHMARK_NAMES = [
  'tenant-switch',
  'provisioning',
  'fleet-migration',
  'recovery',
  'connections',
  'task-overhead',
  'start',
  'authorizer',
  'throughput',
  'load',
  'faults',
  'handler-bundle',
  'cold-start',
] as const;

export type BenchmarkName = (typeof BENCHMARK_NAMES)[number];

/** A figure of a RESULT line: numbers are rounded to 3 decimals, text must be one word. */
export type ResultValue = number | string | boolean;

/**
 * The benchmarks named on the command line, or all of them when none is. An unknown name stops the
 * run before anything starts, with the list of names.
 */
export function selectBenchmarks(args: readonly string[]): ReadonlySet<BenchmarkName> {
  const names = args.filter((arg) => !arg.startsWith('-'));
  if (names.length === 0) {
    return new Set(BENCHMARK_NAMES);
  }
  const unknown = names.filter((name) => !(BENCHMARK_NAMES as readonly string[]).includes(name));
  if (unknown.length > 0) {
    throw new Error(
      `Unknown benchmark ${unknown.map((name) => `'${name}'`).join(', ')}: the benchmarks are ${BENCHMARK_NAMES.join(', ')}`,
    );
  }
  return new Set(names as BenchmarkName[]);
}

/**
 * `RESULT provisioning ratio=3.45 scale_ratio=1.84`: one line, keys in the order given. A value
 * that is not a finite number (NaN, Infinity) is printed as `n/a` rather than hidden.
 */
export function resultLine(name: BenchmarkName, figures: Readonly<Record<string, ResultValue>>): string {
  const pairs = Object.entries(figures).map(([key, value]) => {
    if (!/^[a-z0-9][a-z0-9_]*$/.test(key)) {
      throw new Error(`RESULT key '${key}' of ${name} is not snake_case`);
    }
    return `${key}=${formatValue(value)}`;
  });
  return `RESULT ${name} ${pairs.join(' ')}`;
}

export function printResult(name: BenchmarkName, figures: Readonly<Record<string, ResultValue>>): void {
  console.log(resultLine(name, figures));
}

function formatValue(value: ResultValue): string {
  if (typeof value === 'number') {
    return Number.isFinite(value) ? String(Math.round(value * 1000) / 1000) : 'n/a';
  }
  const text = String(value);
  if (/\s/.test(text) || text.length === 0) {
    throw new Error(`RESULT value '${text}' must be one word`);
  }
  return text;
}
