import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeSubnetsCommand, EC2Client } from '@aws-sdk/client-ec2';
import {
  CreateDBProxyCommand,
  DescribeDBProxiesCommand,
  RDSClient,
  type UserAuthConfig,
} from '@aws-sdk/client-rds';
import { loadConfig } from '@tenantflow/shared/config/config';
import { PlatformLeases } from '@tenantflow/shared/db/platform-leases';
import { RdsProxyTenantLogins } from '@tenantflow/shared/provisioning/rds-proxy-tenant-logins';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createPlatformServices, type PlatformServices } from '../../../local/platform-services.js';
import { createTestDatabase } from '../../support/database.js';
import { MOTO_INSTALL_HINT } from '../../support/moto-setup.js';
import { prepareTestDatabase } from '../../support/platform.js';
import { dropTenantRoles, tenantIdSuffix } from '../../support/tenants.js';

const motoEndpoint = inject('motoEndpoint');
const motoMissing = motoEndpoint === '';
const REGION = 'eu-west-1';
const ACCOUNT = '123456789012';
const STAGE = 'lifecycleproxy';

const PLATFORM_ENTRY: UserAuthConfig = {
  AuthScheme: 'SECRETS',
  SecretArn: `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:tenantflow/${STAGE}/platform-AbCdEf`,
  IAMAuth: 'DISABLED',
  ClientPasswordAuthType: 'POSTGRES_SCRAM_SHA_256',
};

describe.skipIf(motoMissing)(
  motoMissing
    ? `Onboarding through RDS Proxy (skipped: moto_server is not on the PATH; install it with ${MOTO_INSTALL_HINT})`
    : 'Onboarding and offboarding through RDS Proxy: the state machine polls the proxy, no Lambda waits on it',
  () => {
    const aws = {
      endpoint: motoEndpoint,
      region: REGION,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    };
    const suffix = tenantIdSuffix();
    let rds: RDSClient;
    let database: Awaited<ReturnType<typeof createTestDatabase>>;
    let platformUrl: string;
    let platform: PlatformServices;
    let proxy: string;
    let secretsDir: string;
    const describes: string[] = [];

    beforeAll(async () => {
      rds = new RDSClient(aws);
      // Every DescribeDBProxies status the platform saw, in order: the proof it polled.
      rds.middlewareStack.add(
        (next, context) => async (args) => {
          const result = await next(args);
          if (context.commandName === 'DescribeDBProxiesCommand') {
            const output = result.output as { DBProxies?: Array<{ Status?: string }> };
            describes.push(output.DBProxies?.[0]?.Status ?? 'none');
          }
          return result;
        },
        { step: 'initialize', name: 'recordProxyStatuses' },
      );
      const ec2 = new EC2Client(aws);
      const subnets = ((await ec2.send(new DescribeSubnetsCommand({}))).Subnets ?? [])
        .map((subnet) => subnet.SubnetId)
        .filter((id): id is string => id !== undefined)
        .slice(0, 2);
      ec2.destroy();
      proxy = `tenantflow-${randomBytes(4).toString('hex')}`;
      await rds.send(
        new CreateDBProxyCommand({
          DBProxyName: proxy,
          EngineFamily: 'POSTGRESQL',
          RoleArn: `arn:aws:iam::${ACCOUNT}:role/proxy`,
          VpcSubnetIds: subnets,
          RequireTLS: true,
          Auth: [PLATFORM_ENTRY],
        }),
      );
      database = await createTestDatabase('tf_lcproxy');
      ({ platformUrl } = await prepareTestDatabase(database.url, suffix));
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
        { rdsClient: rds, lifecycleWaitMs: 0 },
      );
    });

    afterAll(async () => {
      await platform?.close();
      await database?.drop();
      await dropTenantRoles(inject('superuserUrl'), suffix);
      if (secretsDir !== undefined) {
        await rm(secretsDir, { recursive: true, force: true });
      }
      rds?.destroy();
    });

    async function authList(): Promise<UserAuthConfig[]> {
      const { DBProxies = [] } = await rds.send(new DescribeDBProxiesCommand({ DBProxyName: proxy }));
      return DBProxies[0]?.Auth ?? [];
    }

    it('activates the tenant only once the proxy is available again with its secret on the list, and offboarding takes it off', async () => {
      const tenantId = `acme_${suffix}`;
      describes.length = 0;
      const { tenant } = await platform.lifecycle.onboard({ tenantId, name: 'Acme' });
      expect(tenant.status).toBe('provisioning');
      await platform.lifecycleOrchestrator.drain();

      const secretRef = (await platform.registry.getCredentialRefs(tenantId))?.secretRef;
      expect((await platform.registry.get(tenantId))?.status).toBe('active');
      expect((await authList()).map((entry) => entry.SecretArn)).toEqual([
        PLATFORM_ENTRY.SecretArn,
        secretRef,
      ]);
      // The login step wrote the list, found the proxy `modifying` on the next look (after the
      // state machine's Wait), and only then, seeing it available with the entry, went on.
      const afterWrite = describes.slice(describes.indexOf('available') + 1);
      expect(afterWrite).toContain('modifying');
      expect(describes.at(-1)).toBe('available');

      await platform.registry.setStatus(tenantId, 'inactive', ['active']);
      await platform.lifecycle.offboard(tenantId);
      await platform.lifecycleOrchestrator.drain();
      expect(await platform.registry.get(tenantId)).toBeUndefined();
      expect(await authList()).toEqual([PLATFORM_ENTRY]);
    });

    it('answers "not yet" without waiting while another change holds the auth list, and while the proxy is modifying', async () => {
      const pool = new pg.Pool({ connectionString: platformUrl, max: 2 });
      pool.on('error', () => {});
      try {
        const leases = new PlatformLeases(pool);
        const logins = new RdsProxyTenantLogins({ client: rds, proxyName: proxy, leases, stage: STAGE });
        const arn = `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:tenantflow/${STAGE}/tenants/busy-AbCdEf`;

        const held = await leases.acquire(`rds-proxy-auth:${proxy}`, { durationMs: 60_000, waitMs: 0 });
        const started = performance.now();
        expect(await logins.tryAdmit('busy', arn)).toBe(false);
        expect(performance.now() - started).toBeLessThan(2_000);
        await leases.release(held);

        expect(await logins.tryAdmit('busy', arn)).toBe(false); // wrote it: the proxy is modifying now
        let looks = 1;
        while (!(await logins.tryAdmit('busy', arn)) && looks < 20) {
          looks += 1;
        }
        expect(looks).toBeLessThan(20);
        expect((await authList()).filter((entry) => entry.SecretArn === arn)).toHaveLength(1);
        expect(await logins.tryRevoke('busy', arn)).toBe(false);
        while (!(await logins.tryRevoke('busy', arn))) {
          // the next look sees it applied
        }
        expect((await authList()).some((entry) => entry.SecretArn === arn)).toBe(false);
      } finally {
        await pool.end();
      }
    });
  },
);
