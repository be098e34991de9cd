import { encodePageToken, pageTokenSchema } from '@tenantflow/shared/http';
import { tenantIdSchema } from '@tenantflow/shared/kernel/tenant-id.schema';
import { recoveryEventCursorSchema } from '@tenantflow/shared/recovery/recovery-history';
import { describe, expect, it } from 'vitest';

const NOT_OURS = 'is not a token this API returned';
const tenantToken = pageTokenSchema(tenantIdSchema);
const eventToken = pageTokenSchema(recoveryEventCursorSchema);

/** A token with any position in it, as a client could forge one. */
const forged = (after: unknown) => Buffer.from(JSON.stringify({ after })).toString('base64url');

/** The messages a schema refuses `token` with. */
function refusals(schema: typeof tenantToken | typeof eventToken, token: string): string[] {
  const result = schema.safeParse(token);
  return result.success ? [] : result.error.issues.map((issue) => issue.message);
}

describe('page tokens', () => {
  it('give back the position they were made from', () => {
    const token = encodePageToken('acme');

    expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(tenantToken.parse(token)).toBe('acme');
  });

  it('are the base64url JSON {"after": …} the executions list hands out', () => {
    expect(encodePageToken('acme')).toBe(forged('acme'));
  });

  it('are not made for the last page', () => {
    expect(encodePageToken(undefined)).toBeUndefined();
  });

  it('carry a recovery event cursor, microseconds and all', () => {
    const cursor = { occurredAt: '2025-06-02T09:15:04.211407Z', id: '42' };

    expect(eventToken.parse(encodePageToken(cursor))).toEqual(cursor);
  });

  it.each([
    ['garbage', 'garbage'],
    ['base64url of text that is not JSON', Buffer.from('not json').toString('base64url')],
    ['JSON without a position', Buffer.from('{"before":"acme"}').toString('base64url')],
    ['JSON that is not an object', Buffer.from('"acme"').toString('base64url')],
    ['a position that is no tenant id', forged('Bad Id')],
    ['a NUL for a position', forged('\u0000')],
    ['a number for a position', forged(42)],
    ['a token over 512 characters', forged('a'.repeat(600))],
  ])('refuse %s with one reason', (_case, token) => {
    expect(refusals(tenantToken, token)).toEqual([NOT_OURS]);
  });

  it.each([
    ['a time without microseconds', { occurredAt: '2025-06-02T09:15:04.211Z', id: '42' }],
    ['a day that does not exist', { occurredAt: '2025-02-30T09:15:04.211407Z', id: '42' }],
    ['a time with an offset', { occurredAt: '2025-06-02T09:15:04.211407+02:00', id: '42' }],
    ['id 0', { occurredAt: '2025-06-02T09:15:04.211407Z', id: '0' }],
    ['an id that is not a number', { occurredAt: '2025-06-02T09:15:04.211407Z', id: '4 OR 1=1' }],
    ['an id past bigint', { occurredAt: '2025-06-02T09:15:04.211407Z', id: '9'.repeat(20) }],
    ['a numeric id', { occurredAt: '2025-06-02T09:15:04.211407Z', id: 42 }],
    ['another field', { occurredAt: '2025-06-02T09:15:04.211407Z', id: '42', tenantId: 'acme' }],
    ['a tenant id', 'acme'],
  ])('refuse a recovery event cursor with %s', (_case, after) => {
    expect(refusals(eventToken, forged(after))).toEqual([NOT_OURS]);
  });
});
