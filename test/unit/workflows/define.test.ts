import { WorkflowDefinitionError, WorkflowNotFoundError } from '@tenantflow/shared/kernel/errors';
import {
  DEFAULT_TASK_TIMEOUT_SECONDS,
  defineTask,
  MAX_TASK_TIMEOUT_SECONDS,
  type TaskDefinition,
  type TaskOptions,
} from '@tenantflow/shared/workflows/task';
import { defineWorkflow, type WorkflowDefinition } from '@tenantflow/shared/workflows/workflow';
import { WorkflowRegistry } from '@tenantflow/shared/workflows/workflow-registry';
import { describe, expect, it } from 'vitest';

const noop = () => {};

function task(id: string, options: Partial<TaskOptions> = {}): TaskDefinition {
  return defineTask({ id, run: noop, ...options });
}

/** Runs `act`, which must throw, and returns what it threw. */
function thrownBy(act: () => unknown): unknown {
  try {
    act();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error, but nothing was thrown');
}

/** Runs `define`, which must throw a WorkflowDefinitionError, and returns that error. */
function definitionError(define: () => unknown): WorkflowDefinitionError {
  const error = thrownBy(define);
  expect(error).toBeInstanceOf(WorkflowDefinitionError);
  return error as WorkflowDefinitionError;
}

/** A cycle given in execution order, and every way of writing it starting at one of its tasks. */
function rotations(cycle: readonly string[]): string[] {
  return cycle.map((_, start) => {
    const rotated = [...cycle.slice(start), ...cycle.slice(0, start)];
    return [...rotated, rotated[0]].join(' → ');
  });
}

/** Checks the invariants of `waves` against the workflow's own `dependsOn`. */
function expectWavesRespectDependencies(workflow: WorkflowDefinition) {
  const waveOf = new Map<string, number>();
  workflow.waves.forEach((wave, index) => {
    for (const id of wave) {
      expect(waveOf.has(id), `task '${id}' is in more than one wave`).toBe(false);
      waveOf.set(id, index);
    }
  });
  expect([...waveOf.keys()].sort()).toEqual(workflow.tasks.map((t) => t.id).sort());
  for (const [id, dependencies] of Object.entries(workflow.dependsOn)) {
    for (const dependency of dependencies) {
      expect(waveOf.get(dependency), `'${dependency}' must come before '${id}'`).toBeLessThan(
        waveOf.get(id) ?? -1,
      );
    }
  }
}

describe('defineTask', () => {
  it('retries 3 times in all, 1 s apart at first, doubling, with no cap and a 60 s timeout by default', () => {
    const defined = defineTask({ id: 'extract', run: noop });

    expect(defined.retry).toEqual({ attempts: 3, intervalSeconds: 1, backoffRate: 2 });
    expect(defined.retry.maxDelaySeconds).toBeUndefined();
    expect(defined.timeoutSeconds).toBe(DEFAULT_TASK_TIMEOUT_SECONDS);
    expect(defined.id).toBe('extract');
    expect(defined.run).toBe(noop);
  });

  it('merges a partial retry policy over the defaults', () => {
    const defined = task('enrich', { retry: { attempts: 5, maxDelaySeconds: 30 } });

    expect(defined.retry).toEqual({ attempts: 5, intervalSeconds: 1, backoffRate: 2, maxDelaySeconds: 30 });
  });

  it('freezes the definition and its retry policy', () => {
    const defined = task('extract');

    expect(Object.isFrozen(defined)).toBe(true);
    expect(Object.isFrozen(defined.retry)).toBe(true);
  });

  it.each<[string, Partial<TaskOptions>]>([
    ['a one-letter id', { id: 'a' }],
    ['a 64-character id', { id: `a${'b'.repeat(63)}` }],
    ['an id with digits, _ and -', { id: 'Step_2-load' }],
    ['a single attempt', { retry: { attempts: 1 } }],
    ['25 attempts', { retry: { attempts: 25 } }],
    ['an interval of an hour', { retry: { intervalSeconds: 3600 } }],
    ['a backoff rate of 1', { retry: { backoffRate: 1 } }],
    ['a backoff rate of 10', { retry: { backoffRate: 10 } }],
    ['a fractional backoff rate', { retry: { backoffRate: 1.5 } }],
    ['a delay cap equal to the interval', { retry: { intervalSeconds: 5, maxDelaySeconds: 5 } }],
    ['the longest timeout', { timeoutSeconds: MAX_TASK_TIMEOUT_SECONDS }],
    ['a one-second timeout', { timeoutSeconds: 1 }],
  ])('accepts %s', (_, options) => {
    expect(() => defineTask({ id: 'task', run: noop, ...options })).not.toThrow();
  });

  it.each<[string, Partial<TaskOptions>, RegExp]>([
    ['an empty id', { id: '' }, /^id must be/],
    ['an id starting with a digit', { id: '1st' }, /^id must be/],
    ['an id starting with _', { id: '_private' }, /^id must be/],
    ['an id with a space', { id: 'load data' }, /^id must be/],
    ['an id with a dot', { id: 'load.data' }, /^id must be/],
    ['a 65-character id', { id: `a${'b'.repeat(64)}` }, /^id must be/],
    ['an id that is not a string', { id: 42 as unknown as string }, /^id must be/],
    [
      'a run that is not a function',
      { run: 'noop' as unknown as TaskOptions['run'] },
      /^run must be a function/,
    ],
    ['0 attempts', { retry: { attempts: 0 } }, /^retry\.attempts must be a whole number from 1 to 25/],
    ['26 attempts', { retry: { attempts: 26 } }, /^retry\.attempts/],
    ['a fractional number of attempts', { retry: { attempts: 2.5 } }, /^retry\.attempts/],
    ['a zero interval', { retry: { intervalSeconds: 0 } }, /^retry\.intervalSeconds must be a whole number/],
    ['a fractional interval', { retry: { intervalSeconds: 0.5 } }, /^retry\.intervalSeconds/],
    ['an interval over an hour', { retry: { intervalSeconds: 3601 } }, /^retry\.intervalSeconds/],
    ['a backoff rate below 1', { retry: { backoffRate: 0.5 } }, /^retry\.backoffRate must be between/],
    ['a backoff rate above 10', { retry: { backoffRate: 10.5 } }, /^retry\.backoffRate/],
    ['a NaN backoff rate', { retry: { backoffRate: Number.NaN } }, /^retry\.backoffRate/],
    [
      'a delay cap below the interval',
      { retry: { intervalSeconds: 10, maxDelaySeconds: 9 } },
      /^retry\.maxDelaySeconds must be a whole number from 10 to/,
    ],
    ['a fractional delay cap', { retry: { maxDelaySeconds: 2.5 } }, /^retry\.maxDelaySeconds/],
    ['a zero timeout', { timeoutSeconds: 0 }, /^timeoutSeconds must be a whole number from 1 to 840/],
    ['a timeout past the Lambda limit', { timeoutSeconds: MAX_TASK_TIMEOUT_SECONDS + 1 }, /^timeoutSeconds/],
    ['a fractional timeout', { timeoutSeconds: 1.5 }, /^timeoutSeconds/],
  ])('rejects %s with exactly that reason', (_, options, reason) => {
    const error = definitionError(() => defineTask({ id: 'task', run: noop, ...options }));

    expect(error.reasons).toHaveLength(1);
    expect(error.reasons[0]).toMatch(reason);
    expect(error.code).toBe('WORKFLOW_DEFINITION_INVALID');
    expect(error.statusCode).toBe(400);
  });

  it('lists every reason at once, in the message and in the reasons', () => {
    const error = definitionError(() =>
      defineTask({
        id: '9 lives',
        run: undefined as unknown as TaskOptions['run'],
        retry: { attempts: 0, intervalSeconds: 0, backoffRate: 0, maxDelaySeconds: -1 },
        timeoutSeconds: 0,
      }),
    );

    const fields = ['id', 'run', 'retry.attempts', 'retry.intervalSeconds', 'retry.backoffRate'];
    expect(error.reasons.map((reason) => reason.split(' ')[0])).toEqual([
      ...fields,
      'retry.maxDelaySeconds',
      'timeoutSeconds',
    ]);
    for (const reason of error.reasons) {
      expect(error.message).toContain(reason);
    }
    expect(error.message).toMatch(/^Task '9 lives' is invalid: /);
    expect(error.details()).toEqual({ reasons: error.reasons });
  });
});

describe('defineWorkflow', () => {
  const extract = task('extract');
  const cleanse = task('cleanse');
  const enrich = task('enrich');
  const load = task('load');

  it('keeps the tasks in order and lists every task in dependsOn, without repeats', () => {
    const workflow = defineWorkflow({
      name: 'nightly_etl',
      description: 'Extract, transform, load',
      tasks: [extract, cleanse, load],
      dependsOn: { cleanse: ['extract', 'extract'], load: ['cleanse'] },
    });

    expect(workflow.name).toBe('nightly_etl');
    expect(workflow.description).toBe('Extract, transform, load');
    expect(workflow.tasks).toEqual([extract, cleanse, load]);
    expect(workflow.dependsOn).toEqual({ extract: [], cleanse: ['extract'], load: ['cleanse'] });
    expect(workflow.task('cleanse')).toBe(cleanse);
    expect(workflow.task('transform')).toBeUndefined();
    expect(Object.isFrozen(workflow.dependsOn)).toBe(true);
  });

  it('defaults the description to an empty string', () => {
    const workflow = defineWorkflow({ name: 'single', tasks: [extract] });

    expect(workflow.description).toBe('');
    expect(workflow.dependsOn).toEqual({ extract: [] });
  });

  it('rejects a dependency on a task the workflow does not have', () => {
    const error = definitionError(() =>
      defineWorkflow({ name: 'etl', tasks: [extract, load], dependsOn: { load: ['extract', 'transform'] } }),
    );

    expect(error.reasons).toEqual(["task 'load' depends on an unknown task 'transform'"]);
    expect(error.message).toMatch(/^Workflow 'etl' is invalid: /);
  });

  it('rejects dependencies declared for a task the workflow does not have', () => {
    const error = definitionError(() =>
      defineWorkflow({ name: 'etl', tasks: [extract, load], dependsOn: { transform: ['extract'] } }),
    );

    expect(error.reasons).toEqual(["dependsOn names an unknown task 'transform'"]);
  });

  it('rejects two tasks with the same id', () => {
    const error = definitionError(() =>
      defineWorkflow({ name: 'etl', tasks: [extract, load, task('extract')] }),
    );

    expect(error.reasons).toEqual(["duplicate task id 'extract'"]);
  });

  it('rejects a workflow without tasks', () => {
    const error = definitionError(() => defineWorkflow({ name: 'empty', tasks: [] }));

    expect(error.reasons).toEqual(['a workflow needs at least one task']);
  });

  it('rejects a description over 1000 characters', () => {
    const error = definitionError(() =>
      defineWorkflow({ name: 'etl', description: 'x'.repeat(1001), tasks: [extract] }),
    );

    expect(error.reasons).toEqual(['description must be at most 1000 characters']);
  });

  it('rejects a task that depends on itself, as a cycle of one', () => {
    const error = definitionError(() =>
      defineWorkflow({ name: 'etl', tasks: [extract, load], dependsOn: { load: ['load'] } }),
    );

    expect(error.reasons).toEqual(['dependency cycle: load → load']);
  });

  it('names a three-task cycle in execution order', () => {
    const cycle = ['extract', 'cleanse', 'load'] as const;
    // Each task runs after the one before it, and the first after the last.
    const dependsOn = Object.fromEntries(
      cycle.map((id, index) => [id, [cycle[(index + cycle.length - 1) % cycle.length] ?? '']]),
    );

    const error = definitionError(() =>
      defineWorkflow({ name: 'etl', tasks: [extract, cleanse, load, enrich], dependsOn }),
    );

    expect(error.reasons).toHaveLength(1);
    const [reason] = error.reasons;
    expect(rotations(cycle).map((path) => `dependency cycle: ${path}`)).toContain(reason);
  });

  it('reports each distinct cycle once', () => {
    const error = definitionError(() =>
      defineWorkflow({
        name: 'etl',
        tasks: [extract, cleanse, enrich, load],
        dependsOn: { extract: ['cleanse'], cleanse: ['extract'], enrich: ['load'], load: ['enrich'] },
      }),
    );

    expect(error.reasons).toHaveLength(2);
    expect(rotations(['extract', 'cleanse']).map((path) => `dependency cycle: ${path}`)).toContain(
      error.reasons.find((reason) => reason.includes('extract')),
    );
    expect(rotations(['enrich', 'load']).map((path) => `dependency cycle: ${path}`)).toContain(
      error.reasons.find((reason) => reason.includes('enrich')),
    );
  });

  it('reports every problem at once', () => {
    const error = definitionError(() =>
      defineWorkflow({
        name: 'bad name',
        tasks: [extract, cleanse, load, task('load')],
        dependsOn: {
          cleanse: ['load', 'transform'],
          load: ['cleanse'],
          report: ['load'],
        },
      }),
    );

    expect(error.reasons).toHaveLength(5);
    expect(error.reasons[0]).toMatch(/^name 'bad name' is not a valid state machine name/);
    expect(error.reasons).toEqual(
      expect.arrayContaining([
        "duplicate task id 'load'",
        "task 'cleanse' depends on an unknown task 'transform'",
        "dependsOn names an unknown task 'report'",
      ]),
    );
    expect(rotations(['cleanse', 'load']).map((path) => `dependency cycle: ${path}`)).toContain(
      error.reasons.find((reason) => reason.startsWith('dependency cycle')),
    );
  });

  it.each([
    ['a space', 'nightly etl'],
    ['a tab', 'nightly\tetl'],
    ['a newline', 'nightly\netl'],
    ['a slash', 'nightly/etl'],
    ['a colon', 'nightly:etl'],
    ['a control character', 'nightly\u0007etl'],
    ['a DEL control character', 'nightly\u007fetl'],
    ['81 characters', 'w'.repeat(81)],
    ['nothing', ''],
    ['brackets', 'etl[1]'],
    ['a wildcard', 'etl*'],
    ['a dollar sign', 'etl$'],
  ])('rejects a name with %s', (_, name) => {
    const error = definitionError(() => defineWorkflow({ name, tasks: [extract] }));

    expect(error.reasons).toHaveLength(1);
    expect(error.reasons[0]).toMatch(/is not a valid state machine name/);
  });

  it.each([
    ['one character', 'e'],
    ['80 characters', 'w'.repeat(80)],
    ['underscores, hyphens, dots and digits', 'nightly_etl-v2.1'],
    ['letters outside ASCII', 'überweisung'],
  ])('accepts a name of %s', (_, name) => {
    expect(defineWorkflow({ name, tasks: [extract] }).name).toBe(name);
  });

  it('runs a diamond in three waves: the source, both branches together, then the join', () => {
    const workflow = defineWorkflow({
      name: 'diamond',
      tasks: [load, enrich, cleanse, extract],
      dependsOn: { cleanse: ['extract'], enrich: ['extract'], load: ['cleanse', 'enrich'] },
    });

    expect(workflow.waves).toEqual([['extract'], ['enrich', 'cleanse'], ['load']]);
    expectWavesRespectDependencies(workflow);
  });

  it('runs independent tasks in a single wave, in the order given', () => {
    const workflow = defineWorkflow({ name: 'independent', tasks: [load, extract, enrich] });

    expect(workflow.waves).toEqual([['load', 'extract', 'enrich']]);
  });

  it('places a task one wave after its latest dependency', () => {
    const report = task('report');
    const workflow = defineWorkflow({
      name: 'uneven',
      tasks: [extract, cleanse, enrich, report],
      dependsOn: { cleanse: ['extract'], enrich: ['cleanse'], report: ['extract', 'enrich'] },
    });

    expect(workflow.waves).toEqual([['extract'], ['cleanse'], ['enrich'], ['report']]);
    expectWavesRespectDependencies(workflow);
  });
});

describe('WorkflowRegistry', () => {
  const first = defineWorkflow({ name: 'first', tasks: [task('a')] });
  const second = defineWorkflow({ name: 'second', tasks: [task('b')] });

  it('registers workflows and finds them by name, in registration order', () => {
    const registry = new WorkflowRegistry([first]).register(second);

    expect(registry.get('first')).toBe(first);
    expect(registry.require('second')).toBe(second);
    expect(registry.get('third')).toBeUndefined();
    expect(registry.names()).toEqual(['first', 'second']);
    expect(registry.list()).toEqual([first, second]);
  });

  it('refuses a second workflow with a name already registered', () => {
    const registry = new WorkflowRegistry([first]);
    const impostor = defineWorkflow({ name: 'first', tasks: [task('z')] });

    const error = definitionError(() => registry.register(impostor));

    expect(error.reasons).toEqual(["a workflow named 'first' is already registered"]);
    expect(registry.require('first')).toBe(first);
  });

  it('refuses duplicate names given to the constructor', () => {
    expect(() => new WorkflowRegistry([first, second, first])).toThrow(WorkflowDefinitionError);
  });

  it('answers an unknown name with a 404 that lists the registered workflows', () => {
    const registry = new WorkflowRegistry([first, second]);

    const error = thrownBy(() => registry.require('third'));

    expect(error).toBeInstanceOf(WorkflowNotFoundError);
    expect(error).toMatchObject({
      statusCode: 404,
      code: 'WORKFLOW_NOT_FOUND',
      workflow: 'third',
      message: "Workflow 'third' is not registered. Registered workflows: first, second",
    });
  });

  it('says so when no workflow is registered at all', () => {
    expect(() => new WorkflowRegistry().require('any')).toThrow(/Registered workflows: \(none\)$/);
  });
});
