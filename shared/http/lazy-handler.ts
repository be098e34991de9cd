import type { Context } from 'aws-lambda';

export type LambdaHandler<E, R> = (event: E, context: Context) => Promise<R>;

/**
 * Builds a Lambda handler on its first invocation instead of at import, then reuses it for the
 * life of the sandbox. Importing a handler module therefore never reads the environment or opens a
 * connection, which keeps its factory testable; in Lambda the cost is paid once, on cold start.
 *
 * A build that fails (bad configuration, say) is not cached, so the error is reported on every
 * invocation rather than a half-built handler being kept.
 *
 * @example
 * ```ts
 * export const handler = lazyHandler(async () => createTenantsApi(await platformDependencies()));
 * ```
 */
export function lazyHandler<E, R>(build: () => Promise<LambdaHandler<E, R>>): LambdaHandler<E, R> {
  let built: Promise<LambdaHandler<E, R>> | undefined;
  return async function invokeLazilyBuiltHandler(event, context) {
    built ??= build().catch((error: unknown) => {
      built = undefined;
      throw error;
    });
    return (await built)(event, context);
  };
}
