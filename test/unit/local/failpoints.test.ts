import { describe, expect, it } from 'vitest';
import { FAILPOINT_EXIT_CODE, failpointHooks, parseFailpoints } from '../../../local/failpoints.js';
import { ConfigurationError } from '../../../shared/errors.js';

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

describe('failpointHooks', () => {
  it('exits only where armed: the point, the name and the tenant must all match', () => {
    const hooks = failpointHooks(parseFailpoints('before-commit:merge@acme,before-finalize'), exit);
    const invocation = { tenantId: 'acme', executionId: 'e', taskId: 'merge' };
    expect(() => hooks.task('after-body', invocation)).not.toThrow();
    expect(() => hooks.task('before-commit', { ...invocation, taskId: 'prepare' })).not.toThrow();
    expect(() => hooks.task('before-commit', { ...invocation, tenantId: 'globex' })).not.toThrow();
    expect(() => hooks.task('before-commit', invocation)).toThrow(new Exited(FAILPOINT_EXIT_CODE));
    expect(() => hooks.beforeFinalize({ tenantId: 'anyone' })).toThrow(Exited);
    expect(() => hooks.afterInsert('after-insert', { tenantId: 'acme' })).not.toThrow();
  });

  it('arms provisioning steps by name', () => {
    const hooks = failpointHooks(parseFailpoints('after-provisioning-step:secret'), exit);
    expect(() => hooks.provisioningStep('role', 'acme')).not.toThrow();
    expect(() => hooks.provisioningStep('secret', 'acme')).toThrow(Exited);
  });
});
