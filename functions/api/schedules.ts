import {
  emptyResponse,
  encodePageToken,
  getValidatedInput,
  guardedRoute,
  jsonResponse,
  type RequestSchemas,
  type RouteHandler,
  requireTenantAccess,
  routedApi,
} from '@tenantflow/shared/http';
import { createLogger, type Logger } from '@tenantflow/shared/logging/logger';
import { coreHandler } from '@tenantflow/shared/runtime/lambda';
import { eventBridgeScheduleTrigger } from '@tenantflow/shared/runtime/schedule-trigger';
import { createSchedules } from '@tenantflow/shared/runtime/schedules';
import { stepFunctionsOrchestrator } from '@tenantflow/shared/runtime/step-functions';
import type { ScheduleService } from '@tenantflow/shared/schedules/schedule-service';
import { workflows } from '../../workflows/index.js';
import { createSchedule, listSchedules, schedulePath, updateSchedule } from './request-schemas.js';

export interface SchedulesApiDependencies {
  readonly schedules: ScheduleService;
  readonly logger: Logger;
}

/**
 * A tenant's schedules, behind the REQUEST authorizer like its executions: its own API key reaches
 * its own schedules only; the admin token reaches any tenant's.
 */
export function createSchedulesApi(deps: SchedulesApiDependencies) {
  const { schedules } = deps;
  const tenantRoute = <S extends RequestSchemas>(schemas: S, fn: RouteHandler) =>
    guardedRoute(requireTenantAccess(), schemas, fn);

  return routedApi(deps, [
    {
      method: 'POST',
      path: '/tenants/{tenantId}/schedules',
      handler: tenantRoute(createSchedule, async (event) => {
        const { pathParameters, body } = getValidatedInput(event, createSchedule);
        return jsonResponse(201, await schedules.create(pathParameters.tenantId, body));
      }),
    },
    {
      method: 'GET',
      path: '/tenants/{tenantId}/schedules',
      handler: tenantRoute(listSchedules, async (event) => {
        const { pathParameters, queryStringParameters: query } = getValidatedInput(event, listSchedules);
        const page = await schedules.list(pathParameters.tenantId, {
          limit: query.limit,
          after: query.nextToken,
        });
        return jsonResponse(200, { schedules: page.schedules, nextToken: encodePageToken(page.next) });
      }),
    },
    {
      method: 'GET',
      path: '/tenants/{tenantId}/schedules/{scheduleId}',
      handler: tenantRoute(schedulePath, async (event) => {
        const { pathParameters } = getValidatedInput(event, schedulePath);
        return jsonResponse(200, await schedules.get(pathParameters.tenantId, pathParameters.scheduleId));
      }),
    },
    {
      method: 'PATCH',
      path: '/tenants/{tenantId}/schedules/{scheduleId}',
      handler: tenantRoute(updateSchedule, async (event) => {
        const { pathParameters, body } = getValidatedInput(event, updateSchedule);
        return jsonResponse(
          200,
          await schedules.update(pathParameters.tenantId, pathParameters.scheduleId, body),
        );
      }),
    },
    {
      method: 'DELETE',
      path: '/tenants/{tenantId}/schedules/{scheduleId}',
      handler: tenantRoute(schedulePath, async (event) => {
        const { pathParameters } = getValidatedInput(event, schedulePath);
        await schedules.delete(pathParameters.tenantId, pathParameters.scheduleId);
        return emptyResponse(204);
      }),
    },
  ]);
}

const logger = createLogger('schedules-api');

/** Lambda entry point: schedules on EventBridge Scheduler, firing executions on Step Functions. */
export const handler = coreHandler(
  (core) => {
    const { schedules } = createSchedules(core, {
      workflows,
      orchestrator: stepFunctionsOrchestrator(core),
      trigger: eventBridgeScheduleTrigger(core),
      logger,
    });
    return createSchedulesApi({ schedules, logger });
  },
  { logger },
);
