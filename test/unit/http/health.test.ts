import { createLogger } from '@tenantflow/shared/logging/logger';
import { describe, expect, it } from 'vitest';
import { createHealthApi } from '../../../functions/api/health.js';
import { lambdaContext, restEvent } from '../../support/api-gateway-events.js';

/** The open health check, with the database answering or not. */
describe('GET /health', () => {
  const check = (query: () => Promise<unknown>) =>
    createHealthApi({
      db: { query } as never,
      stage: 'test',
      logger: createLogger('test'),
    })(restEvent({ resource: '/health', path: '/health', httpMethod: 'GET', headers: {} }), lambdaContext());

  it('answers 200 when the database answers', async () => {
    const response = await check(async () => ({ rows: [{ '?column?': 1 }] }));
    expect(response.statusCode).toBe(200);
    expect(response.headers?.['retry-after']).toBeUndefined();
    expect(JSON.parse(response.body)).toEqual({ status: 'ok', stage: 'test', checks: { database: 'ok' } });
  });

  it('answers 503 with Retry-After when it does not, so a load balancer or client waits and retries', async () => {
    const response = await check(() => Promise.reject(new Error('connect ECONNREFUSED')));
    expect(response.statusCode).toBe(503);
    expect(response.headers?.['retry-after']).toBe('5');
    expect(JSON.parse(response.body)).toEqual({
      status: 'unavailable',
      stage: 'test',
      checks: { database: 'unreachable' },
    });
  });
});
