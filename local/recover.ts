/**
 * `npm run recover`: one recovery pass now, over every tenant, through the same handler the
 * EventBridge schedule invokes in AWS. A progress bar on a terminal, the summary at the end.
 *
 * Uses DATABASE_URL when given; otherwise the embedded PostgreSQL of `npm start`, whether it is
 * running or not. Executions this pass restarts run in this process, which waits for them before it
 * exits; executions a live `npm start` is running are left to it (its journal says it is alive).
 */
import { join, resolve } from 'node:path';
import { loadConfig } from '@tenantflow/shared/config/config';
import cliProgress from 'cli-progress';
import { withLocalDatabase } from './local-database.js';
import { createLocalRuntime } from './local-runtime.js';
import { loadOrCreateLocalSecrets } from './local-state.js';
import { loadLocalWorkflows } from './workflows-module.js';

const home = resolve(process.env.TENANTFLOW_HOME ?? '.tenantflow');
// The summary is printed below; the JSON log lines are for problems only, unless asked for.
process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';

const failed = await withLocalDatabase(home, async ({ adminUrl, platformUrl }) => {
  const secrets = await loadOrCreateLocalSecrets(home);
  const config = loadConfig({
    ...process.env,
    TENANTFLOW_LOCAL: '1',
    DATABASE_URL: platformUrl,
    TENANTFLOW_ADMIN_DATABASE_URL: adminUrl,
    TENANTFLOW_ADMIN_TOKEN: process.env.TENANTFLOW_ADMIN_TOKEN ?? secrets.adminToken,
    TENANTFLOW_SECRETS: 'local',
    TENANTFLOW_SECRETS_DIR: join(home, 'secrets'),
  });
  const runtime = await createLocalRuntime({ config, home, workflows: await loadLocalWorkflows() });
  try {
    const bar = process.stdout.isTTY
      ? new cliProgress.SingleBar(
          { format: 'recovery [{bar}] {value}/{total} tenants · {eta_formatted} left', hideCursor: true },
          cliProgress.Presets.shades_classic,
        )
      : undefined;
    let barStarted = false;
    const summary = await runtime.recover({
      trigger: 'npm run recover',
      onProgress: ({ tenantsScanned, tenantsTotal }) => {
        if (bar === undefined) {
          return;
        }
        if (!barStarted) {
          bar.start(tenantsTotal, 0);
          barStarted = true;
        }
        bar.setTotal(Math.max(tenantsTotal, tenantsScanned));
        bar.update(tenantsScanned);
      },
    });
    bar?.stop();
    const nonZero = (counts: Record<string, number>) =>
      Object.entries(counts)
        .filter(([, count]) => count > 0)
        .map(([kind, count]) => `${kind} ${count}`)
        .join(', ') || 'none';
    console.log(
      `recovery pass ${summary.runId}: ${summary.tenantsScanned} tenants in ${summary.durationMs} ms`,
    );
    console.log(`  findings: ${nonZero(summary.findings)}`);
    console.log(`  actions:  ${nonZero(summary.actions)}`);
    console.log(`  outcomes: ${nonZero(summary.outcomes)}`);
    console.log('  every action is in tenantflow.recovery_events (run id above)');
    if (summary.actions.start + summary.actions.redrive > 0) {
      console.log('Waiting for the restarted executions to finish (Ctrl-C leaves them to the next pass)…');
      await runtime.orchestrator.drain();
    }
    if (summary.actions.resume_provisioning + summary.actions.resume_deprovisioning > 0) {
      console.log('Waiting for the resumed onboardings and offboardings to finish…');
      await runtime.platform.lifecycleOrchestrator.drain();
    }
    return summary.outcomes.failed;
  } finally {
    await runtime.platform.close();
  }
});

if (failed > 0) {
  console.error(
    `${failed} repair(s) failed; their errors are in the log above and in tenantflow.recovery_events.`,
  );
  process.exitCode = 1;
}
