import { type App, Tags } from 'aws-cdk-lib';
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
 * The deployed app (`cdk/bin/app.ts`) adds tags ({@link tagTenantflowApp}) and cdk-nag to what
 * this returns; programs that measure or inspect a synthesized stage use it as it is. The RDS
 * Proxy carries {@link stageTags} either way, and no other tag.
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
    proxyTags: stageTags(config.stage),
    description: `tenantflow ${config.stage}: network, Aurora PostgreSQL, RDS Proxy and the database secrets`,
    ...(env === undefined ? {} : { env }),
  });
  const platform = new PlatformStack(app, `tenantflow-${config.stage}-platform`, {
    config,
    data,
    description: `tenantflow ${config.stage}: functions, REST API, workflows, onboarding and offboarding, and the recovery schedule`,
    ...(env === undefined ? {} : { env }),
  });
  return { config, data, platform };
}

/**
 * The tags of a stage: `project` and `stage`. Their values never change for a stage, which is
 * what lets the RDS Proxy carry them (any change to its tags resets its auth list).
 */
export function stageTags(stage: string): Readonly<Record<string, string>> {
  return { project: 'tenantflow', stage };
}

/**
 * Tags every resource and both stacks of the app with {@link stageTags}, except:
 * - `AWS::RDS::DBProxyTargetGroup`: CDK takes it for taggable, but CloudFormation refuses Tags on
 *   it (cfn-lint E3002);
 * - `AWS::RDS::DBProxy`: the proxy's tags are pinned where it is built (`PlatformDatabase`), since
 *   CloudFormation resets its auth list on any update of it; it gets these same fixed values.
 *
 * Stack-level tags are propagated by CloudFormation to every resource, the proxy included, so a
 * tag whose value changes between deployments (a version, a date, a commit) must not be added
 * app-wide: put it on the PlatformStack alone.
 *
 * @example
 * ```ts
 * const { config } = addTenantflowStacks(app);
 * tagTenantflowApp(app, config);
 * ```
 */
export function tagTenantflowApp(app: App, config: Pick<DeploymentConfig, 'stage'>): void {
  const exclude = { excludeResourceTypes: ['AWS::RDS::DBProxyTargetGroup', 'AWS::RDS::DBProxy'] };
  for (const [key, value] of Object.entries(stageTags(config.stage))) {
    Tags.of(app).add(key, value, exclude);
  }
}
