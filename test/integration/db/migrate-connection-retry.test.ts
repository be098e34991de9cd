import { readdir } from 'node:fs/promises';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { CONTROL_MIGRATIONS_DIR } from '@tenantflow/shared/db/control-schema';
import { DatabaseAdmin } from '@tenantflow/shared/provisioning/database-admin';
import type { Context } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createMigrateHandler } from '../../../functions/ops/migrate.js';
import { findFreePort } from '../../../local/embedded-postgres.js';
import { createTestDatabase } from '../../support/database.js';

/**
 * The migrate function's first connection against a real PostgreSQL reached through a stand-in for
 * an RDS Proxy whose target is not available yet: a TCP front that closes the first connections
 * (or a port nobody listens on yet), then passes the bytes through.
 */

/** A Lambda with its whole timeout ahead of it. */
const context = { getRemainingTimeInMillis: () => 14 * 60_000 } as Context;

/** Short waits, so the backoff takes milliseconds here rather than seconds. */
const FAST_BACKOFF = { initialDelayMs: 20, maxDelayMs: 100 } as const;

interface TcpFront {
  /** Connections it accepted, closed or passed on. */
  readonly accepted: () => number;
  readonly close: () => Promise<void>;
}

/** Listens on `port`, closes the first `refusals` connections at once, and pipes the rest to `target`. */
async function startTcpFront(
  port: number,
  target: { readonly host: string; readonly port: number },
  refusals: number,
): Promise<TcpFront> {
  let accepted = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    if (accepted <= refusals) {
      socket.destroy();
      return;
    }
    const upstream = tcpConnect(target.port, target.host);
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => socket.destroy());
    socket.on('close', () => upstream.destroy());
    socket.pipe(upstream).pipe(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    accepted: () => accepted,
    close: async () => {
      for (const socket of sockets) {
        socket.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Keeps the handler's log lines. */
function recordingLogger() {
  const entries: { level: 'info' | 'error'; message: string; fields: Record<string, unknown> }[] = [];
  const record =
    (level: 'info' | 'error') =>
    (message: unknown, ...extra: unknown[]): void => {
      entries.push({ level, message: String(message), fields: extra[0] as Record<string, unknown> });
    };
  return { entries, info: record('info'), error: record('error') };
}

/** What `promise` rejects with; `undefined` if it resolves. */
function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
}

const RETRY_MESSAGE = 'database not reachable yet, connecting again';

describe('migrate handler, first connection', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let server: URL;
  const fronts: TcpFront[] = [];

  beforeAll(async () => {
    database = await createTestDatabase('tf_connect_retry');
    server = new URL(database.url);
  });

  afterEach(async () => {
    for (const front of fronts.splice(0)) {
      await front.close();
    }
  });

  afterAll(async () => {
    await database?.drop();
  });

  /** The handler with an admin that connects on `port` of 127.0.0.1 instead of the server's. */
  function handlerVia(port: number, maxWaitMs?: number) {
    const adminUrl = new URL(server);
    adminUrl.hostname = '127.0.0.1';
    adminUrl.port = String(port);
    const admin = new DatabaseAdmin({
      adminUrl: adminUrl.toString(),
      // The local form: the admin's own login stands in for the platform role.
      platformRole: decodeURIComponent(server.username),
      tenantMigrations: [],
      lockDownScope: 'database',
    });
    const logger = recordingLogger();
    const migrate = createMigrateHandler({
      database: { admin, registry: { list: async () => [] } },
      logger,
      options: { connectionRetry: { ...FAST_BACKOFF, ...(maxWaitMs === undefined ? {} : { maxWaitMs }) } },
    });
    return { migrate, logger };
  }

  const postgres = () => ({ host: server.hostname, port: Number(server.port) });

  it('migrates once the connections that were closed at once give way to a server', async () => {
    // Prepare: the first three connections are closed before PostgreSQL answers.
    const port = await findFreePort();
    const front = await startTcpFront(port, postgres(), 3);
    fronts.push(front);
    const { migrate, logger } = handlerVia(port);
    const shipped = (await readdir(CONTROL_MIGRATIONS_DIR)).filter((file) => file.endsWith('.sql')).sort();

    // Act
    const summary = await migrate({}, context);

    // Assert
    expect(summary.control.applied).toEqual(shipped);
    expect(summary.complete).toBe(true);
    expect(front.accepted()).toBe(4);
    const retries = logger.entries.filter((entry) => entry.message === RETRY_MESSAGE);
    expect(retries.map((entry) => entry.fields.attempt)).toEqual([1, 2, 3]);
    expect(retries.every((entry) => entry.level === 'info')).toBe(true);
    expect(retries[0]?.fields.error).toEqual({ message: 'Connection terminated unexpectedly' });
    expect(logger.entries.at(-1)).toMatchObject({ level: 'info', message: 'database migrated' });
  });

  it('connects once a port that refused connections starts listening', async () => {
    // Prepare: nothing listens on the port yet; it opens after a few refusals.
    const port = await findFreePort();
    const { migrate, logger } = handlerVia(port);
    const opening = new Promise<void>((resolve, reject) => {
      setTimeout(() => {
        startTcpFront(port, postgres(), 0).then((front) => {
          fronts.push(front);
          resolve();
        }, reject);
      }, 300);
    });

    // Act
    const summary = await migrate({}, context);
    await opening;

    // Assert
    expect(summary.complete).toBe(true);
    const retries = logger.entries.filter((entry) => entry.message === RETRY_MESSAGE);
    expect(retries.length).toBeGreaterThan(0);
    expect(retries[0]?.fields.error).toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('fails with the last connection error once the time to wait is up', async () => {
    // Prepare: nobody ever listens on the port; the handler waits half a second at most.
    const port = await findFreePort();
    const { migrate, logger } = handlerVia(port, 500);
    const started = Date.now();

    // Act
    const error = await rejectionOf(migrate({}, context));

    // Assert
    expect(error).toMatchObject({ code: 'ECONNREFUSED', message: expect.stringContaining(`:${port}`) });
    expect(Date.now() - started).toBeGreaterThanOrEqual(500);
    const retries = logger.entries.filter((entry) => entry.message === RETRY_MESSAGE);
    expect(retries.length).toBeGreaterThan(1);
    expect(logger.entries.some((entry) => entry.message === 'database migrated')).toBe(false);
  });

  it('does not retry a refused password', async () => {
    // Prepare: the server answers, but not to this password.
    const wrong = new URL(server);
    wrong.password = 'not-the-password';
    const admin = new DatabaseAdmin({
      adminUrl: wrong.toString(),
      platformRole: decodeURIComponent(server.username),
      tenantMigrations: [],
      lockDownScope: 'database',
    });
    const logger = recordingLogger();
    const migrate = createMigrateHandler({
      database: { admin, registry: { list: async () => [] } },
      logger,
      options: { connectionRetry: FAST_BACKOFF },
    });

    // Act
    const error = await rejectionOf(migrate({}, context));

    // Assert
    expect(error).toMatchObject({ code: '28P01' });
    expect(logger.entries.filter((entry) => entry.message === RETRY_MESSAGE)).toEqual([]);
  });
});
