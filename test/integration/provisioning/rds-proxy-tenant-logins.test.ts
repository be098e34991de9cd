import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeSubnetsCommand, EC2Client } from '@aws-sdk/client-ec2';
import {
  CreateDBProxyCommand,
  DescribeDBProxiesCommand,
  ModifyDBProxyCommand,
  RDSClient,
  type UserAuthConfig,
} from '@aws-sdk/client-rds';
import { loadConfig } from '@tenantflow/shared/config/config';
import { PlatformLeases } from '@tenantflow/shared/db/platform-leases';
import { ConfigurationError } from '@tenantflow/shared/kernel/errors';
import { createLogger } from '@tenantflow/shared/logging/logger';
import {
  ProxyAuthListBusyError,
  ProxyAuthListFullError,
  RdsProxyTenantLogins,
} from '@tenantflow/shared/provisioning/rds-proxy-tenant-logins';
import { RecoveryStore } from '@tenantflow/shared/recovery';
import { createRecovery } from '@tenantflow/shared/runtime/recovery';
import { WorkflowRegistry } from '@tenantflow/shared/workflows/workflow-registry';
import type { Context } from 'aws-lambda';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createRecoverHandler } from '../../../functions/recovery/recover.js';
import { LocalOrchestrator } from '../../../local/local-orchestrator.js';
import { createPlatformServices, type PlatformServices } from '../../../local/platform-services.js';
import { createTestDatabase } from '../../support/database.js';
import { MOTO_INSTALL_HINT } from '../../support/moto-setup.js';
import { prepareTestDatabase } from '../../support/platform.js';
import { dropTenantRoles, tenantIdSuffix } from '../../support/tenants.js';

const motoEndpoint = inject('motoEndpoint');
const motoMissing = motoEndpoint === '';
const REGION = 'eu-west-1';
const ACCOUNT = '123456789012';
const STAGE = 'proxytest';

const unique = () => randomBytes(4).toString('hex');
const tenantSecretArn = (tenantId: string) =>
  `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:tenantflow/${STAGE}/tenants/${tenantId}-${randomBytes(3).toString('hex')}`;

/** The admin's and the platform's entries, as CDK's DatabaseProxy writes them: the template's list. */
const ADMIN_ENTRY: UserAuthConfig = {
  AuthScheme: 'SECRETS',
  SecretArn: `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:tenantflow/${STAGE}/admin-GhIjKl`,
  IAMAuth: 'DISABLED',
  ClientPasswordAuthType: 'POSTGRES_SCRAM_SHA_256',
};
const PLATFORM_ENTRY: UserAuthConfig = {
  AuthScheme: 'SECRETS',
  SecretArn: `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:tenantflow/${STAGE}/platform-AbCdEf`,
  IAMAuth: 'DISABLED',
  ClientPasswordAuthType: 'POSTGRES_SCRAM_SHA_256',
};
const TEMPLATE_ENTRIES: UserAuthConfig[] = [ADMIN_ENTRY, PLATFORM_ENTRY];

describe.skipIf(motoMissing)(
  motoMissing
    ? `RDS Proxy auth list (skipped: moto_server is not on the PATH; install it with ${MOTO_INSTALL_HINT})`
    : 'RDS Proxy auth list: tenant secrets added and removed by a serialized read-modify-write',
  () => {
    const aws = {
      endpoint: motoEndpoint,
      region: REGION,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    };
    let rds: RDSClient;
    let database: Awaited<ReturnType<typeof createTestDatabase>>;
    let subnets: string[];
    const pools: pg.Pool[] = [];
    const suffix = tenantIdSuffix();
    /** The platform role's login on the suite's database, as a deployment has it. */
    let platformUrl: string;
    /** One platform pool per simulated Lambda, as the platform role. */
    const newPool = () => {
      const pool = new pg.Pool({ connectionString: platformUrl, max: 2 });
      // The suite drops its database WITH (FORCE) once the pools have ended; a socket still closing
      // then reports the termination on the pool, which, like the platform's, must not crash the run.
      pool.on('error', () => {});
      pools.push(pool);
      return pool;
    };

    beforeAll(async () => {
      rds = new RDSClient(aws);
      const ec2 = new EC2Client(aws);
      subnets = ((await ec2.send(new DescribeSubnetsCommand({}))).Subnets ?? [])
        .map((subnet) => subnet.SubnetId)
        .filter((id): id is string => id !== undefined)
        .slice(0, 2);
      ec2.destroy();
      database = await createTestDatabase('tf_proxy');
      ({ platformUrl } = await prepareTestDatabase(database.url, suffix));
    });

    afterAll(async () => {
      await Promise.all(pools.map((pool) => pool.end()));
      await database?.drop();
      // Roles are cluster-wide; they can go once the database holding their objects is gone.
      await dropTenantRoles(inject('superuserUrl'), suffix);
      rds?.destroy();
    });

    /** A proxy of its own, holding the platform's secret only, as the DataStack creates it. */
    async function newProxy(): Promise<string> {
      const name = `tenantflow-${unique()}`;
      await rds.send(
        new CreateDBProxyCommand({
          DBProxyName: name,
          EngineFamily: 'POSTGRESQL',
          RoleArn: `arn:aws:iam::${ACCOUNT}:role/proxy`,
          VpcSubnetIds: subnets,
          RequireTLS: true,
          Auth: TEMPLATE_ENTRIES,
        }),
      );
      return name;
    }

    const logins = (
      proxyName: string,
      options: Partial<{ maxSecrets: number; waitMs: number; pollMs: number }> = {},
    ) =>
      new RdsProxyTenantLogins({
        client: rds,
        proxyName,
        leases: new PlatformLeases(newPool()),
        stage: STAGE,
        pollMs: 10,
        ...options,
      });

    async function authList(proxyName: string): Promise<UserAuthConfig[]> {
      const { DBProxies = [] } = await rds.send(new DescribeDBProxiesCommand({ DBProxyName: proxyName }));
      return DBProxies[0]?.Auth ?? [];
    }

    async function waitAvailable(proxyName: string): Promise<void> {
      for (let i = 0; i < 20; i++) {
        const { DBProxies = [] } = await rds.send(new DescribeDBProxiesCommand({ DBProxyName: proxyName }));
        if (DBProxies[0]?.Status === 'available') return;
      }
      throw new Error('proxy stayed busy');
    }

    it("adds a tenant's secret, keeps the admin's and the platform's entries exactly, and does nothing the second time", async () => {
      const proxy = await newProxy();
      const arn = tenantSecretArn('acme');
      await logins(proxy).admit('acme', arn);
      await logins(proxy).admit('acme', arn);

      const auth = await authList(proxy);
      expect(auth).toHaveLength(3);
      expect(auth.slice(0, 2)).toEqual(TEMPLATE_ENTRIES);
      expect(auth[2]).toEqual({
        AuthScheme: 'SECRETS',
        SecretArn: arn,
        IAMAuth: 'DISABLED',
        ClientPasswordAuthType: 'POSTGRES_SCRAM_SHA_256',
        Description: 'tenantflow tenant acme',
      });
    });

    it('loses no entry when 12 onboardings on 4 Lambdas change the list at once', async () => {
      const proxy = await newProxy();
      const lambdas = Array.from({ length: 4 }, () => logins(proxy, { waitMs: 30_000 }));
      const tenants = Array.from({ length: 12 }, (_, i) => ({
        id: `tenant_${i}`,
        arn: tenantSecretArn(`tenant_${i}`),
      }));

      // Without the lease, all but one of each round would read the same list, and the proxy
      // (modifying after the first write) would refuse the rest: errors or lost entries.
      await Promise.all(tenants.map((tenant, i) => lambdas[i % 4]?.admit(tenant.id, tenant.arn)));

      const arns = (await authList(proxy)).map((entry) => entry.SecretArn);
      expect(arns).toHaveLength(14);
      expect(new Set(arns)).toEqual(
        new Set([ADMIN_ENTRY.SecretArn, PLATFORM_ENTRY.SecretArn, ...tenants.map((tenant) => tenant.arn)]),
      );
    });

    it('refuses a new tenant once the list is full, before and during admit, with the way out', async () => {
      const proxy = await newProxy();
      const full = logins(proxy, { maxSecrets: 4 });
      const first = tenantSecretArn('first');
      await full.admit('first', first);
      await full.admit('second', tenantSecretArn('second'));

      await expect(full.assertRoomForNewTenant()).rejects.toThrow(ProxyAuthListFullError);
      const refusal = full.admit('third', tenantSecretArn('third'));
      await expect(refusal).rejects.toMatchObject({ code: 'PROXY_AUTH_LIST_FULL', statusCode: 409 });
      await expect(refusal).rejects.toThrow(
        /at most 4 secrets and already holds 4.*tenantDatabaseAccess=direct/,
      );
      // A tenant already on the list is still admitted (a resumed provisioning): nothing to add.
      await expect(full.admit('first', first)).resolves.toBeUndefined();
      expect(await authList(proxy)).toHaveLength(4);
    });

    it("revokes by reference, or by the tenant's secret name when the reference is lost; never the platform's", async () => {
      const proxy = await newProxy();
      const acme = tenantSecretArn('acme');
      const globex = tenantSecretArn('globex');
      await logins(proxy).admit('acme', acme);
      await logins(proxy).admit('globex', globex);

      await logins(proxy).revoke('acme', acme);
      await logins(proxy).revoke('globex', undefined);
      await logins(proxy).revoke('globex', undefined); // idempotent

      expect(await authList(proxy)).toEqual(TEMPLATE_ENTRIES);
    });

    it('reconciles after a stack update reset the list: missing tenants are added back, deleted ones removed', async () => {
      const proxy = await newProxy();
      const acme = tenantSecretArn('acme');
      const gone = tenantSecretArn('gone');
      await logins(proxy).admit('acme', acme);
      await logins(proxy).admit('gone', gone);
      // A CloudFormation update writes the template's list: the admin and platform secrets alone.
      await waitAvailable(proxy);
      await rds.send(new ModifyDBProxyCommand({ DBProxyName: proxy, Auth: TEMPLATE_ENTRIES }));
      await waitAvailable(proxy);
      await rds.send(
        new ModifyDBProxyCommand({
          DBProxyName: proxy,
          Auth: [...TEMPLATE_ENTRIES, { AuthScheme: 'SECRETS', SecretArn: gone, IAMAuth: 'DISABLED' }],
        }),
      );
      const globex = tenantSecretArn('globex');

      const registry = [
        { tenantId: 'acme', status: 'active' as const, secretRef: acme },
        { tenantId: 'globex', status: 'inactive' as const, secretRef: globex },
        // Its own provisioning run adds it; reconcile must neither add nor remove it.
        { tenantId: 'pending', status: 'provisioning' as const, secretRef: undefined },
      ];
      const result = await logins(proxy).reconcile(async () => registry);

      expect(result).toEqual({ added: ['acme', 'globex'], removed: ['gone'] });
      expect((await authList(proxy)).map((entry) => entry.SecretArn)).toEqual([
        ADMIN_ENTRY.SecretArn,
        PLATFORM_ENTRY.SecretArn,
        acme,
        globex,
      ]);
      expect(await logins(proxy).reconcile(async () => registry)).toEqual({ added: [], removed: [] });
    });

    it('gives up with a retryable conflict while the proxy stays busy being modified', async () => {
      const proxy = await newProxy();
      await logins(proxy).admit('acme', tenantSecretArn('acme')); // the proxy is now 'modifying'

      const impatient = logins(proxy, { waitMs: 1, pollMs: 1_000 });
      const refusal = impatient.admit('globex', tenantSecretArn('globex'));
      await expect(refusal).rejects.toThrow(ProxyAuthListBusyError);
      await expect(refusal).rejects.toMatchObject({ statusCode: 409 });
      await expect(refusal).rejects.toThrow(/is 'modifying', not available.*retry in a moment/);
    });

    it('names a proxy that does not exist as a configuration error', async () => {
      await expect(logins('tenantflow-missing').admit('acme', tenantSecretArn('acme'))).rejects.toThrow(
        ConfigurationError,
      );
    });

    describe('provisioning through the platform (TENANTFLOW_DB_PROXY_NAME)', () => {
      let platform: PlatformServices;
      let proxy: string;
      let secretsDir: string;

      beforeAll(async () => {
        proxy = await newProxy();
        secretsDir = await mkdtemp(join(tmpdir(), 'tenantflow-secrets-'));
        platform = await createPlatformServices(
          loadConfig({
            TENANTFLOW_LOCAL: '1',
            TENANTFLOW_STAGE: STAGE,
            DATABASE_URL: platformUrl,
            TENANTFLOW_ADMIN_DATABASE_URL: database.url,
            TENANTFLOW_SECRETS: 'local',
            TENANTFLOW_SECRETS_DIR: secretsDir,
            TENANTFLOW_DB_PROXY_NAME: proxy,
          }),
          { rdsClient: rds },
        );
      });

      afterAll(async () => {
        await platform?.close();
        await rm(secretsDir, { recursive: true, force: true });
      });

      it("adds the tenant's secret while provisioning and removes it while deprovisioning", async () => {
        const tenantId = `acme_${suffix}`;
        await platform.provisioning.provision({ tenantId, name: 'Acme' });
        const secretRef = (await platform.registry.getCredentialRefs(tenantId))?.secretRef;
        expect(secretRef).toBeDefined();
        expect((await authList(proxy)).map((entry) => entry.SecretArn)).toEqual([
          ADMIN_ENTRY.SecretArn,
          PLATFORM_ENTRY.SecretArn,
          secretRef,
        ]);
        expect(platform.tenantLogins.description).toBe(`rds-proxy:${proxy}`);

        await platform.registry.setStatus(tenantId, 'inactive', ['active']);
        await platform.provisioning.deprovision(tenantId);
        expect(await authList(proxy)).toEqual(TEMPLATE_ENTRIES);
      });

      it('a recovery pass puts back the tenants a stack update dropped from the list, and records it', async () => {
        const tenantId = `reset_${suffix}`;
        await platform.provisioning.provision({ tenantId, name: 'Reset' });
        const secretRef = (await platform.registry.getCredentialRefs(tenantId))?.secretRef;
        await waitAvailable(proxy);
        await rds.send(new ModifyDBProxyCommand({ DBProxyName: proxy, Auth: TEMPLATE_ENTRIES }));
        await waitAvailable(proxy);
        const recovery = createRecovery(platform.core, {
          provisioning: platform,
          lifecycle: platform.lifecycle,
          orchestrator: new LocalOrchestrator({ definitions: {}, lambdas: {} }),
          workflows: new WorkflowRegistry(),
          logger: createLogger('proxy-test'),
        });

        const summary = await recovery.run();

        expect(summary.findings.login_missing).toBe(1);
        expect(summary.actions.admit_login).toBe(1);
        expect((await authList(proxy)).map((entry) => entry.SecretArn)).toEqual([
          ADMIN_ENTRY.SecretArn,
          PLATFORM_ENTRY.SecretArn,
          secretRef,
        ]);
        const [event] = await new RecoveryStore(platform.pool).eventsFor(tenantId);
        expect(event).toMatchObject({ finding: 'login_missing', action: 'admit_login', outcome: 'done' });
        // Nothing left to do on the next pass.
        await waitAvailable(proxy);
        expect((await recovery.run()).findings.login_missing).toBe(0);
      });

      it("the deployment's reconcile-only run (an empty event) restores a reset list, records it, and scans no tenant", async () => {
        // Prepare: a provisioned tenant, then a stack update that writes the template's list.
        const tenantId = `deploy_${suffix}`;
        await waitAvailable(proxy);
        await platform.provisioning.provision({ tenantId, name: 'Deploy' });
        const secretRef = (await platform.registry.getCredentialRefs(tenantId))?.secretRef;
        const before = (await authList(proxy)).map((entry) => entry.SecretArn);
        expect(before).toContain(secretRef);
        await waitAvailable(proxy);
        await rds.send(new ModifyDBProxyCommand({ DBProxyName: proxy, Auth: TEMPLATE_ENTRIES }));
        await waitAvailable(proxy);
        const logger = createLogger('proxy-test');
        const handler = createRecoverHandler({
          logger,
          recovery: createRecovery(platform.core, {
            provisioning: platform,
            lifecycle: platform.lifecycle,
            orchestrator: new LocalOrchestrator({ definitions: {}, lambdas: {} }),
            workflows: new WorkflowRegistry(),
            logger,
          }),
        });

        // Act: as the CDK trigger invokes it, with no payload.
        const summary = await handler({}, { getRemainingTimeInMillis: () => 300_000 } as Context);

        // Assert: every tenant the list lost is back, and only the logins were looked at.
        expect(summary).toMatchObject({ scope: 'logins', tenantsScanned: 0, executionsExamined: 0 });
        expect(summary.findings.login_missing).toBe(before.length - TEMPLATE_ENTRIES.length);
        expect(summary.actions.admit_login).toBe(summary.findings.login_missing);
        expect((await authList(proxy)).map((entry) => entry.SecretArn).sort()).toEqual([...before].sort());
        const events = await new RecoveryStore(platform.pool).eventsFor(tenantId);
        expect(events.find((event) => event.runId === summary.runId)).toMatchObject({
          finding: 'login_missing',
          action: 'admit_login',
          outcome: 'done',
        });
        const { rows } = await platform.pool.query<{ complete: boolean | null; scope: string }>(
          `SELECT complete, summary->>'scope' AS scope FROM tenantflow.recovery_runs
            WHERE run_id = $1 AND finished_at IS NOT NULL`,
          [summary.runId],
        );
        expect(rows).toEqual([{ complete: null, scope: 'logins' }]);
      });

      it('refuses a tenant the full list could not admit, leaving nothing behind', async () => {
        await waitAvailable(proxy);
        const fillers = Array.from({ length: 198 }, (_, i) => ({
          AuthScheme: 'SECRETS' as const,
          SecretArn: tenantSecretArn(`filler_${i}`),
          IAMAuth: 'DISABLED' as const,
        }));
        await rds.send(
          new ModifyDBProxyCommand({ DBProxyName: proxy, Auth: [...TEMPLATE_ENTRIES, ...fillers] }),
        );
        await waitAvailable(proxy);
        const tenantId = `late_${suffix}`;

        await expect(platform.provisioning.provision({ tenantId, name: 'Late' })).rejects.toMatchObject({
          code: 'PROXY_AUTH_LIST_FULL',
          statusCode: 409,
        });
        expect(await platform.registry.get(tenantId)).toBeUndefined();
        expect(await platform.secrets.get(tenantId)).toBeUndefined();
      });
    });
  },
);
