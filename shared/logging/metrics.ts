/**
 * The platform's operational metrics, as a port: the services say what happened
 * (`metrics.executionStarted(...)`) and an adapter decides how it is published (CloudWatch EMF
 * through Powertools, `powertools-metrics.ts`). This module imports nothing, so any layer of
 * `shared/` can record a metric without loading Powertools.
 *
 * Who a record is about (tenant, execution, task) is never a dimension: every distinct set of
 * dimension values is a CloudWatch custom metric of its own, billed monthly, so a tenant id as a
 * dimension would make thousands of metrics of each name with thousands of tenants, each costing
 * money and none of them on a dashboard. Those ids are written beside the values in the EMF
 * record instead, where Logs Insights finds them. Dimensions are bounded by the installation:
 * the stage, the service and, where a record has one, the workflow's name.
 */

/** Who and what a record is about: written as properties of the record, never as dimensions. */
export interface MetricSubject {
  readonly tenantId?: string | undefined;
  readonly executionId?: string | undefined;
  readonly taskId?: string | undefined;
}

/** How an execution ended, as the finalizer records it. */
export type ExecutionEnd = 'succeeded' | 'failed' | 'aborted';

/** The dimensions a record may add to stage and service: each bounded by the installation. */
export type BoundedDimension = 'workflow' | 'action';

/**
 * The metrics the platform records, by name: the unit each is published with, and the bounded
 * dimension it is also published by (the installation's workflows; recovery's action kinds).
 */
export const PLATFORM_METRICS = {
  ExecutionsStarted: { unit: 'Count', dimension: 'workflow' },
  ExecutionsSucceeded: { unit: 'Count', dimension: 'workflow' },
  ExecutionsFailed: { unit: 'Count', dimension: 'workflow' },
  ExecutionsAborted: { unit: 'Count', dimension: 'workflow' },
  TaskDuration: { unit: 'Milliseconds', dimension: 'workflow' },
  TaskErrors: { unit: 'Count', dimension: 'workflow' },
  ProvisioningStepDuration: { unit: 'Milliseconds', dimension: undefined },
  ProvisioningDuration: { unit: 'Milliseconds', dimension: undefined },
  RecoveryActions: { unit: 'Count', dimension: 'action' },
  RecoveryAbandonments: { unit: 'Count', dimension: undefined },
  ProxyAuthListSize: { unit: 'Count', dimension: undefined },
} as const satisfies Record<
  string,
  { unit: 'Count' | 'Milliseconds'; dimension: BoundedDimension | undefined }
>;

export type PlatformMetricName = keyof typeof PLATFORM_METRICS;

/** The RDS Proxy's limit on its auth list (secrets per proxy), which caps the tenants per proxy. */
export const PROXY_AUTH_LIST_LIMIT = 200;

/**
 * One value of one metric. `dimension` is the value of the metric's bounded dimension (see
 * {@link PLATFORM_METRICS}); `subject` and `properties` are searchable properties of the record.
 */
export interface MetricRecord {
  readonly name: PlatformMetricName;
  readonly value: number;
  readonly dimension?: string | undefined;
  readonly subject?: MetricSubject | undefined;
  /** Other bounded facts worth reading beside the value (the recovery action's kind, a step). */
  readonly properties?: Readonly<Record<string, string>> | undefined;
}

/** Where metric records go: the Powertools EMF adapter in Lambda and locally, nothing in tests. */
export interface MetricSink {
  record(record: MetricRecord): void;
}

/**
 * What the platform's services record, in the domain's words. Each method is one line at its call
 * site; a service takes this as an optional dependency whose default is {@link NO_METRICS}.
 *
 * @example
 * ```ts
 * const metrics = platformMetrics(sink);
 * metrics.executionStarted({ tenantId: 'acme', executionId, workflow: 'nightly_etl' });
 * ```
 */
export interface PlatformMetrics {
  executionStarted(event: MetricSubject & { readonly workflow: string }): void;
  executionEnded(event: MetricSubject & { readonly outcome: ExecutionEnd; readonly workflow?: string }): void;
  /** A task attempt that committed or failed, with how long it ran. */
  taskRan(
    event: MetricSubject & {
      readonly workflow: string;
      readonly durationMs: number;
      readonly failed: boolean;
    },
  ): void;
  /** One step of onboarding or offboarding, and how long it took. */
  provisioningStepTook(
    event: MetricSubject & { readonly lifecycle: string; readonly step: string; readonly durationMs: number },
  ): void;
  /** A whole onboarding or offboarding, from the tenant's registration (or deletion) to its end. */
  provisioningTook(event: MetricSubject & { readonly lifecycle: string; readonly durationMs: number }): void;
  /** A repair recovery carried out, by kind; an `abandon` is also counted as an abandonment. */
  recoveryActed(event: MetricSubject & { readonly action: string; readonly finding: string }): void;
  /**
   * Recovery gave up on a stuck tenant after its attempt cap (an execution given up on is
   * recorded as an `abandon` action, above).
   */
  recoveryAbandoned(event: MetricSubject & { readonly target: 'tenant'; readonly attempts: number }): void;
  /** How many secrets the RDS Proxy's auth list holds, read where provisioning or recovery reads it. */
  proxyAuthListSize(event: { readonly entries: number }): void;
}

/** Records nothing: the default of every service that takes metrics. */
export const NO_METRICS: PlatformMetrics = platformMetrics({ record: () => undefined });

/** The platform's metrics over a sink (see {@link PlatformMetrics} for what each one means). */
export function platformMetrics(sink: MetricSink): PlatformMetrics {
  const subjectOf = ({ tenantId, executionId, taskId }: MetricSubject): MetricSubject => ({
    tenantId,
    executionId,
    taskId,
  });
  return {
    executionStarted: (event) =>
      sink.record({
        name: 'ExecutionsStarted',
        value: 1,
        dimension: event.workflow,
        subject: subjectOf(event),
      }),
    executionEnded: (event) =>
      sink.record({
        name: EXECUTION_END_METRIC[event.outcome],
        value: 1,
        dimension: event.workflow,
        subject: subjectOf(event),
      }),
    taskRan: (event) => {
      const subject = subjectOf(event);
      sink.record({ name: 'TaskDuration', value: event.durationMs, dimension: event.workflow, subject });
      sink.record({ name: 'TaskErrors', value: event.failed ? 1 : 0, dimension: event.workflow, subject });
    },
    provisioningStepTook: (event) =>
      sink.record({
        name: 'ProvisioningStepDuration',
        value: event.durationMs,
        subject: subjectOf(event),
        properties: { lifecycle: event.lifecycle, step: event.step },
      }),
    provisioningTook: (event) =>
      sink.record({
        name: 'ProvisioningDuration',
        value: event.durationMs,
        subject: subjectOf(event),
        properties: { lifecycle: event.lifecycle },
      }),
    recoveryActed: (event) => {
      const subject = subjectOf(event);
      sink.record({
        name: 'RecoveryActions',
        value: 1,
        dimension: event.action,
        subject,
        properties: { action: event.action, finding: event.finding },
      });
      if (event.action === 'abandon') {
        sink.record({
          name: 'RecoveryAbandonments',
          value: 1,
          subject,
          properties: { target: 'execution', finding: event.finding },
        });
      }
    },
    recoveryAbandoned: (event) =>
      sink.record({
        name: 'RecoveryAbandonments',
        value: 1,
        subject: subjectOf(event),
        properties: { target: event.target, attempts: String(event.attempts) },
      }),
    proxyAuthListSize: (event) =>
      sink.record({
        name: 'ProxyAuthListSize',
        value: event.entries,
        properties: { limit: String(PROXY_AUTH_LIST_LIMIT) },
      }),
  };
}

const EXECUTION_END_METRIC: Readonly<Record<ExecutionEnd, PlatformMetricName>> = {
  succeeded: 'ExecutionsSucceeded',
  failed: 'ExecutionsFailed',
  aborted: 'ExecutionsAborted',
};
