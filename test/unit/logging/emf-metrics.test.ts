import { NO_METRICS, PLATFORM_METRICS, type PlatformMetrics } from '@tenantflow/shared/logging/metrics';
import { createEmfMetrics } from '@tenantflow/shared/logging/powertools-metrics';
import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from 'vitest';

const EXECUTION = '0b8a1c2e-4f5d-4e6a-9b7c-8d9e0f1a2b3c';

/** One EMF record as Powertools writes it. */
interface EmfRecord {
  readonly _aws: {
    readonly CloudWatchMetrics: ReadonlyArray<{
      readonly Namespace: string;
      readonly Dimensions: string[][];
      readonly Metrics: ReadonlyArray<{ readonly Name: string; readonly Unit: string }>;
    }>;
  };
  readonly [key: string]: unknown;
}

let stdout: MockInstance<typeof process.stdout.write>;

/** What Powertools wrote on stdout since the test began, one EMF record per line. */
function emfWritten(): EmfRecord[] {
  return stdout.mock.calls
    .map(([chunk]) => String(chunk))
    .flatMap((text) => text.split('\n'))
    .filter((line) => line.includes('"_aws"'))
    .map((line) => JSON.parse(line) as EmfRecord);
}

beforeEach(() => {
  // The test run turns metrics off (vitest.config.ts); these tests read what they write.
  vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
  stdout = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
});

afterEach(() => {
  stdout.mockRestore();
  vi.unstubAllEnvs();
});

function emf(): { metrics: PlatformMetrics; flush: () => void; warnings: unknown[][] } {
  const warnings: unknown[][] = [];
  const diagnostics = {
    debug: () => undefined,
    info: () => undefined,
    error: () => undefined,
    warn: (...content: unknown[]) => warnings.push(content),
  };
  const { metrics, sink } = createEmfMetrics({
    stage: 'qa',
    namespace: 'tenantflow',
    serviceName: 'tenantflow',
    logger: diagnostics,
  });
  return { metrics, flush: () => sink.flush(), warnings };
}

/** The one metric definition of a record, checked to be alone in it. */
function onlyMetric(record: EmfRecord): { Name: string; Unit: string } {
  const [directive] = record._aws.CloudWatchMetrics;
  expect(directive?.Metrics).toHaveLength(1);
  return directive?.Metrics[0] as { Name: string; Unit: string };
}

describe('EmfMetricSink', () => {
  it.each([
    {
      name: 'ExecutionsStarted',
      record: (metrics: PlatformMetrics) =>
        metrics.executionStarted({ tenantId: 'acme', executionId: EXECUTION, workflow: 'nightly_etl' }),
      value: 1,
      dimension: { workflow: 'nightly_etl' },
    },
    {
      name: 'ExecutionsSucceeded',
      record: (metrics: PlatformMetrics) =>
        metrics.executionEnded({ tenantId: 'acme', executionId: EXECUTION, outcome: 'succeeded' }),
      value: 1,
    },
    {
      name: 'ExecutionsFailed',
      record: (metrics: PlatformMetrics) =>
        metrics.executionEnded({ tenantId: 'acme', executionId: EXECUTION, outcome: 'failed' }),
      value: 1,
    },
    {
      name: 'ExecutionsAborted',
      record: (metrics: PlatformMetrics) =>
        metrics.executionEnded({ tenantId: 'acme', executionId: EXECUTION, outcome: 'aborted' }),
      value: 1,
    },
    {
      name: 'ProvisioningStepDuration',
      record: (metrics: PlatformMetrics) =>
        metrics.provisioningStepTook({
          tenantId: 'acme',
          lifecycle: 'onboarding',
          step: 'schema',
          durationMs: 42,
        }),
      value: 42,
      properties: { lifecycle: 'onboarding', step: 'schema' },
    },
    {
      name: 'ProvisioningDuration',
      record: (metrics: PlatformMetrics) =>
        metrics.provisioningTook({ tenantId: 'acme', lifecycle: 'onboarding', durationMs: 5000 }),
      value: 5000,
    },
    {
      name: 'RecoveryAbandonments',
      record: (metrics: PlatformMetrics) =>
        metrics.recoveryAbandoned({ tenantId: 'acme', target: 'tenant', attempts: 3 }),
      value: 1,
      properties: { target: 'tenant', attempts: '3' },
    },
  ] as const)('writes $name with its unit, the tenant as a property and never as a dimension', (example) => {
    // Prepare
    const { metrics, flush } = emf();

    // Act
    example.record(metrics);
    flush();

    // Assert
    const [record, ...others] = emfWritten();
    expect(others).toEqual([]);
    if (record === undefined) {
      throw new Error('nothing written');
    }
    expect(onlyMetric(record)).toEqual({ Name: example.name, Unit: PLATFORM_METRICS[example.name].unit });
    expect(record[example.name]).toBe(example.value);
    expect(record.tenantId).toBe('acme');
    expect(record.stage).toBe('qa');
    expect(record.service).toBe('tenantflow');
    const [directive] = record._aws.CloudWatchMetrics;
    expect(directive?.Namespace).toBe('tenantflow');
    const dimensionNames = directive?.Dimensions.flat() ?? [];
    expect(dimensionNames).not.toContain('tenantId');
    expect(dimensionNames).not.toContain('executionId');
    const { dimension, properties } = example as {
      readonly dimension?: Record<string, string>;
      readonly properties?: Record<string, string>;
    };
    if (dimension !== undefined) {
      expect(directive?.Dimensions).toEqual([
        ['service', 'stage', 'workflow'],
        ['service', 'stage'],
      ]);
      expect(record).toMatchObject(dimension);
    } else {
      expect(directive?.Dimensions).toEqual([['service', 'stage']]);
    }
    expect(record).toMatchObject(properties ?? {});
  });

  it('writes a task run as its duration and an error count, by workflow, with the task as properties', () => {
    // Prepare
    const { metrics, flush } = emf();

    // Act
    metrics.taskRan({
      tenantId: 'acme',
      executionId: EXECUTION,
      taskId: 'extract',
      workflow: 'etl',
      durationMs: 12.5,
      failed: true,
    });
    flush();

    // Assert
    const [record] = emfWritten();
    expect(record?._aws.CloudWatchMetrics[0]?.Metrics).toEqual([
      { Name: 'TaskDuration', Unit: 'Milliseconds' },
      { Name: 'TaskErrors', Unit: 'Count' },
    ]);
    expect(record).toMatchObject({
      TaskDuration: 12.5,
      TaskErrors: 1,
      workflow: 'etl',
      tenantId: 'acme',
      executionId: EXECUTION,
      taskId: 'extract',
    });
    expect(record?._aws.CloudWatchMetrics[0]?.Dimensions.flat()).not.toContain('taskId');
  });

  it('writes a recovery action by kind (a bounded dimension), and an abandon as an abandonment too', () => {
    // Prepare
    const { metrics, flush } = emf();

    // Act
    metrics.recoveryActed({ tenantId: 'acme', action: 'abandon', finding: 'stale_running' });
    flush();

    // Assert
    const [record] = emfWritten();
    expect(record?._aws.CloudWatchMetrics[0]?.Dimensions).toEqual([
      ['service', 'stage', 'action'],
      ['service', 'stage'],
    ]);
    expect(record).toMatchObject({
      RecoveryActions: 1,
      action: 'abandon',
      finding: 'stale_running',
      tenantId: 'acme',
    });
    const abandonments = emfWritten().find((written) => 'RecoveryAbandonments' in written);
    expect(abandonments).toMatchObject({ RecoveryAbandonments: 1, tenantId: 'acme', target: 'execution' });
  });

  it('writes the auth list size with its limit beside it', () => {
    // Prepare
    const { metrics, flush } = emf();

    // Act
    metrics.proxyAuthListSize({ entries: 57 });
    flush();

    // Assert
    const [record] = emfWritten();
    expect(onlyMetric(record as EmfRecord)).toEqual({ Name: 'ProxyAuthListSize', Unit: 'Count' });
    expect(record).toMatchObject({ ProxyAuthListSize: 57, limit: '200' });
    expect(record).not.toHaveProperty('tenantId');
  });

  it('never puts two tenants in one record: a new subject publishes what was buffered first', () => {
    // Prepare
    const { metrics, flush } = emf();

    // Act
    metrics.executionStarted({ tenantId: 'acme', executionId: EXECUTION, workflow: 'etl' });
    metrics.executionStarted({ tenantId: 'acme', executionId: EXECUTION, workflow: 'etl' });
    metrics.executionStarted({ tenantId: 'globex', executionId: EXECUTION, workflow: 'etl' });
    flush();

    // Assert
    const records = emfWritten();
    expect(records.map((record) => [record.tenantId, record.ExecutionsStarted])).toEqual([
      ['acme', [1, 1]],
      ['globex', 1],
    ]);
  });

  it('writes nothing, and warns of nothing, when there is nothing to publish', () => {
    // Prepare
    const { flush, warnings } = emf();

    // Act
    flush();
    NO_METRICS.executionStarted({ tenantId: 'acme', workflow: 'etl' });

    // Assert
    expect(emfWritten()).toEqual([]);
    expect(warnings).toEqual([]);
  });
});
