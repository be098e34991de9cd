import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import pg from 'pg';
import { findFreePort } from '../../local/embedded-postgres.js';

/** How to get pgbouncer, shown wherever a suite is skipped or CI fails for the lack of it. */
export const PGBOUNCER_INSTALL_HINT = 'apt-get install -y pgbouncer';

export interface RunningPgBouncer {
  /** The same database and login as the target, through the pooler. */
  readonly url: string;
  stop(): Promise<void>;
}

/** Where pgbouncer is, if installed (Debian puts it in /usr/sbin, often not on a user's PATH). */
export async function findPgBouncer(): Promise<string | undefined> {
  const directories = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin'];
  for (const directory of directories.filter((entry) => entry.length > 0)) {
    const candidate = join(directory, 'pgbouncer');
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * Starts pgbouncer in **transaction** pooling mode in front of `target`'s database, a stand-in for
 * RDS Proxy's multiplexing: a server session is handed to whichever client runs the next
 * transaction, so whatever session state one client leaves behind, the next one inherits.
 * `serverConnections` caps the server sessions (1 puts every client on the same one).
 *
 * pgbouncer refuses to run as root, so as root it runs as `postgres` (RECIPES).
 */
export async function startPgBouncer(
  executable: string,
  target: URL,
  options: { readonly serverConnections: number },
): Promise<RunningPgBouncer> {
  const directory = await mkdtemp(join(tmpdir(), 'tenantflow-pgbouncer-'));
  const port = await findFreePort();
  const user = decodeURIComponent(target.username);
  const password = decodeURIComponent(target.password);
  const database = target.pathname.slice(1);
  const quote = (text: string) => `"${text.replaceAll('"', '""')}"`;
  await writeFile(join(directory, 'userlist.txt'), `${quote(user)} ${quote(password)}\n`, { mode: 0o600 });
  await writeFile(
    join(directory, 'pgbouncer.ini'),
    [
      '[databases]',
      `${database} = host=${target.hostname} port=${target.port || 5432} dbname=${database}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = scram-sha-256',
      `auth_file = ${join(directory, 'userlist.txt')}`,
      'pool_mode = transaction',
      `default_pool_size = ${options.serverConnections}`,
      'max_client_conn = 200',
      `logfile = ${join(directory, 'pgbouncer.log')}`,
      `pidfile = ${join(directory, 'pgbouncer.pid')}`,
      '',
    ].join('\n'),
  );
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    for (const file of ['', 'userlist.txt', 'pgbouncer.ini']) {
      await chown(join(directory, file), uid, gid);
    }
  }
  const child = asRoot
    ? spawn('runuser', ['-u', 'postgres', '--', executable, join(directory, 'pgbouncer.ini')], {
        stdio: 'ignore',
      })
    : spawn(executable, [join(directory, 'pgbouncer.ini')], { stdio: 'ignore' });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const url = new URL(target);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  const stop = async () => {
    process.removeListener('exit', killOnExit);
    await terminate(child);
    await rm(directory, { recursive: true, force: true });
  };
  try {
    await waitUntilServing(url.toString(), child);
  } catch (error) {
    await stop();
    throw error;
  }
  return { url: url.toString(), stop };
}

async function waitUntilServing(url: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 10_000;
  let exited: string | undefined;
  child.once('exit', (code, signal) => {
    exited = `pgbouncer exited (${signal ?? `code ${code}`}) before serving`;
  });
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (exited !== undefined) {
      throw new Error(exited);
    }
    const client = new pg.Client({ connectionString: url });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('SELECT 1');
      return;
    } catch (error) {
      lastError = error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  throw new Error('pgbouncer did not serve within 10 s', { cause: lastError });
}

async function terminate(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) {
    return;
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}
