import middy from '@middy/core';
import { checkDatabase } from '@tenantflow/shared/db/health';
import type { Queryable } from '@tenantflow/shared/db/sql';
import { httpErrorMapper, jsonResponse } from '@tenantflow/shared/http';
import { createLogger, type Logger } from '@tenantflow/shared/logging/logger';
import { coreHandler } from '@tenantflow/shared/runtime/lambda';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';

export interface HealthApiDependencies {
  readonly db: Queryable;
  readonly stage: string;
  readonly logger: Logger;
}

/** `GET /health`: unauthenticated liveness plus a database round trip. 503 when the database is unreachable. */
export function createHealthApi(deps: HealthApiDependencies) {
  return middy<APIGatewayProxyEvent, APIGatewayProxyResult>()
    .use(httpErrorMapper({ logger: deps.logger }))
    .handler(async function reportHealth() {
      const database = await checkDatabase(deps.db);
      if (!database.ok) {
        deps.logger.error('health check: database unreachable', { error: database.error });
      }
      return jsonResponse(database.ok ? 200 : 503, {
        status: database.ok ? 'ok' : 'unavailable',
        stage: deps.stage,
        checks: { database: database.ok ? 'ok' : 'unreachable' },
      });
    });
}

/** Lambda entry point: the platform pool only. */
export const handler = coreHandler((core) =>
  createHealthApi({ db: core.pool, stage: core.config.stage, logger: createLogger('health') }),
);
