import { randomUUID } from 'node:crypto';
import type { Context } from 'aws-lambda';

export interface LambdaContextProps {
  /** The function's name or its ARN, as Lambda's `Invoke` accepts either for `FunctionName`. */
  readonly functionName: string;
  /** @default a new UUID, as Lambda gives every invocation its own */
  readonly awsRequestId?: string;
  /**
   * The function's timeout: `getRemainingTimeInMillis` counts down from it, starting now.
   *
   * @default 900_000, Lambda's longest timeout
   */
  readonly timeoutMs?: number;
  /** @default 1024 */
  readonly memoryLimitInMB?: number;
}

/** The account and region of every local ARN, so none of them can be mistaken for a real one. */
const LOCAL_FUNCTION_ARN_PREFIX = 'arn:aws:lambda:local:000000000000:function:';

/**
 * The `Context` Lambda would pass a handler, for a handler invoked in-process: by the local API
 * server, by the local state machines, or by a test or benchmark calling a handler directly. The
 * handlers read `awsRequestId` and `getRemainingTimeInMillis`; the rest is there so that the
 * object is a whole `Context`.
 *
 * @example
 * ```ts
 * await handler(event, createLambdaContext({ functionName: 'tenantflow-local-health', timeoutMs: 30_000 }));
 * ```
 */
export function createLambdaContext(props: LambdaContextProps): Context {
  const deadline = Date.now() + (props.timeoutMs ?? 900_000);
  const isArn = props.functionName.startsWith('arn:');
  // `arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]`
  const functionName = isArn ? (props.functionName.split(':')[6] ?? props.functionName) : props.functionName;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: isArn ? props.functionName : `${LOCAL_FUNCTION_ARN_PREFIX}${functionName}`,
    memoryLimitInMB: String(props.memoryLimitInMB ?? 1024),
    awsRequestId: props.awsRequestId ?? randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}
