/**
 * Runs `work` over `items` with at most `limit` at a time, in order of start. Resolves when all
 * are done; the first rejection rejects the whole (callers that must carry on catch inside `work`).
 *
 * @example
 * ```ts
 * await forEachConcurrently(tenantIds, 4, (tenantId) => scan(tenantId));
 * ```
 */
export async function forEachConcurrently<T>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (let index = next++; index < items.length; index = next++) {
      await work(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}
