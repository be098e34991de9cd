/**
 * `report_pipeline` → `ReportPipeline`: each run of letters and digits starts with a capital, the
 * rest of it is kept as written. For construct ids and output names, which allow letters and
 * digits only.
 *
 * @example
 * ```ts
 * pascalCase('report_pipeline'); // 'ReportPipeline'
 * pascalCase('DEFAULT_4XX'.toLowerCase()); // 'Default4xx'
 * ```
 */
export function pascalCase(text: string): string {
  return text
    .split(/[^A-Za-z0-9]+/)
    .filter((word) => word.length > 0)
    .map((word) => word.charAt(0).toUpperCase() + word.slice(1))
    .join('');
}
