import type { Tracer } from '@aws-lambda-powertools/tracer';

/**
 * The process's X-Ray tracer (Powertools), once {@link startTracing} made it: a Lambda sandbox has
 * one, as it has one X-Ray segment per invocation. Per process, not per invocation, like the SDK
 * clients it instruments.
 */
let processTracer: Tracer | undefined;

/**
 * Whether this process traces: in Lambda (`AWS_LAMBDA_FUNCTION_NAME` is set), not under
 * `npm start` (`TENANTFLOW_LOCAL=1`), and unless `POWERTOOLS_TRACE_ENABLED=false`.
 */
export function tracingWanted(env: NodeJS.ProcessEnv = process.env): boolean {
  return (
    env.AWS_LAMBDA_FUNCTION_NAME !== undefined &&
    env.TENANTFLOW_LOCAL !== '1' &&
    env.POWERTOOLS_TRACE_ENABLED?.toLowerCase() !== 'false'
  );
}

/**
 * Makes the process's tracer when {@link tracingWanted}, and answers it (or `undefined`). The
 * Powertools tracer loads the X-Ray SDK, so it is imported here, on a traced Lambda's first
 * invocation, and never by a process that does not trace (the local server, the tests, the CLI).
 * Call it before making the AWS SDK clients, so {@link traced} instruments them.
 *
 * @example
 * ```ts
 * const tracer = await startTracing('tenantflow');
 * const client = traced(new SFNClient({}));
 * ```
 */
export async function startTracing(
  serviceName: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Tracer | undefined> {
  if (!tracingWanted(env)) {
    return undefined;
  }
  if (processTracer === undefined) {
    const { Tracer } = await import('@aws-lambda-powertools/tracer');
    processTracer ??= new Tracer({ serviceName });
  }
  return processTracer;
}

/**
 * The AWS SDK v3 client, its calls traced as X-Ray subsegments when the process traces
 * (`captureAWSv3Client`); the client as it is otherwise.
 *
 * @example
 * ```ts
 * const secretsManager = traced(new SecretsManagerClient({}));
 * ```
 */
export function traced<Client>(client: Client): Client {
  return processTracer === undefined ? client : processTracer.captureAWSv3Client(client);
}
