import middy from '@middy/core';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { checkDatabase } from '../../shared/db/health.js';
import type { Queryable } from '../../shared/db/sql.js';
import { httpErrorMapper, jsonResponse, lazyHandler } from '../../shared/http/index.js';
import { createLogger, type Logger } from '../../shared/logging/logger.js';
import { getPlatform } from '../../shared/platform.js';

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

/** Lambda entry point. */
export const handler = lazyHandler(async () => {
  const platform = await getPlatform();
  return createHealthApi({ db: platform.pool, stage: platform.config.stage, logger: createLogger('health') });
});
