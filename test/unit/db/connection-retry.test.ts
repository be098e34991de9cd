import {
  type ConnectionRetryEvent,
  connectionRetryDelay,
  isConnectionFailure,
  withConnectionRetry,
} from '@tenantflow/shared/db/connections';
import { MigrationError } from '@tenantflow/shared/kernel/errors';
import type { DatabaseAdmin } from '@tenantflow/shared/provisioning/database-admin';
import { prepareControlSchema } from '@tenantflow/shared/provisioning/database-migrator';
import type { Context } from 'aws-lambda';
import type pg from 'pg';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createMigrateHandler, SAFETY_MARGIN_MS } from '../../../functions/ops/migrate.js';

/** An error as Node (a system error code) or pg (a SQLSTATE) throws it. */
function errorWithCode(code: string, message = `failed with ${code}`): Error {
  return Object.assign(new Error(message), { code });
}

/**
 * A clock that only moves when the code under test sleeps, and the waits it slept: the backoff is
 * then exact, and a five-minute give-up takes no time.
 */
function fakeClock(start = 1_000_000) {
  let time = start;
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => time,
    sleep: async (ms: number) => {
      sleeps.push(ms);
      time += ms;
    },
    advance: (ms: number) => {
      time += ms;
    },
  };
}

/** What `promise` rejects with; `undefined` if it resolves. */
function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
}

describe('isConnectionFailure', () => {
  it.each([
    ['a refused connection', errorWithCode('ECONNREFUSED')],
    ['a TCP timeout', errorWithCode('ETIMEDOUT')],
    ['a host name not resolved (yet)', errorWithCode('ENOTFOUND')],
    ['a temporary DNS failure', errorWithCode('EAI_AGAIN')],
    ['a connection reset while opening', errorWithCode('ECONNRESET')],
    ['an unreachable host', errorWithCode('EHOSTUNREACH')],
    ['a server still starting (57P03 cannot_connect_now)', errorWithCode('57P03')],
    ['a connection failure (08006)', errorWithCode('08006')],
    ['a connection the server could not establish (08001)', errorWithCode('08001')],
    ['a connection closed before it was ready', new Error('Connection terminated unexpectedly')],
    ["pg's connection timeout", new Error('timeout expired')],
    ["pg-pool's connection timeout", new Error('Connection terminated due to connection timeout')],
    [
      'every address of a host refusing (AggregateError)',
      new AggregateError([errorWithCode('ECONNREFUSED'), errorWithCode('ECONNREFUSED')], 'connect failed'),
    ],
    ['a wrapped connection failure', new Error('could not connect', { cause: errorWithCode('ETIMEDOUT') })],
  ])('retries %s', (_label, error) => {
    expect(isConnectionFailure(error)).toBe(true);
  });

  it.each([
    ['a refused password (28P01)', errorWithCode('28P01', 'password authentication failed for user "x"')],
    ['a missing database (3D000)', errorWithCode('3D000')],
    ['a missing privilege (42501)', errorWithCode('42501')],
    ['a failed statement (42P01)', errorWithCode('42P01')],
    ['a statement timeout (57014)', errorWithCode('57014')],
    ['a failed migration', new MigrationError('Migration 0007_x.sql failed')],
    ['a connection this client closed itself', new Error('Connection terminated')],
    ['a TLS set-up failure', new Error('The server does not support SSL connections')],
    ['a programming error', new TypeError("Cannot read properties of undefined (reading 'query')")],
    ['something that is not an error', 'ECONNREFUSED'],
    ['nothing', undefined],
  ])('does not retry %s', (_label, error) => {
    expect(isConnectionFailure(error)).toBe(false);
  });
});

describe('connectionRetryDelay', () => {
  it('doubles from 1 s up to 20 s, each wait between half and all of its ceiling', () => {
    // Prepare
    const failures = [1, 2, 3, 4, 5, 6, 7, 8];

    // Act
    const shortest = failures.map((failure) => connectionRetryDelay(failure, { random: () => 0 }));
    const longest = failures.map((failure) => connectionRetryDelay(failure, { random: () => 0.999_999 }));

    // Assert
    expect(shortest).toEqual([500, 1_000, 2_000, 4_000, 8_000, 10_000, 10_000, 10_000]);
    expect(longest).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 20_000, 20_000, 20_000]);
  });

  it('takes its first wait and its cap from the options', () => {
    expect(connectionRetryDelay(1, { initialDelayMs: 200, random: () => 0.5 })).toBe(150);
    expect(connectionRetryDelay(10, { initialDelayMs: 200, maxDelayMs: 1_000, random: () => 0 })).toBe(500);
  });
});

describe('withConnectionRetry', () => {
  it('connects again after connection failures, waiting longer each time, and says so before each wait', async () => {
    // Prepare: refused twice, then the connection opens.
    const clock = fakeClock();
    const connect = vi
      .fn<() => Promise<string>>()
      .mockRejectedValueOnce(errorWithCode('ECONNREFUSED'))
      .mockRejectedValueOnce(new Error('Connection terminated unexpectedly'))
      .mockResolvedValueOnce('connected');
    const retries: ConnectionRetryEvent[] = [];

    // Act
    const result = await withConnectionRetry(connect, {
      ...clock,
      random: () => 0,
      onRetry: (retry) => retries.push(retry),
    });

    // Assert
    expect(result).toBe('connected');
    expect(connect).toHaveBeenCalledTimes(3);
    expect(clock.sleeps).toEqual([500, 1_000]);
    expect(retries.map(({ attempt, delayMs, elapsedMs }) => ({ attempt, delayMs, elapsedMs }))).toEqual([
      { attempt: 1, delayMs: 500, elapsedMs: 0 },
      { attempt: 2, delayMs: 1_000, elapsedMs: 500 },
    ]);
    expect(retries[0]?.error).toMatchObject({ code: 'ECONNREFUSED' });
    expect(retries[0]?.deadline).toBe(1_000_000 + 300_000);
  });

  it('throws any other error at once, without waiting', async () => {
    // Prepare
    const clock = fakeClock();
    const refused = errorWithCode('28P01', 'password authentication failed for user "tenantflow_admin"');
    const connect = vi.fn<() => Promise<string>>().mockRejectedValue(refused);
    const onRetry = vi.fn();

    // Act
    const error = await rejectionOf(withConnectionRetry(connect, { ...clock, onRetry }));

    // Assert
    expect(error).toBe(refused);
    expect(connect).toHaveBeenCalledTimes(1);
    expect(clock.sleeps).toEqual([]);
    expect(onRetry).not.toHaveBeenCalled();
  });

  it('gives up after 5 minutes by default, with the last attempt at the deadline, and throws its error', async () => {
    // Prepare: every attempt refused, each with an error of its own.
    const clock = fakeClock();
    const started = clock.now();
    const attemptsAt: number[] = [];
    const errors: Error[] = [];
    const connect = async (): Promise<never> => {
      attemptsAt.push(clock.now());
      const error = errorWithCode('ECONNREFUSED', `refused, attempt ${errors.length + 1}`);
      errors.push(error);
      throw error;
    };

    // Act
    const error = await rejectionOf(withConnectionRetry(connect, { ...clock, random: () => 0.5 }));

    // Assert
    expect(error).toBe(errors.at(-1));
    expect(attemptsAt.at(-1)).toBe(started + 300_000);
    expect(attemptsAt.every((at) => at <= started + 300_000)).toBe(true);
    // 0.75 s, 1.5 s, 3 s, 6 s, 12 s, then 15 s (three quarters of the 20 s cap) until the deadline.
    expect(clock.sleeps.slice(0, 6)).toEqual([750, 1_500, 3_000, 6_000, 12_000, 15_000]);
    expect(clock.sleeps.reduce((total, ms) => total + ms, 0)).toBe(300_000);
    expect(attemptsAt).toHaveLength(clock.sleeps.length + 1);
  });

  it('stops at an earlier deadline (a Lambda with little time left)', async () => {
    // Prepare
    const clock = fakeClock();
    const deadline = clock.now() + 10_000;
    const connect = vi.fn<() => Promise<never>>().mockRejectedValue(errorWithCode('ETIMEDOUT'));

    // Act
    const error = await rejectionOf(withConnectionRetry(connect, { ...clock, deadline, random: () => 0 }));

    // Assert: 0.5 + 1 + 2 + 4 s, then the 2.5 s left, and one last attempt at the deadline.
    expect(error).toMatchObject({ code: 'ETIMEDOUT' });
    expect(clock.sleeps).toEqual([500, 1_000, 2_000, 4_000, 2_500]);
    expect(clock.now()).toBe(deadline);
    expect(connect).toHaveBeenCalledTimes(6);
  });

  it('makes one attempt only when the deadline has already passed', async () => {
    // Prepare
    const clock = fakeClock();
    const connect = vi.fn<() => Promise<never>>().mockRejectedValue(errorWithCode('ECONNREFUSED'));

    // Act
    const error = await rejectionOf(withConnectionRetry(connect, { ...clock, deadline: clock.now() - 1 }));

    // Assert
    expect(error).toMatchObject({ code: 'ECONNREFUSED' });
    expect(connect).toHaveBeenCalledTimes(1);
    expect(clock.sleeps).toEqual([]);
  });

  it('counts the time an attempt itself takes (a connection timing out) against the deadline', async () => {
    // Prepare: each attempt takes pg's 5 s connection timeout before it fails.
    const clock = fakeClock();
    const deadline = clock.now() + 20_000;
    const connect = vi.fn(async (): Promise<never> => {
      clock.advance(5_000);
      throw new Error('timeout expired');
    });

    // Act
    const error = await rejectionOf(withConnectionRetry(connect, { ...clock, deadline, random: () => 0 }));

    // Assert: attempts start at 0, 5.5 s and 11.5 s (after the waits) and 18.5 s; the fourth fails past the deadline.
    expect((error as Error).message).toBe('timeout expired');
    expect(clock.sleeps).toEqual([500, 1_000, 2_000]);
    expect(connect).toHaveBeenCalledTimes(4);
  });
});

describe('prepareControlSchema with a connection retry', () => {
  /** A DatabaseAdmin whose connections fail to open `refusals` times, then open on `client`. */
  function flakyAdmin(refusals: number, client: Pick<pg.Client, 'query'>) {
    let opened = 0;
    const admin = {
      withConnection: vi.fn(async (work: (client: pg.Client) => Promise<unknown>) => {
        opened++;
        if (opened <= refusals) {
          throw errorWithCode('ECONNREFUSED');
        }
        return work(client as pg.Client);
      }),
    };
    return admin;
  }

  it('does not open a second connection when the first one is lost during the work', async () => {
    // Prepare: refused once; then the connection opens and is cut at the first statement.
    const lost = new Error('Connection terminated unexpectedly');
    const admin = flakyAdmin(1, { query: vi.fn().mockRejectedValue(lost) } as Pick<pg.Client, 'query'>);
    const clock = fakeClock();

    // Act
    const error = await rejectionOf(
      prepareControlSchema(admin as unknown as DatabaseAdmin, { connectionRetry: { ...clock } }),
    );

    // Assert: the refusal was retried, the lost connection was not.
    expect(admin.withConnection).toHaveBeenCalledTimes(2);
    expect(clock.sleeps).toHaveLength(1);
    expect(error === lost || (error as Error).cause === lost).toBe(true);
  });

  it('makes one attempt without a connection retry', async () => {
    // Prepare
    const admin = flakyAdmin(1, { query: vi.fn() } as Pick<pg.Client, 'query'>);

    // Act
    const error = await rejectionOf(prepareControlSchema(admin as unknown as DatabaseAdmin));

    // Assert
    expect(error).toMatchObject({ code: 'ECONNREFUSED' });
    expect(admin.withConnection).toHaveBeenCalledTimes(1);
  });
});

describe('migrate handler, database not reachable', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("waits no longer than the Lambda's remaining time allows, logging every retry, and fails with the last error", async () => {
    // Prepare: a Lambda with 90 s left after the safety margin; the database never answers.
    vi.useFakeTimers({ now: 1_000_000, toFake: ['Date'] });
    const admin = {
      withConnection: vi.fn(async (): Promise<never> => {
        throw errorWithCode('ECONNREFUSED', 'connect ECONNREFUSED 10.40.1.7:5432');
      }),
    };
    const infos: { message: string; fields: Record<string, unknown> }[] = [];
    const migrate = createMigrateHandler({
      database: { admin: admin as unknown as DatabaseAdmin, registry: { list: async () => [] } },
      logger: {
        info: (message: unknown, ...extra: unknown[]) => {
          infos.push({ message: String(message), fields: extra[0] as Record<string, unknown> });
        },
        error: () => {},
      },
      options: {
        connectionRetry: {
          random: () => 0,
          sleep: async (ms) => {
            vi.setSystemTime(Date.now() + ms);
          },
        },
      },
    });
    const started = Date.now();
    const context = { getRemainingTimeInMillis: () => SAFETY_MARGIN_MS + 90_000 } as Context;

    // Act
    const error = await rejectionOf(migrate({}, context));

    // Assert
    expect(error).toMatchObject({ code: 'ECONNREFUSED' });
    expect(Date.now()).toBe(started + 90_000);
    expect(infos.length).toBe(admin.withConnection.mock.calls.length - 1);
    expect(infos[0]).toEqual({
      message: 'database not reachable yet, connecting again',
      fields: {
        attempt: 1,
        retryInMs: 500,
        elapsedMs: 0,
        giveUpAt: new Date(started + 90_000).toISOString(),
        error: { message: 'connect ECONNREFUSED 10.40.1.7:5432', code: 'ECONNREFUSED' },
      },
    });
  });
});
