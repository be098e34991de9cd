import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';
import { apiGatewayBodyModel, operationIdOf, pathParameterNames } from '../../functions/api/openapi.js';
import {
  API_ROUTES,
  type ApiFunctionName,
  type ApiRoute,
  GATEWAY_RESPONSES,
} from '../../functions/api/routes.js';
import { retentionDays } from './log-retention.js';
import { pascalCase } from './naming.js';

/** A gateway response: what API Gateway itself answers, shaped like every other tenantflow error. */
export interface GatewayResponseBody {
  readonly statusCode: number;
  /** Response headers beside `Content-Type` (e.g. `Retry-After`), with their literal values. */
  readonly headers?: Readonly<Record<string, string>>;
  readonly body: unknown;
}

export interface TenantflowApiProps {
  readonly stage: string;
  /** The Lambda behind each `function` of the route table. */
  readonly handlers: Readonly<Record<ApiFunctionName, lambda.IFunction>>;
  /** The REQUEST authorizer of the `tenant` routes (`functions/api/authorizer.ts`). */
  readonly authorizer: lambda.IFunction;
  /** @default API_ROUTES */
  readonly routes?: readonly ApiRoute[];
  /** Keyed by API Gateway response type (`UNAUTHORIZED`, `ACCESS_DENIED`, …). @default GATEWAY_RESPONSES */
  readonly gatewayResponses?: Readonly<Record<string, GatewayResponseBody>>;
  /** Requests per second the stage accepts before answering 429. */
  readonly rateLimit: number;
  readonly burstLimit: number;
  /** Days the access logs are kept. */
  readonly logRetentionDays: number;
  /** @default RemovalPolicy.DESTROY */
  readonly logRemovalPolicy?: RemovalPolicy;
  /**
   * How long API Gateway reuses the authorizer's decision for the same `Authorization` header.
   * @default Duration.seconds(0): every request is authorized afresh, so a rotated API key or a
   * deactivated tenant is refused from the very next request. Caching would save one authorizer
   * invocation (an indexed lookup of the key's hash) per request, at the price of a revoked key
   * working for up to the TTL; raise it only if that trade is acceptable.
   */
  readonly authorizerResultsCacheTtl?: Duration;
  /**
   * A WAFv2 web ACL (REGIONAL scope) to associate with the stage.
   * @default none: every route but /health and /openapi.json is authenticated and the stage is throttled
   */
  readonly webAclArn?: string;
}

/**
 * The REST API, built from the route table the local server also serves (`API_ROUTES`), so the two
 * cannot disagree about what exists and who may call it:
 * - `admin` routes: IAM (SigV4). The tenants function trusts the caller identity API Gateway
 *   verified (`trustIamAdminIdentity`); no admin token exists in AWS.
 * - `tenant` routes: the Lambda REQUEST authorizer, identity source the `Authorization` header, with
 *   no result cache by default (see {@link TenantflowApiProps.authorizerResultsCacheTtl}).
 * - `none` (`/health`, `/openapi.json`): open.
 *
 * Methods with path parameters or a JSON body get a request validator: the parameters, and the body
 * against a model of the route's own body schema (`apiGatewayBodyModel`: the fields and their
 * types, the same zod schema the handler validates with and `/openapi.json` describes). The model
 * refuses only what the handler refuses too; the handler checks the values and names each fault
 * in its 400. The stage is throttled, traced,
 * logs every request as JSON to its own log group, and logs errors of API Gateway itself. The
 * `GATEWAY_RESPONSES` replace API Gateway's bodies for refused requests.
 *
 * @example
 * ```ts
 * const api = new TenantflowApi(this, 'Api', {
 *   stage: 'prod', handlers: { tenants, executions, health }, authorizer,
 *   rateLimit: 50, burstLimit: 100, logRetentionDays: 30,
 * });
 * api.restApi.url;
 * ```
 */
export class TenantflowApi extends Construct {
  readonly restApi: apigateway.RestApi;
  readonly requestAuthorizer: apigateway.RequestAuthorizer;
  readonly accessLogGroup: logs.LogGroup;
  /** Every method, keyed `METHOD /resource`. */
  readonly methods: ReadonlyMap<string, apigateway.Method>;

  constructor(scope: Construct, id: string, props: TenantflowApiProps) {
    super(scope, id);
    const routes = props.routes ?? API_ROUTES;

    this.accessLogGroup = new logs.LogGroup(this, 'AccessLogs', {
      logGroupName: `/tenantflow/${props.stage}/api-access`,
      retention: retentionDays(props.logRetentionDays),
      removalPolicy: props.logRemovalPolicy ?? RemovalPolicy.DESTROY,
    });

    this.restApi = new apigateway.RestApi(this, 'RestApi', {
      restApiName: `tenantflow-${props.stage}`,
      description: 'tenantflow: tenant administration (IAM) and tenant workflow executions (API keys)',
      // Server-to-server clients in a region; no CloudFront distribution in front.
      endpointConfiguration: { types: [apigateway.EndpointType.REGIONAL] },
      // Execution logging (below) needs API Gateway's account-level CloudWatch role. It is one
      // setting per account and region: kept on stack deletion, so another stage's API in the
      // same account keeps logging.
      cloudWatchRole: true,
      cloudWatchRoleRemovalPolicy: RemovalPolicy.RETAIN,
      deployOptions: {
        stageName: props.stage,
        throttlingRateLimit: props.rateLimit,
        throttlingBurstLimit: props.burstLimit,
        tracingEnabled: true,
        metricsEnabled: true,
        // Errors of API Gateway itself (authorizer and integration failures). Never the request and
        // response data: they carry API keys and tenant payloads.
        loggingLevel: apigateway.MethodLoggingLevel.ERROR,
        dataTraceEnabled: false,
        accessLogDestination: new apigateway.LogGroupLogDestination(this.accessLogGroup),
        accessLogFormat: ACCESS_LOG_FORMAT,
      },
    });
    // RestApi adds an unnamed `Endpoint` output; the stack exports the URL under a name of its own.
    this.restApi.node.tryRemoveChild('Endpoint');
    const cloudWatchRole = this.restApi.node.tryFindChild('CloudWatchRole');
    if (cloudWatchRole !== undefined) {
      Validations.of(cloudWatchRole).acknowledge({
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
        reason:
          "API Gateway's account-level logging role, with the AWS managed policy the API Gateway documentation prescribes for it: API Gateway (not our code) writes the execution and access logs of every API in the account and region with it, to log groups it names at run time.",
      });
    }
    Validations.of(this.restApi).acknowledge({
      id: 'AwsSolutions-COG4',
      reason:
        'tenantflow has no Cognito user pool by design: admin routes are authorized by IAM (SigV4), tenant routes by the Lambda REQUEST authorizer that checks the tenant API key, and /health and /openapi.json are open.',
    });

    if (props.webAclArn === undefined) {
      Validations.of(this.restApi.deploymentStage).acknowledge({
        id: 'AwsSolutions-APIG3',
        reason:
          'No WAF web ACL by default: every route but /health and /openapi.json requires SigV4 or a tenant API key, the stage is throttled, and request bodies are validated. Pass webAclArn to associate one where the API faces untrusted networks.',
      });
    } else {
      new wafv2.CfnWebACLAssociation(this, 'WebAcl', {
        resourceArn: this.restApi.deploymentStage.stageArn,
        webAclArn: props.webAclArn,
      });
    }

    this.requestAuthorizer = new apigateway.RequestAuthorizer(this, 'TenantAuthorizer', {
      authorizerName: `tenantflow-${props.stage}-tenant-api-key`,
      handler: props.authorizer,
      identitySources: [apigateway.IdentitySource.header('Authorization')],
      resultsCacheTtl: props.authorizerResultsCacheTtl ?? Duration.seconds(0),
    });

    const validator = new apigateway.RequestValidator(this, 'RequestValidator', {
      restApi: this.restApi,
      requestValidatorName: 'parameters-and-body',
      validateRequestParameters: true,
      validateRequestBody: true,
    });
    /** The body model of a route, named after its operation: `PostTenantsByTenantIdExecutionsBody`. */
    const bodyModelOf = (route: ApiRoute, body: NonNullable<ApiRoute['request']['body']>) => {
      const name = `${pascalCase(operationIdOf(route))}Body`;
      const { $schema: _draft4, ...schema } = apiGatewayBodyModel(body);
      return this.restApi.addModel(`${name}Model`, {
        contentType: 'application/json',
        modelName: name,
        description: `The body of ${routeKey(route)}: its fields and their types; the handler checks the values`,
        // The draft-04 schema, as CDK's JsonSchema spells it (`$schema` is its `schema`).
        schema: { ...(schema as apigateway.JsonSchema), schema: apigateway.JsonSchemaVersion.DRAFT4 },
      });
    };

    const integrations = new Map<ApiFunctionName, apigateway.LambdaIntegration>();
    const integrationFor = (name: ApiFunctionName) => {
      let integration = integrations.get(name);
      if (integration === undefined) {
        integration = new apigateway.LambdaIntegration(props.handlers[name]);
        integrations.set(name, integration);
      }
      return integration;
    };

    const methods = new Map<string, apigateway.Method>();
    for (const route of routes) {
      const pathParameters = pathParameterNames(route.resource);
      const { body } = route.request;
      const method = this.restApi.root
        .resourceForPath(route.resource)
        .addMethod(route.method, integrationFor(route.function), {
          ...this.authorizationOf(route),
          ...(pathParameters.length > 0
            ? {
                requestParameters: Object.fromEntries(
                  pathParameters.map((name) => [`method.request.path.${name}`, true]),
                ),
              }
            : {}),
          ...(body === undefined ? {} : { requestModels: { 'application/json': bodyModelOf(route, body) } }),
          ...(body !== undefined || pathParameters.length > 0 ? { requestValidator: validator } : {}),
        });
      if (route.authorization === 'none') {
        Validations.of(method).acknowledge({
          id: 'AwsSolutions-APIG4',
          reason: `${routeKey(route)} is open by design (${route.summary}): it answers the same to every caller and returns no tenant data.`,
        });
      }
      methods.set(routeKey(route), method);
    }
    this.methods = methods;

    for (const [type, response] of Object.entries(props.gatewayResponses ?? GATEWAY_RESPONSES)) {
      const template = JSON.stringify(response.body);
      if (/[$#]/.test(template)) {
        // Gateway response templates are Velocity: $ and # would be read as references and directives.
        throw new Error(`Gateway response ${type} must not contain '$' or '#' (Velocity syntax)`);
      }
      // Types are SCREAMING_SNAKE (`DEFAULT_4XX`): lower-cased, the id reads `GatewayResponseDefault4xx`.
      this.restApi.addGatewayResponse(`GatewayResponse${pascalCase(type.toLowerCase())}`, {
        type: apigateway.ResponseType.of(type),
        statusCode: String(response.statusCode),
        responseHeaders: {
          'Content-Type': "'application/json'",
          // Gateway response header values are mapping expressions: a literal is single-quoted.
          ...Object.fromEntries(
            Object.entries('headers' in response ? (response.headers ?? {}) : {}).map(([name, value]) => [
              name,
              `'${value}'`,
            ]),
          ),
        },
        templates: { 'application/json': template },
      });
    }
  }

  private authorizationOf(route: ApiRoute): apigateway.MethodOptions {
    switch (route.authorization) {
      case 'admin':
        return { authorizationType: apigateway.AuthorizationType.IAM };
      case 'tenant':
        return { authorizationType: apigateway.AuthorizationType.CUSTOM, authorizer: this.requestAuthorizer };
      case 'none':
        return { authorizationType: apigateway.AuthorizationType.NONE };
    }
  }
}

/** `METHOD /resource`: how routes are named in {@link TenantflowApi.methods}. */
export function routeKey(route: Pick<ApiRoute, 'method' | 'resource'>): string {
  return `${route.method} ${route.resource}`;
}

/**
 * One JSON object per request: who called (IAM ARN or the authorizer's principal, never the key),
 * what, the outcome, latencies, and why API Gateway refused or failed it.
 */
const ACCESS_LOG_FORMAT = apigateway.AccessLogFormat.custom(
  JSON.stringify({
    requestId: '$context.requestId',
    extendedRequestId: '$context.extendedRequestId',
    requestTime: '$context.requestTime',
    httpMethod: '$context.httpMethod',
    resourcePath: '$context.resourcePath',
    path: '$context.path',
    status: '$context.status',
    responseLength: '$context.responseLength',
    responseLatency: '$context.responseLatency',
    integrationLatency: '$context.integrationLatency',
    integrationStatus: '$context.integrationStatus',
    sourceIp: '$context.identity.sourceIp',
    userAgent: '$context.identity.userAgent',
    callerArn: '$context.identity.userArn',
    principalId: '$context.authorizer.principalId',
    authorizerStatus: '$context.authorizer.status',
    authorizerLatency: '$context.authorizer.latency',
    authorizerError: '$context.authorizer.error',
    errorType: '$context.error.responseType',
    errorMessage: '$context.error.message',
    integrationError: '$context.integration.error',
    xrayTraceId: '$context.xrayTraceId',
  }),
);
