import type middy from '@middy/core';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import type { z } from 'zod';
import { ValidationError } from '../kernel/errors.js';
import { findUnstorableStrings } from '../kernel/untrusted-json.js';
import { readJsonBody } from './json-body.js';

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
 * where it was found (`body.name: ...`). A body that is not JSON is a 400, never a 500; one that is
 * not sent as JSON is a 415 (see `readJsonBody`).
 *
 * Every route gets the same guard, schema or not: no string PostgreSQL cannot store (a NUL, a lone
 * UTF-16 surrogate) gets past it, in a path or query parameter or anywhere in the body, keys
 * included. A part with such a string is not handed to its schema, so each problem is said once.
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
      const pathParameters = checkPart('path', event.pathParameters ?? {}, schemas.pathParameters, reasons);
      const queryStringParameters = checkPart(
        'query',
        event.queryStringParameters ?? {},
        schemas.queryStringParameters,
        reasons,
      );
      // Only a route that takes a body reads one, so a route without stays usable with no Content-Type.
      const body =
        schemas.body === undefined
          ? undefined
          : checkPart('body', readJsonBody(event), schemas.body, reasons);
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

/**
 * One part of the request (`path`, `query`, `body`): first the strings in it PostgreSQL could not
 * store, then, only if there are none, its schema. Returns the parsed part; adds to `reasons`.
 */
function checkPart(
  location: string,
  value: unknown,
  schema: z.ZodType | undefined,
  reasons: string[],
): unknown {
  const unstorable = unstorableStringsIn(location, value);
  if (unstorable.length > 0) {
    reasons.push(...unstorable);
    return undefined;
  }
  if (schema === undefined) {
    return undefined;
  }
  const result = schema.safeParse(value);
  if (!result.success) {
    reasons.push(...describeIssues(location, result.error.issues));
    return undefined;
  }
  return result.data;
}

/** One reason per string in `value` that PostgreSQL could not store, each saying where it is. */
function unstorableStringsIn(location: string, value: unknown): string[] {
  const { found, total } = findUnstorableStrings(value);
  const reasons = found.map(({ path, key, reason }) => {
    const where = describeLocation(location, path);
    return key === undefined ? `${where}: ${reason}` : `${where}: the key ${quoteShortened(key)} ${reason}`;
  });
  if (total > found.length) {
    reasons.push(`${location}: ${total - found.length} more strings like these`);
  }
  return reasons;
}

/** `body.input.items.2`: where in the request a problem is. */
function describeLocation(location: string, path: readonly PropertyKey[]): string {
  return [location, ...path.map((segment) => quoteShortened(String(segment), false))].join('.');
}

/** A client's string, cut short enough to quote in an error: one huge key must not make a huge reply. */
function quoteShortened(text: string, quoted = true): string {
  const short = text.length > 64 ? `${text.slice(0, 64)}…` : text;
  // JSON.stringify escapes what would garble a message: control characters and lone surrogates.
  return quoted ? JSON.stringify(short) : short;
}

function describeIssues(location: string, issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((issue) => `${describeLocation(location, issue.path)}: ${issue.message}`);
}
