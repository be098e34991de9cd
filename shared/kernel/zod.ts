/**
 * The parts of zod tenantflow uses, re-exported one by one so a bundler keeps only these.
 *
 * `import { z } from 'zod'` is a namespace holding all of zod, every locale included, which no
 * bundler can trim: it made each Lambda bundle ~440 KB of zod (see docs/benchmarks.md). Import
 * `z` from here instead; it reads the same (`z.object`, `z.infer<...>`).
 *
 * @example
 * ```ts
 * import { z } from './zod.js';
 * const schema = z.object({ id: z.string() });
 * ```
 */
export * as z from './zod-subset.js';
