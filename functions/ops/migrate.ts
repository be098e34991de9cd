import middy from '@middy/core';
import type { ConnectionRetryEvent, ConnectionRetryOptions } from '@tenantflow/shared/db/connections';
import { createLogger, type Logger } from '@tenantflow/shared/logging/logger';
import type { PlatformRoleSpec } from '@tenantflow/shared/provisioning/database-admin';
import {
  assertDatabaseMigrated,
  type DatabaseMigrationSummary,
  type DatabaseMigrationTarget,
  type MigrateDatabaseOptions,
  migrateDatabase,
  migrationSettings,
} from '@tenantflow/shared/provisioning/database-migrator';
import { coreHandler } from '@tenantflow/shared/runtime/lambda';
import { createDatabaseAdmin } from '@tenantflow/shared/runtime/provisioning';
import { invocationDeadline } from '@tenantflow/shared/util/invocation-deadline';
import { tenantMigrations } from '../../workflows/tables.js';

/**
 * A run stops taking new tenants this long before the Lambda's timeout, so it returns (or fails
 * with its summary) instead of being cut off, and a deployment waiting on it learns why.
 */
export const SAFETY_MARGIN_MS = 60_000;

export interface MigrateHandlerDependencies {
  /**
   * The platform's admin connections and tenant registry (in AWS, logged in from the admin
   * secret), and the platform secret's login, to create the platform role if it is missing.
   */
  readonly database: DatabaseMigrationTarget & { readonly platformLogin?: PlatformRoleSpec | undefined };
  readonly logger: Pick<Logger, 'info' | 'error'>;
  readonly options?: Pick<MigrateDatabaseOptions, 'concurrency' | 'pageSize'> & {
    /** How the first connection waits for the database (the backoff, a test's clock). */
    readonly connectionRetry?: Omit<ConnectionRetryOptions, 'deadline' | 'onRetry'>;
  };
}

/**
 * How long the first connection waits for the database. On a first deploy the trigger runs as
 * soon as RDS Proxy is created, and the proxy reports its target group ready before the cluster
 * takes connections through it; a few minutes later it does.
 */
export const CONNECTION_RETRY_MAX_WAIT_MS = 5 * 60_000;

/**
 * The migration job, invoked by a CDK trigger on every deployment that publishes a new version of
 * it (a new migration, `shared/` or handler change), before the other functions are updated, and
 * by hand (`aws lambda invoke`). Any event starts one run: the
 * control schema, then every tenant schema. The summary is logged and returned; a run that left a
 * tenant failed or unreached throws, naming them, so the deployment fails.
 */
export function createMigrateHandler(deps: MigrateHandlerDependencies) {
  return middy<unknown, DatabaseMigrationSummary>().handler(
    async function migrateDatabaseNow(_event, context) {
      const { connectionRetry, ...options } = deps.options ?? {};
      const summary = await migrateDatabase(deps.database, {
        ...options,
        // The first deploy creates the platform role with the platform secret's login.
        platformRole: deps.database.platformLogin,
        deadline: invocationDeadline(context, SAFETY_MARGIN_MS),
        connectionRetry: {
          maxWaitMs: CONNECTION_RETRY_MAX_WAIT_MS,
          ...connectionRetry,
          onRetry: function logConnectionRetry(retry: ConnectionRetryEvent) {
            deps.logger.info('database not reachable yet, connecting again', {
              attempt: retry.attempt,
              retryInMs: retry.delayMs,
              elapsedMs: retry.elapsedMs,
              giveUpAt: new Date(retry.deadline).toISOString(),
              error: describeError(retry.error),
            });
          },
        },
      });
      if (summary.complete && summary.tenants.failed.length === 0) {
        deps.logger.info('database migrated', { ...summary });
      } else {
        deps.logger.error('database migrations incomplete', { ...summary });
      }
      assertDatabaseMigrated(summary);
      return summary;
    },
  );
}

/** What a log line needs of a connection error: its message, and Node's or PostgreSQL's code. */
function describeError(error: unknown): { readonly message: string; readonly code?: string } {
  if (!(error instanceof Error)) {
    return { message: String(error) };
  }
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? { message: error.message, code } : { message: error.message };
}

const logger = createLogger('migrate');

/** Lambda entry point: the admin login, the registry and the workflows' tables, to migrate the control schema and every tenant. */
export const handler = coreHandler(
  async (core) =>
    createMigrateHandler({
      database: {
        admin: await createDatabaseAdmin(core, { tenantMigrations }),
        registry: core.registry,
        platformLogin: core.platformLogin,
      },
      logger,
      options: migrationSettings(process.env),
    }),
  { logger },
);
