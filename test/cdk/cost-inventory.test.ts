import { readFileSync } from 'node:fs';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { addTenantflowStacks } from '../../cdk/tenantflow-app.js';

/**
 * The billable resources of a stage, counted in its synthesized templates, against the inventory
 * table that docs/deploy.md prices ("What it costs"). A change to the stacks that adds or removes
 * something billed fails here until the table (and the prices under it) say so.
 */

/** The configurations the table has a column for, by the column's heading. */
const CONFIGURATIONS: Readonly<Record<string, Readonly<Record<string, unknown>>>> = {
  dev: { stage: 'dev' },
  prod: { stage: 'prod' },
  'dev, direct': { stage: 'dev', tenantDatabaseAccess: 'direct' },
  'dev, nat-one': { stage: 'dev', egress: 'nat-one' },
  'dev, nat-per-az': { stage: 'dev', egress: 'nat-per-az' },
};

/** One row of the table: its first cell, and how to count it in a configuration's templates. */
const ROWS: readonly { readonly label: string; readonly count: (templates: Templates) => string }[] = [
  {
    label: 'Interface VPC endpoints × AZs',
    count: ({ data }) => {
      const endpoints = resources(data, 'AWS::EC2::VPCEndpoint').filter(
        (endpoint) => endpoint.Properties?.VpcEndpointType === 'Interface',
      );
      const azs = new Set(endpoints.map((endpoint) => subnetCount(endpoint)));
      if (azs.size > 1) {
        throw new Error('Interface endpoints in different numbers of AZs: count them one by one');
      }
      return `${endpoints.length} × ${[...azs][0] ?? 0}`;
    },
  },
  { label: 'RDS Proxy', count: ({ data }) => String(resources(data, 'AWS::RDS::DBProxy').length) },
  {
    label: 'Aurora Serverless v2 instances (min–max ACU each)',
    count: ({ data }) => {
      const [cluster] = resources(data, 'AWS::RDS::DBCluster');
      const scaling = cluster?.Properties?.ServerlessV2ScalingConfiguration as
        | { MinCapacity: number; MaxCapacity: number }
        | undefined;
      const instances = resources(data, 'AWS::RDS::DBInstance').length;
      return `${instances} (${scaling?.MinCapacity}–${scaling?.MaxCapacity})`;
    },
  },
  { label: 'NAT gateways', count: ({ data }) => String(resources(data, 'AWS::EC2::NatGateway').length) },
  { label: 'Elastic IPs', count: ({ data }) => String(resources(data, 'AWS::EC2::EIP').length) },
  {
    label: 'Secrets in the stacks (tenants’ come on top)',
    count: ({ data, platform }) =>
      String(
        resources(data, 'AWS::SecretsManager::Secret').length +
          resources(platform, 'AWS::SecretsManager::Secret').length,
      ),
  },
  {
    label: 'Log groups in the stacks',
    count: ({ data, platform }) =>
      String(
        resources(data, 'AWS::Logs::LogGroup').length + resources(platform, 'AWS::Logs::LogGroup').length,
      ),
  },
];

interface Templates {
  readonly data: Template;
  readonly platform: Template;
}

type Resource = { readonly Type: string; readonly Properties?: Record<string, unknown> };

function resources(template: Template, type: string): Resource[] {
  return Object.values(template.findResources(type)) as Resource[];
}

function subnetCount(endpoint: Resource): number {
  const subnets = endpoint.Properties?.SubnetIds;
  return Array.isArray(subnets) ? subnets.length : 0;
}

/** The stage's two templates, synthesized without bundling (the counts do not depend on the code). */
function synthesize(context: Readonly<Record<string, unknown>>): Templates {
  const app = new App({ context: { ...context, 'aws:cdk:bundling-stacks': [] } });
  const { data, platform } = addTenantflowStacks(app);
  return { data: Template.fromStack(data), platform: Template.fromStack(platform) };
}

/** The inventory table of docs/deploy.md: the cells of each row, keyed by its first cell and column heading. */
function documentedInventory(): { columns: string[]; rows: Map<string, Map<string, string>> } {
  const doc = readFileSync(new URL('../../docs/deploy.md', import.meta.url), 'utf8');
  const start = doc.indexOf('<!-- cost-inventory:start -->');
  const end = doc.indexOf('<!-- cost-inventory:end -->');
  if (start < 0 || end < start) {
    throw new Error('docs/deploy.md has no cost inventory table between its markers');
  }
  const cells = (line: string) =>
    line
      .trim()
      .replace(/^\||\|$/g, '')
      .split('|')
      .map((cell) => cell.trim().replaceAll('`', ''));
  const lines = doc
    .slice(start, end)
    .split('\n')
    .filter((line) => line.trim().startsWith('|'));
  const [header = '', , ...body] = lines;
  const columns = cells(header).slice(1);
  const rows = new Map<string, Map<string, string>>();
  for (const line of body) {
    const [label = '', ...values] = cells(line);
    rows.set(label, new Map(columns.map((column, index) => [column, values[index] ?? ''])));
  }
  return { columns, rows };
}

describe('cost inventory', () => {
  const synthesized = new Map<string, Templates>();

  beforeAll(() => {
    for (const [column, context] of Object.entries(CONFIGURATIONS)) {
      synthesized.set(column, synthesize(context));
    }
  }, 120_000);

  it('has a column in docs/deploy.md for every configuration counted here', () => {
    expect(documentedInventory().columns).toEqual(Object.keys(CONFIGURATIONS));
  });

  it.each(ROWS.map((row) => [row.label, row] as const))(
    'docs/deploy.md counts the %s the templates have',
    (_label, row) => {
      // Prepare
      const documented = documentedInventory().rows.get(row.label);

      // Act
      const counted = Object.fromEntries(
        Object.keys(CONFIGURATIONS).map((column) => {
          const templates = synthesized.get(column);
          if (templates === undefined) {
            throw new Error(`No templates for ${column}`);
          }
          return [column, row.count(templates)];
        }),
      );

      // Assert
      expect(documented, `docs/deploy.md has no row '${row.label}'`).toBeDefined();
      expect(Object.fromEntries(documented ?? [])).toEqual(counted);
    },
  );
});
