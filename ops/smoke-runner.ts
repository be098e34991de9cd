/**
 * Runs checks given as data, one after another, and reports each the same way: a status, its time
 * and one line of detail, then a verdict. Once a step fails the rest are skipped (they build on
 * what it should have done), except the `always` ones, which clean up.
 */

export interface SmokeStep {
  readonly name: string;
  /** Runs even after an earlier step failed: cleanup. */
  readonly always?: boolean;
  run(note: (line: string) => void): Promise<StepOutcome>;
}

export interface StepOutcome {
  /** What the step saw, for the report. */
  readonly detail: string;
  /** Steps to run right after this one, known only once it has run (one per listed workflow). */
  readonly next?: readonly SmokeStep[];
}

/** A check that did not hold; its message is the report's detail, so it names what was expected. */
export class SmokeCheckError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SmokeCheckError';
  }
}

export type StepStatus = 'PASS' | 'FAIL' | 'SKIP';

export interface StepResult {
  readonly name: string;
  readonly status: StepStatus;
  readonly durationMs: number;
  readonly detail: string;
}

export interface SmokeReport {
  readonly passed: boolean;
  readonly results: readonly StepResult[];
  readonly durationMs: number;
}

export interface RunnerOptions {
  readonly print: (line: string) => void;
  readonly now?: () => number;
  /** Once aborted (Ctrl-C), the remaining steps are skipped, except the `always` ones. */
  readonly signal?: AbortSignal;
}

const NAME_WIDTH = 44;

export async function runSteps(steps: readonly SmokeStep[], options: RunnerOptions): Promise<SmokeReport> {
  const now = options.now ?? Date.now;
  const started = now();
  const queue = [...steps];
  const results: StepResult[] = [];
  let failed = false;
  for (let step = queue.shift(); step !== undefined; step = queue.shift()) {
    const interrupted = options.signal?.aborted === true;
    if ((failed || interrupted) && step.always !== true) {
      failed = true;
      const result = {
        name: step.name,
        status: 'SKIP',
        durationMs: 0,
        detail: interrupted ? 'interrupted' : 'after an earlier failure',
      } as const;
      results.push(result);
      options.print(formatResult(result));
      continue;
    }
    const stepStarted = now();
    let result: StepResult;
    try {
      const outcome = await step.run((line) => options.print(`        ${line}`));
      queue.unshift(...(outcome.next ?? []));
      result = { name: step.name, status: 'PASS', durationMs: now() - stepStarted, detail: outcome.detail };
    } catch (error) {
      failed = true;
      result = {
        name: step.name,
        status: 'FAIL',
        durationMs: now() - stepStarted,
        detail: describeError(error),
      };
    }
    results.push(result);
    options.print(formatResult(result));
  }
  return { passed: !failed, results, durationMs: now() - started };
}

export function formatResult(result: StepResult): string {
  const time = result.status === 'SKIP' ? '' : formatDuration(result.durationMs);
  return `  ${result.status}  ${result.name.padEnd(NAME_WIDTH)} ${time.padStart(8)}  ${result.detail}`;
}

/** The last lines: PASSED or FAILED, with the counts and the first failure. */
export function formatVerdict(report: SmokeReport): string {
  const total = report.results.length;
  const time = formatDuration(report.durationMs);
  if (report.passed) {
    return `Verdict: PASSED (${total} of ${total} steps passed in ${time})`;
  }
  const count = (status: StepStatus) => report.results.filter((result) => result.status === status).length;
  const firstFailure = report.results.find((result) => result.status === 'FAIL');
  return [
    `Verdict: FAILED (${count('FAIL')} failed, ${count('SKIP')} skipped, ${count('PASS')} passed of ${total} steps, in ${time})`,
    ...(firstFailure === undefined ? [] : [`  first failure: ${firstFailure.name}: ${firstFailure.detail}`]),
  ].join('\n');
}

export function formatDuration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

function describeError(error: unknown): string {
  if (error instanceof SmokeCheckError) {
    return error.message;
  }
  if (error instanceof Error) {
    // fetch reports a refused connection or a DNS failure as "fetch failed", with the reason in
    // its cause.
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
    return `${error.name}: ${error.message}${cause}`;
  }
  return String(error);
}
