import { Metrics } from '@aws-lambda-powertools/metrics';
import {
  type MetricRecord,
  type MetricSink,
  PLATFORM_METRICS,
  type PlatformMetrics,
  platformMetrics,
} from './metrics.js';

/** Where the metrics go when neither the options nor the environment say. */
export const DEFAULT_METRICS_NAMESPACE = 'tenantflow';
export const DEFAULT_METRICS_SERVICE = 'tenantflow';

/** What Powertools' `Metrics` tells about itself: a `Logger`, or the console. */
export interface MetricsDiagnostics {
  debug(...content: unknown[]): void;
  info(...content: unknown[]): void;
  warn(...content: unknown[]): void;
  error(...content: unknown[]): void;
}

export interface EmfMetricSinkOptions {
  /** A default dimension of every record: the stage's metrics never mix with another's. */
  readonly stage: string;
  /** @default `POWERTOOLS_METRICS_NAMESPACE`, else `tenantflow` */
  readonly namespace?: string | undefined;
  /** The `service` dimension. @default `POWERTOOLS_SERVICE_NAME`, else `tenantflow` */
  readonly serviceName?: string | undefined;
  /** Where Powertools' own warnings go (an invalid dimension, say). @default the console */
  readonly logger?: MetricsDiagnostics | undefined;
}

/**
 * Publishes {@link MetricRecord}s as CloudWatch Embedded Metric Format with Powertools' `Metrics`
 * (`emf`): JSON on stdout, which CloudWatch Logs turns into metrics in AWS. Records are buffered in
 * `emf` until it is published: once per invocation in Lambda (`logMetrics`, see
 * `runtime/lambda.ts`), on a timer locally.
 *
 * An EMF record carries one set of dimensions and properties for all its values, so records about
 * different subjects cannot share one: when a record's dimension or subject (tenant, execution,
 * task) differs from the buffered ones, the buffer is published first. A Lambda invocation is
 * about one execution or tenant, so it still writes one record; a recovery pass writes one per
 * tenant it acts on. Each metric is published both by stage and service alone and, when it has
 * one, also by its bounded dimension (`[service, stage]` and `[service, stage, workflow]`), so a
 * dashboard reads totals without metric math.
 *
 * The buffer is Powertools': per invocation in Lambda, per process elsewhere (the local server
 * publishes it on a timer). Which subject it holds is kept here, per process: right for Lambda's
 * one invocation at a time per sandbox and for the local server, where every `record` applies its
 * subject and value in one synchronous step.
 *
 * @example
 * ```ts
 * const sink = new EmfMetricSink({ stage: 'prod' });
 * platformMetrics(sink).executionStarted({ tenantId: 'acme', executionId, workflow: 'nightly_etl' });
 * sink.flush();
 * ```
 */
export class EmfMetricSink implements MetricSink {
  readonly emf: Metrics;
  /** The dimension and properties of what `emf` holds, as a key; meaningful only while it holds any. */
  #buffered: string | undefined;

  constructor(options: EmfMetricSinkOptions) {
    this.emf = new Metrics({
      namespace: options.namespace || process.env.POWERTOOLS_METRICS_NAMESPACE || DEFAULT_METRICS_NAMESPACE,
      serviceName: options.serviceName || process.env.POWERTOOLS_SERVICE_NAME || DEFAULT_METRICS_SERVICE,
      defaultDimensions: { stage: options.stage },
      logger: withoutEmptyFlushWarning(options.logger ?? console),
    });
  }

  record(record: MetricRecord): void {
    const definition = PLATFORM_METRICS[record.name];
    const dimensions: Record<string, string> =
      definition.dimension !== undefined && record.dimension !== undefined && record.dimension !== ''
        ? { [definition.dimension]: record.dimension }
        : {};
    const properties: Record<string, string> = { ...record.properties };
    for (const [key, value] of Object.entries(record.subject ?? {})) {
      if (typeof value === 'string') {
        properties[key] = value;
      }
    }
    const key = JSON.stringify([dimensions, properties]);
    if (this.emf.hasStoredMetrics() && key !== this.#buffered) {
      this.emf.publishStoredMetrics();
    }
    if (!this.emf.hasStoredMetrics()) {
      this.#buffered = key;
      if (Object.keys(dimensions).length > 0) {
        this.emf.addDimensions(dimensions);
        // The totals: the same values under the default dimensions (stage, service) alone.
        this.emf.addDimensions({});
      }
      for (const [name, value] of Object.entries(properties)) {
        this.emf.addMetadata(name, value);
      }
    }
    this.emf.addMetric(record.name, definition.unit, record.value);
  }

  /** Publishes what is buffered; nothing (not even a warning) when nothing is. */
  flush(): void {
    if (this.emf.hasStoredMetrics()) {
      this.emf.publishStoredMetrics();
    }
  }
}

/** The platform's metrics published as EMF, and the sink to flush them with. */
export function createEmfMetrics(options: EmfMetricSinkOptions): {
  readonly metrics: PlatformMetrics;
  readonly sink: EmfMetricSink;
} {
  const sink = new EmfMetricSink(options);
  return { metrics: platformMetrics(sink), sink };
}

/**
 * Powertools warns on every publish with nothing to publish. Most invocations of most functions
 * (the health check, the authorizer, a read) record no metric, and `throwOnEmptyMetrics: false`
 * says that is expected: that one warning is dropped, every other one kept.
 */
function withoutEmptyFlushWarning(logger: MetricsDiagnostics): MetricsDiagnostics {
  return {
    debug: (...content) => logger.debug(...content),
    info: (...content) => logger.info(...content),
    error: (...content) => logger.error(...content),
    warn: (...content) => {
      const [message] = content;
      if (typeof message === 'string' && message.startsWith('No application metrics to publish')) {
        return;
      }
      logger.warn(...content);
    },
  };
}
