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
});
