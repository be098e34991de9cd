import type middy from '@middy/core';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import type { z } from 'zod';
import { ValidationError } from '../errors.js';

/** Zod schemas for the parts of a request a route accepts. */
export interface RequestSchemas {
  readonly pathParameters?: z.ZodType;
  readonly queryStringParameters?: z.ZodType;
  readonly body?: z.ZodType;
}

export type ValidatedInput<S extends RequestSchemas> = {
  readonly pathParameters: S['pathParameters'] extends z.ZodType ? z.output<S['pathParameters']> : undefined;
  readonly queryStringParameters: S['queryStringParameters'] extends z.ZodType
    ? z.output<S['queryStringParameters']>
    : undefined;
  readonly body: S['body'] extends z.ZodType ? z.output<S['body']> : undefined;
};

/** Parsed input per event. A WeakMap, so nothing outlives the invocation and the event stays untouched. */
const validatedInputs = new WeakMap<APIGatewayProxyEvent, unknown>();

/**
 * Validates path parameters and the JSON body against zod schemas, before the handler runs.
 * Every problem is reported at once in one `ValidationError` (400), each reason prefixed with
 * where it was found (`body.name: ...`). A body that is not JSON is a 400, never a 500.
 *
 * @example
 * ```ts
 * const schemas = { body: z.object({ name: z.string() }) };
 * middy().use(validateRequest(schemas)).handler(async (event) => {
 *   const { body } = getValidatedInput(event, schemas);
 * });
 * ```
 */
export function validateRequest<S extends RequestSchemas>(
  schemas: S,
): middy.MiddlewareObj<APIGatewayProxyEvent, APIGatewayProxyResult> {
  return {
    before: async function validateRequestInput(request) {
      const { event } = request;
      const reasons: string[] = [];
      let pathParameters: unknown;
      let queryStringParameters: unknown;
      let body: unknown;
      if (schemas.pathParameters !== undefined) {
        const result = schemas.pathParameters.safeParse(event.pathParameters ?? {});
        if (result.success) {
          pathParameters = result.data;
        } else {
          reasons.push(...describeIssues('path', result.error.issues));
        }
      }
      if (schemas.queryStringParameters !== undefined) {
        const result = schemas.queryStringParameters.safeParse(event.queryStringParameters ?? {});
        if (result.success) {
          queryStringParameters = result.data;
        } else {
          reasons.push(...describeIssues('query', result.error.issues));
        }
      }
      if (schemas.body !== undefined) {
        const result = schemas.body.safeParse(parseJsonBody(event));
        if (result.success) {
          body = result.data;
        } else {
          reasons.push(...describeIssues('body', result.error.issues));
        }
      }
      if (reasons.length > 0) {
        throw new ValidationError('Invalid request', reasons);
      }
      validatedInputs.set(event, { pathParameters, queryStringParameters, body });
    },
  };
}

/**
 * The input `validateRequest(schemas)` parsed for this event. Throws if the middleware did not run,
 * which is a wiring mistake, never something a client can cause.
 */
export function getValidatedInput<S extends RequestSchemas>(
  event: APIGatewayProxyEvent,
  _schemas: S,
): ValidatedInput<S> {
  const input = validatedInputs.get(event);
  if (input === undefined) {
    throw new Error('getValidatedInput() called on an event that validateRequest() did not process');
  }
  return input as ValidatedInput<S>;
}

function parseJsonBody(event: APIGatewayProxyEvent): unknown {
  if (event.body === null || event.body === undefined || event.body.length === 0) {
    throw new ValidationError('Invalid request', ['body: a JSON body is required']);
  }
  const text = event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
  try {
    return JSON.parse(text);
  } catch (cause) {
    const detail = cause instanceof Error ? cause.message : 'unparseable';
    throw new ValidationError('Request body is not valid JSON', [`body: ${detail}`], { cause });
  }
}

function describeIssues(location: string, issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((issue) => {
    const where = [location, ...issue.path.map(String)].join('.');
    return `${where}: ${issue.message}`;
  });
}
