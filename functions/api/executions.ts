import {
  getValidatedInput,
  guardedRoute,
  jsonResponse,
  principalOf,
  type RequestSchemas,
  type RouteHandler,
  requireTenantAccess,
  routedApi,
} from '@tenantflow/shared/http';
import { createLogger, type Logger } from '@tenantflow/shared/logging/logger';
import { createExecutions } from '@tenantflow/shared/runtime/executions';
import { coreHandler } from '@tenantflow/shared/runtime/lambda';
import { stepFunctionsOrchestrator } from '@tenantflow/shared/runtime/step-functions';
import type { ExecutionService } from '@tenantflow/shared/workflows/execution-service';
import type { WorkflowRegistry } from '@tenantflow/shared/workflows/workflow-registry';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { workflows } from '../../workflows/index.js';
import {
  cancelExecution,
  executionPath,
  listExecutions,
  rerunExecution,
  startExecution,
  tenantPath,
} from './request-schemas.js';

export interface ExecutionsApiDependencies {
  readonly executions: ExecutionService;
  readonly workflows: WorkflowRegistry;
  readonly logger: Logger;
}

/**
 * The tenant routes, behind the REQUEST authorizer (`authorizer.ts`): a tenant's own client, with
 * its API key, starts and reads its workflow executions. An admin token works on any tenant.
 */
export function createExecutionsApi(deps: ExecutionsApiDependencies) {
  const { executions } = deps;
  const tenantRoute = <S extends RequestSchemas>(schemas: S, fn: RouteHandler) =>
    guardedRoute(requireTenantAccess(), schemas, fn);

  return routedApi(deps, [
    {
      method: 'GET',
      path: '/workflows',
      handler: async (event: APIGatewayProxyEvent) => {
        principalOf(event);
        return jsonResponse(200, { workflows: deps.workflows.list().map(describeWorkflow) });
      },
    },
    {
      method: 'POST',
      path: '/tenants/{tenantId}/executions',
      handler: tenantRoute(startExecution, async (event) => {
        const { pathParameters, body } = getValidatedInput(event, startExecution);
        const started = await executions.start(pathParameters.tenantId, body);
        return jsonResponse(202, started);
      }),
    },
    {
      method: 'GET',
      path: '/tenants/{tenantId}/executions',
      handler: tenantRoute(listExecutions, async (event) => {
        const { pathParameters, queryStringParameters } = getValidatedInput(event, listExecutions);
        return jsonResponse(200, await executions.list(pathParameters.tenantId, queryStringParameters));
      }),
    },
    {
      method: 'GET',
      path: '/tenants/{tenantId}/executions/{executionId}',
      handler: tenantRoute(executionPath, async (event) => {
        const { pathParameters } = getValidatedInput(event, executionPath);
        return jsonResponse(200, await executions.get(pathParameters.tenantId, pathParameters.executionId));
      }),
    },
    {
      method: 'POST',
      path: '/tenants/{tenantId}/executions/{executionId}/cancel',
      handler: tenantRoute(cancelExecution, async (event) => {
        const { pathParameters } = getValidatedInput(event, cancelExecution);
        // Who cancelled it is recorded on the execution: the tenant's own key, or the admin.
        const cancelledBy = principalOf(event).kind === 'admin' ? 'admin' : 'tenant_api_key';
        return jsonResponse(
          202,
          await executions.cancel(pathParameters.tenantId, pathParameters.executionId, cancelledBy),
        );
      }),
    },
    {
      method: 'POST',
      path: '/tenants/{tenantId}/executions/{executionId}/rerun',
      handler: tenantRoute(rerunExecution, async (event) => {
        const { pathParameters } = getValidatedInput(event, rerunExecution);
        return jsonResponse(202, await executions.rerun(pathParameters.tenantId, pathParameters.executionId));
      }),
    },
    {
      method: 'GET',
      path: '/tenants/{tenantId}/metrics',
      handler: tenantRoute(tenantPath, async (event) => {
        const { pathParameters } = getValidatedInput(event, tenantPath);
        return jsonResponse(200, await executions.metrics(pathParameters.tenantId));
      }),
    },
  ]);
}

function describeWorkflow(workflow: ReturnType<WorkflowRegistry['list']>[number]) {
  return {
    name: workflow.name,
    description: workflow.description,
    // JSON Schema of the input a client sends; `{}` (any JSON) for a workflow without a schema.
    inputSchema: workflow.inputJsonSchema,
    tasks: workflow.tasks.map((task) => ({
      id: task.id,
      dependsOn: workflow.dependsOn[task.id] ?? [],
      retry: task.retry,
      timeoutSeconds: task.timeoutSeconds,
    })),
  };
}

const logger = createLogger('executions-api');

/** Lambda entry point: Step Functions in AWS, one state machine per registered workflow. */
export const handler = coreHandler(
  (core) =>
    createExecutionsApi({
      workflows,
      logger,
      executions: createExecutions(core, {
        workflows,
        orchestrator: stepFunctionsOrchestrator(core),
        logger,
      }),
    }),
  { logger },
);
