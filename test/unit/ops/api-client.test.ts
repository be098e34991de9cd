import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { bearerClient, type Fetch, signRequest, sigV4Client } from '../../../ops/api-client.js';

/** The example credentials of AWS's SigV4 documentation and test suite. */
const EXAMPLE_CREDENTIALS = {
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
};
const SIGNING_DATE = new Date('2024-01-02T03:04:05Z');

interface Sent {
  readonly url: string;
  readonly method: string;
  readonly headers: Record<string, string>;
  readonly body: string | undefined;
}

/** A fetch that records what it was asked to send and answers with `status` and `body` (`null`: none). */
function recordingFetch(status = 200, body: unknown = { ok: true }) {
  const sent: Sent[] = [];
  const fetchFn: Fetch = async (input, init) => {
    sent.push({
      url: String(input),
      method: init?.method ?? 'GET',
      headers: { ...(init?.headers as Record<string, string>) },
      body: init?.body as string | undefined,
    });
    return new Response(body === null ? null : JSON.stringify(body), { status });
  };
  return { fetchFn, sent };
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const hmac = (key: string | Buffer, text: string) => createHmac('sha256', key).update(text).digest();

/**
 * SigV4 computed by hand from the specification, independently of the signer under test: the
 * canonical request, the string to sign, the derived key, the signature.
 */
function expectedAuthorization(request: {
  method: string;
  host: string;
  path: string;
  contentType: string;
  body: string;
  amzDate: string;
  region: string;
}): string {
  const signedHeaders = 'content-type;host;x-amz-date';
  const canonicalRequest = [
    request.method,
    request.path,
    '',
    `content-type:${request.contentType}`,
    `host:${request.host}`,
    `x-amz-date:${request.amzDate}`,
    '',
    signedHeaders,
    sha256(request.body),
  ].join('\n');
  const day = request.amzDate.slice(0, 8);
  const scope = `${day}/${request.region}/execute-api/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', request.amzDate, scope, sha256(canonicalRequest)].join('\n');
  let key = hmac(`AWS4${EXAMPLE_CREDENTIALS.secretAccessKey}`, day);
  for (const part of [request.region, 'execute-api', 'aws4_request']) {
    key = hmac(key, part);
  }
  const signature = createHmac('sha256', key).update(stringToSign).digest('hex');
  return `AWS4-HMAC-SHA256 Credential=${EXAMPLE_CREDENTIALS.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
}

describe('signRequest', () => {
  it("reproduces the signature of AWS's documented example (IAM ListUsers, 2015-08-30)", async () => {
    // Prepare: the request of "Examples of the complete Signature Version 4 signing process".
    const request = {
      method: 'GET',
      url: new URL('https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08'),
      headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
    };

    // Act
    const headers = await signRequest(
      { region: 'us-east-1', service: 'iam', credentials: EXAMPLE_CREDENTIALS },
      request,
      new Date('2015-08-30T12:36:00Z'),
    );

    // Assert
    expect(headers['x-amz-date']).toBe('20150830T123600Z');
    expect(headers.authorization).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, ' +
        'SignedHeaders=content-type;host;x-amz-date, ' +
        'Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7',
    );
  });
});

describe('sigV4Client', () => {
  it('signs each request for execute-api in its region, over the stage path and the JSON body', async () => {
    // Prepare
    const { fetchFn, sent } = recordingFetch(201, { tenantId: 'acme' });
    const client = sigV4Client(new URL('https://abc123.execute-api.eu-west-1.amazonaws.com/dev/'), {
      region: 'eu-west-1',
      credentials: EXAMPLE_CREDENTIALS,
      fetch: fetchFn,
      now: () => SIGNING_DATE,
    });

    // Act
    const response = await client.send({
      method: 'POST',
      path: '/tenants',
      body: { tenantId: 'acme', name: 'Acme Corp' },
    });

    // Assert
    expect(response).toMatchObject({ status: 201, body: { tenantId: 'acme' } });
    const [request] = sent;
    expect(request?.url).toBe('https://abc123.execute-api.eu-west-1.amazonaws.com/dev/tenants');
    expect(request?.body).toBe('{"tenantId":"acme","name":"Acme Corp"}');
    expect(request?.headers['x-amz-date']).toBe('20240102T030405Z');
    expect(request?.headers.authorization).toBe(
      expectedAuthorization({
        method: 'POST',
        host: 'abc123.execute-api.eu-west-1.amazonaws.com',
        path: '/dev/tenants',
        contentType: 'application/json',
        body: '{"tenantId":"acme","name":"Acme Corp"}',
        amzDate: '20240102T030405Z',
        region: 'eu-west-1',
      }),
    );
    // fetch sets Host from the URL; a hand-set one would be refused.
    expect(Object.keys(request?.headers ?? {})).not.toContain('host');
  });

  it('sends the session token of temporary credentials, and resolves a credentials provider', async () => {
    // Prepare
    const { fetchFn, sent } = recordingFetch();
    const client = sigV4Client(new URL('https://abc123.execute-api.us-east-1.amazonaws.com/prod'), {
      region: 'us-east-1',
      credentials: async () => ({ ...EXAMPLE_CREDENTIALS, sessionToken: 'session-token-example' }),
      fetch: fetchFn,
      now: () => SIGNING_DATE,
    });

    // Act
    await client.send({ method: 'DELETE', path: '/tenants/acme' });

    // Assert
    expect(sent[0]?.headers['x-amz-security-token']).toBe('session-token-example');
    expect(sent[0]?.headers.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/20240102\/us-east-1\/execute-api\/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=[0-9a-f]{64}$/,
    );
    expect(client.refusalHint).toMatch(/execute-api:Invoke/);
  });
});

describe('bearerClient', () => {
  it('sends the token as a bearer and reads JSON, empty and non-JSON bodies', async () => {
    // Prepare
    const { fetchFn, sent } = recordingFetch(204, null);
    const client = bearerClient(new URL('http://127.0.0.1:3000'), 'tfk_acme_secret', { fetch: fetchFn });

    // Act
    const response = await client.send({ method: 'DELETE', path: '/tenants/acme' });

    // Assert
    expect(response).toEqual({ status: 204, body: undefined, text: '' });
    expect(sent[0]).toMatchObject({
      url: 'http://127.0.0.1:3000/tenants/acme',
      method: 'DELETE',
      headers: { authorization: 'Bearer tfk_acme_secret' },
      body: undefined,
    });
    const html: Fetch = async () => new Response('<html>Bad Gateway</html>', { status: 502 });
    expect(
      await bearerClient(new URL('http://x'), 't', { fetch: html }).send({ method: 'GET', path: '/' }),
    ).toEqual({
      status: 502,
      body: undefined,
      text: '<html>Bad Gateway</html>',
    });
  });
});
