import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';

/** One call to the tenantflow API, by path relative to the API's base URL (stage included). */
export interface ApiRequest {
  readonly method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** Starts with `/`, e.g. `/tenants/acme`. */
  readonly path: string;
  /** Sent as JSON when present. */
  readonly body?: unknown;
  /** The query string's parameters; those `undefined` are left out. */
  readonly query?: Readonly<Record<string, string | undefined>>;
}

export interface ApiResponse {
  readonly status: number;
  /** The parsed JSON body; `undefined` when the body is empty or not JSON (see `text`). */
  readonly body: unknown;
  readonly text: string;
}

/**
 * The port the smoke test talks to the API through: one adapter per way of proving who the caller
 * is (a bearer token, or SigV4 with the caller's AWS credentials).
 */
export interface ApiClient {
  send(request: ApiRequest): Promise<ApiResponse>;
  /** How this client authenticates, for the report (`bearer token`, `SigV4 (eu-west-1)`). */
  readonly auth: string;
  /** What to check when the API refuses this client's credentials. */
  readonly refusalHint?: string;
}

export type Fetch = typeof globalThis.fetch;

export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string | undefined;
}

export type AwsCredentialsProvider = () => Promise<AwsCredentials>;

export interface BearerClientOptions {
  readonly fetch?: Fetch;
  /** What to check when the API refuses the token. */
  readonly refusalHint?: string;
}

/** A client that sends `Authorization: Bearer <token>`: the admin token locally, a tenant's API key anywhere. */
export function bearerClient(baseUrl: URL, token: string, options: BearerClientOptions = {}): ApiClient {
  const fetchFn = options.fetch ?? fetch;
  return {
    auth: 'bearer token',
    ...(options.refusalHint === undefined ? {} : { refusalHint: options.refusalHint }),
    send: (request) =>
      sendJson(fetchFn, requestUrl(baseUrl, request), request.method, jsonBody(request), {
        authorization: `Bearer ${token}`,
      }),
  };
}

export interface SigV4ClientOptions {
  readonly region: string;
  readonly credentials: AwsCredentials | AwsCredentialsProvider;
  readonly fetch?: Fetch;
  /** The signing time; a test fixes it to compare against a known signature. */
  readonly now?: () => Date;
}

/**
 * A client that signs each request with SigV4 for `execute-api`, as API Gateway's IAM
 * authorization of the admin routes requires.
 */
export function sigV4Client(baseUrl: URL, options: SigV4ClientOptions): ApiClient {
  const fetchFn = options.fetch ?? fetch;
  const now = options.now ?? (() => new Date());
  const signing: SigningOptions = {
    region: options.region,
    service: 'execute-api',
    credentials: options.credentials,
  };
  return {
    auth: `SigV4 (${options.region})`,
    refusalHint:
      'the AWS identity signing the requests needs execute-api:Invoke on the admin routes, in the API ' +
      "stage's account and region",
    send: async (request) => {
      const url = requestUrl(baseUrl, request);
      const body = jsonBody(request);
      const headers = await signRequest(
        signing,
        { method: request.method, url, headers: jsonHeaders(body), body },
        now(),
      );
      // fetch derives Host from the URL (the same value that was signed); it may not be set by hand.
      const { host: _host, ...sent } = headers;
      return sendJson(fetchFn, url, request.method, body, sent);
    },
  };
}

export interface SigningOptions {
  readonly region: string;
  readonly service: string;
  readonly credentials: AwsCredentials | AwsCredentialsProvider;
}

export interface RequestToSign {
  readonly method: string;
  readonly url: URL;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string | undefined;
}

/**
 * The headers `request` must carry to be accepted under SigV4 at `date`: the given ones plus
 * `host`, `x-amz-date`, `authorization` and, with temporary credentials, `x-amz-security-token`.
 */
export async function signRequest(
  options: SigningOptions,
  request: RequestToSign,
  date: Date,
): Promise<Record<string, string>> {
  const signer = new SignatureV4({
    region: options.region,
    service: options.service,
    credentials: options.credentials,
    sha256: Sha256,
    // API Gateway does not need the payload hash as a header (only S3 does); it is still signed,
    // inside the canonical request.
    applyChecksum: false,
  });
  const query: Record<string, string> = {};
  for (const [key, value] of request.url.searchParams) {
    query[key] = value;
  }
  const signed = await signer.sign(
    {
      method: request.method,
      protocol: request.url.protocol,
      hostname: request.url.hostname,
      ...(request.url.port === '' ? {} : { port: Number(request.url.port) }),
      path: request.url.pathname,
      query,
      headers: { ...request.headers, host: request.url.host },
      body: request.body,
    },
    { signingDate: date },
  );
  return { ...signed.headers };
}

/** `path` under the base URL's own path, so that a stage (`/prod`) in the base URL is kept. */
export function urlFor(baseUrl: URL, path: string): URL {
  const url = new URL(baseUrl);
  url.pathname = `${baseUrl.pathname.replace(/\/+$/, '')}${path}`;
  url.search = '';
  url.hash = '';
  return url;
}

function requestUrl(baseUrl: URL, request: ApiRequest): URL {
  const url = urlFor(baseUrl, request.path);
  for (const [key, value] of Object.entries(request.query ?? {})) {
    if (value !== undefined) {
      url.searchParams.set(key, value);
    }
  }
  return url;
}

function jsonBody(request: ApiRequest): string | undefined {
  return request.body === undefined ? undefined : JSON.stringify(request.body);
}

function jsonHeaders(body: string | undefined): Record<string, string> {
  return body === undefined ? {} : { 'content-type': 'application/json' };
}

async function sendJson(
  fetchFn: Fetch,
  url: URL,
  method: string,
  body: string | undefined,
  authHeaders: Record<string, string>,
): Promise<ApiResponse> {
  const response = await fetchFn(url, {
    method,
    headers: { ...jsonHeaders(body), ...authHeaders },
    ...(body === undefined ? {} : { body }),
    // A smoke test that hangs tells the user nothing; one slow call fails its step instead.
    signal: AbortSignal.timeout(60_000),
  });
  const text = await response.text();
  return { status: response.status, body: parseJson(text), text };
}

function parseJson(text: string): unknown {
  if (text.length === 0) {
    return undefined;
  }
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
