import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import type { Logger } from '../logging/logger.js';
import { startTracing } from '../logging/tracer.js';
import { type PlatformCore, processCore } from './core.js';

/** A Lambda handler as the Node.js runtime calls it. */
export type LambdaHandler<E, R> = (event: E, context: Context) => Promise<R>;

export interface CoreHandlerOptions {
  /**
   * The handler's logger: each invocation's lines carry the Lambda context and the tenant,
   * execution and task ids of its event ({@link invocationKeys}), removed again when it ends.
   * @default none: the lines carry only what the code logs
   */
  readonly logger?: Logger | undefined;
  /** @default the process's core ({@link processCore}) */
  readonly currentCore?: (() => Promise<PlatformCore>) | undefined;
}

/**
 * A Lambda handler built from the process's core on its first invocation, then reused; built
 * again, with what it holds, when the core was replaced because the database refused a rotated
 * password (see `cachedCore`). Importing a handler module therefore reads no environment and opens
 * no connection, which keeps its factory testable. A build that fails is not kept, so the error is
 * reported on every invocation rather than a half-built handler being kept.
 *
 * Every invocation is observed as Powertools' users expect (middy middlewares, outermost first):
 * - traced (`captureLambdaHandler`) in Lambda unless `POWERTOOLS_TRACE_ENABLED=false`; the tracer
 *   is made before the core, so the core's AWS SDK clients are instrumented (`traced`). Responses
 *   are not captured: an API response may carry a tenant's API key;
 * - the logger's lines carry the Lambda context and the event's tenant, execution and task ids
 *   (`injectLambdaContext` with `resetKeys`, then {@link invocationKeys}); both are removed when
 *   the invocation ends, so nothing of one tenant's invocation is logged by the next;
 * - the metrics the invocation recorded (`core.metrics`) are published once it ends, as one EMF
 *   line per subject (`logMetrics`, `throwOnEmptyMetrics: false`: most invocations record none).
 *
 * @example
 * ```ts
 * const logger = createLogger('health');
 * export const handler = coreHandler((core) => createHealthApi({ db: core.pool, stage: core.config.stage, logger }), { logger });
 * ```
 */
export function coreHandler<E, R>(
  build: (core: PlatformCore) => LambdaHandler<E, R> | Promise<LambdaHandler<E, R>>,
  options: CoreHandlerOptions | (() => Promise<PlatformCore>) = {},
): LambdaHandler<E, R> {
  const { logger, currentCore = processCore } =
    typeof options === 'function' ? { logger: undefined, currentCore: options } : options;
  let tracing: ReturnType<typeof startTracing> | undefined;
  let builtFor: PlatformCore | undefined;
  let built: Promise<LambdaHandler<E, R>> | undefined;
  return async function invokeCoreHandler(event, context) {
    // The traces' `service` is the platform's, like the metrics' `service` dimension.
    // Not kept when it fails, like a build: the next invocation tries again.
    tracing ??= startTracing(process.env.POWERTOOLS_SERVICE_NAME ?? 'tenantflow').catch((error: unknown) => {
      tracing = undefined;
      throw error;
    });
    const tracer = await tracing;
    const core = await currentCore();
    if (built === undefined || builtFor !== core) {
      builtFor = core;
      const building = Promise.resolve(build(core))
        .then(async (handler) => {
          const observed = middy<E, R>(handler);
          if (tracer !== undefined) {
            const { captureLambdaHandler } = await import('@aws-lambda-powertools/tracer/middleware');
            observed.use(captureLambdaHandler(tracer, { captureResponse: false }));
          }
          if (logger !== undefined) {
            observed.use(injectLambdaContext(logger, { resetKeys: true })).use(invocationKeys(logger));
          }
          // A stand-in core (a test's) may have no metrics to publish.
          return core.metricSink === undefined
            ? observed
            : observed.use(logMetrics(core.metricSink.emf, { throwOnEmptyMetrics: false }));
        })
        .catch((error: unknown) => {
          if (built === building) {
            built = undefined;
          }
          throw error;
        });
      built = building;
    }
    return (await built)(event, context);
  };
}

/** The ids a log line is keyed by, as an event carries them. */
const INVOCATION_KEYS = ['tenantId', 'executionId', 'taskId', 'scheduleId'] as const;

/** Longer than any id the platform issues: a path parameter that is not one is not logged whole. */
const MAX_KEY_LENGTH = 128;

/**
 * Appends to `logger`, for one invocation, the ids its event names: the fields of a Step Functions
 * or Scheduler payload (`{ tenantId, executionId, taskId }`), or an API Gateway request's path
 * parameters (`/tenants/{tenantId}/executions/{executionId}`). They are temporary keys, which
 * `injectLambdaContext({ resetKeys: true })` removes when the invocation ends, so a warm Lambda
 * never logs one tenant's ids on the next tenant's lines.
 *
 * @example
 * ```ts
 * middy(handler).use(injectLambdaContext(logger, { resetKeys: true })).use(invocationKeys(logger));
 * ```
 */
export function invocationKeys(logger: Pick<Logger, 'appendKeys'>): middy.MiddlewareObj<unknown, unknown> {
  return {
    before: function appendInvocationKeys(request) {
      const keys = invocationKeysOf(request.event);
      if (Object.keys(keys).length > 0) {
        logger.appendKeys(keys);
      }
    },
  };
}

/** The {@link INVOCATION_KEYS} an event names, as strings of at most {@link MAX_KEY_LENGTH}. */
export function invocationKeysOf(event: unknown): Record<string, string> {
  const keys: Record<string, string> = {};
  if (typeof event !== 'object' || event === null) {
    return keys;
  }
  const fields = event as Record<string, unknown>;
  const path = fields.pathParameters;
  const sources = [
    typeof path === 'object' && path !== null ? (path as Record<string, unknown>) : {},
    fields,
  ];
  for (const key of INVOCATION_KEYS) {
    for (const source of sources) {
      const value = source[key];
      if (typeof value === 'string' && value.length > 0 && keys[key] === undefined) {
        keys[key] = value.slice(0, MAX_KEY_LENGTH);
      }
    }
  }
  return keys;
}
