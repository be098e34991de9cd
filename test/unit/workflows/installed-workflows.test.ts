import { describe, expect, it } from 'vitest';
import { installedWorkflows } from '../../../workflows/index.js';

describe('installedWorkflows', () => {
  it('registers the examples and their table when asked', () => {
    const registry = installedWorkflows({ examples: true });

    expect(registry.names()).toEqual(
      expect.arrayContaining(['tenant_isolation', 'configurable_processing', 'report_pipeline']),
    );
    expect(registry.tenantMigrations().map((set) => set.name)).toEqual(['examples']);
  });

  it('registers neither the examples nor their table otherwise', () => {
    const registry = installedWorkflows({ examples: false });

    expect(registry.names()).toEqual([]);
    expect(registry.tenantMigrations()).toEqual([]);
  });
});
