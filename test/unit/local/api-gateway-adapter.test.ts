import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { MAX_JSON_DEPTH } from '@tenantflow/shared/kernel/untrusted-json';
import { createLogger } from '@tenantflow/shared/logging/logger';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createAuthorizerHandler } from '../../../functions/api/authorizer.js';
import { API_ROUTES, GATEWAY_RESPONSES } from '../../../functions/api/routes.js';
import {
  createLocalApiServer,
  KEEP_ALIVE_TIMEOUT_MS,
  type LocalRoute,
} from '../../../local/api-gateway-adapter.js';
import { ADMIN_TOKEN, apiWithRecordingServices, TENANT_ID } from '../http/api-test-doubles.js';

// These tests use the loopback interface only: the adapter's job is turning bytes on a socket
// into an API Gateway event, and only a socket carries the malformed requests it must survive.

const running: { close: () => Promise<void> }[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((server) => server.close()));
});

async function serve(routes: readonly LocalRoute[]) {
  const onHandlerCrash = vi.fn();
  const server = createLocalApiServer({ routes, onHandlerCrash });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  running.push({
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
  return { url: `http://127.0.0.1:${port}`, port, onHandlerCrash };
}

/** The local stack's routes, served by the real API handlers over recording services. */
async function serveApi() {
  const api = apiWithRecordingServices();
  const logger = createLogger('unit-test');
  const authorizer = createAuthorizerHandler({
    authorizer: { authenticate: async () => ({ kind: 'tenant', tenantId: TENANT_ID }) },
    logger,
  });
  const server = await serve(
    API_ROUTES.map((route) => ({
      method: route.method,
      resource: route.resource,
      functionName: route.function,
      handler: api.handlers[route.function],
      ...(route.authorization === 'tenant' ? { authorizer } : {}),
    })),
  );
  return { ...server, serviceCalls: api.serviceCalls };
}

/** A handler that keeps the events it gets, to see what the adapter built. */
async function serveCapturing(resource: string, method = 'GET') {
  const events: APIGatewayProxyEvent[] = [];
  const server = await serve([
    {
      method,
      resource,
      functionName: 'capture',
      handler: async (event) => {
        events.push(event);
        return { statusCode: 200, body: '{}' };
      },
    },
  ]);
  return { ...server, events };
}

/** Sends bytes as they are (no client library to tidy them up) and returns the status code. */
function sendRaw(port: number, request: string | Buffer): Promise<number | 'no response'> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.setTimeout(3_000, () => socket.destroy());
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
    });
    socket.on('close', () => {
      const status = /^HTTP\/1\.1 (\d{3})/.exec(received)?.[1];
      resolve(status === undefined ? 'no response' : Number(status));
    });
    socket.on('error', () => {});
    socket.end(request);
  });
}

/** The `error` of a tenantflow error response. */
async function errorOf(response: Response): Promise<{ code: string; message: string; reasons?: string[] }> {
  const body = (await response.json()) as { error: { code: string; message: string; reasons?: string[] } };
  return body.error;
}

const adminJson = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };

describe('createLocalApiServer', () => {
  describe('requests it must survive', () => {
    it.each([
      ['an absolute target that is no URL', 'http://['],
      ['an asterisk target', '*'],
    ])('answers 400 for %s, and keeps serving', async (_case, target) => {
      const { port, url, onHandlerCrash } = await serveCapturing('/health');

      const status = await sendRaw(port, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);

      expect(status).toBe(400);
      expect((await fetch(`${url}/health`)).status).toBe(200);
      expect(onHandlerCrash).not.toHaveBeenCalled();
    });

    it('reads a target starting with // as a path, not as a host name', async () => {
      const { port } = await serveCapturing('/health');

      const status = await sendRaw(
        port,
        'GET //evil.example/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      );

      expect(status).toBe(404);
    });

    it.each(['constructor', '__proto__', 'toString'])(
      'passes a header and a query parameter named %s through as they are',
      async (name) => {
        const { port, events } = await serveCapturing('/health');

        const status = await sendRaw(
          port,
          `GET /health?${name}=1&${name}=2 HTTP/1.1\r\nHost: x\r\n${name}: h\r\nConnection: close\r\n\r\n`,
        );

        expect(status).toBe(200);
        const [event] = events;
        expect(Object.hasOwn(event?.queryStringParameters ?? {}, name)).toBe(true);
        expect(event?.queryStringParameters?.[name]).toBe('2');
        expect(event?.multiValueQueryStringParameters?.[name]).toEqual(['1', '2']);
        expect(event?.multiValueHeaders[name]).toEqual(['h']);
      },
    );

    it('hands over a body that is not UTF-8 base64-encoded, byte for byte', async () => {
      const { url, events } = await serveCapturing('/echo', 'POST');
      const bytes = Buffer.from([0x22, 0xff, 0xfe, 0x22]);

      await fetch(`${url}/echo`, { method: 'POST', body: bytes });

      expect(events[0]?.isBase64Encoded).toBe(true);
      expect(Buffer.from(events[0]?.body ?? '', 'base64')).toEqual(bytes);
    });

    it('answers 413 for a body over 1 MiB, and keeps serving', async () => {
      const { url } = await serveCapturing('/echo', 'POST');

      const response = await fetch(`${url}/echo`, { method: 'POST', body: 'x'.repeat(1024 * 1024 + 1) });

      expect(response.status).toBe(413);
      expect((await errorOf(response)).code).toBe('PAYLOAD_TOO_LARGE');
      expect((await fetch(`${url}/echo`, { method: 'POST', body: '{}' })).status).toBe(200);
    });
  });

  describe('the API behind it, as in the local stack', () => {
    it('answers 400 for a JSON body that is not UTF-8', async () => {
      const { url, serviceCalls } = await serveApi();
      const body = Buffer.concat([Buffer.from('{"name":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);

      const response = await fetch(`${url}/tenants/${TENANT_ID}`, {
        method: 'PATCH',
        headers: adminJson,
        body,
      });

      expect(response.status).toBe(400);
      expect((await errorOf(response)).message).toContain('UTF-8');
      expect(serviceCalls()).toBe(0);
    });

    it(`answers 400, never 500, for a body nested deeper than ${MAX_JSON_DEPTH} levels`, async () => {
      const { url, serviceCalls } = await serveApi();
      const body = `{"workflow":"echo","input":{"a":${'['.repeat(200_000)}${']'.repeat(200_000)}}}`;

      const response = await fetch(`${url}/tenants/${TENANT_ID}/executions`, {
        method: 'POST',
        headers: { authorization: 'Bearer tenant-key', 'content-type': 'application/json' },
        body,
      });

      expect(response.status).toBe(400);
      expect((await errorOf(response)).message).toContain(`${MAX_JSON_DEPTH} levels`);
      expect(serviceCalls()).toBe(0);
    });

    it('answers 415 for a JSON body sent as text/plain', async () => {
      const { url, serviceCalls } = await serveApi();

      const response = await fetch(`${url}/tenants`, {
        method: 'POST',
        headers: { ...adminJson, 'content-type': 'text/plain' },
        body: JSON.stringify({ tenantId: TENANT_ID, name: 'Acme' }),
      });

      expect(response.status).toBe(415);
      expect((await errorOf(response)).code).toBe('UNSUPPORTED_MEDIA_TYPE');
      expect(serviceCalls()).toBe(0);
    });

    it.each([
      ['a NUL in a string', '{"metadata":{"note":"\\u0000"}}'],
      ['a lone surrogate in a key', '{"metadata":{"\\ud800":1}}'],
    ])('answers 400 for %s in the body', async (_case, body) => {
      const { url, serviceCalls } = await serveApi();

      const response = await fetch(`${url}/tenants/${TENANT_ID}`, {
        method: 'PATCH',
        headers: adminJson,
        body,
      });

      expect(response.status).toBe(400);
      expect((await errorOf(response)).reasons).toEqual([expect.stringMatching(/^body\.metadata/)]);
      expect(serviceCalls()).toBe(0);
    });

    it('answers 400 for a percent-encoded NUL in a query parameter', async () => {
      const { url, serviceCalls } = await serveApi();

      const response = await fetch(`${url}/tenants/${TENANT_ID}/executions?nextToken=a%00b`, {
        headers: { authorization: 'Bearer tenant-key' },
      });

      expect(response.status).toBe(400);
      expect((await errorOf(response)).reasons).toEqual([
        expect.stringMatching(/^query\.nextToken: contains a NUL character/),
      ]);
      expect(serviceCalls()).toBe(0);
    });

    it('answers 400 for a percent-encoded NUL in a path parameter', async () => {
      const { url } = await serveApi();

      const response = await fetch(`${url}/tenants/acme%00`, {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      });

      expect(response.status).toBe(400);
      expect((await errorOf(response)).reasons).toEqual([
        expect.stringMatching(/^path\.tenantId: contains a NUL character/),
      ]);
    });
  });

  it('keeps an idle kept-alive connection open longer than clients keep theirs, so a reused one is not reset under a request', async () => {
    const server = createLocalApiServer({ routes: [] });
    expect(KEEP_ALIVE_TIMEOUT_MS).toBeGreaterThan(60_000);
    expect(server.keepAliveTimeout).toBe(KEEP_ALIVE_TIMEOUT_MS);
    expect(server.headersTimeout).toBeGreaterThan(server.keepAliveTimeout);
  });

  describe('gateway responses', () => {
    it('answers an authorizer that fails (the registry unreachable) with 503 and Retry-After, not a bare 500', async () => {
      const onHandlerCrash = vi.fn();
      const server = createLocalApiServer({
        routes: [
          {
            method: 'GET',
            resource: '/workflows',
            functionName: 'executions',
            handler: async () => ({ statusCode: 200, body: '{}' }),
            authorizer: async () => {
              throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
            },
          },
        ],
        gatewayResponses: GATEWAY_RESPONSES,
        onHandlerCrash,
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      running.push({
        close: () =>
          new Promise<void>((resolve) => {
            server.closeAllConnections();
            server.close(() => resolve());
          }),
      });
      const { port } = server.address() as AddressInfo;

      const response = await fetch(`http://127.0.0.1:${port}/workflows`, {
        headers: { authorization: 'Bearer anything' },
      });

      expect(response.status).toBe(503);
      expect(response.headers.get('retry-after')).toBe('5');
      expect(await response.json()).toEqual(GATEWAY_RESPONSES.AUTHORIZER_FAILURE.body);
      expect(onHandlerCrash).toHaveBeenCalledOnce();
    });
  });
});
