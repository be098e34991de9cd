import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { LAMBDA_RDS_CA_BUNDLE } from '../../cdk/constructs/tenant-function.js';
import {
  buildPlatform,
  TEST_CLUSTER_ENDPOINT,
  TEST_PROXY_ENDPOINT,
  unacknowledgedNagFindings,
} from './platform-fixture.js';

type Json = Record<string, unknown>;

/** The tenantflow functions' environments, by function name, and every IAM action any role is granted. */
function inspect(template: Template): { env: Map<string, Json>; actions: string[] } {
  const env = new Map<string, Json>();
  for (const fn of Object.values(template.findResources('AWS::Lambda::Function'))) {
    const props = fn.Properties as { FunctionName?: string; Environment?: { Variables?: Json } };
    if (typeof props.FunctionName === 'string' && props.FunctionName.startsWith('tenantflow-qa-')) {
      env.set(props.FunctionName.slice('tenantflow-qa-'.length), props.Environment?.Variables ?? {});
    }
  }
  const actions = Object.values(template.findResources('AWS::IAM::Policy')).flatMap((policy) =>
    (policy.Properties.PolicyDocument.Statement as Array<{ Action: string | string[] }>).flatMap(
      (statement) => (Array.isArray(statement.Action) ? statement.Action : [statement.Action]),
    ),
  );
  return { env, actions };
}

describe('tenantDatabaseAccess: how tenant roles reach PostgreSQL', () => {
  let proxy: ReturnType<typeof inspect>;
  let direct: ReturnType<typeof inspect>;
  let directNag: unknown[];

  beforeAll(() => {
    proxy = inspect(Template.fromStack(buildPlatform({ skipBundling: true }).stack));
    const directPlatform = buildPlatform({ skipBundling: true, context: { tenantDatabaseAccess: 'direct' } });
    direct = inspect(Template.fromStack(directPlatform.stack));
    directNag = unacknowledgedNagFindings(directPlatform.stack);
  });

  /** The functions that provision tenants, and so write where tenant roles connect into their secrets. */
  const PROVISIONERS = ['provisioning-step', 'tenants-api'];
  /** The functions that read or change the proxy's auth list: the provisioners, and recovery, which puts logins back. */
  const AUTH_LIST_KEEPERS = [...PROVISIONERS, 'recovery'];

  it('proxy (default): tenant secrets name the proxy, and the provisioning functions keep its auth list', () => {
    expect([...proxy.env.keys()].sort()).toEqual([
      'authorizer',
      'executions-api',
      'finalize',
      'health',
      'migrate',
      'provisioning-step',
      'recovery',
      'run-task',
      'schedule-fire',
      'schedules-api',
      'tenants-api',
    ]);
    for (const [name, env] of proxy.env) {
      expect(env.TENANTFLOW_TENANT_DB_HOST, name).toBe(
        PROVISIONERS.includes(name) ? TEST_PROXY_ENDPOINT : undefined,
      );
      expect(env.TENANTFLOW_DB_PROXY_NAME, name).toBe(
        AUTH_LIST_KEEPERS.includes(name) ? 'tenantflow-qa' : undefined,
      );
      expect(env.NODE_EXTRA_CA_CERTS, name).toBeUndefined();
    }
    expect(proxy.actions).toContain('rds:ModifyDBProxy');
  });

  it('direct: tenant secrets name the writer, run-task trusts the RDS CA bundle to reach it, and nothing touches the proxy', () => {
    expect([...direct.env.keys()].sort()).toEqual([...proxy.env.keys()].sort());
    for (const [name, env] of direct.env) {
      // Platform traffic stays on the proxy; only tenant roles go to the writer.
      expect(env.TENANTFLOW_DATABASE_HOST, name).toBe(TEST_PROXY_ENDPOINT);
      expect(env.TENANTFLOW_TENANT_DB_HOST, name).toBe(
        PROVISIONERS.includes(name) ? TEST_CLUSTER_ENDPOINT : undefined,
      );
      expect(env.TENANTFLOW_TENANT_DB_PORT, name).toBe(PROVISIONERS.includes(name) ? '5432' : undefined);
      // Only run-task connects as a tenant role, so only it verifies the writer's certificate.
      expect(env.NODE_EXTRA_CA_CERTS, name).toBe(name === 'run-task' ? LAMBDA_RDS_CA_BUNDLE : undefined);
      expect(env.TENANTFLOW_DB_PROXY_NAME, name).toBeUndefined();
    }
    expect(direct.actions.filter((action) => action.startsWith('rds:'))).toEqual([]);
  });

  it('direct: cdk-nag has nothing to say either', () => {
    expect(directNag).toEqual([]);
  });
});
