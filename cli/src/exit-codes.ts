/**
 * The exit codes of `tenantflow`, one per kind of outcome, so a script can tell "the API said no"
 * from "you typed it wrong" from "the API or the network failed".
 */
export const EXIT = {
  /** The API answered 2xx (and what `--wait` waited for happened). */
  ok: 0,
  /** The API refused the request: a 4xx, whose `error.message` is printed. */
  refused: 1,
  /** The command line is wrong, or the credentials it needs cannot be found. */
  usage: 2,
  /** The API failed (5xx) or could not be reached. */
  failed: 3,
  /** `--wait` gave up (timeout), or the execution it waited for did not succeed. */
  waitFailed: 4,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export const EXIT_CODES_HELP = `Exit codes:
  0  success (HTTP 2xx)
  1  the API refused the request (HTTP 4xx); its error message is printed
  2  usage error (bad arguments, no credentials found)
  3  the API failed (HTTP 5xx) or could not be reached
  4  --wait timed out, or the execution waited for did not succeed`;

/** The exit code for an HTTP status. */
export function exitCodeForStatus(status: number): ExitCode {
  if (status >= 200 && status < 300) {
    return EXIT.ok;
  }
  return status >= 400 && status < 500 ? EXIT.refused : EXIT.failed;
}

/** A command line `tenantflow` cannot run; the message says what to change. Exit code 2. */
export class CliUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliUsageError';
  }
}

/** The command ran but did not succeed; `exitCode` says how (see {@link EXIT}). */
export class CliFailure extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
  ) {
    super(message);
    this.name = 'CliFailure';
  }
}
