import { defineConfig } from 'vitest/config';

/** Starts the run's one PostgreSQL, shared by every project that lists it (see the file). */
const POSTGRES = 'test/support/global-setup.ts';
/** Starts the run's one moto_server. */
const MOTO = 'test/support/moto-setup.ts';

/**
 * One project per kind of test: `npx vitest run --project unit` runs one kind, `vitest run` all of
 * them. Each project lists the global setups it needs, so the unit project starts no server.
 */
export default defineConfig({
  test: {
    // Inherited by every project (`extends: true`). No `include` or `globalSetup` here: a project
    // would add its own to them, not replace them.
    // The suites that look at EMF metrics turn them back on (POWERTOOLS_METRICS_DISABLED=false).
    env: { POWERTOOLS_LOG_LEVEL: 'SILENT', POWERTOOLS_METRICS_DISABLED: 'true' },
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'] },
      },
      {
        extends: true,
        // Suites isolate themselves with a database of their own on the one PostgreSQL.
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: [POSTGRES, MOTO],
        },
      },
      {
        extends: true,
        // Two of its suites run bundled handlers against the run's PostgreSQL.
        test: { name: 'cdk', include: ['test/cdk/**/*.test.ts'], globalSetup: [POSTGRES] },
      },
      {
        extends: true,
        // Starts `npm start`, which brings its own PostgreSQL; the CLI's --stage reads CloudFormation
        // from moto_server.
        test: { name: 'e2e', include: ['test/e2e/**/*.test.ts'], globalSetup: [MOTO] },
      },
    ],
  },
});
