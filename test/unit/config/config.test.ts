import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../shared/config/config.js';
import { ConfigurationError } from '../../../shared/errors.js';

describe('loadConfig', () => {
  it('names a missing DATABASE_URL and what it should be', () => {
    expect(() => loadConfig({})).toThrow(ConfigurationError);
    expect(() => loadConfig({})).toThrow(/DATABASE_URL is required/);
  });

  it('reports every invalid variable at once', () => {
    let message = '';
    try {
      loadConfig({ DATABASE_URL: 'mysql://x', TENANTFLOW_STAGE: 'Prod!', TENANTFLOW_ADMIN_TOKEN: 'short' });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/DATABASE_URL/);
    expect(message).toMatch(/TENANTFLOW_STAGE/);
    expect(message).toMatch(/TENANTFLOW_ADMIN_TOKEN/);
  });

  it('uses local defaults under TENANTFLOW_LOCAL=1 and never trusts IAM identities there', () => {
    const config = loadConfig({ DATABASE_URL: 'postgres://localhost/db', TENANTFLOW_LOCAL: '1' });
    expect(config).toMatchObject({
      local: true,
      stage: 'local',
      trustIamAdminIdentity: false,
      dbPoolMax: 10,
    });
  });

  it('uses Lambda defaults otherwise: IAM admins, a pool of two', () => {
    const config = loadConfig({ DATABASE_URL: 'postgresql://proxy.example/db', TENANTFLOW_STAGE: 'prod' });
    expect(config).toMatchObject({ local: false, stage: 'prod', trustIamAdminIdentity: true, dbPoolMax: 2 });
  });

  it('has recovery defaults a scheduled job can live with, each overridable', () => {
    const defaults = loadConfig({ DATABASE_URL: 'postgres://localhost/db' });
    expect(defaults.recovery).toEqual({
      staleAfterSeconds: 300,
      heartbeatStaleAfterSeconds: 60,
      maxAttempts: 3,
      concurrency: 4,
      intervalSeconds: 60,
      retentionDays: 30,
    });
    expect(defaults.provisioningLeaseSeconds).toBe(120);
    const tuned = loadConfig({
      DATABASE_URL: 'postgres://localhost/db',
      TENANTFLOW_RECOVERY_STALE_SECONDS: '0',
      TENANTFLOW_RECOVERY_MAX_ATTEMPTS: '5',
      TENANTFLOW_PROVISIONING_LEASE_SECONDS: '10',
    });
    expect(tuned.recovery).toMatchObject({ staleAfterSeconds: 0, maxAttempts: 5 });
    expect(tuned.provisioningLeaseSeconds).toBe(10);
    expect(() =>
      loadConfig({ DATABASE_URL: 'postgres://localhost/db', TENANTFLOW_RECOVERY_MAX_ATTEMPTS: '0' }),
    ).toThrow(/TENANTFLOW_RECOVERY_MAX_ATTEMPTS/);
  });

  it('refuses failpoints outside the local platform: they make the process exit on purpose', () => {
    expect(() =>
      loadConfig({ DATABASE_URL: 'postgres://localhost/db', TENANTFLOW_FAILPOINTS: 'after-insert' }),
    ).toThrow(/TENANTFLOW_FAILPOINTS .*local platform only/);
    expect(
      loadConfig({
        DATABASE_URL: 'postgres://localhost/db',
        TENANTFLOW_LOCAL: '1',
        TENANTFLOW_FAILPOINTS: '',
      }).failpoints,
    ).toBeUndefined();
  });
});
