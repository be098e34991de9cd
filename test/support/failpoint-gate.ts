import type { FailpointPoint, Failpoints } from '@tenantflow/shared/kernel/failpoints';

/** A failpoint held shut: the run that reached it waits there until `release()`. */
export interface HeldFailpoint {
  /** Settles once a run has reached the failpoint and is waiting on it. */
  readonly reached: Promise<void>;
  release(): void;
}

/**
 * Failpoints that pause instead of crashing, so a test can look at a tenant halfway through its
 * onboarding or offboarding (its `currentStep`, a repeated request) and then let it go on. Each
 * `hold` catches the next run to reach its point for that tenant (and step name, if given); every
 * other run passes straight through.
 *
 * @example
 * ```ts
 * const gate = failpointGate();
 * const platform = await startLocalPlatform({ adapters: { failpoints: gate.failpoints } });
 * const held = gate.hold('after-provisioning-step', { tenantId: 'acme', name: 'schema' });
 * await api('POST', '/tenants', { body: { tenantId: 'acme', name: 'Acme' } });
 * await held.reached; // acme's onboarding waits in its schema-and-role step
 * held.release();
 * ```
 */
export function failpointGate(): {
  readonly failpoints: Failpoints;
  hold(point: FailpointPoint, site: { tenantId: string; name?: string }): HeldFailpoint;
  /** Lets every held run go on (after a failed test, so nothing waits forever). */
  releaseAll(): void;
} {
  interface Hold {
    readonly point: FailpointPoint;
    readonly tenantId: string;
    readonly name: string | undefined;
    caught: boolean;
    readonly arrive: () => void;
    readonly released: Promise<void>;
    readonly release: () => void;
  }
  const holds: Hold[] = [];
  return {
    failpoints: {
      async reach(point, site) {
        const hold = holds.find(
          (candidate) =>
            !candidate.caught &&
            candidate.point === point &&
            candidate.tenantId === site.tenantId &&
            (candidate.name === undefined || candidate.name === site.name),
        );
        if (hold === undefined) {
          return;
        }
        hold.caught = true;
        hold.arrive();
        await hold.released;
      },
    },
    hold(point, site) {
      let arrive: () => void = () => {};
      let release: () => void = () => {};
      const reached = new Promise<void>((resolve) => {
        arrive = resolve;
      });
      const released = new Promise<void>((resolve) => {
        release = resolve;
      });
      holds.push({
        point,
        tenantId: site.tenantId,
        name: site.name,
        caught: false,
        arrive,
        released,
        release,
      });
      return { reached, release };
    },
    releaseAll() {
      for (const hold of holds.splice(0)) {
        hold.release();
      }
    },
  };
}
