import type { ApiClient, ApiRequest, ApiResponse } from '../../ops/api-client.js';
import { CliFailure, EXIT, exitCodeForStatus } from './exit-codes.js';

/**
 * Sends `request`, turning a failure to reach the API into a {@link CliFailure} (exit code 3).
 * Any status is returned: see {@link expectSuccess}.
 */
export async function send(client: ApiClient, api: URL, request: ApiRequest): Promise<ApiResponse> {
  try {
    return await client.send(request);
  } catch (error) {
    const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : '';
    const message = error instanceof Error ? error.message : String(error);
    throw new CliFailure(`cannot reach ${api.href}: ${message}${cause}`, EXIT.failed);
  }
}

/** Sends `request` and returns its response when it is 2xx; otherwise fails with the API's error. */
export async function call(client: ApiClient, api: URL, request: ApiRequest): Promise<ApiResponse> {
  return expectSuccess(request, await send(client, api, request));
}

export function expectSuccess(request: ApiRequest, response: ApiResponse): ApiResponse {
  if (response.status >= 200 && response.status < 300) {
    return response;
  }
  throw new CliFailure(
    `${request.method} ${request.path}: ${describeError(response)}`,
    exitCodeForStatus(response.status),
  );
}

/**
 * The API's error as one line: `404 TENANT_NOT_FOUND: <message>` for tenantflow's
 * `{"error":{"code","message"}}`, API Gateway's `{"message"}` otherwise, or the start of the body.
 */
export function describeError(response: ApiResponse): string {
  const body = response.body as
    | { error?: { code?: unknown; message?: unknown }; message?: unknown; Message?: unknown }
    | undefined;
  const error = body?.error;
  if (typeof error?.message === 'string') {
    return `${response.status}${typeof error.code === 'string' ? ` ${error.code}` : ''}: ${error.message}`;
  }
  const gatewayMessage = body?.message ?? body?.Message;
  if (typeof gatewayMessage === 'string') {
    return `${response.status}: ${gatewayMessage}`;
  }
  const text = response.text.trim().slice(0, 200);
  return text === '' ? `HTTP ${response.status}` : `${response.status}: ${text}`;
}

export interface PollOptions {
  readonly timeoutMs: number;
  readonly intervalMs: number;
  readonly sleep: (ms: number) => Promise<void>;
  readonly now: () => number;
}

/**
 * Calls `check` until it returns a value, or fails with exit code 4 after `timeoutMs`, the message
 * ending with what `lastSeen` says about the last answer.
 */
export async function pollUntil<T>(
  what: string,
  check: () => Promise<T | undefined>,
  lastSeen: () => string,
  options: PollOptions,
): Promise<T> {
  const deadline = options.now() + options.timeoutMs;
  for (;;) {
    const result = await check();
    if (result !== undefined) {
      return result;
    }
    if (options.now() >= deadline) {
      throw new CliFailure(
        `gave up waiting for ${what} after ${Math.round(options.timeoutMs / 1000)} s (${lastSeen()})`,
        EXIT.waitFailed,
      );
    }
    await options.sleep(options.intervalMs);
  }
}
