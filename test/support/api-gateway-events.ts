import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import { anonymousIdentity } from '../../local/api-gateway-adapter.js';
import { createLambdaContext } from '../../local/lambda-context.js';

/** A REST (v1) proxy event as API Gateway sends it, with overrides. */
export function restEvent(overrides: Partial<APIGatewayProxyEvent> = {}): APIGatewayProxyEvent {
  return {
    resource: '/tenants',
    path: '/tenants',
    httpMethod: 'GET',
    headers: {},
    multiValueHeaders: {},
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: null,
    stageVariables: null,
    body: null,
    isBase64Encoded: false,
    requestContext: {
      accountId: '123456789012',
      apiId: 'api',
      authorizer: null,
      protocol: 'HTTP/1.1',
      httpMethod: overrides.httpMethod ?? 'GET',
      path: `/dev${overrides.path ?? '/tenants'}`,
      stage: 'dev',
      requestId: 'request-1',
      requestTimeEpoch: 0,
      resourceId: 'r',
      resourcePath: overrides.resource ?? '/tenants',
      identity: anonymousIdentity('127.0.0.1', null),
    },
    ...overrides,
  };
}

/** The context of a handler invoked directly by a test; its request id is the one tests expect back. */
export function lambdaContext(): Context {
  return createLambdaContext({
    functionName: 'test',
    awsRequestId: 'aws-request-1',
    timeoutMs: 10_000,
    memoryLimitInMB: 256,
  });
}
