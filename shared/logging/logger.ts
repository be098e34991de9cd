import { Logger } from '@aws-lambda-powertools/logger';

export type { Logger };

/**
 * A structured JSON logger (Powertools for AWS Lambda). Level comes from `POWERTOOLS_LOG_LEVEL`
 * (default INFO); tests set it to SILENT.
 *
 * @example
 * ```ts
 * const logger = createLogger('tenants-api');
 * logger.info('tenant registered', { tenantId });
 * ```
 */
export function createLogger(serviceName: string): Logger {
  return new Logger({ serviceName: `tenantflow-${serviceName}` });
}
