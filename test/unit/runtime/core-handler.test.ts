import type { PlatformCore } from '@tenantflow/shared/runtime/core';
import { coreHandler } from '@tenantflow/shared/runtime/lambda';
import type { Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';

/** Stand-ins for cores: coreHandler only compares them and hands them to the build. */
const coreNamed = (name: string) => ({ name }) as unknown as PlatformCore;
const context = {} as Context;

describe('coreHandler', () => {
  it('builds the handler once per core and reuses it across invocations', async () => {
    // Prepare
    const core = coreNamed('first');
    const builds: PlatformCore[] = [];
    const handler = coreHandler(
      (built) => {
        builds.push(built);
        return async (event: number) => event * 2;
      },
      async () => core,
    );

    // Act
    const results = [await handler(1, context), await handler(2, context), await handler(3, context)];

    // Assert
    expect(results).toEqual([2, 4, 6]);
    expect(builds).toEqual([core]);
  });

  it('builds again on the new core once the cached one was replaced (a rotated password)', async () => {
    // Prepare
    const first = coreNamed('first');
    const second = coreNamed('second');
    let current = first;
    const handler = coreHandler(
      (built) => async () => (built as unknown as { name: string }).name,
      async () => current,
    );
    expect(await handler(undefined, context)).toBe('first');

    // Act
    current = second;

    // Assert
    expect(await handler(undefined, context)).toBe('second');
    expect(await handler(undefined, context)).toBe('second');
  });

  it('does not keep a build that failed: the next invocation builds again', async () => {
    // Prepare
    let attempts = 0;
    const handler = coreHandler(
      () => {
        attempts += 1;
        if (attempts === 1) {
          throw new Error('TENANTFLOW_DATABASE_SECRET_ARN is not set');
        }
        return async () => 'built';
      },
      async () => coreNamed('only'),
    );

    // Act
    const first = handler(undefined, context);

    // Assert
    await expect(first).rejects.toThrow('TENANTFLOW_DATABASE_SECRET_ARN is not set');
    expect(await handler(undefined, context)).toBe('built');
    expect(attempts).toBe(2);
  });

  it('reports a core that cannot be built on every invocation, building no handler', async () => {
    // Prepare
    let builds = 0;
    const handler = coreHandler(
      () => {
        builds += 1;
        return async () => 'never';
      },
      async () => {
        throw new Error('Could not read the platform database secret');
      },
    );

    // Act & Assert
    await expect(handler(undefined, context)).rejects.toThrow('platform database secret');
    await expect(handler(undefined, context)).rejects.toThrow('platform database secret');
    expect(builds).toBe(0);
  });
});
