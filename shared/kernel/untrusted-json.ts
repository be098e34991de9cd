/**
 * Checks for JSON that comes from outside, made before anything recursive or PostgreSQL sees it.
 *
 * `JSON.parse` copes with any nesting, but what comes after it does not: zod's `z.json()`,
 * `JSON.stringify` (size limits, the pg driver) and PostgreSQL's jsonb all recurse, so a body of
 * 100000 `[` overflows the stack and surfaces as a 500. And PostgreSQL cannot store a NUL (`\u0000`)
 * in text or jsonb, nor a lone UTF-16 surrogate in jsonb, so such strings fail there as a 500 too
 * (or, in a text column, are silently replaced). Both are the client's mistake, and these checks let
 * the API say so with a 400.
 */

/**
 * How many objects and arrays a request's JSON may open one inside the other (the outermost
 * counts as 1). Far beyond any real tenant input, far below what recursion in V8 or PostgreSQL
 * (`max_stack_depth`) runs out at.
 */
export const MAX_JSON_DEPTH = 64;

const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Whether JSON `text` nests objects and arrays more than `maxDepth` deep. A single pass over the
 * text that counts brackets outside strings, with no recursion and no parsing, so it is safe on
 * any input and stops at the first bracket too many. Malformed JSON is left for `JSON.parse` to
 * report.
 *
 * @example
 * ```ts
 * exceedsJsonDepth('{"a":[1]}', 2); // false
 * exceedsJsonDepth('[[["x"]]]', 2); // true
 * exceedsJsonDepth('["[[[["]', 1);  // false: brackets inside strings do not count
 * ```
 */
export function exceedsJsonDepth(text: string, maxDepth: number = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let index = 0; index < text.length; index++) {
    const char = text.charCodeAt(index);
    if (inString) {
      if (char === BACKSLASH) {
        index++; // whatever is escaped, it neither ends the string nor counts
      } else if (char === QUOTE) {
        inString = false;
      }
    } else if (char === QUOTE) {
      inString = true;
    } else if (char === OPEN_BRACE || char === OPEN_BRACKET) {
      depth++;
      if (depth > maxDepth) {
        return true;
      }
    } else if (char === CLOSE_BRACE || char === CLOSE_BRACKET) {
      depth--;
    }
  }
  return false;
}

/** With the `u` flag a well-formed pair is one code point, so only an unpaired surrogate matches. */
const LONE_SURROGATE = /\p{Surrogate}/u;

/**
 * Why PostgreSQL could not store `text` as text or inside jsonb, or `undefined` when it can.
 *
 * @example
 * ```ts
 * unstorableTextReason('plain');    // undefined
 * unstorableTextReason('a\u0000b'); // 'contains a NUL character (\u0000) at index 1, ...'
 * ```
 */
export function unstorableTextReason(text: string): string | undefined {
  const nul = text.indexOf('\u0000');
  if (nul >= 0) {
    return `contains a NUL character (\\u0000) at index ${nul}, which PostgreSQL cannot store in text or JSON`;
  }
  const surrogate = LONE_SURROGATE.exec(text);
  if (surrogate !== null) {
    const escaped = `\\u${surrogate[0].charCodeAt(0).toString(16)}`;
    return `contains an unpaired UTF-16 surrogate (${escaped}) at index ${surrogate.index}, which is not valid Unicode and PostgreSQL cannot store`;
  }
  return undefined;
}

export interface UnstorableString {
  /** Where the string is: keys and array indexes from the root, e.g. `['metadata', 'tags', 2]`. */
  readonly path: readonly (string | number)[];
  /** The offending string is a key of the object at `path`, not a value. */
  readonly key?: string;
  readonly reason: string;
}

/** An object or array being walked: where it is, and which of its entries comes next. */
interface OpenContainer {
  /** Its key or index in the container around it; `undefined` for the root. */
  readonly segment: string | number | undefined;
  readonly items: readonly unknown[] | Readonly<Record<string, unknown>>;
  /** An object's own keys; `undefined` for an array. */
  readonly keys: readonly string[] | undefined;
  next: number;
}

/**
 * Every string in a parsed JSON value, key or value, that PostgreSQL could not store: the first
 * `limit` of them, and how many there are in all. A bad key is reported once and the value under it
 * is not searched.
 *
 * Walks with an explicit stack of the containers it is inside, not recursion, so a deep value
 * cannot overflow it, and memory grows with the depth only, not with the size of the body.
 *
 * @example
 * ```ts
 * findUnstorableStrings({ note: 'a\u0000' }).found; // [{ path: ['note'], reason: 'contains a NUL ...' }]
 * ```
 */
export function findUnstorableStrings(
  root: unknown,
  limit = 10,
): { found: UnstorableString[]; total: number } {
  const found: UnstorableString[] = [];
  let total = 0;
  const open: OpenContainer[] = [];
  const pathHere = () => open.flatMap(({ segment }) => (segment === undefined ? [] : [segment]));
  const report = (problem: UnstorableString) => {
    total++;
    if (found.length < limit) {
      found.push(problem);
    }
  };
  const visit = (value: unknown, segment: string | number | undefined) => {
    if (typeof value === 'string') {
      const reason = unstorableTextReason(value);
      if (reason !== undefined) {
        report({ path: segment === undefined ? pathHere() : [...pathHere(), segment], reason });
      }
    } else if (Array.isArray(value)) {
      open.push({ segment, items: value, keys: undefined, next: 0 });
    } else if (typeof value === 'object' && value !== null) {
      open.push({ segment, items: value as Record<string, unknown>, keys: Object.keys(value), next: 0 });
    }
  };

  visit(root, undefined);
  for (let current = open.at(-1); current !== undefined; current = open.at(-1)) {
    const { items, keys } = current;
    const index = current.next++;
    if (keys === undefined) {
      const array = items as readonly unknown[];
      if (index < array.length) {
        visit(array[index], index);
      } else {
        open.pop();
      }
      continue;
    }
    const key = keys[index];
    if (key === undefined) {
      open.pop();
      continue;
    }
    const badKey = unstorableTextReason(key);
    if (badKey === undefined) {
      visit((items as Readonly<Record<string, unknown>>)[key], key);
    } else {
      report({ path: pathHere(), key, reason: badKey });
    }
  }
  return { found, total };
}
