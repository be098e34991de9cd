import { Duration, Stack } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as triggers from 'aws-cdk-lib/triggers';
import { Construct } from 'constructs';
import { TenantFunction, type TenantFunctionProps } from './tenant-function.js';

/** Everything a {@link TenantFunction} takes, but what this construct decides about its function. */
export interface DatabaseMigrationsProps
  extends Omit<TenantFunctionProps, 'entry' | 'name' | 'description' | 'timeout' | 'environment'> {
  /**
   * What must not be updated before the database is migrated: every function that reads the
   * control or a tenant schema. Each waits for the migration run of the deployment.
   */
  readonly runBefore: readonly Construct[];
  /**
   * The admin role's login (the cluster's master user): migrations are DDL, and the migrate
   * function also creates the platform role, with the platform secret's password, if it is missing.
   */
  readonly adminSecret: secretsmanager.ISecret;
  /**
   * Tenants migrated at once (`TENANTFLOW_MIGRATE_CONCURRENCY`), each on a dedicated admin
   * connection through the proxy.
   * @default 8
   */
  readonly concurrency?: number;
  /**
   * The function's timeout. The provider that invokes it during a deployment runs at most 15
   * minutes and must outlive it, so it is capped below that.
   * @default Duration.minutes(14)
   */
  readonly timeout?: Duration;
}

/** The trigger's provider function runs at most this long (CDK's CustomResourceProvider default). */
const PROVIDER_TIMEOUT = Duration.minutes(15);
/** The provider's wait for the function outlasts the function by this much, and stays inside its own timeout. */
const INVOKE_GRACE = Duration.seconds(30);

/**
 * Database migrations on every deployment: the `migrate` {@link TenantFunction}
 * (`functions/ops/migrate.ts`: the control schema, then every tenant schema) and a CDK trigger
 * that invokes it, synchronously, whenever its version changes, before anything in `runBefore`
 * is created or updated. New code therefore never meets an old schema. A run that leaves a tenant
 * failed or unreached (a fleet too large to finish in time) fails the deployment with the tenants
 * named, and CloudFormation rolls the other functions back to their previous code, which must
 * tolerate the migrations already applied (forward-only migrations on a live database must anyway).
 * Each tenant commits on its own, so deploying again resumes where the run stopped.
 *
 * - The migrations (`shared/migrations/control` and `shared/migrations/tenant`) and the `shared/` code that runs
 *   them ship in the shared layer (`SharedLayer`), not in the function's code, and a layer is not part of a
 *   version's identity (the `recognizeLayerVersion` feature flag is off). The layer's content is
 *   therefore folded into the migrate function's version: a new migration, or any change to
 *   `shared/`, publishes a new version and re-runs the trigger, as a change to the handler does.
 * - It connects through RDS Proxy like every function: the registry with the platform secret, the
 *   DDL with the admin secret ({@link TenantFunction.grantAdminDatabaseLogin}). It reads the
 *   platform secret's login anyway, to create the platform role when it does not exist yet. It gets
 *   no tenant secrets.
 * - The trigger's provider (a function and role CDK's triggers module adds once per stack) may
 *   only invoke this function's versions, plus AWSLambdaBasicExecutionRole for its own logs.
 *   cdk-nag's AwsSolutions rules do not inspect it (they match typed L1 classes, and the provider is
 *   built from untyped `CfnResource`s), so there is nothing to acknowledge, and the migrations test
 *   asserts those permissions itself.
 * - Operators run it again by hand with `aws lambda invoke --function-name tenantflow-<stage>-migrate`.
 *
 * @example
 * ```ts
 * const migrations = new DatabaseMigrations(this, 'Migrations', {
 *   ...common, adminSecret: data.adminSecret, runBefore: Object.values(functions),
 * });
 * ```
 */
export class DatabaseMigrations extends Construct {
  readonly function: TenantFunction;
  readonly trigger: triggers.Trigger;

  constructor(scope: Construct, id: string, props: DatabaseMigrationsProps) {
    super(scope, id);
    const timeout = props.timeout ?? Duration.minutes(14);
    if (timeout.toSeconds() + INVOKE_GRACE.toSeconds() > PROVIDER_TIMEOUT.toSeconds()) {
      throw new Error(
        `DatabaseMigrations timeout must leave ${INVOKE_GRACE.toHumanString()} inside the trigger provider's ${PROVIDER_TIMEOUT.toHumanString()} (got ${timeout.toHumanString()})`,
      );
    }
    const concurrency = props.concurrency ?? 8;
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
      throw new Error(`DatabaseMigrations concurrency must be an integer from 1 to 64 (got ${concurrency})`);
    }

    const { runBefore, adminSecret, concurrency: _concurrency, timeout: _timeout, ...functionProps } = props;
    this.function = new TenantFunction(this, 'Function', {
      ...functionProps,
      entry: 'functions/ops/migrate.ts',
      name: 'migrate',
      description:
        'Migrates the control schema and every tenant schema; run by each deployment before the other functions',
      timeout,
      environment: { TENANTFLOW_MIGRATE_CONCURRENCY: String(concurrency) },
    });
    this.function.grantAdminDatabaseLogin(adminSecret);
    // The layer's asset (its S3 key is the hash of its content) names the migrations it carries.
    this.function.invalidateVersionBasedOn(
      JSON.stringify(Stack.of(this).resolve(layerContent(props.layer.layer))),
    );

    this.trigger = new triggers.Trigger(this, 'Trigger', {
      handler: this.function,
      // Synchronous: the deployment waits for the run and fails when the function throws.
      invocationType: triggers.InvocationType.REQUEST_RESPONSE,
      timeout: timeout.plus(INVOKE_GRACE),
      executeOnHandlerChange: true,
      executeBefore: [...runBefore],
    });
  }
}

function layerContent(layer: lambda.LayerVersion): unknown {
  const resource = layer.node.defaultChild as lambda.CfnLayerVersion | undefined;
  if (resource?.content === undefined) {
    throw new Error(`${layer.node.path}: the shared layer has no content to follow`);
  }
  return resource.content;
}
