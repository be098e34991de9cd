/**
 * Whether an error means the database cannot be reached for now: what the HTTP layer answers with
 * a 503 and `Retry-After` instead of a 500, and what connection retries wait out. No `pg` import:
 * the kernel knows the codes and messages, not the driver.
 */

/** SQLSTATE 57P03: the server is starting up or recovering. */
const CANNOT_CONNECT_NOW = '57P03';

/**
 * SQLSTATEs of a session the server ended or would not open for now: `admin_shutdown` (a fast or
 * immediate stop), `crash_shutdown` (another backend crashed), `too_many_connections`. Waiting can
 * cure them, but a statement that was running may or may not have committed, so they are not
 * {@link isConnectionFailure}s a caller retries by itself.
 */
const SESSION_ENDED_CODES = new Set(['57P01', '57P02', '53300']);

function errorCode(error: object): string | undefined {
  return 'code' in error && typeof error.code === 'string' ? error.code : undefined;
}

/** Node's error codes for a server that cannot be reached (yet): refused, unreachable, not resolved. */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
]);

/** What `pg` throws when a connection is cut or its opening times out; it sets no code on these. */
const CONNECTION_LOST_MESSAGES = [
  'Connection terminated unexpectedly',
  'Connection terminated due to connection timeout',
  'timeout expired',
  'timeout exceeded when trying to connect',
];

/**
 * Whether `error` says the server could not be reached or refused to start a session for now,
 * which waiting can cure: a refused, reset, timed-out or unresolved connection, a connection
 * closed before it was ready, SQLSTATE 57P03 (`cannot_connect_now`) or class 08 (connection
 * exception). An error from a session that was opened (a failed statement, a refused password,
 * a missing database) is not one: trying again would fail the same way, or repeat a side effect.
 * Looks through `cause` and the `errors` of an `AggregateError` (a host with several addresses).
 *
 * @example
 * ```ts
 * isConnectionFailure(Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:5432'), { code: 'ECONNREFUSED' })); // true
 * isConnectionFailure(Object.assign(new Error('password authentication failed'), { code: '28P01' }));            // false
 * ```
 */
export function isConnectionFailure(error: unknown, depth = 0): boolean {
  if (typeof error !== 'object' || error === null || depth > 5) {
    return false;
  }
  const code = errorCode(error);
  if (code !== undefined) {
    if (UNREACHABLE_CODES.has(code) || code === CANNOT_CONNECT_NOW || /^08[0-9A-Z]{3}$/.test(code)) {
      return true;
    }
  }
  if (error instanceof Error && CONNECTION_LOST_MESSAGES.includes(error.message)) {
    return true;
  }
  if (
    error instanceof AggregateError &&
    error.errors.some((inner) => isConnectionFailure(inner, depth + 1))
  ) {
    return true;
  }
  return 'cause' in error && isConnectionFailure(error.cause, depth + 1);
}

/**
 * Whether a request failed because the database is unavailable: a {@link isConnectionFailure}, or
 * a session the server ended or refused for now (shutdown, crash restart, too many connections).
 * The API answers these with 503 and `Retry-After`: the client's request was fine, and trying
 * again later will work once the database is back.
 *
 * @example
 * ```ts
 * isDatabaseUnavailable(Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' })); // true
 * isDatabaseUnavailable(Object.assign(new Error('duplicate key'), { code: '23505' }));                                       // false
 * ```
 */
export function isDatabaseUnavailable(error: unknown, depth = 0): boolean {
  if (isConnectionFailure(error)) {
    return true;
  }
  if (typeof error !== 'object' || error === null || depth > 5) {
    return false;
  }
  const code = errorCode(error);
  if (code !== undefined && SESSION_ENDED_CODES.has(code)) {
    return true;
  }
  return 'cause' in error && isDatabaseUnavailable(error.cause, depth + 1);
}
