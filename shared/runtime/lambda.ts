import type { Context } from 'aws-lambda';
import { type PlatformCore, processCore } from './core.js';

/** A Lambda handler as the Node.js runtime calls it. */
export type LambdaHandler<E, R> = (event: E, context: Context) => Promise<R>;

/**
 * A Lambda handler built from the process's core on its first invocation, then reused; built
 * again, with what it holds, when the core was replaced because the database refused a rotated
 * password (see `cachedCore`). Importing a handler module therefore reads no environment and opens
 * no connection, which keeps its factory testable. A build that fails is not kept, so the error is
 * reported on every invocation rather than a half-built handler being kept.
 *
 * @example
 * ```ts
 * export const handler = coreHandler((core) => createHealthApi({ db: core.pool, stage: core.config.stage, logger }));
 * ```
 */
export function coreHandler<E, R>(
  build: (core: PlatformCore) => LambdaHandler<E, R> | Promise<LambdaHandler<E, R>>,
  currentCore: () => Promise<PlatformCore> = processCore,
): LambdaHandler<E, R> {
  let builtFor: PlatformCore | undefined;
  let built: Promise<LambdaHandler<E, R>> | undefined;
  return async function invokeCoreHandler(event, context) {
    const core = await currentCore();
    if (built === undefined || builtFor !== core) {
      builtFor = core;
      const building = Promise.resolve(build(core)).catch((error: unknown) => {
        if (built === building) {
          built = undefined;
        }
        throw error;
      });
      built = building;
    }
    return (await built)(event, context);
  };
}
