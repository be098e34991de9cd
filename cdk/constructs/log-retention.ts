import * as logs from 'aws-cdk-lib/aws-logs';

/**
 * The retention periods CloudWatch Logs offers, in days, shortest first; the last one is CDK's
 * `RetentionDays.INFINITE` (9999: never expire).
 */
export const LOG_RETENTION_DAYS: readonly number[] = Object.values(logs.RetentionDays)
  .filter((value): value is number => typeof value === 'number')
  .sort((a, b) => a - b);

/**
 * The `RetentionDays` member for a number of days. A period CloudWatch Logs does not offer is an
 * error rather than rounded: the configuration says how long logs are kept, and a silent change
 * of that would go unnoticed.
 *
 * @example
 * ```ts
 * new logs.LogGroup(this, 'Logs', { retention: retentionDays(config.logRetentionDays) });
 * ```
 */
export function retentionDays(days: number): logs.RetentionDays {
  if (!LOG_RETENTION_DAYS.includes(days)) {
    throw new Error(
      `Log retention of ${days} days is not one CloudWatch Logs offers: use one of ${LOG_RETENTION_DAYS.join(', ')} (${logs.RetentionDays.INFINITE}: never expire)`,
    );
  }
  return days as logs.RetentionDays;
}
