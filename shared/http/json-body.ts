import type { APIGatewayProxyEvent } from 'aws-lambda';
import { UnsupportedMediaTypeError, ValidationError } from '../kernel/errors.js';
import { exceedsJsonDepth, MAX_JSON_DEPTH } from '../kernel/untrusted-json.js';
import { getHeader } from './responses.js';

/** The one media type a JSON route reads, optionally with `; charset=utf-8`. */
export const JSON_MEDIA_TYPE = 'application/json';

/**
 * The JSON body of a request, parsed, for a route that takes one. Each way a body can be wrong gets
 * its own answer, checked before anything recursive touches it:
 *
 * - empty: 400, a JSON body is required;
 * - not sent as `application/json` (no Content-Type, `text/plain`, a form, `application/jsonp`...):
 *   415, since API Gateway validates only `application/json` bodies against the route's model and
 *   passes any other media type through unchecked;
 * - base64-encoded bytes that are not UTF-8: 400;
 * - nested deeper than {@link MAX_JSON_DEPTH}: 400, found by a scan of the text, before `JSON.parse`;
 * - not JSON: 400 with the parser's reason.
 *
 * @example
 * ```ts
 * const body = readJsonBody(event); // unknown: validate it with a schema next
 * ```
 */
export function readJsonBody(event: APIGatewayProxyEvent): unknown {
  if (event.body === null || event.body === undefined || event.body.length === 0) {
    throw new ValidationError('Invalid request', ['body: a JSON body is required']);
  }
  requireJsonContentType(getHeader(event.headers, 'content-type'));
  const text = event.isBase64Encoded ? decodeUtf8(Buffer.from(event.body, 'base64')) : event.body;
  if (exceedsJsonDepth(text, MAX_JSON_DEPTH)) {
    throw new ValidationError('Request body is nested too deeply', [
      `body: objects and arrays are nested more than ${MAX_JSON_DEPTH} levels deep; the limit is ${MAX_JSON_DEPTH} levels`,
    ]);
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    const detail = cause instanceof Error ? cause.message : 'unparseable';
    throw new ValidationError('Request body is not valid JSON', [`body: ${detail}`], { cause });
  }
}

/**
 * Whether a Content-Type header says JSON in UTF-8: `application/json`, in any letter case, with no
 * parameter but `charset=utf-8`. JSON lookalikes (`application/jsonp`, `application/json-patch+json`,
 * `text/json`) are not JSON this API reads.
 *
 * @example
 * ```ts
 * isJsonContentType('application/json; charset=utf-8'); // true
 * isJsonContentType('application/jsonp');               // false
 * ```
 */
export function isJsonContentType(header: string | undefined): boolean {
  if (header === undefined) {
    return false;
  }
  const [mediaType = '', ...parameters] = header.split(';');
  if (mediaType.trim().toLowerCase() !== JSON_MEDIA_TYPE) {
    return false;
  }
  return parameters.every((parameter) => {
    if (parameter.trim().length === 0) {
      return true; // a stray `;`
    }
    const [name = '', value = ''] = parameter.split('=', 2).map((part) => part.trim().toLowerCase());
    return name === 'charset' && value.replace(/^"(.*)"$/, '$1') === 'utf-8';
  });
}

function requireJsonContentType(header: string | undefined): void {
  if (isJsonContentType(header)) {
    return;
  }
  const sent =
    header === undefined || header.trim().length === 0
      ? 'the request has no Content-Type header'
      : `not ${JSON.stringify(header.length > 100 ? `${header.slice(0, 100)}…` : header)}`;
  throw new UnsupportedMediaTypeError(
    `This route takes a JSON body: send it with "Content-Type: ${JSON_MEDIA_TYPE}" (optionally "; charset=utf-8"), ${sent}`,
  );
}

/** Decodes UTF-8 strictly: bytes that are not UTF-8 are the client's mistake, not U+FFFD to store. */
function decodeUtf8(bytes: Buffer): string {
  try {
    // ignoreBOM keeps a byte order mark, so JSON.parse refuses it as it does in a text body.
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch (cause) {
    throw new ValidationError(
      'Request body is not valid UTF-8',
      ['body: is not valid UTF-8; send the JSON encoded as UTF-8'],
      { cause },
    );
  }
}
