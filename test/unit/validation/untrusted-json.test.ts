import { isJsonContentType } from '@tenantflow/shared/http/json-body';
import {
  exceedsJsonDepth,
  findUnstorableStrings,
  MAX_JSON_DEPTH,
  unstorableTextReason,
} from '@tenantflow/shared/kernel/untrusted-json';
import { describe, expect, it } from 'vitest';

describe('exceedsJsonDepth', () => {
  it.each([
    ['a scalar', '1', 0, false],
    ['one object', '{}', 1, false],
    ['an array in an object, at the limit', '{"a":[1]}', 2, false],
    ['an array in an object, over the limit', '{"a":[1]}', 1, true],
    ['siblings, which do not add up', '[[],[],{}]', 2, false],
    ['brackets inside a string', '["[[[[{{{{"]', 1, false],
    ['an escaped quote, which does not end the string', '["\\"[[[["]', 1, false],
    ['an escaped backslash, which does end it', '["\\\\",[[1]]]', 2, true],
  ])('%s', (_case, text, maxDepth, expected) => {
    expect(exceedsJsonDepth(text, maxDepth)).toBe(expected);
  });

  it(`defaults to MAX_JSON_DEPTH (${MAX_JSON_DEPTH})`, () => {
    expect(exceedsJsonDepth('['.repeat(MAX_JSON_DEPTH) + ']'.repeat(MAX_JSON_DEPTH))).toBe(false);
    expect(exceedsJsonDepth('['.repeat(MAX_JSON_DEPTH + 1))).toBe(true);
  });

  it('answers for 10 million opening brackets without overflowing the stack', () => {
    expect(exceedsJsonDepth('['.repeat(10_000_000))).toBe(true);
  });
});

describe('unstorableTextReason', () => {
  it.each([
    ['plain text', 'hello', undefined],
    ['an emoji (a surrogate pair)', 'a😀b', undefined],
    ['a NUL', 'ab\u0000', /^contains a NUL character \(\\u0000\) at index 2/],
    ['a lone high surrogate', 'a\ud800', /^contains an unpaired UTF-16 surrogate \(\\ud800\) at index 1/],
    ['a lone low surrogate', '\udfff', /^contains an unpaired UTF-16 surrogate \(\\udfff\) at index 0/],
  ])('%s', (_case, text, expected) => {
    const reason = unstorableTextReason(text);
    if (expected === undefined) {
      expect(reason).toBeUndefined();
    } else {
      expect(reason).toMatch(expected);
    }
  });
});

describe('findUnstorableStrings', () => {
  it('reports values and keys, in document order, with their paths', () => {
    const value = { a: ['ok', 'x\u0000'], 'b\ud800': { hidden: '\u0000' }, c: { d: '\udc00' } };

    const { found, total } = findUnstorableStrings(value);

    expect(total).toBe(3);
    expect(found).toEqual([
      { path: ['a', 1], reason: expect.stringContaining('NUL') },
      // A bad key is one problem: the value under it is not searched.
      { path: [], key: 'b\ud800', reason: expect.stringContaining('surrogate') },
      { path: ['c', 'd'], reason: expect.stringContaining('surrogate') },
    ]);
  });

  it('reports the first `limit` problems and counts the rest', () => {
    const { found, total } = findUnstorableStrings(
      Array.from({ length: 50 }, () => '\u0000'),
      3,
    );

    expect(found.map((problem) => problem.path)).toEqual([[0], [1], [2]]);
    expect(total).toBe(50);
  });

  it('finds nothing in storable JSON', () => {
    expect(findUnstorableStrings({ emoji: '😀', list: [1, null, true, 'é'] })).toEqual({
      found: [],
      total: 0,
    });
  });
});

describe('isJsonContentType', () => {
  it.each([
    ['application/json', true],
    ['application/json; charset=utf-8', true],
    ['APPLICATION/JSON ; Charset="UTF-8"', true],
    ['application/json;', true],
    [undefined, false],
    ['', false],
    ['text/plain', false],
    ['application/x-www-form-urlencoded', false],
    ['application/jsonp', false],
    ['application/json-seq', false],
    ['application/ld+json', false],
    ['text/json', false],
    ['application/json; charset=utf-16', false],
    ['application/json; boundary=x', false],
    ['application/json, text/plain', false],
  ])('%s → %s', (header, expected) => {
    expect(isJsonContentType(header)).toBe(expected);
  });
});
