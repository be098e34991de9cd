import type { App } from 'aws-cdk-lib';
import { type DeploymentConfig, deploymentConfig } from './deployment-config.js';
import { DataStack } from './stacks/data-stack.js';
import { PlatformStack } from './stacks/platform-stack.js';

/** What {@link addTenantflowStacks} added to the app. */
export interface TenantflowStacks {
  readonly config: DeploymentConfig;
  readonly data: DataStack;
  readonly platform: PlatformStack;
}

/**
 * The two stacks of one stage, configured from the app's context (`stage`, `account`, `region`,
 * `examples`, …; see `deploymentConfig`): the DataStack (network, database, proxy, admin and
 * platform secrets) and the PlatformStack (layer, functions, API, one state machine per installed
 * workflow, the recovery schedule) that runs on it. The example workflows are installed only with
 * `examples` set to true. The stacks are environment-agnostic unless both `account` and `region`
 * are given, so synthesis needs no AWS credentials.
 *
 * The deployed app (`cdk/bin/app.ts`) adds tags and cdk-nag to what this returns; programs that
 * measure or inspect a synthesized stage use it as it is.
 *
 * @example
 * ```ts
 * const app = new App({ outdir, context: { stage: 'bench' } });
 * const { platform } = addTenantflowStacks(app);
 * const assembly = app.synth();
 * ```
 */
export function addTenantflowStacks(app: App): TenantflowStacks {
  const config = deploymentConfig(app.node);
  const env =
    config.account !== undefined && config.region !== undefined
      ? { account: config.account, region: config.region }
      : undefined;

  const data = new DataStack(app, `tenantflow-${config.stage}-data`, {
    config,
    description: `tenantflow ${config.stage}: network, Aurora PostgreSQL, RDS Proxy and the database secrets`,
    ...(env === undefined ? {} : { env }),
  });
  const platform = new PlatformStack(app, `tenantflow-${config.stage}-platform`, {
    config,
    data,
    description: `tenantflow ${config.stage}: functions, REST API, workflows and the recovery schedule`,
    ...(env === undefined ? {} : { env }),
  });
  return { config, data, platform };
}
