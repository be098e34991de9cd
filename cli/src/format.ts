/** Human-readable output: tables for lists, `key: value` lines for one object. */

/** A value as one line of text: strings as they are, objects and arrays as compact JSON. */
export function formatValue(value: unknown): string {
  if (value === undefined || value === null) {
    return '';
  }
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/**
 * A table with a header row and columns padded to their widest cell; `columns` maps each header to
 * the field it shows.
 *
 * @example
 * formatTable([{ tenantId: 'acme', status: 'active' }], { ID: 'tenantId', STATUS: 'status' });
 * // 'ID    STATUS\nacme  active'
 */
export function formatTable(
  rows: readonly Readonly<Record<string, unknown>>[],
  columns: Readonly<Record<string, string>>,
): string {
  const headers = Object.keys(columns);
  const cells = rows.map((row) => headers.map((header) => formatValue(row[columns[header] ?? header])));
  const widths = headers.map((header, index) =>
    Math.max(header.length, ...cells.map((line) => (line[index] ?? '').length)),
  );
  return [headers, ...cells]
    .map((line) =>
      line
        .map((cell, index) => (index === line.length - 1 ? cell : cell.padEnd(widths[index] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/**
 * One `key: value` line per field of `object`, keys padded to line the values up; nested objects
 * are compact JSON.
 */
export function formatKeyValues(object: Readonly<Record<string, unknown>>): string {
  const keys = Object.keys(object).filter((key) => object[key] !== undefined);
  const width = Math.max(0, ...keys.map((key) => key.length));
  return keys.map((key) => `${`${key}:`.padEnd(width + 1)} ${formatValue(object[key])}`.trimEnd()).join('\n');
}

/** The JSON body as `--json` prints it. */
export function formatJson(body: unknown): string {
  return JSON.stringify(body, null, 2);
}
