// What `z` (from ./zod.js) offers. Add a name here when a schema needs it.

export type { infer, input, output, RefinementCtx, ZodType } from 'zod';
export {
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
  unknown,
  uuid,
} from 'zod';
