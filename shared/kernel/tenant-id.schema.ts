import { validateTenantId } from './tenant-id.js';
import { z } from './zod.js';

/**
 * A tenant id as a zod schema, for request validation: every reason from `validateTenantId`
 * becomes its own issue, so a 400 lists them all.
 */
export const tenantIdSchema = z.string().superRefine(function checkTenantId(value, ctx) {
  for (const reason of validateTenantId(value)) {
    ctx.addIssue({ code: 'custom', message: reason });
  }
});
