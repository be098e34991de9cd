import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigurationError } from '@tenantflow/shared/kernel/errors';
import { WorkflowRegistry } from '@tenantflow/shared/workflows/workflow-registry';
import { workflows as installed } from '../workflows/index.js';

/**
 * The workflows the local platform runs: the installation's (`workflows/index.ts`), or the
 * `workflows` export of the module named by `TENANTFLOW_WORKFLOWS_MODULE`, to try workflows of your
 * own without editing the installation (the crash tests use it too). Lambdas always use
 * `workflows/index.ts`, which is what CDK deploys.
 */
export async function loadLocalWorkflows(
  modulePath = process.env.TENANTFLOW_WORKFLOWS_MODULE,
): Promise<WorkflowRegistry> {
  if (modulePath === undefined || modulePath === '') {
    return installed;
  }
  let loaded: { workflows?: unknown };
  try {
    loaded = (await import(pathToFileURL(resolve(modulePath)).href)) as { workflows?: unknown };
  } catch (cause) {
    throw new ConfigurationError(`TENANTFLOW_WORKFLOWS_MODULE: cannot import '${modulePath}'`, { cause });
  }
  if (!(loaded.workflows instanceof WorkflowRegistry)) {
    throw new ConfigurationError(
      `TENANTFLOW_WORKFLOWS_MODULE: '${modulePath}' must export \`workflows\`, a WorkflowRegistry (see workflows/index.ts)`,
    );
  }
  return loaded.workflows;
}
