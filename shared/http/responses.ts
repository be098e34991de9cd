import type { APIGatewayProxyResult } from 'aws-lambda';

/** A JSON response in the shape API Gateway's Lambda proxy integration expects. */
export function jsonResponse(statusCode: number, body: unknown): APIGatewayProxyResult {
  return {
    statusCode,
    headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' },
    body: JSON.stringify(body),
  };
}

/** A response with no body (e.g. 204 after a delete). */
export function emptyResponse(statusCode = 204): APIGatewayProxyResult {
  return { statusCode, headers: { 'cache-control': 'no-store' }, body: '' };
}

/** Case-insensitive header lookup: API Gateway REST events keep the case the client sent. */
export function getHeader(
  headers: Record<string, string | undefined> | null,
  name: string,
): string | undefined {
  if (headers === null) {
    return undefined;
  }
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === wanted) {
      return value;
    }
  }
  return undefined;
}
