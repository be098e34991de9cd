import type { Server } from 'node:http';
import { join, resolve } from 'node:path';
import { loadConfig } from '@tenantflow/shared/config/config';
import { createLogger } from '@tenantflow/shared/logging/logger';
import { migrateFleet } from '@tenantflow/shared/provisioning/fleet-migrator';
import type { RecoverySummary } from '@tenantflow/shared/recovery';
import { createRecoveryHistory } from '@tenantflow/shared/runtime/recovery-history';
import { createSchedules } from '@tenantflow/shared/runtime/schedules';
import type { ScheduleService } from '@tenantflow/shared/schedules/schedule-service';
import type { ExecutionService } from '@tenantflow/shared/workflows/execution-service';
import type { WorkflowRegistry } from '@tenantflow/shared/workflows/workflow-registry';
import { createAuthorizerHandler } from '../functions/api/authorizer.js';
import { createExecutionsApi } from '../functions/api/executions.js';
import { createHealthApi } from '../functions/api/health.js';
import { API_ROUTES, type ApiFunctionName, GATEWAY_RESPONSES } from '../functions/api/routes.js';
import { createSchedulesApi } from '../functions/api/schedules.js';
import { createTenantsApi } from '../functions/api/tenants.js';
import { workflows as registeredWorkflows } from '../workflows/index.js';
import { createLocalApiServer, type ProxyHandler } from './api-gateway-adapter.js';
import { findFreePort, type RunningPostgres, startEmbeddedPostgres } from './embedded-postgres.js';
import { claimHome } from './local-database.js';
import type { LocalOrchestrator } from './local-orchestrator.js';
import { prepareLocalDatabase } from './local-roles.js';
import { createLocalRuntime, type LocalRuntime } from './local-runtime.js';
import { loadOrCreateLocalSecrets } from './local-state.js';
import type { LocalAdapters, PlatformServices } from './platform-services.js';

export { LOCAL_TARGETS } from './local-runtime.js';

/** On stop, executions in flight get this long to finish before the database goes away. */
const DRAIN_TIMEOUT_MS = 5_000;

export interface LocalPlatformOptions {
  /** Where local state lives (embedded PostgreSQL data, generated secrets). Default `./.tenantflow`. */
  readonly home?: string;
  /** HTTP port; 0 picks a free one. Default 3000. */
  readonly port?: number;
  readonly host?: string;
  /** Use this PostgreSQL instead of the embedded one: a superuser's URL, or an admin's with CREATEROLE. */
  readonly databaseUrl?: string;
  /** Admin bearer token; generated and kept under `home` when not given. */
  readonly adminToken?: string;
  /** Fixed port for the embedded PostgreSQL; a free one when not given. */
  readonly postgresPort?: number;
  readonly log?: (line: string) => void;
  /** Test seams: another SecretStore, failure injection. */
  readonly adapters?: LocalAdapters;
  /** The workflows to run; default the installation's (`workflows/index.ts`). */
  readonly workflows?: WorkflowRegistry;
  /** Retry waits in milliseconds instead of the definitions' seconds (tests and benchmarks). */
  readonly retryIntervalMs?: number;
}

export interface LocalPlatform {
  readonly url: string;
  readonly adminToken: string;
  readonly database: { readonly embedded: boolean; readonly description: string };
  readonly platform: PlatformServices;
  readonly orchestrator: LocalOrchestrator;
  readonly executions: ExecutionService;
  /** The tenants' schedules, fired by `platform.scheduleTrigger`. */
  readonly schedules: ScheduleService;
  /** The recovery pass run at start-up, before the server accepted requests. */
  readonly startupRecovery: RecoverySummary;
  /** Runs one recovery pass now (the timer runs them every `TENANTFLOW_RECOVERY_INTERVAL_SECONDS`). */
  recover(): Promise<RecoverySummary>;
  stop(): Promise<void>;
}

/**
 * The whole platform on one machine: a real PostgreSQL (embedded unless a URL is given), the
 * control schema migrated, and the API Gateway routes served over HTTP by the same middy handlers
 * the Lambdas run.
 *
 * @example
 * ```ts
 * const local = await startLocalPlatform({ port: 0 });
 * console.log(local.url, local.adminToken);
 * await local.stop();
 * ```
 */
export async function startLocalPlatform(options: LocalPlatformOptions = {}): Promise<LocalPlatform> {
  const log = options.log ?? (() => {});
  const home = resolve(options.home ?? '.tenantflow');
  const secrets = await loadOrCreateLocalSecrets(
    home,
    options.databaseUrl === undefined ? (options.postgresPort ?? (await findFreePort())) : undefined,
  );
  const adminToken = options.adminToken ?? secrets.adminToken;

  let postgres: RunningPostgres | undefined;
  let databaseUrl = options.databaseUrl;
  let releaseHome: () => Promise<void> = async () => {};
  if (databaseUrl === undefined) {
    releaseHome = await claimHome(home);
    const dataDir = join(home, 'pgdata');
    postgres = await startEmbeddedPostgres({
      dataDir,
      password: secrets.postgresPassword,
      persistent: true,
      port: options.postgresPort ?? secrets.postgresPort ?? (await findFreePort()),
      onLog: (line) => {
        if (/Stopped a PostgreSQL|FATAL|PANIC/.test(line)) {
          log(line);
        }
      },
    });
    databaseUrl = postgres.url('postgres');
  }

  let platform: PlatformServices | undefined;
  let runtime: LocalRuntime | undefined;
  let server: Server | undefined;
  let orchestrator: LocalOrchestrator | undefined;
  try {
    // Production's roles on the local database: the admin for DDL, the platform role for requests.
    const logins = await prepareLocalDatabase(databaseUrl, {
      admin: secrets.adminRolePassword,
      platform: secrets.platformRolePassword,
    });
    const config = loadConfig({
      ...process.env,
      TENANTFLOW_LOCAL: '1',
      DATABASE_URL: logins.platformUrl,
      TENANTFLOW_ADMIN_DATABASE_URL: logins.adminUrl,
      TENANTFLOW_ADMIN_TOKEN: adminToken,
      TENANTFLOW_SECRETS: 'local',
      TENANTFLOW_SECRETS_DIR: join(home, 'secrets'),
    });
    const workflows = options.workflows ?? registeredWorkflows;
    runtime = await createLocalRuntime({
      config,
      home,
      workflows,
      adapters: options.adapters,
      retryIntervalMs: options.retryIntervalMs,
    });
    const started = runtime.platform;
    platform = started;
    orchestrator = runtime.orchestrator;
    const { executions } = runtime;
    const scheduleLogger = createLogger('schedules');
    const { schedules } = createSchedules(started.core, {
      workflows,
      orchestrator: runtime.orchestrator,
      trigger: started.scheduleTrigger,
      logger: scheduleLogger,
    });
    await migrateTenantSchemas(started, log);
    // Before the server takes requests: nothing of this process is in flight yet, so every
    // execution the journal shows running belongs to a process that is gone, and a stale threshold
    // of 0 repairs the last crash now instead of after the usual wait.
    const startupRecovery = await runtime.recover({
      trigger: 'Local start-up',
      recovery: { staleAfterSeconds: 0 },
    });
    logRecovery(startupRecovery, log);
    const authorizer = createAuthorizerHandler({
      authorizer: started.authorizer,
      logger: createLogger('authorizer'),
    });
    const handlers: Record<ApiFunctionName, ProxyHandler> = {
      tenants: createTenantsApi({
        tenantAdmin: started.tenantAdmin,
        recoveryHistory: createRecoveryHistory(started.core),
        adminAuth: started.adminAuth,
        logger: createLogger('tenants-api'),
      }),
      executions: createExecutionsApi({ executions, workflows, logger: createLogger('executions-api') }),
      schedules: createSchedulesApi({ schedules, logger: createLogger('schedules-api') }),
      health: createHealthApi({ db: started.pool, stage: config.stage, logger: createLogger('health') }),
    };
    const crashLogger = createLogger('local-api');
    const listening = createLocalApiServer({
      routes: API_ROUTES.map((route) => ({
        method: route.method,
        resource: route.resource,
        functionName: route.function,
        handler: handlers[route.function],
        ...(route.authorization === 'tenant' ? { authorizer } : {}),
      })),
      gatewayResponses: GATEWAY_RESPONSES,
      stage: config.stage,
      onHandlerCrash: (error) => crashLogger.error('handler crashed', { error }),
    });
    server = listening;
    const host = options.host ?? '127.0.0.1';
    await new Promise<void>((resolveListen, rejectListen) => {
      listening.once('error', rejectListen);
      listening.listen(options.port ?? 3000, host, () => resolveListen());
    });
    const address = listening.address();
    const port = typeof address === 'object' && address !== null ? address.port : options.port;

    // The local EventBridge Scheduler: every schedule in the table armed again, then firing.
    started.scheduleTrigger.start((firing) => schedules.fire(firing));
    const resynced = await schedules.resync();
    if (resynced.put > 0 || resynced.failed > 0) {
      log(
        `schedules: ${resynced.put} loaded${resynced.failed > 0 ? `, ${resynced.failed} failed (see the logs)` : ''}`,
      );
    }
    const activeRuntime = runtime;
    const recoveryTimer = startRecoveryTimer(activeRuntime, config.recovery.intervalSeconds, log);
    let stopping: Promise<void> | undefined;
    return {
      url: `http://${host}:${port}`,
      adminToken,
      database: postgres
        ? {
            embedded: true,
            description: `embedded PostgreSQL on 127.0.0.1:${postgres.port}, data in ${join(home, 'pgdata')}`,
          }
        : { embedded: false, description: 'PostgreSQL from DATABASE_URL' },
      platform: started,
      orchestrator,
      executions,
      schedules,
      startupRecovery,
      recover: () => activeRuntime.recover({ trigger: 'Local on demand' }),
      stop: () => {
        stopping ??= recoveryTimer
          .stop()
          .then(() => started.scheduleTrigger.stop())
          .then(() => shutDown(listening, started, postgres, orchestrator))
          .finally(releaseHome);
        return stopping;
      },
    };
  } catch (error) {
    await shutDown(server, platform, postgres, orchestrator).catch(() => undefined);
    await releaseHome();
    throw error;
  }
}

async function shutDown(
  server: Server | undefined,
  platform: PlatformServices | undefined,
  postgres: RunningPostgres | undefined,
  orchestrator: LocalOrchestrator | undefined,
) {
  if (server?.listening) {
    server.closeAllConnections();
    await new Promise<void>((resolveClose) => server.close(() => resolveClose()));
  }
  if (orchestrator !== undefined) {
    // Executions still running after this are left as they are: recovery picks them up.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      orchestrator.drain(),
      new Promise<void>((resolveWait) => {
        timer = setTimeout(resolveWait, DRAIN_TIMEOUT_MS);
      }),
    ]);
    clearTimeout(timer);
  }
  await platform?.close();
  await postgres?.stop();
}

/**
 * The local stand-in for the EventBridge schedule: a pass every `intervalSeconds` (none when 0).
 * Passes never overlap here (they would be safe if they did), and stopping waits for the current one.
 */
function startRecoveryTimer(
  runtime: LocalRuntime,
  intervalSeconds: number,
  log: (line: string) => void,
): { stop(): Promise<void> } {
  if (intervalSeconds === 0) {
    return { stop: async () => {} };
  }
  const logger = createLogger('recovery');
  let current: Promise<void> | undefined;
  const timer = setInterval(() => {
    if (current !== undefined) {
      return;
    }
    current = runtime
      .recover({ trigger: 'Local schedule' })
      .then(
        (summary) => logRecovery(summary, log),
        (error: unknown) => logger.error('scheduled recovery pass failed', { error }),
      )
      .finally(() => {
        current = undefined;
      });
  }, intervalSeconds * 1000);
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      await current;
    },
  };
}

/** One line per pass that found something; quiet passes stay quiet. */
function logRecovery(summary: RecoverySummary, log: (line: string) => void): void {
  const found = Object.entries(summary.findings).filter(([, count]) => count > 0);
  if (found.length === 0) {
    return;
  }
  const acted = Object.entries(summary.actions).filter(([, count]) => count > 0);
  log(
    `recovery: ${found.map(([kind, count]) => `${count} ${kind}`).join(', ')} → ${
      acted.length === 0 ? 'nothing to do' : acted.map(([kind, count]) => `${count} ${kind}`).join(', ')
    }${summary.outcomes.failed > 0 ? `, ${summary.outcomes.failed} failed (see the logs)` : ''}`,
  );
}

/**
 * Brings every tenant schema to the current migration, so code that expects a new column (the
 * recovery claim, say) never meets an old schema after an upgrade. Quiet when all are current.
 */
async function migrateTenantSchemas(platform: PlatformServices, log: (line: string) => void): Promise<void> {
  const summary = await migrateFleet(platform.registry, platform.admin, { concurrency: 4 });
  if (summary.migrated > 0 || summary.failed.length > 0) {
    log(
      `tenant schemas: ${summary.migrated} migrated, ${summary.failed.length} failed${
        summary.failed.length === 0
          ? ''
          : ` (${summary.failed.map((failure) => `${failure.tenantId}: ${failure.error}`).join('; ')})`
      }`,
    );
  }
}
