// What `z` (from ./zod.js) offers. Add a name here when a schema needs it.

export type { infer, input, output, RefinementCtx, ZodType } from 'zod';
export {
  array,
  boolean,
  coerce,
  enum,
  json,
  literal,
  NEVER,
  number,
  object,
  record,
  strictObject,
  string,
  toJSONSchema,
  unknown,
  uuid,
} from 'zod';
export type { $ZodIssue as ZodIssue } from 'zod/v4/core';
