import middy from '@middy/core';
import { requireAdmin } from '@tenantflow/shared/http/admin-auth.middleware';
import { httpErrorMapper } from '@tenantflow/shared/http/error-mapper.middleware';
import { jsonResponse } from '@tenantflow/shared/http/responses';
import { getValidatedInput, validateRequest } from '@tenantflow/shared/http/validation.middleware';
import {
  TenantInactiveError,
  TenantNotFoundError,
  TenantStateConflictError,
  ValidationError,
} from '@tenantflow/shared/kernel/errors';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { lambdaContext, restEvent } from '../../support/api-gateway-events.js';

function silentLogger() {
  return { error: vi.fn(), warn: vi.fn() };
}

function failingHandler(error: unknown, logger = silentLogger()) {
  return middy<APIGatewayProxyEvent, APIGatewayProxyResult>()
    .use(httpErrorMapper({ logger }))
    .handler(async () => {
      throw error;
    });
}

describe('httpErrorMapper', () => {
  it.each([
    [new ValidationError('Invalid request', ['body.name: required']), 400, 'VALIDATION_FAILED'],
    [new TenantNotFoundError('acme'), 404, 'TENANT_NOT_FOUND'],
    [new TenantStateConflictError('busy'), 409, 'TENANT_STATE_CONFLICT'],
    [new TenantInactiveError('acme'), 423, 'TENANT_INACTIVE'],
  ])('maps %s to its status and code', async (error, status, code) => {
    const response = await failingHandler(error)(restEvent(), lambdaContext());

    expect(response.statusCode).toBe(status);
    expect(JSON.parse(response.body).error.code).toBe(code);
  });

  it('returns the public message, not an operator message that names other tenants', async () => {
    const error = new TenantNotFoundError(
      'globex',
      "Tenant 'globex' is not registered. Available tenants: ['acme']",
    );

    const response = await failingHandler(error)(restEvent(), lambdaContext());

    expect(JSON.parse(response.body).error.message).toBe("Tenant 'globex' is not registered");
    expect(response.body).not.toContain('acme');
  });

  it('turns an unknown error into a generic 500 and logs the cause without returning it', async () => {
    const logger = silentLogger();
    const secretLeak = new Error('password authentication failed for user "acme_user" password=hunter2');

    const response = await failingHandler(secretLeak, logger)(restEvent(), lambdaContext());

    expect(response.statusCode).toBe(500);
    expect(JSON.parse(response.body)).toEqual({
      error: { code: 'INTERNAL_ERROR', message: 'Internal server error', requestId: 'aws-request-1' },
    });
    expect(response.body).not.toContain('hunter2');
    expect(logger.error).toHaveBeenCalledWith(
      'request failed',
      expect.objectContaining({ error: secretLeak }),
    );
  });

  const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });
  it.each([
    ['a refused connection', withCode('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED')],
    ['a connection cut mid-request', new Error('Connection terminated unexpectedly')],
    ['a server shutting down', withCode('terminating connection due to administrator command', '57P01')],
    ['a server starting up', withCode('the database system is starting up', '57P03')],
    ['too many connections', withCode('sorry, too many clients already', '53300')],
    [
      'a failure wrapped by the platform',
      new Error('registry read failed', { cause: withCode('connect ECONNREFUSED', 'ECONNREFUSED') }),
    ],
  ])('answers %s with a 503 and Retry-After in the documented shape', async (_, error) => {
    const logger = silentLogger();
    const response = await failingHandler(error, logger)(restEvent(), lambdaContext());

    expect(response.statusCode).toBe(503);
    expect(response.headers?.['retry-after']).toBe('5');
    expect(JSON.parse(response.body)).toEqual({
      error: {
        code: 'SERVICE_UNAVAILABLE',
        message: 'The database is unavailable; retry in 5 seconds.',
        requestId: 'aws-request-1',
      },
    });
    expect(logger.error).not.toHaveBeenCalled();
  });

  it('keeps a statement that failed on a working database a 500, not a 503', async () => {
    const response = await failingHandler(withCode('duplicate key value', '23505'))(
      restEvent(),
      lambdaContext(),
    );
    expect(response.statusCode).toBe(500);
  });
});

describe('validateRequest', () => {
  const schemas = {
    pathParameters: z.object({ tenantId: z.string().min(3) }),
    body: z.strictObject({ name: z.string(), size: z.number().int() }),
  };
  const handler = middy<APIGatewayProxyEvent, APIGatewayProxyResult>()
    .use(httpErrorMapper({ logger: silentLogger() }))
    .use(validateRequest(schemas))
    .handler(async (event) => jsonResponse(200, getValidatedInput(event, schemas)));
  const headers = { 'content-type': 'application/json' };

  it('hands the parsed input to the handler', async () => {
    const response = await handler(
      restEvent({ pathParameters: { tenantId: 'acme' }, headers, body: '{"name":"x","size":2}' }),
      lambdaContext(),
    );
    expect(JSON.parse(response.body)).toEqual({
      pathParameters: { tenantId: 'acme' },
      body: { name: 'x', size: 2 },
    });
  });

  it('reports problems in the path and the body together', async () => {
    const response = await handler(
      restEvent({ pathParameters: { tenantId: 'a' }, headers, body: '{"name":1,"size":1.5,"extra":true}' }),
      lambdaContext(),
    );
    const { error } = JSON.parse(response.body);

    expect(response.statusCode).toBe(400);
    expect(error.reasons).toHaveLength(4);
    expect(error.reasons[0]).toMatch(/^path\.tenantId: /);
    expect(error.reasons.slice(1).every((reason: string) => reason.startsWith('body'))).toBe(true);
  });

  it('decodes a base64-encoded body', async () => {
    const body = Buffer.from('{"name":"x","size":1}').toString('base64');
    const response = await handler(
      restEvent({ pathParameters: { tenantId: 'acme' }, headers, body, isBase64Encoded: true }),
      lambdaContext(),
    );
    expect(response.statusCode).toBe(200);
  });
});

describe('requireAdmin', () => {
  const token = 'admin-token-0123456789abcdef';
  const protectedHandler = (trustIamIdentity: boolean, adminToken: string | undefined = token) =>
    middy<APIGatewayProxyEvent, APIGatewayProxyResult>()
      .use(httpErrorMapper({ logger: silentLogger() }))
      .use(requireAdmin({ adminToken, trustIamIdentity }))
      .handler(async () => jsonResponse(200, { ok: true }));
  const withIamCaller = (event: APIGatewayProxyEvent): APIGatewayProxyEvent => ({
    ...event,
    requestContext: {
      ...event.requestContext,
      identity: { ...event.requestContext.identity, userArn: 'arn:aws:iam::123456789012:user/ops' },
    },
  });

  it('accepts the bearer token under any header name case', async () => {
    const response = await protectedHandler(false)(
      restEvent({ headers: { AUTHORIZATION: `Bearer ${token}` } }),
      lambdaContext(),
    );
    expect(response.statusCode).toBe(200);
  });

  it.each([
    ['a lower-case scheme', `bearer ${token}`],
    ['two spaces', `Bearer  ${token}`],
    ['a trailing space', `Bearer ${token} `],
    ['a leading space', ` Bearer ${token}`],
    ['a tab', `Bearer\t${token}`],
    ['another scheme', `Token ${token}`],
  ])('accepts exactly one documented form: refuses %s with a 401 that shows it', async (_, header) => {
    const response = await protectedHandler(false)(
      restEvent({ headers: { Authorization: header } }),
      lambdaContext(),
    );
    expect(response.statusCode).toBe(401);
    expect(JSON.parse(response.body).error.message).toContain('exactly "Bearer <admin token>"');
  });

  it('refuses a token that differs only in length', async () => {
    const response = await protectedHandler(false)(
      restEvent({ headers: { Authorization: `Bearer ${token}x` } }),
      lambdaContext(),
    );
    expect(response.statusCode).toBe(401);
  });

  it('trusts an IAM caller identity only when told to (API Gateway with AWS_IAM in front)', async () => {
    const event = withIamCaller(restEvent());
    expect((await protectedHandler(true)(event, lambdaContext())).statusCode).toBe(200);
    expect((await protectedHandler(false)(event, lambdaContext())).statusCode).toBe(401);
  });

  it('refuses every bearer token when no admin token is configured', async () => {
    const response = await protectedHandler(false, undefined)(
      restEvent({ headers: { Authorization: 'Bearer anything-at-all-0123456789' } }),
      lambdaContext(),
    );
    expect(response.statusCode).toBe(401);
  });
});
