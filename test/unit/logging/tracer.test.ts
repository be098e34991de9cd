import { SFNClient } from '@aws-sdk/client-sfn';
import { startTracing, traced, tracingWanted } from '@tenantflow/shared/logging/tracer';
import { afterEach, describe, expect, it, vi } from 'vitest';

const IN_LAMBDA = { AWS_LAMBDA_FUNCTION_NAME: 'tenantflow-qa-run-task' };

afterEach(() => {
  vi.unstubAllEnvs();
});

/** The names of the middlewares on a client's stack: X-Ray's is there once the client is captured. */
function middlewares(client: SFNClient): string[] {
  return client.middlewareStack.identify();
}

describe('tracing', () => {
  it('traces in Lambda only, never under npm start, and not when turned off', () => {
    expect(tracingWanted(IN_LAMBDA)).toBe(true);
    expect(tracingWanted({})).toBe(false);
    expect(tracingWanted({ ...IN_LAMBDA, TENANTFLOW_LOCAL: '1' })).toBe(false);
    expect(tracingWanted({ ...IN_LAMBDA, POWERTOOLS_TRACE_ENABLED: 'false' })).toBe(false);
  });

  it('leaves the AWS SDK clients alone where it does not trace', async () => {
    // Act
    const tracer = await startTracing('tenantflow', { TENANTFLOW_LOCAL: '1' });
    const client = traced(new SFNClient({ region: 'eu-west-1' }));

    // Assert
    expect(tracer).toBeUndefined();
    expect(middlewares(client).join(' ')).not.toMatch(/XRay/i);
  });

  it('captures the AWS SDK clients made after tracing started in Lambda (captureAWSv3Client)', async () => {
    // Prepare: what the Lambda runtime sets
    vi.stubEnv('AWS_EXECUTION_ENV', 'AWS_Lambda_nodejs22.x');
    vi.stubEnv('AWS_LAMBDA_FUNCTION_NAME', 'tenantflow-qa-run-task');

    // Act
    const tracer = await startTracing('tenantflow', process.env);
    const client = traced(new SFNClient({ region: 'eu-west-1' }));

    // Assert
    expect(tracer?.isTracingEnabled()).toBe(true);
    expect(middlewares(client).join(' ')).toMatch(/XRay/i);
  });
});
