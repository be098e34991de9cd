/** A small JSON client for driving the API over real HTTP in tests. */
export interface ApiResponse<T = unknown> {
  readonly status: number;
  readonly headers: Headers;
  readonly body: T;
}

export function apiClient(baseUrl: string, token?: string) {
  // biome-ignore lint/suspicious/noExplicitAny: tests assert on the JSON shape itself; `any` keeps those assertions terse.
  return async function call<T = any>(
    method: string,
    path: string,
    options: { body?: unknown; rawBody?: string; token?: string | null } = {},
  ): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = {};
    const bearer = options.token === undefined ? token : options.token;
    if (bearer !== null && bearer !== undefined) {
      headers.authorization = `Bearer ${bearer}`;
    }
    let body: string | undefined;
    if (options.rawBody !== undefined) {
      body = options.rawBody;
    } else if (options.body !== undefined) {
      body = JSON.stringify(options.body);
    }
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
    }
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers,
      ...(body === undefined ? {} : { body }),
    });
    const text = await response.text();
    return {
      status: response.status,
      headers: response.headers,
      body: (text.length > 0 ? JSON.parse(text) : undefined) as T,
    };
  };
}
