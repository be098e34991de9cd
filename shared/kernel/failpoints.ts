/**
 * The places where a process can die between two effects that a Lambda could also be killed
 * between, named so a crash harness can stop exactly there:
 *
 * | point | reached when |
 * |---|---|
 * | `after-insert` | an execution row is written, its state machine not started |
 * | `after-body` | a task's body returned, inside its open transaction |
 * | `before-commit` | a task's completion is written, not yet committed |
 * | `after-commit` | a task committed, its result not yet returned |
 * | `before-finalize` | the finalize step was invoked, nothing recorded |
 * | `after-provisioning-step` | a provisioning or deprovisioning step finished |
 */
export const FAILPOINT_POINTS = [
  'after-insert',
  'after-body',
  'before-commit',
  'after-commit',
  'before-finalize',
  'after-provisioning-step',
] as const;
export type FailpointPoint = (typeof FAILPOINT_POINTS)[number];

/** Where a point was reached: always a tenant, and for some points a task id or a step name. */
export interface FailpointSite {
  readonly tenantId: string;
  /** The task id (`after-body`, `before-commit`, `after-commit`) or the step (`after-provisioning-step`). */
  readonly name?: string | undefined;
}

/**
 * The port services report their failpoints to. Production wires none: each service's
 * `failpoints` dependency is optional and a missing one costs nothing. The local server's crash
 * harness (`TENANTFLOW_FAILPOINTS`) exits the process here; tests throw here to simulate a
 * failure; the provisioning benchmark times the steps here.
 *
 * @example
 * ```ts
 * const failpoints: Failpoints = {
 *   reach(point, site) {
 *     if (point === 'after-provisioning-step' && site.name === 'secret') throw new Error('crash');
 *   },
 * };
 * ```
 */
export interface Failpoints {
  reach(point: FailpointPoint, site: FailpointSite): void | Promise<void>;
}
