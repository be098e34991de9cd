import { checksumOf, defineTenantMigrations } from '@tenantflow/shared/db/migrations';
import { MigrationError, WorkflowDefinitionError } from '@tenantflow/shared/kernel/errors';
import { WorkflowRegistry } from '@tenantflow/shared/workflows/workflow-registry';
import { describe, expect, it } from 'vitest';

describe('defineTenantMigrations', () => {
  it('numbers each migration from its name, in order, checksummed, with a history table of its own', () => {
    // Act
    const set = defineTenantMigrations('orders', [
      { name: '0002_order_lines', sql: 'CREATE TABLE order_lines (id int)' },
      { name: '0001_orders', sql: 'CREATE TABLE orders (id int)' },
    ]);

    // Assert
    expect(set.name).toBe('orders');
    expect(set.historyTable).toBe('schema_migrations_orders');
    expect(set.migrations.map((migration) => [migration.version, migration.name])).toEqual([
      [1, '0001_orders'],
      [2, '0002_order_lines'],
    ]);
    expect(set.migrations[0]?.checksum).toBe(checksumOf('CREATE TABLE orders (id int)'));
  });

  it('refuses, naming every problem, a bad set name, a misnamed migration and two sharing a version', () => {
    // Act
    const attempt = () =>
      defineTenantMigrations('Orders-v2', [
        { name: '0001_orders', sql: 'SELECT 1' },
        { name: 'orders', sql: 'SELECT 1' },
        { name: '0001_again', sql: 'SELECT 1' },
      ]);

    // Assert
    expect(attempt).toThrow(MigrationError);
    expect(attempt).toThrow(/'Orders-v2' must be lowercase letters/);
    expect(attempt).toThrow(/'orders' is not named NNNN_description/);
    expect(attempt).toThrow(/'0001_orders' and '0001_again' share version 1/);
  });
});

describe('WorkflowRegistry tenant migrations', () => {
  const orders = defineTenantMigrations('orders', [{ name: '0001_orders', sql: 'SELECT 1' }]);
  const audit = defineTenantMigrations('audit', [{ name: '0001_audit', sql: 'SELECT 1' }]);

  it('keeps the sets in registration order, including those of another registry', () => {
    // Act
    const registry = new WorkflowRegistry([], { tenantMigrations: [orders] }).include(
      new WorkflowRegistry([], { tenantMigrations: [audit] }),
    );

    // Assert
    expect(registry.tenantMigrations().map((set) => set.name)).toEqual(['orders', 'audit']);
  });

  it('refuses two sets with one name: their histories would be one table', () => {
    // Act
    const attempt = () => new WorkflowRegistry([], { tenantMigrations: [orders, orders] });

    // Assert
    expect(attempt).toThrow(WorkflowDefinitionError);
  });
});
