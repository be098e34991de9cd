import { Logger } from '@aws-lambda-powertools/logger';
import { createEmfMetrics } from '@tenantflow/shared/logging/powertools-metrics';
import type { PlatformCore } from '@tenantflow/shared/runtime/core';
import { coreHandler, invocationKeysOf } from '@tenantflow/shared/runtime/lambda';
import type { Context } from 'aws-lambda';
import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from 'vitest';

const ACME_EXECUTION = '0b8a1c2e-4f5d-4e6a-9b7c-8d9e0f1a2b3c';
const GLOBEX_EXECUTION = '7e6d5c4b-3a29-4817-8f6e-5d4c3b2a1908';

/** A Lambda context as the runtime gives one: enough for `injectLambdaContext`. */
function lambdaContext(requestId: string): Context {
  return {
    functionName: 'tenantflow-qa-run-task',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:tenantflow-qa-run-task',
    memoryLimitInMB: '1024',
    awsRequestId: requestId,
    logGroupName: '/tenantflow/qa/lambda/run-task',
    logStreamName: 'stream',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => 30_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

let stdout: MockInstance<typeof process.stdout.write>;

/** Every JSON line written on stdout since the test began. */
function jsonLines(): Array<Record<string, unknown>> {
  return stdout.mock.calls
    .flatMap(([chunk]) => String(chunk).split('\n'))
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
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

/**
 * A handler as `functions/workflow/run-task.ts` builds one: a module-scope logger given to
 * `coreHandler`, and a build that logs and records a metric on each invocation. The core is a
 * stand-in with the real EMF metrics.
 */
function runTaskLike() {
  const logger = new Logger({ serviceName: 'tenantflow-run-task', logLevel: 'INFO' });
  const { metrics, sink } = createEmfMetrics({
    stage: 'qa',
    namespace: 'tenantflow',
    serviceName: 'tenantflow',
  });
  const core = { metrics, metricSink: sink } as unknown as PlatformCore;
  const handler = coreHandler(
    () => async (event: { tenantId?: string; executionId?: string; addKey?: string }) => {
      if (event.addKey !== undefined) {
        // What a service may do mid-invocation: a temporary key of its own.
        logger.appendKeys({ scheduleId: event.addKey });
      }
      logger.info('task ran');
      if (event.tenantId !== undefined) {
        metrics.taskRan({
          tenantId: event.tenantId,
          executionId: event.executionId,
          workflow: 'etl',
          durationMs: 3,
          failed: false,
        });
      }
      return 'ok';
    },
    { logger, currentCore: async () => core },
  );
  return { handler };
}

describe('coreHandler observability', () => {
  it('keys each log line by the invocation tenant, execution and task, and the Lambda context', async () => {
    // Prepare
    const { handler } = runTaskLike();

    // Act
    await handler(
      { tenantId: 'acme', executionId: ACME_EXECUTION, taskId: 'extract' } as never,
      lambdaContext('req-1'),
    );

    // Assert
    const [line] = jsonLines().filter((entry) => entry.message === 'task ran');
    expect(line).toMatchObject({
      tenantId: 'acme',
      executionId: ACME_EXECUTION,
      taskId: 'extract',
      function_request_id: 'req-1',
      function_name: 'tenantflow-qa-run-task',
    });
  });

  it("never logs one tenant's keys on the next invocation of the same warm handler", async () => {
    // Prepare
    const { handler } = runTaskLike();
    await handler(
      { tenantId: 'acme', executionId: ACME_EXECUTION, taskId: 'extract', addKey: 'acme-nightly' } as never,
      lambdaContext('req-acme'),
    );

    // Act
    await handler(
      { tenantId: 'globex', executionId: GLOBEX_EXECUTION } as never,
      lambdaContext('req-globex'),
    );
    await handler({} as never, lambdaContext('req-none'));

    // Assert
    const lines = jsonLines().filter((entry) => entry.message === 'task ran');
    expect(
      lines.map((line) => [
        line.function_request_id,
        line.tenantId,
        line.executionId,
        line.taskId,
        line.scheduleId,
      ]),
    ).toEqual([
      ['req-acme', 'acme', ACME_EXECUTION, 'extract', 'acme-nightly'],
      ['req-globex', 'globex', GLOBEX_EXECUTION, undefined, undefined],
      ['req-none', undefined, undefined, undefined, undefined],
    ]);
  });

  it('clears the keys when an invocation fails too', async () => {
    // Prepare
    const logger = new Logger({ serviceName: 'tenantflow-run-task', logLevel: 'INFO' });
    const handler = coreHandler(
      () => async (event: { fail?: boolean }) => {
        logger.info('task ran');
        if (event.fail) {
          throw new Error('task failed');
        }
        return 'ok';
      },
      { logger, currentCore: async () => ({}) as PlatformCore },
    );
    await expect(handler({ tenantId: 'acme', fail: true } as never, lambdaContext('req-1'))).rejects.toThrow(
      'task failed',
    );

    // Act
    await handler({} as never, lambdaContext('req-2'));

    // Assert
    const lines = jsonLines().filter((entry) => entry.message === 'task ran');
    expect(lines.map((line) => line.tenantId)).toEqual(['acme', undefined]);
  });

  it('publishes the metrics of each invocation when it ends, one EMF record per invocation', async () => {
    // Prepare
    const { handler } = runTaskLike();

    // Act
    await handler({ tenantId: 'acme', executionId: ACME_EXECUTION } as never, lambdaContext('req-1'));
    const afterFirst = jsonLines().filter((line) => '_aws' in line);
    await handler({ tenantId: 'globex', executionId: GLOBEX_EXECUTION } as never, lambdaContext('req-2'));

    // Assert
    expect(afterFirst.map((record) => record.tenantId)).toEqual(['acme']);
    const records = jsonLines().filter((line) => '_aws' in line);
    expect(records.map((record) => [record.tenantId, record.TaskDuration])).toEqual([
      ['acme', 3],
      ['globex', 3],
    ]);
  });
});

describe('invocationKeysOf', () => {
  it('reads the ids of a Step Functions payload and of an API Gateway path', () => {
    expect(
      invocationKeysOf({ tenantId: 'acme', executionId: ACME_EXECUTION, taskId: 'extract', other: 'x' }),
    ).toEqual({
      tenantId: 'acme',
      executionId: ACME_EXECUTION,
      taskId: 'extract',
    });
    expect(
      invocationKeysOf({
        httpMethod: 'GET',
        pathParameters: { tenantId: 'acme', executionId: ACME_EXECUTION },
      }),
    ).toEqual({ tenantId: 'acme', executionId: ACME_EXECUTION });
    expect(invocationKeysOf({ tenantId: 42, pathParameters: null })).toEqual({});
    expect(invocationKeysOf(undefined)).toEqual({});
    expect(invocationKeysOf({ tenantId: 'a'.repeat(500) }).tenantId).toHaveLength(128);
  });
});
