import { describe, expect, it } from 'vitest';
import { formatJson, formatKeyValues, formatTable } from '../../../cli/src/format.js';

describe('formatTable', () => {
  it('pads each column to its widest cell, under a header row', () => {
    const table = formatTable(
      [
        { tenantId: 'acme', name: 'Acme Corp', status: 'active' },
        { tenantId: 'globex_international', name: 'Globex', status: 'provisioning' },
      ],
      { ID: 'tenantId', NAME: 'name', STATUS: 'status' },
    );

    expect(table).toBe(
      [
        'ID                    NAME       STATUS',
        'acme                  Acme Corp  active',
        'globex_international  Globex     provisioning',
      ].join('\n'),
    );
  });

  it('prints the header alone for no rows, and blanks for missing fields', () => {
    expect(formatTable([], { ID: 'tenantId', CREATED: 'createdAt' })).toBe('ID  CREATED');
    expect(formatTable([{ tenantId: 'a' }], { ID: 'tenantId', CREATED: 'createdAt' })).toBe('ID  CREATED\na');
  });
});

describe('formatKeyValues', () => {
  it('lines the values up, and prints objects as compact JSON', () => {
    const text = formatKeyValues({
      tenantId: 'acme',
      active: true,
      config: { limits: { a: 1 } },
      gone: undefined,
    });

    expect(text).toBe(['tenantId: acme', 'active:   true', 'config:   {"limits":{"a":1}}'].join('\n'));
  });
});

describe('formatJson', () => {
  it('prints the body as indented JSON', () => {
    expect(formatJson({ a: [1] })).toBe('{\n  "a": [\n    1\n  ]\n}');
  });
});
