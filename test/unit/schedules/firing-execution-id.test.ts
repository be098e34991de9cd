import { firingExecutionId } from '@tenantflow/shared/schedules/schedule-service';
import { executionIdSchema } from '@tenantflow/shared/workflows/invocations';
import { describe, expect, it } from 'vitest';

const SCHEDULE = '0b6f3c1e-8f2a-4c55-9d1e-6a7b8c9d0e1f';

describe('firingExecutionId', () => {
  it('names the same execution for every delivery of one firing', () => {
    const time = new Date('2026-03-30T07:00:00Z');
    expect(firingExecutionId(SCHEDULE, time)).toBe(firingExecutionId(SCHEDULE, new Date(time.getTime())));
    expect(firingExecutionId(SCHEDULE.toUpperCase(), time)).toBe(firingExecutionId(SCHEDULE, time));
  });

  it('names another execution for another time or another schedule', () => {
    const time = new Date('2026-03-30T07:00:00Z');
    const ids = new Set([
      firingExecutionId(SCHEDULE, time),
      firingExecutionId(SCHEDULE, new Date(time.getTime() + 60_000)),
      firingExecutionId(SCHEDULE, new Date(time.getTime() + 1)),
      firingExecutionId('1b6f3c1e-8f2a-4c55-9d1e-6a7b8c9d0e1f', time),
    ]);
    expect(ids.size).toBe(4);
  });

  it('is a valid version-5 UUID, as execution ids must be', () => {
    const id = firingExecutionId(SCHEDULE, new Date('2026-03-30T07:00:00Z'));
    expect(executionIdSchema.safeParse(id).success).toBe(true);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});
