/**
 * When a job invoked as a Lambda must stop taking new work: `marginMs` before the invocation's own
 * timeout, so what it started can finish and its summary be recorded. `undefined` when there is no
 * Lambda context to ask (a local call), meaning no deadline.
 *
 * @example
 * ```ts
 * const deadline = invocationDeadline(context, 30_000);
 * await recovery.run({ deadline });
 * ```
 */
export function invocationDeadline(
  context: { getRemainingTimeInMillis?: () => number } | undefined,
  marginMs: number,
): number | undefined {
  if (typeof context?.getRemainingTimeInMillis !== 'function') {
    return undefined;
  }
  return Date.now() + context.getRemainingTimeInMillis() - marginMs;
}
