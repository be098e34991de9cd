/**
 * Whether this is a CI run. There a suite never skips for want of a tool: `.ci/run` installs them
 * all, and a suite that silently stops running is a regression nobody sees.
 */
export const IN_CI = ((ci) => ci !== '' && ci !== '0' && ci !== 'false')(
  (process.env.CI ?? '').trim().toLowerCase(),
);

/** A program outside npm that some suites need, and what they do without it. */
export interface RequiredTool {
  /** The program, as a user would look for it: `pgbouncer`. */
  readonly name: string;
  /** Whether it was found. */
  readonly found: boolean;
  /** What is skipped without it: `the transaction-pooler suite`. */
  readonly skipping: string;
  /** The command that installs it: `apt-get install -y pgbouncer`. */
  readonly installHint: string;
}

/**
 * Call once per suite file, at collection: returns whether the suite must be skipped. A missing tool
 * throws in CI; elsewhere the reason and the install hint are printed once, since the default
 * reporter shows a skipped suite as a count only.
 *
 * @example
 * const skip = skipWithout({ name: 'pgbouncer', found: executable !== undefined,
 *   skipping: 'the transaction-pooler suite', installHint: 'apt-get install -y pgbouncer' });
 * describe.skipIf(skip)('Platform SQL through a transaction pooler', () => { ... });
 */
export function skipWithout(tool: RequiredTool): boolean {
  if (tool.found) {
    return false;
  }
  if (IN_CI) {
    throw new Error(
      `${tool.name} not found, and this is CI: ${tool.skipping} must run here. Install it with: ${tool.installHint}`,
    );
  }
  console.warn(`${tool.name} not found: skipping ${tool.skipping}; install it with ${tool.installHint}`);
  return true;
}
