/**
 * The one error hierarchy of tenantflow.
 *
 * Every domain error carries a stable machine-readable `code` and the HTTP status it maps to, so
 * a single middleware (`shared/http/error-mapper.middleware.ts`) can turn any of them into a
 * response. Errors with a status of 500 or more are never exposed: the client gets a generic
 * message and the cause goes to the log only.
 *
 * @example
 * ```ts
 * throw new TenantNotFoundError('acme', "Tenant 'acme' is not registered");
 * ```
 */
export interface TenantflowErrorOptions {
  readonly cause?: unknown;
  readonly publicMessage?: string;
}

export abstract class TenantflowError extends Error {
  /** Stable identifier clients can branch on, e.g. `TENANT_NOT_FOUND`. */
  abstract readonly code: string;
  /** HTTP status this error maps to at the API boundary. */
  abstract readonly statusCode: number;

  /**
   * What an API client is shown. Usually the message itself; an error whose message helps an
   * operator but would reveal something about other tenants (such as the list of registered
   * tenant ids) gives a narrower public message.
   */
  readonly publicMessage: string;

  constructor(message: string, options?: TenantflowErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.publicMessage = options?.publicMessage ?? message;
  }

  /** Whether the message may be shown to an API client (4xx only). */
  get expose(): boolean {
    return this.statusCode < 500;
  }

  /** Extra, non-secret detail returned to clients beside code and message. */
  details(): Record<string, unknown> | undefined {
    return undefined;
  }
}

/** Bad input: a malformed tenant id, body or path parameter. Lists every reason at once. */
export class ValidationError extends TenantflowError {
  readonly code: string = 'VALIDATION_FAILED';
  readonly statusCode: number = 400;

  constructor(
    message: string,
    readonly reasons: readonly string[] = [],
    options?: TenantflowErrorOptions,
  ) {
    super(reasons.length > 0 ? `${message}: ${reasons.join('; ')}` : message, options);
  }

  override details(): Record<string, unknown> {
    return { reasons: [...this.reasons] };
  }
}

/** No credentials, or credentials that are not valid. */
export class UnauthenticatedError extends TenantflowError {
  readonly code: string = 'UNAUTHENTICATED';
  readonly statusCode: number = 401;
}

/** Authenticated, but not allowed: the wrong tenant's key, or not an admin. */
export class ForbiddenError extends TenantflowError {
  readonly code: string = 'FORBIDDEN';
  readonly statusCode: number = 403;
}

/** Something addressed by the request does not exist. */
export class NotFoundError extends TenantflowError {
  readonly code: string = 'NOT_FOUND';
  readonly statusCode: number = 404;
}

export class TenantNotFoundError extends NotFoundError {
  override readonly code: string = 'TENANT_NOT_FOUND';

  constructor(
    readonly tenantId: string,
    message = `Tenant '${tenantId}' is not registered`,
  ) {
    super(message, { publicMessage: `Tenant '${tenantId}' is not registered` });
  }
}

/** The request conflicts with the current state of the target. */
export class ConflictError extends TenantflowError {
  readonly code: string = 'CONFLICT';
  readonly statusCode: number = 409;
}

export class TenantAlreadyExistsError extends ConflictError {
  override readonly code: string = 'TENANT_ALREADY_EXISTS';

  constructor(
    readonly tenantId: string,
    options?: { cause?: unknown; message?: string },
  ) {
    super(options?.message ?? `Tenant '${tenantId}' is already registered`, options);
  }
}

/**
 * The tenant id names something that already exists in the database (a role, a schema or a
 * database) or a platform role. Taking it would let the new tenant's schema or role stand in for
 * that object, so it is refused before anything is created.
 */
export class TenantIdUnavailableError extends ConflictError {
  override readonly code: string = 'TENANT_ID_UNAVAILABLE';
}

/**
 * The orchestrator's execution by this name is not the one addressed: its input names another
 * tenant or another execution id (or none). Execution names share one namespace per state machine
 * across every tenant, and an `executions` row only *names* an execution, so an execution whose
 * input does not match is never started over, redriven or stopped on the caller's behalf. The
 * message names the caller's own tenant and execution id only, never the other execution's.
 */
export class ForeignExecutionError extends ConflictError {
  override readonly code: string = 'FOREIGN_EXECUTION';

  constructor(
    readonly tenantId: string,
    readonly executionId: string,
    message = `The orchestrator's execution named '${executionId}' does not carry tenant '${tenantId}' and that execution id as its input; nothing was done to it`,
    options?: TenantflowErrorOptions,
  ) {
    super(message, options);
  }
}

/** The tenant exists but is in a state that does not allow the operation (e.g. delete while active). */
export class TenantStateConflictError extends ConflictError {
  override readonly code: string = 'TENANT_STATE_CONFLICT';
}

/**
 * The tenant is registered but not active (deactivated, or still being provisioned or
 * deprovisioned), so no work runs for it. The one message every check gives, with what to do.
 *
 * Mapped to 423 Locked rather than 409: the request itself is fine and would succeed once the
 * tenant is active, which a client can tell apart from a state conflict it caused.
 */
export class TenantInactiveError extends TenantflowError {
  readonly code: string = 'TENANT_INACTIVE';
  readonly statusCode: number = 423;

  constructor(
    readonly tenantId: string,
    /** The tenant's status: `inactive`, `provisioning` or `deprovisioning`. */
    readonly status: string = 'inactive',
  ) {
    super(
      status === 'inactive'
        ? `Tenant '${tenantId}' is not active: no work runs for it. Use activateTenant() (POST /tenants/${tenantId}/activate) to reactivate it.`
        : `Tenant '${tenantId}' is not active: it is ${status}, and no work runs for it until that finishes.`,
    );
  }
}

/**
 * Code that must run inside a tenant context ran outside one. This is a programming error, so it
 * is a 500 and never exposed: failing closed beats guessing a tenant.
 */
export class TenantContextRequiredError extends TenantflowError {
  readonly code: string = 'TENANT_CONTEXT_REQUIRED';
  readonly statusCode: number = 500;
}

/** A per-tenant or platform limit was exceeded. */
export class LimitExceededError extends TenantflowError {
  readonly code: string = 'LIMIT_EXCEEDED';
  readonly statusCode: number = 429;
}

/** The request body is larger than the tenant's limit allows (`limits.maxInputBytes`). */
export class PayloadTooLargeError extends TenantflowError {
  readonly code: string = 'PAYLOAD_TOO_LARGE';
  readonly statusCode: number = 413;
}

/** A route that takes a JSON body got a body of another media type, or one with no Content-Type. */
export class UnsupportedMediaTypeError extends TenantflowError {
  readonly code: string = 'UNSUPPORTED_MEDIA_TYPE';
  readonly statusCode: number = 415;
}

/** No workflow is registered under the requested name. */
export class WorkflowNotFoundError extends NotFoundError {
  override readonly code: string = 'WORKFLOW_NOT_FOUND';

  constructor(
    readonly workflow: string,
    known: readonly string[],
  ) {
    super(
      `Workflow '${workflow}' is not registered. Registered workflows: ${known.length > 0 ? known.join(', ') : '(none)'}`,
    );
  }
}

/** The tenant has no execution with this id (another tenant's ids are never visible). */
export class ExecutionNotFoundError extends NotFoundError {
  override readonly code: string = 'EXECUTION_NOT_FOUND';

  constructor(
    readonly tenantId: string,
    readonly executionId: string,
  ) {
    super(`Execution '${executionId}' does not exist for tenant '${tenantId}'`);
  }
}

/**
 * A workflow definition is invalid: an unknown dependency, a cycle, a duplicate task id or a name
 * Step Functions would refuse. Raised when the definition is made, so a bad workflow never deploys.
 */
export class WorkflowDefinitionError extends ValidationError {
  override readonly code: string = 'WORKFLOW_DEFINITION_INVALID';
}

/** The configuration read from the environment is missing or invalid. */
export class ConfigurationError extends TenantflowError {
  readonly code: string = 'CONFIGURATION_INVALID';
  readonly statusCode: number = 500;
}

/** A schema migration could not be applied, or an applied one was changed after the fact. */
export class MigrationError extends TenantflowError {
  readonly code: string = 'MIGRATION_FAILED';
  readonly statusCode: number = 500;
}
