import { STEP_TIMEOUT_SECONDS } from '@tenantflow/shared/lifecycle/lifecycle-asl';
import type { WorkflowRegistry } from '@tenantflow/shared/workflows/workflow-registry';
import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps, Tokenization } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as rds from 'aws-cdk-lib/aws-rds';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import { installedWorkflows } from '../../workflows/index.js';
import { DatabaseMigrations } from '../constructs/database-migrations.js';
import { pascalCase } from '../constructs/naming.js';
import { PlatformObservability } from '../constructs/observability.js';
import { ProxyLoginReconciliation } from '../constructs/proxy-login-reconciliation.js';
import { SharedLayer } from '../constructs/shared-layer.js';
import { TenantFunction, type TenantFunctionProps } from '../constructs/tenant-function.js';
import { TenantLifecycleStateMachines } from '../constructs/tenant-lifecycle-state-machines.js';
import { TenantSchedules } from '../constructs/tenant-schedules.js';
import { TenantflowApi } from '../constructs/tenantflow-api.js';
import { WorkflowStateMachine } from '../constructs/workflow-state-machine.js';
import type { DeploymentConfig } from '../deployment-config.js';

/** What the PlatformStack takes from the DataStack. */
export interface PlatformData {
  readonly vpc: ec2.IVpc;
  /** Already allowed into the proxy and the interface endpoints by the DataStack. */
  readonly lambdaSecurityGroup: ec2.ISecurityGroup;
  readonly proxy: rds.IDatabaseProxy;
  /** The admin (master user) login: granted only to the functions that run DDL. */
  readonly adminSecret: secretsmanager.ISecret;
  /** The platform role's login: every function's. */
  readonly platformSecret: secretsmanager.ISecret;
  readonly databaseName: string;
  /** The Aurora cluster: tenant roles connect to its writer with `tenantDatabaseAccess=direct`. */
  readonly cluster?: rds.IDatabaseCluster;
}

export interface PlatformStackProps extends StackProps {
  /**
   * The deployment's configuration. Its `examples` also chooses the workflows: one state machine
   * each for the installation's (`installedWorkflows` of `workflows/index.ts`), the same registry
   * the functions build from the `TENANTFLOW_EXAMPLES` they are given, so the two cannot disagree.
   */
  readonly config: DeploymentConfig;
  readonly data: PlatformData;
}

/** The Lambdas of the platform, by handler. */
export interface PlatformFunctions {
  readonly tenantsApi: TenantFunction;
  readonly executionsApi: TenantFunction;
  readonly authorizer: TenantFunction;
  readonly health: TenantFunction;
  readonly runTask: TenantFunction;
  readonly finalize: TenantFunction;
  readonly recovery: TenantFunction;
  /** Runs one step of onboarding or offboarding: what the lifecycle state machines invoke. */
  readonly provisioningStep: TenantFunction;
  /** Creates, changes and deletes tenants' schedules (the API), on EventBridge Scheduler. */
  readonly schedulesApi: TenantFunction;
  /** What EventBridge Scheduler invokes at a schedule's time: starts the schedule's workflow. */
  readonly scheduleFire: TenantFunction;
}

/** A run-task Lambda outlives the longest task by this much, like the Task state's own timeout. */
const TASK_GRACE_SECONDS = 30;
const LAMBDA_MAX_TIMEOUT_SECONDS = 900;
/**
 * The provisioning-step Lambda gives up this much before its Task state's own timeout, so a step
 * that runs too long fails as a Lambda timeout, which names the function and is retried like any
 * failure; the state's timeout is only a backstop.
 */
const STEP_TIMEOUT_MARGIN_SECONDS = 15;

/**
 * The stateless half of a deployment: the shared layer, one Lambda per handler, the REST API built
 * from the route table, the tenant lifecycle's two Standard state machines (onboarding and
 * offboarding), one Standard state machine per installed workflow, the EventBridge schedule of the
 * recovery job, and the database migrations, run on each deployment before any of those functions
 * is updated. The constructs carry the defaults; this stack wires them and gives each function
 * what its handler builds (see `functions/`), nothing more:
 * - every function its core: the platform secret and the proxy (authorizer, health and finalize
 *   get nothing else);
 * - run-task the tenant access: it reads tenant secrets and connects as the tenants' roles;
 * - the provisioning step provisioning: the admin secret, tenant secrets to manage, and, with
 *   tenant roles through the proxy (the default), the proxy's auth list to read and change; the
 *   tenants API the same but the change: it only reads the auth list, to refuse a tenant when the
 *   list is full, and leaves admitting logins to the onboarding state machine; recovery the
 *   proxy's auth list alone (it puts back logins a stack update dropped, and resumes onboarding
 *   and offboarding through their state machines, never with DDL of its own); migrate the admin
 *   secret only;
 * - the tenants API starts and describes onboarding and offboarding executions; recovery also
 *   redrives them;
 * - the executions API starts and describes workflow executions; recovery also redrives them;
 * - the schedules API creates, changes and deletes the stage's EventBridge Scheduler schedules
 *   (and passes Scheduler its role), the provisioning step only deletes them (offboarding), and
 *   the schedule-firing function, which Scheduler invokes, starts workflow executions
 *   ({@link TenantSchedules});
 * - the functions that load the workflows or their tables (run-task, the executions and tenants
 *   APIs, the provisioning step, recovery, migrate) are told whether the examples are installed;
 * - each workflow's state machine invokes run-task and finalize only; each lifecycle state
 *   machine the provisioning step only;
 * - with tenant roles through the proxy, each deployment has recovery put the tenants back on the
 *   proxy's auth list, which an update of the proxy resets ({@link ProxyLoginReconciliation}).
 *
 * The lifecycle's state machines are named `tenantflow-<stage>-onboarding` and `-offboarding`: a
 * workflow of that name, whose state machine (and log group) would take the same name, is refused
 * by the `WorkflowRegistry` (`RESERVED_WORKFLOW_NAMES`), so the stack never synthesizes with one.
 *
 * Without the examples, and with no workflow of your own registered, the installation has no
 * state machine: the executions API then lists no workflow and refuses to start one, run-task and
 * finalize are deployed but nothing invokes them, and no Step Functions action on a workflow is
 * granted. The lifecycle's state machines are there either way.
 */
export class PlatformStack extends Stack {
  readonly layer: SharedLayer;
  readonly functions: PlatformFunctions;
  readonly api: TenantflowApi;
  /** The installation's workflows, as the deployment's `examples` chose them. */
  readonly workflows: WorkflowRegistry;
  /** One per workflow, keyed by workflow name; none when no workflow is installed. */
  readonly stateMachines: ReadonlyMap<string, WorkflowStateMachine>;
  /** Onboarding and offboarding, run by the provisioning step, started by the tenants API. */
  readonly lifecycle: TenantLifecycleStateMachines;
  readonly recoverySchedule: events.Rule;
  /** The `migrate` function and the trigger that runs it before every function in {@link functions}. */
  readonly migrations: DatabaseMigrations;
  /**
   * With tenant roles through the proxy (the default): the trigger that has recovery put the
   * tenants back on the proxy's auth list on every deployment, and the alarm on entries found
   * missing. None in `direct` tenant database access, where the proxy admits no tenant.
   */
  readonly proxyLogins: ProxyLoginReconciliation | undefined;
  /** The schedule group, the role EventBridge Scheduler fires with, and its dead-letter queue. */
  readonly schedules: TenantSchedules;
  /** The stage's dashboard and its alarms on failed executions, recovery abandonments and the proxy's auth list. */
  readonly observability: PlatformObservability;

  constructor(scope: Construct, id: string, props: PlatformStackProps) {
    super(scope, id, props);
    const { config, data } = props;
    this.workflows = installedWorkflows({ examples: config.examples });
    const workflowList = this.workflows.list();
    const logRemovalPolicy = config.protectData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;

    this.layer = new SharedLayer(this, 'SharedLayer');
    const direct = config.tenantDatabaseAccess === 'direct';
    if (direct && data.cluster === undefined) {
      throw new Error('tenantDatabaseAccess=direct needs the Aurora cluster in the PlatformStack data');
    }
    const common = {
      stage: config.stage,
      layer: this.layer,
      database: {
        proxy: data.proxy,
        platformSecret: data.platformSecret,
        databaseName: data.databaseName,
        ...(direct && data.cluster !== undefined
          ? {
              directTenantEndpoint: {
                host: data.cluster.clusterEndpoint.hostname,
                port: Tokenization.stringifyNumber(data.cluster.clusterEndpoint.port),
              },
            }
          : {}),
      },
      network: { vpc: data.vpc, securityGroup: data.lambdaSecurityGroup },
      logRetentionDays: config.logRetentionDays,
      logRemovalPolicy,
    } satisfies Partial<TenantFunctionProps>;
    const fn = (functionId: string, own: Omit<TenantFunctionProps, keyof typeof common>) =>
      new TenantFunction(this, functionId, { ...common, ...own });

    const longestTaskSeconds = Math.max(
      0,
      ...workflowList.flatMap((workflow) => workflow.tasks.map((task) => task.timeoutSeconds)),
    );
    const functions: PlatformFunctions = {
      tenantsApi: fn('TenantsApi', {
        entry: 'functions/api/tenants.ts',
        name: 'tenants-api',
        description: 'Admin routes: register, update, (de)activate, rotate and delete tenants',
        // API Gateway's limit: registering and deleting a tenant only record it and start the
        // onboarding or offboarding state machine, which does the provisioning.
        timeout: Duration.seconds(29),
      }),
      executionsApi: fn('ExecutionsApi', {
        entry: 'functions/api/executions.ts',
        name: 'executions-api',
        description: 'Tenant routes: start and read workflow executions, tenant metrics',
        timeout: Duration.seconds(29),
      }),
      authorizer: fn('Authorizer', {
        entry: 'functions/api/authorizer.ts',
        name: 'authorizer',
        description: 'REQUEST authorizer of the tenant routes: tenant API key or admin',
        timeout: Duration.seconds(10),
      }),
      health: fn('Health', {
        entry: 'functions/api/health.ts',
        name: 'health',
        description: 'The open routes: GET /health (liveness, a database round trip) and GET /openapi.json',
        memorySize: 256,
        timeout: Duration.seconds(10),
      }),
      runTask: fn('RunTask', {
        entry: 'functions/workflow/run-task.ts',
        name: 'run-task',
        description: "Runs one workflow task as the tenant's own database role",
        memorySize: 1024,
        timeout: Duration.seconds(
          Math.min(LAMBDA_MAX_TIMEOUT_SECONDS, Math.max(60, longestTaskSeconds + TASK_GRACE_SECONDS)),
        ),
      }),
      finalize: fn('Finalize', {
        entry: 'functions/workflow/finalize.ts',
        name: 'finalize',
        description: "Records a workflow execution's final status and the tenant's counters",
        timeout: Duration.seconds(30),
      }),
      recovery: fn('Recovery', {
        entry: 'functions/recovery/recover.ts',
        name: 'recovery',
        description: 'Every 5 minutes: restarts stuck executions, resumes stuck provisioning',
        memorySize: 1024,
        timeout: Duration.minutes(5),
      }),
      provisioningStep: fn('ProvisioningStep', {
        entry: 'functions/provisioning/step.ts',
        name: 'provisioning-step',
        description: 'Runs one step of onboarding or offboarding a tenant, for the lifecycle state machines',
        timeout: Duration.seconds(STEP_TIMEOUT_SECONDS - STEP_TIMEOUT_MARGIN_SECONDS),
      }),
      schedulesApi: fn('SchedulesApi', {
        entry: 'functions/api/schedules.ts',
        name: 'schedules-api',
        description: "Tenant routes: create, change, pause and delete a tenant's workflow schedules",
        timeout: Duration.seconds(29),
      }),
      scheduleFire: fn('ScheduleFire', {
        entry: 'functions/schedules/fire.ts',
        name: 'schedule-fire',
        description: "Invoked by EventBridge Scheduler at a schedule's time: starts its workflow",
        timeout: Duration.seconds(30),
      }),
    };
    this.functions = functions;
    this.migrations = new DatabaseMigrations(this, 'Migrations', {
      ...common,
      adminSecret: data.adminSecret,
      runBefore: Object.values(functions),
    });

    functions.runTask.grantTenantAccess();
    // DDL (schemas, roles and grants for a tenant), run by the provisioning step; migrate gets the
    // admin login alone, above. The tenants API builds provisioning too, but only reads the
    // proxy's auth list: admitting a login is the onboarding's step. Recovery runs no DDL (it
    // redrives the lifecycle's executions instead) and only puts proxy logins back.
    functions.provisioningStep.grantProvisioning(data.adminSecret);
    functions.recovery.grantProxyAuthList('manage');
    functions.tenantsApi.grantProvisioning(data.adminSecret, { proxyAuthList: 'read' });
    for (const loadsWorkflows of [
      functions.runTask,
      functions.executionsApi,
      functions.tenantsApi,
      functions.provisioningStep,
      functions.recovery,
      this.migrations.function,
      functions.schedulesApi,
      functions.scheduleFire,
    ]) {
      loadsWorkflows.registerExamples(config.examples);
    }

    const stateMachines = new Map<string, WorkflowStateMachine>();
    for (const workflow of workflowList) {
      stateMachines.set(
        workflow.name,
        new WorkflowStateMachine(this, `Workflow${pascalCase(workflow.name)}`, {
          workflow,
          stage: config.stage,
          taskRunner: functions.runTask,
          finalizer: functions.finalize,
          logRetentionDays: config.logRetentionDays,
          logRemovalPolicy,
        }),
      );
    }
    this.stateMachines = stateMachines;
    const machines = [...stateMachines.values()];
    functions.executionsApi.bindWorkflows(machines, { redrive: true, stop: true });
    functions.recovery.bindWorkflows(machines, { redrive: true, stop: true });
    functions.scheduleFire.bindWorkflows(machines);

    this.lifecycle = new TenantLifecycleStateMachines(this, 'Lifecycle', {
      stage: config.stage,
      provisioningStep: functions.provisioningStep,
      logRetentionDays: config.logRetentionDays,
      logRemovalPolicy,
    });
    functions.tenantsApi.bindLifecycle(this.lifecycle);
    functions.recovery.bindLifecycle(this.lifecycle, { redrive: true });

    this.schedules = new TenantSchedules(this, 'Schedules', {
      stage: config.stage,
      firing: functions.scheduleFire,
    });
    this.schedules.grantManageSchedules(functions.schedulesApi);
    // Offboarding deletes the tenant's schedules.
    this.schedules.grantDeleteSchedules(functions.provisioningStep);

    this.api = new TenantflowApi(this, 'Api', {
      stage: config.stage,
      handlers: {
        tenants: functions.tenantsApi,
        executions: functions.executionsApi,
        schedules: functions.schedulesApi,
        health: functions.health,
      },
      authorizer: functions.authorizer,
      rateLimit: config.apiRateLimit,
      burstLimit: config.apiBurstLimit,
      logRetentionDays: config.logRetentionDays,
      logRemovalPolicy,
    });

    this.recoverySchedule = new events.Rule(this, 'RecoverySchedule', {
      ruleName: `tenantflow-${config.stage}-recovery`,
      description: 'Runs the tenantflow recovery pass',
      schedule: events.Schedule.rate(Duration.minutes(5)),
      // A failed pass is not retried: the next one starts 5 minutes later and resumes where the
      // failed one stopped. An event older than a pass is dropped for the same reason.
      targets: [
        new targets.LambdaFunction(functions.recovery, {
          retryAttempts: 0,
          maxEventAge: Duration.minutes(5),
        }),
      ],
    });
    functions.recovery.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: Duration.minutes(5) });
    this.proxyLogins = direct
      ? undefined
      : new ProxyLoginReconciliation(this, 'ProxyLogins', {
          stage: config.stage,
          recovery: functions.recovery,
          proxy: data.proxy,
          after: this.migrations.trigger,
        });

    this.observability = new PlatformObservability(this, 'Observability', {
      stage: config.stage,
      functions: [...Object.values(functions), this.migrations.function],
      proxyAuthList: !direct,
    });

    new CfnOutput(this, 'ApiUrl', {
      description: 'Base URL of the tenantflow REST API (stage included)',
      value: this.api.restApi.url,
    });
    new CfnOutput(this, 'MigrateFunctionName', {
      description:
        'Runs the database migrations (each deployment does): aws lambda invoke --function-name <this> out.json',
      value: this.migrations.function.functionName,
    });
    for (const [name, machine] of stateMachines) {
      new CfnOutput(this, `StateMachineArn${pascalCase(name)}`, {
        description: `State machine of workflow '${name}'`,
        value: machine.stateMachine.stateMachineArn,
      });
    }
    for (const [lifecycle, machine] of Object.entries(this.lifecycle.machines)) {
      new CfnOutput(this, `LifecycleStateMachineArn${pascalCase(lifecycle)}`, {
        description: `State machine of tenant ${lifecycle}`,
        value: machine.stateMachine.stateMachineArn,
      });
    }
  }
}
