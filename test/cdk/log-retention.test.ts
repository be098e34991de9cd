import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { describe, expect, it } from 'vitest';
import { LOG_RETENTION_DAYS, retentionDays } from '../../cdk/constructs/log-retention.js';

describe('retentionDays', () => {
  it('returns the RetentionDays member for a period CloudWatch Logs offers', () => {
    expect(retentionDays(30)).toBe(RetentionDays.ONE_MONTH);
    expect(retentionDays(1)).toBe(RetentionDays.ONE_DAY);
    expect(retentionDays(3653)).toBe(RetentionDays.TEN_YEARS);
    expect(retentionDays(9999)).toBe(RetentionDays.INFINITE);
  });

  it('refuses any other period instead of rounding it, naming the ones there are', () => {
    // Act / Assert
    expect(() => retentionDays(10)).toThrow(
      /^Log retention of 10 days is not one CloudWatch Logs offers: use one of 1, 3, 5, 7, 14, 30, .*, 3653, 9999 \(9999: never expire\)$/,
    );
    expect(() => retentionDays(0)).toThrow(/not one CloudWatch Logs offers/);
    expect(() => retentionDays(30.5)).toThrow(/not one CloudWatch Logs offers/);
  });

  it('knows every period of RetentionDays, shortest first', () => {
    const members = Object.values(RetentionDays).filter((value) => typeof value === 'number');
    expect(LOG_RETENTION_DAYS).toEqual([...members].sort((a, b) => a - b));
    expect(LOG_RETENTION_DAYS.length).toBeGreaterThan(20);
  });
});
