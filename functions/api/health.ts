import { checkDatabase } from '@tenantflow/shared/db/health';
import type { Queryable } from '@tenantflow/shared/db/sql';
import { jsonResponse, routedApi } from '@tenantflow/shared/http';
import { DATABASE_UNAVAILABLE_RETRY_AFTER_SECONDS } from '@tenantflow/shared/http/error-mapper.middleware';
import { createLogger, type Logger } from '@tenantflow/shared/logging/logger';
import { coreHandler } from '@tenantflow/shared/runtime/lambda';
import { buildOpenApiDocument } from './openapi.js';

export interface HealthApiDependencies {
  readonly db: Queryable;
  readonly stage: string;
  readonly logger: Logger;
}

/**
 * The open routes (no credentials), behind one Lambda:
 * - `GET /health`: liveness plus a database round trip; 503 when the database is unreachable.
 * - `GET /openapi.json`: the API's OpenAPI 3.1 document, generated from the route table once per
 *   process, and the same for every caller: it describes the routes, never a tenant's data.
 */
export function createHealthApi(deps: HealthApiDependencies) {
  let openApiDocument: ReturnType<typeof buildOpenApiDocument> | undefined;
  return routedApi(deps, [
    {
      method: 'GET',
      path: '/health',
      handler: async function reportHealth() {
        const database = await checkDatabase(deps.db);
        if (!database.ok) {
          deps.logger.error('health check: database unreachable', { error: database.error });
        }
        const response = jsonResponse(database.ok ? 200 : 503, {
          status: database.ok ? 'ok' : 'unavailable',
          stage: deps.stage,
          checks: { database: database.ok ? 'ok' : 'unreachable' },
        });
        return database.ok
          ? response
          : {
              ...response,
              headers: {
                ...response.headers,
                'retry-after': String(DATABASE_UNAVAILABLE_RETRY_AFTER_SECONDS),
              },
            };
      },
    },
    {
      method: 'GET',
      path: '/openapi.json',
      handler: async function describeApi() {
        openApiDocument ??= buildOpenApiDocument();
        return jsonResponse(200, openApiDocument);
      },
    },
  ]);
}

const logger = createLogger('health');

/** Lambda entry point: the platform pool only. */
export const handler = coreHandler(
  (core) => createHealthApi({ db: core.pool, stage: core.config.stage, logger }),
  { logger },
);
