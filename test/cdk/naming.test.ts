import { describe, expect, it } from 'vitest';
import { pascalCase } from '../../cdk/constructs/naming.js';

describe('pascalCase', () => {
  it('capitalises each run of letters and digits and drops what separates them', () => {
    expect(pascalCase('report_pipeline')).toBe('ReportPipeline');
    expect(pascalCase('tenant-isolation')).toBe('TenantIsolation');
    expect(pascalCase('default_4xx')).toBe('Default4xx');
    expect(pascalCase('__a__b__')).toBe('AB');
  });

  it('keeps the rest of each word as written', () => {
    expect(pascalCase('configurableWorkflow')).toBe('ConfigurableWorkflow');
    expect(pascalCase('ACCESS_DENIED')).toBe('ACCESSDENIED');
  });
});
