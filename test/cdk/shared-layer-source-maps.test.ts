import { SourceMap, type SourceMapPayload } from 'node:module';
import { buildSync } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { onlyMappingsOf, PROJECT_ROOT, type SourceMapJson } from '../../cdk/constructs/shared-layer.js';

/** shared/'s pg adapter bundled with pg, as the layer bundles it: a map of both, unpruned. */
function bundledWithPg(): { code: string[]; map: SourceMapJson } {
  const built = buildSync({
    absWorkingDir: PROJECT_ROOT,
    entryPoints: ['shared/db/connections.ts'],
    outfile: `${PROJECT_ROOT}/node_modules/.tenantflow-map-test/out.js`,
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'node',
    minify: true,
    sourcemap: 'external',
    sourcesContent: false,
    external: ['pg-native'],
    logLevel: 'silent',
  });
  const text = (suffix: string) => built.outputFiles.find((file) => file.path.endsWith(suffix))?.text ?? '';
  return { code: text('.js').split('\n'), map: JSON.parse(text('.js.map')) as SourceMapJson };
}

const isShared = (source: string) => /(^|\/)shared\//.test(source) && !source.includes('node_modules/');

describe('onlyMappingsOf', () => {
  it('keeps every mapping of the kept sources and the first of each run of the others, so every frame still names its file', () => {
    // Prepare
    const { code, map } = bundledWithPg();

    // Act
    const pruned = onlyMappingsOf(map, isShared);

    // Assert: shared/ positions map exactly as before, a package's position to the same file.
    const full = new SourceMap(map as unknown as SourceMapPayload);
    const kept = new SourceMap(pruned as unknown as SourceMapPayload);
    let sharedPositions = 0;
    let packagePositions = 0;
    code.forEach((line, lineNumber) => {
      for (let column = 0; column < line.length; column += 11) {
        const before = full.findEntry(lineNumber, column) as { originalSource?: string };
        const after = kept.findEntry(lineNumber, column) as { originalSource?: string };
        if (before.originalSource === undefined) {
          continue;
        }
        if (isShared(before.originalSource)) {
          sharedPositions += 1;
          expect(after).toEqual(before);
        } else {
          packagePositions += 1;
          expect(after.originalSource, `${lineNumber}:${column}`).toBe(before.originalSource);
        }
      }
    });
    expect(sharedPositions).toBeGreaterThan(20);
    expect(packagePositions).toBeGreaterThan(sharedPositions);
    expect(pruned.sources).toEqual(map.sources);
    expect(pruned.mappings.length).toBeLessThan(map.mappings.length / 5);
    expect(pruned.names?.length).toBeLessThan((map.names?.length ?? 0) / 2);
  });

  it('moves no position when every source is kept', () => {
    // Prepare
    const { code, map } = bundledWithPg();

    // Act
    const same = onlyMappingsOf(map, () => true);

    // Assert
    const full = new SourceMap(map as unknown as SourceMapPayload);
    const kept = new SourceMap(same as unknown as SourceMapPayload);
    code.forEach((line, lineNumber) => {
      for (let column = 0; column < line.length; column += 7) {
        expect(kept.findEntry(lineNumber, column)).toEqual(full.findEntry(lineNumber, column));
      }
    });
    expect(same.mappings.split(',').length).toBe(map.mappings.split(',').length);
  });
});
