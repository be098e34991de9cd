import { adminTokenMatcher } from '@tenantflow/shared/http/admin-token';
import { describe, expect, it } from 'vitest';

describe('adminTokenMatcher', () => {
  it('accepts the configured token', () => {
    const isAdminToken = adminTokenMatcher('s3cret-admin-token');

    expect(isAdminToken('s3cret-admin-token')).toBe(true);
  });

  it.each([
    ['another token of the same length', 's3cret-admin-tokeN'],
    ['a prefix of the token', 's3cret'],
    ['the token with more after it', 's3cret-admin-token-and-more'],
    ['an empty credential', ''],
  ])('refuses %s', (_case, credential) => {
    const isAdminToken = adminTokenMatcher('s3cret-admin-token');

    expect(isAdminToken(credential)).toBe(false);
  });

  it('refuses every credential when no token is configured, the empty one included', () => {
    const isAdminToken = adminTokenMatcher(undefined);

    expect(['', 'undefined', 's3cret-admin-token'].map(isAdminToken)).toEqual([false, false, false]);
  });
});
