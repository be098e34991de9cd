import { ConfigurationError } from '@tenantflow/shared/kernel/errors';
import { FAILPOINT_POINTS, type FailpointPoint, type Failpoints } from '@tenantflow/shared/kernel/failpoints';
import {
  DEPROVISIONING_STEPS,
  PROVISIONING_STEPS,
} from '@tenantflow/shared/provisioning/provisioning-service';

/** The exit code of a process killed by a failpoint, so a test can tell it from a real crash. */
export const FAILPOINT_EXIT_CODE = 86;

export interface Failpoint {
  readonly point: FailpointPoint;
  readonly name?: string | undefined;
  readonly tenantId?: string | undefined;
}

const SPEC = /^(?<point>[a-z-]+)(?::(?<name>[A-Za-z0-9_-]+))?(?:@(?<tenant>[a-z][a-z0-9_]*))?$/;
const NAMED_STEPS: readonly string[] = [...PROVISIONING_STEPS, ...DEPROVISIONING_STEPS];

/**
 * Crash injection for the local server, so the crash tests can kill it exactly where a Lambda could
 * die. `TENANTFLOW_FAILPOINTS` is a comma-separated list of `<point>[:<name>][@<tenant>]`:
 *
 * | point | where the process exits | `name` narrows it to |
 * |---|---|---|
 * | `after-insert` | the execution row is written, the state machine not started | — |
 * | `after-body` | a task's body returned, inside its open transaction | a task id |
 * | `before-commit` | a task's completion is written, not yet committed | a task id |
 * | `after-commit` | a task committed, its result not yet returned | a task id |
 * | `before-finalize` | the finalize Lambda was invoked, nothing recorded | — |
 * | `after-provisioning-step` | a provisioning or deprovisioning step finished | a step name |
 *
 * `@<tenant>` limits a failpoint to one tenant, so a restarted server can repair another tenant's
 * crash without tripping over its own failpoint. {@link exitingFailpoints} makes them exit the
 * process with {@link FAILPOINT_EXIT_CODE}. Refused outside the local platform (see config).
 *
 * @example
 * ```sh
 * TENANTFLOW_FAILPOINTS='after-body:merge@acme' npm start
 * ```
 */
export function parseFailpoints(spec: string | undefined): Failpoint[] {
  if (spec === undefined || spec.trim() === '') {
    return [];
  }
  return spec.split(',').map((part) => {
    const text = part.trim();
    const match = SPEC.exec(text);
    const point = match?.groups?.point as FailpointPoint | undefined;
    if (match === null || point === undefined || !FAILPOINT_POINTS.includes(point)) {
      throw new ConfigurationError(
        `TENANTFLOW_FAILPOINTS: '${text}' is not <point>[:<name>][@<tenant>] with a point among ${FAILPOINT_POINTS.join(', ')}`,
      );
    }
    const name = match.groups?.name;
    if (point === 'after-provisioning-step' && name !== undefined && !NAMED_STEPS.includes(name)) {
      throw new ConfigurationError(
        `TENANTFLOW_FAILPOINTS: '${name}' is not a provisioning step (${NAMED_STEPS.join(', ')})`,
      );
    }
    if ((point === 'after-insert' || point === 'before-finalize') && name !== undefined) {
      throw new ConfigurationError(`TENANTFLOW_FAILPOINTS: '${point}' takes no name, only @<tenant>`);
    }
    return { point, name, tenantId: match.groups?.tenant };
  });
}

/**
 * The {@link Failpoints} port that exits the process when an armed failpoint is reached, or
 * undefined when none is armed (the services then skip the calls altogether).
 */
export function exitingFailpoints(
  failpoints: readonly Failpoint[],
  exit: (code: number) => never = (code) => process.exit(code),
): Failpoints | undefined {
  if (failpoints.length === 0) {
    return undefined;
  }
  return {
    reach(point, { tenantId, name }) {
      const armed = failpoints.find(
        (failpoint) =>
          failpoint.point === point &&
          (failpoint.name === undefined || failpoint.name === name) &&
          (failpoint.tenantId === undefined || failpoint.tenantId === tenantId),
      );
      if (armed !== undefined) {
        // Pipes to stderr are synchronous on Linux, so this line is out before the process is gone.
        process.stderr.write(
          `tenantflow: failpoint ${point}${name === undefined ? '' : `:${name}`}@${tenantId} reached; exiting with ${FAILPOINT_EXIT_CODE}\n`,
        );
        exit(FAILPOINT_EXIT_CODE);
      }
    },
  };
}
