import { ConfigurationError } from '@tenantflow/shared/kernel/errors';
import { describe, expect, it } from 'vitest';
import { exitingFailpoints, FAILPOINT_EXIT_CODE, parseFailpoints } from '../../../local/failpoints.js';

/** An exit that throws instead, so a tripped failpoint is observable without ending the test run. */
class Exited extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}
const exit = (code: number): never => {
  throw new Exited(code);
};

describe('parseFailpoints', () => {
  it('reads points with an optional name and tenant', () => {
    expect(parseFailpoints('after-insert, after-body:merge@acme ,after-provisioning-step:role')).toEqual([
      { point: 'after-insert', name: undefined, tenantId: undefined },
      { point: 'after-body', name: 'merge', tenantId: 'acme' },
      { point: 'after-provisioning-step', name: 'role', tenantId: undefined },
    ]);
    expect(parseFailpoints(undefined)).toEqual([]);
    expect(parseFailpoints('  ')).toEqual([]);
  });

  it('refuses what it cannot honour, saying what would be valid', () => {
    expect(() => parseFailpoints('after-lunch')).toThrow(ConfigurationError);
    expect(() => parseFailpoints('after-lunch')).toThrow(/after-insert, after-body/);
    expect(() => parseFailpoints('after-provisioning-step:coffee')).toThrow(/not a provisioning step/);
    expect(() => parseFailpoints('after-insert:merge')).toThrow(/takes no name/);
    expect(() => parseFailpoints('after-body@Not-A-Tenant')).toThrow(/is not <point>/);
  });
});

describe('exitingFailpoints', () => {
  it('exits only where armed: the point, the name and the tenant must all match', () => {
    const failpoints = exitingFailpoints(parseFailpoints('before-commit:merge@acme,before-finalize'), exit);
    const site = { tenantId: 'acme', name: 'merge' };
    expect(() => failpoints?.reach('after-body', site)).not.toThrow();
    expect(() => failpoints?.reach('before-commit', { ...site, name: 'prepare' })).not.toThrow();
    expect(() => failpoints?.reach('before-commit', { ...site, tenantId: 'globex' })).not.toThrow();
    expect(() => failpoints?.reach('before-commit', site)).toThrow(new Exited(FAILPOINT_EXIT_CODE));
    expect(() => failpoints?.reach('before-finalize', { tenantId: 'anyone' })).toThrow(Exited);
    expect(() => failpoints?.reach('after-insert', { tenantId: 'acme' })).not.toThrow();
  });

  it('arms provisioning steps by name', () => {
    const failpoints = exitingFailpoints(parseFailpoints('after-provisioning-step:secret'), exit);
    expect(() =>
      failpoints?.reach('after-provisioning-step', { tenantId: 'acme', name: 'role' }),
    ).not.toThrow();
    expect(() => failpoints?.reach('after-provisioning-step', { tenantId: 'acme', name: 'secret' })).toThrow(
      Exited,
    );
  });

  it('is absent when nothing is armed, so the services make no calls at all', () => {
    expect(exitingFailpoints(parseFailpoints(undefined), exit)).toBeUndefined();
  });
});
