import { join } from 'node:path';
import { ArnFormat, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { LogLevel, NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as rds from 'aws-cdk-lib/aws-rds';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import { acknowledgeWildcardResource } from './nag.js';
import { PROJECT_ROOT, type SharedLayer } from './shared-layer.js';
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

/** The Amazon CA certificates, RDS's included, that the Node.js Lambda runtimes ship but no longer load. */
export const LAMBDA_RDS_CA_BUNDLE = '/var/runtime/ca-cert.pem';

/** Where the functions run: isolated subnets, one security group that reaches the proxy and the endpoints. */
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

/**
 * Runs after esbuild (`node --eval`, arguments: output directory, project root, handler path, layer
 * package). `NodejsFunction` has no esbuild plugin hook, and esbuild writes an external relative
 * import verbatim (`../../shared/platform.js` from `functions/`, `../shared/...` from `workflows/`
 * and `examples/`), which from the bundle's place would point at files that are not there. So:
 * 1. From esbuild's metafile: each `shared/` import esbuild left out, checked to resolve (from its
 *    importer) into `shared/`, and the layer module it names (`@tenantflow/platform/shared/platform.js`);
 *    no file of `shared/` may have been bundled.
 * 2. In the bundle, exactly those import specifiers are replaced, each at least once, and nothing
 *    else that looks like one remains.
 * 3. The source map's generated columns after each replacement are shifted by the length it added
 *    (esbuild puts the imports on the same minified line as the code), and its `sources` are made
 *    relative to the handler's path as if the package were the project (`../../workflows/index.ts`),
 *    so stack traces name project files and the asset hash does not depend on where cdk.out is.
 * 4. The bundle and its map move to the handler's path (`functions/api/tenants.mjs` + `.mjs.map`);
 *    esbuild's `index.*` files are removed.
 * Any surprise fails the synthesis instead of shipping a bundle that cannot load.
 */
const LINK_BUNDLE_SCRIPT = String.raw`
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { posix, relative, resolve } from 'node:path';
const [outputDir, projectRoot, handlerPath, packageName] = process.argv.slice(1);
const fail = (message) => {
  console.error('TenantFunction ' + handlerPath + ': ' + message);
  process.exit(1);
};
const read = (name) => readFileSync(resolve(outputDir, name), 'utf8');

const linked = new Map();
for (const [input, { imports }] of Object.entries(JSON.parse(read('index.meta.json')).inputs)) {
  if (input.startsWith('shared/')) fail(input + ' was bundled: it must come from the shared layer');
  for (const { path, external } of imports) {
    const match = /^(?:\.\.\/)+shared\/(.+)$/.exec(path);
    if (!external || match === null) continue;
    const inShared = relative(resolve(projectRoot, 'shared'), resolve(projectRoot, posix.dirname(input), path));
    if (inShared !== match[1]) fail(input + " imports '" + path + "', which is not in shared/");
    linked.set(path, packageName + '/shared/' + match[1]);
  }
}

const code = read('index.mjs');
const edits = [];
const used = new Set();
const linkedCode = code.replace(
  /\b(from|import)(\s*\(?\s*)(["'])((?:\.\.\/)+shared\/[^"'\n]+)\3/g,
  (whole, keyword, between, quote, path, offset) => {
    const target = linked.get(path);
    if (target === undefined) fail("the bundle imports '" + path + "', which esbuild did not report as shared/");
    used.add(path);
    edits.push({ offset: offset + keyword.length + between.length + 1, delta: target.length - path.length });
    return keyword + between + quote + target + quote;
  },
);
for (const path of linked.keys()) {
  if (!used.has(path)) fail("esbuild reported the import '" + path + "', but it is not in the bundle");
}

const map = JSON.parse(read('index.mjs.map'));
const shifts = new Map();
for (const edit of edits) {
  const before = code.slice(0, edit.offset);
  const line = before.split('\n').length - 1;
  const column = edit.offset - (before.lastIndexOf('\n') + 1);
  shifts.set(line, [...(shifts.get(line) ?? []), { column, delta: edit.delta }]);
}
const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const lines = map.mappings.split(';');
for (const [line, lineShifts] of shifts) {
  let column = 0;
  let previous = 0;
  let applied = 0;
  let total = 0;
  lines[line] = lines[line]
    .split(',')
    .map((segment) => {
      if (segment === '') return segment;
      let value = 0;
      let bits = 0;
      let at = 0;
      let digit;
      do {
        digit = BASE64.indexOf(segment[at++] ?? '');
        if (digit < 0) fail('cannot read the source map');
        value += (digit & 31) * 2 ** bits;
        bits += 5;
      } while (digit & 32);
      column += value % 2 === 1 ? -Math.floor(value / 2) : value / 2;
      while (applied < lineShifts.length && lineShifts[applied].column < column) total += lineShifts[applied++].delta;
      const delta = column + total - previous;
      previous = column + total;
      let vlq = delta < 0 ? -delta * 2 + 1 : delta * 2;
      let encoded = '';
      do {
        const low = vlq % 32;
        vlq = Math.floor(vlq / 32);
        encoded += BASE64[vlq > 0 ? low + 32 : low];
      } while (vlq > 0);
      return encoded + segment.slice(at);
    })
    .join(',');
}
map.mappings = lines.join(';');
const bundleDirectory = posix.dirname(handlerPath);
map.sources = map.sources.map((source) => {
  const inProject = relative(projectRoot, resolve(outputDir, source));
  if (inProject.startsWith('..')) fail('the source map names a file outside the project: ' + source);
  return posix.relative(bundleDirectory, inProject);
});

const trailer = /\/\/# sourceMappingURL=index\.mjs\.map\s*$/;
if (!trailer.test(linkedCode)) fail('esbuild wrote no sourceMappingURL comment for index.mjs.map');
const name = posix.basename(handlerPath) + '.mjs';
mkdirSync(resolve(outputDir, bundleDirectory), { recursive: true });
writeFileSync(resolve(outputDir, handlerPath + '.mjs'), linkedCode.replace(trailer, '//# sourceMappingURL=' + name + '.map\n'));
writeFileSync(resolve(outputDir, handlerPath + '.mjs.map'), JSON.stringify(map));
for (const file of ['index.mjs', 'index.mjs.map', 'index.meta.json']) rmSync(resolve(outputDir, file));
`;

/** A word for `bash -c`: single-quoted, with any single quote in it closed, escaped and reopened. */
function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

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
 * A tenantflow Lambda: a `NodejsFunction` with the platform's defaults, so a stack only says which
 * handler and what it may do.
 *
 * - Node.js 22 on ARM64, with the {@link SharedLayer}; an ESM bundle (with the `createRequire`
 *   banner) of the handler and the application code it imports (`workflows/` and `examples/` for
 *   the functions that know the workflows), minified with names kept, with a source map and
 *   `NODE_OPTIONS=--enable-source-maps`. Nothing of `shared/` is in it: the handlers' relative
 *   imports of `shared/` are left out by esbuild and then pointed at the layer's package
 *   (`../../shared/platform.js` becomes `@tenantflow/platform/shared/platform.js`, see
 *   `LINK_BUNDLE_SCRIPT`), so every function, and every module of one, shares the layer's single
 *   copy of each `shared/` module. The layer's packages and `@aws-sdk/*` are external too.
 * - The bundle sits at the handler's own path (`functions/api/tenants.mjs`, handler
 *   `functions/api/tenants.handler`, map `functions/api/tenants.mjs.map`), so the handler string
 *   and a stack trace's paths read like the project. The migrations are in the layer, beside
 *   `shared/`.
 * - Its own log group with the configured retention, X-Ray active tracing, the `lambdas` subnets
 *   and the given security group.
 * - Its own role, without AWS managed policies: writing to its log group only, the ENI calls a VPC
 *   function needs, and reading the platform secret (every function connects to the database as
 *   the platform role).
 * - The environment the config module reads: `TENANTFLOW_DATABASE_*` (the proxy, TLS required, the
 *   platform secret), `TENANTFLOW_TENANT_DB_*`, `TENANTFLOW_STAGE`, `TENANTFLOW_SECRETS=secrets-manager`.
 *   No admin token: in AWS the admin routes trust the IAM identity API Gateway verified.
 *
 * Everything else is granted with the `grant*`/`bind*` methods, which add the environment and the
 * IAM permission together; the admin database login too ({@link TenantFunction.grantAdminDatabaseLogin}),
 * which only the functions that run DDL get.
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
 * tenantsApi.grantManageTenantSecrets();
 * tenantsApi.grantAdminDatabaseLogin(data.adminSecret);
 * ```
 */
export class TenantFunction extends NodejsFunction {
  readonly executionRole: iam.Role;
  readonly stage: string;
  /** The handler's path inside the deployment package, without extension (`functions/api/tenants`). */
  readonly handlerPath: string;

  constructor(scope: Construct, id: string, props: TenantFunctionProps) {
    const projectRoot = props.projectRoot ?? PROJECT_ROOT;
    const functionName = `tenantflow-${props.stage}-${props.name}`;
    const handlerPath = props.entry.replace(/\.[cm]?ts$/, '');
    if (!/^[a-z0-9-]+(?:\/[a-z0-9-]+)+$/.test(handlerPath)) {
      throw new Error(
        `TenantFunction entry '${props.entry}' must be a .ts file in a directory of the project (functions/api/tenants.ts): the bundle is placed at that path`,
      );
    }
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
    super(scope, id, {
      functionName,
      description: props.description,
      entry: join(projectRoot, props.entry),
      handler: `${handlerPath}.handler`,
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
        TENANTFLOW_STAGE: props.stage,
        TENANTFLOW_DATABASE_HOST: database.proxy.endpoint,
        TENANTFLOW_DATABASE_PORT: String(database.port ?? 5432),
        TENANTFLOW_DATABASE_NAME: database.databaseName,
        TENANTFLOW_DATABASE_SSL: 'require',
        // Where tenant roles connect (the proxy, or the writer in direct access); provisioning writes
        // this into their secrets.
        TENANTFLOW_TENANT_DB_HOST: database.directTenantEndpoint?.host ?? database.proxy.endpoint,
        TENANTFLOW_TENANT_DB_PORT: database.directTenantEndpoint?.port ?? String(database.port ?? 5432),
        ...(database.directTenantEndpoint === undefined ? {} : { NODE_EXTRA_CA_CERTS: LAMBDA_RDS_CA_BUNDLE }),
        TENANTFLOW_SECRETS: 'secrets-manager',
        POWERTOOLS_LOG_LEVEL: 'INFO',
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
        // The layer's packages, the runtime's SDK, and shared/ as the handlers import it.
        externalModules: [...props.layer.externalModules, ...props.layer.sharedImportPatterns],
        // Read by LINK_BUNDLE_SCRIPT to find the shared/ imports, then removed.
        metafile: true,
        commandHooks: {
          beforeBundling: () => [],
          beforeInstall: () => [],
          afterBundling: (inputDir: string, outputDir: string) => [
            [process.execPath, '--input-type=module', '--eval', LINK_BUNDLE_SCRIPT]
              .concat([outputDir, inputDir, handlerPath, props.layer.packageName])
              .map(shellQuote)
              .join(' '),
          ],
        },
      },
    });
    this.executionRole = role;
    this.stage = props.stage;
    this.handlerPath = handlerPath;

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
   * Sets `TENANTFLOW_DB_PROXY_NAME` and lets the function read and change `proxy`'s auth list
   * (`rds:DescribeDBProxies`, `rds:ModifyDBProxy` on that proxy only): provisioning adds each
   * tenant's secret to it, deprovisioning removes it, recovery puts back what a stack update dropped.
   */
  grantManageProxyLogins(proxy: rds.IDatabaseProxy): void {
    this.addEnvironment('TENANTFLOW_DB_PROXY_NAME', proxy.dbProxyName);
    this.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'ManageProxyAuthList',
        actions: ['rds:DescribeDBProxies', 'rds:ModifyDBProxy'],
        resources: [proxy.dbProxyArn],
      }),
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

  /** Read tenants' database credentials: task code connects as the tenant's own role. */
  grantReadTenantSecrets(): void {
    this.addTenantSecretsStatement('ReadTenantSecrets', ['secretsmanager:GetSecretValue']);
  }

  /** Create, rotate, read and delete tenants' database credentials: provisioning and deprovisioning. */
  grantManageTenantSecrets(): void {
    this.addTenantSecretsStatement('ManageTenantSecrets', TENANT_SECRET_MANAGE_ACTIONS);
  }

  /**
   * Sets `TENANTFLOW_STATE_MACHINE_ARNS` (workflow name → state machine ARN) and lets the function
   * start executions of those state machines and describe them; `redrive` adds
   * `states:RedriveExecution` (recovery). Nothing is granted on any other state machine.
   */
  bindWorkflows(
    machines: readonly WorkflowStateMachine[],
    options: { readonly redrive?: boolean } = {},
  ): void {
    if (machines.length === 0) {
      throw new Error(`${this.node.path}: bindWorkflows needs at least one workflow state machine`);
    }
    this.addEnvironment(
      'TENANTFLOW_STATE_MACHINE_ARNS',
      Stack.of(this).toJsonString(
        Object.fromEntries(
          machines.map((machine) => [machine.workflowName, machine.stateMachine.stateMachineArn]),
        ),
      ),
    );
    this.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'StartWorkflowExecutions',
        actions: ['states:StartExecution'],
        resources: machines.map((machine) => machine.stateMachine.stateMachineArn),
      }),
    );
    const executionActions = [
      'states:DescribeExecution',
      ...(options.redrive ? ['states:RedriveExecution'] : []),
    ];
    this.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'ReadWorkflowExecutions',
        actions: executionActions,
        resources: machines.map((machine) => machine.executionArnPattern),
      }),
    );
    for (const machine of machines) {
      acknowledgeWildcardResource(
        this.executionRole,
        machine.executionArnPattern,
        `Executions of ${machine.stateMachineName} are named per run (the execution id), so ${executionActions.join(' and ')} must name them by pattern; the pattern is confined to that one state machine.`,
      );
    }
  }

  /** The secret's ARN in `variable`, and `GetSecretValue`/`DescribeSecret` on that secret only. */
  private bindSecret(variable: string, secret: secretsmanager.ISecret): void {
    this.addEnvironment(variable, secret.secretArn);
    secret.grantRead(this);
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

/** The `RetentionDays` member for a number of days; CloudWatch accepts only its listed values. */
export function retentionDays(days: number): logs.RetentionDays {
  const allowed = Object.values(logs.RetentionDays).filter(
    (value): value is number => typeof value === 'number',
  );
  if (!allowed.includes(days)) {
    throw new Error(
      `Log retention of ${days} days is not one CloudWatch Logs offers (${allowed.sort((a, b) => a - b).join(', ')})`,
    );
  }
  return days as logs.RetentionDays;
}
