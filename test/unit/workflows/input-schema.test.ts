import { ValidationError, WorkflowDefinitionError } from '@tenantflow/shared/kernel/errors';
import { z } from '@tenantflow/shared/kernel/zod';
import { defineTask, type JsonValue, type TaskContext } from '@tenantflow/shared/workflows/task';
import { defineWorkflow, parseWorkflowInput } from '@tenantflow/shared/workflows/workflow';
import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  configurableWorkflow,
  reportPipelineWorkflow,
  tenantIsolationWorkflow,
} from '../../../examples/index.js';
import { EXAMPLE_INPUTS } from '../../../ops/smoke-test.js';

const ordersInput = z.object({
  day: z.string().default('yesterday'),
  items: z.array(z.number()),
});
type OrdersInput = z.infer<typeof ordersInput>;

/** Runs `act`, which must throw, and returns what it threw. */
function thrownBy(act: () => unknown): unknown {
  try {
    act();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error, but nothing was thrown');
}

function refusal(act: () => unknown): ValidationError {
  const error = thrownBy(act);
  expect(error).toBeInstanceOf(ValidationError);
  return error as ValidationError;
}

/** Just enough of a task context to run a task body outside the runner. */
function contextWith<Input>(input: Input, context: Record<string, unknown>): TaskContext<Input> {
  const set = (key: string, value: unknown) => {
    context[key] = value;
  };
  return { input, set } as unknown as TaskContext<Input>;
}

describe('defineWorkflow with an input schema', () => {
  it("types a task's ctx.input as the schema's output, and JSON without a type", async () => {
    // Prepare: a task typed with the schema, one untyped, in one workflow.
    const load = defineTask<OrdersInput>({
      id: 'load',
      run: (ctx) => {
        expectTypeOf(ctx.input).toEqualTypeOf<{ day: string; items: number[] }>();
        ctx.set('count', ctx.input.items.length);
      },
    });
    const report = defineTask({
      id: 'report',
      run: (ctx) => {
        expectTypeOf(ctx.input).toEqualTypeOf<JsonValue>();
      },
    });
    const workflow = defineWorkflow({ name: 'orders', input: ordersInput, tasks: [load, report] });

    // Act: the task body with the input the schema parsed.
    const context: Record<string, unknown> = {};
    await workflow.task('load')?.run(contextWith(parseWorkflowInput(workflow, { items: [4, 5] }), context));

    // Assert
    expect(context).toEqual({ count: 2 });
    expect(workflow.tasks.map((task) => task.id)).toEqual(['load', 'report']);
  });

  it('refuses, at compile time, a task typed for another input or for a workflow without a schema', () => {
    const other = defineTask<{ rows: string[] }>({ id: 'other', run: () => {} });
    const load = defineTask<OrdersInput>({ id: 'load', run: () => {} });

    // The refusals are TypeScript's (`tsc` fails if one is missing); at run time types are gone.
    const mismatch = () =>
      // @ts-expect-error `other` reads `rows`, which this workflow's input does not have
      defineWorkflow({ name: 'mismatch', input: ordersInput, tasks: [other] });
    const untyped = () =>
      // @ts-expect-error `load` needs an OrdersInput; a workflow without a schema takes any JSON
      defineWorkflow({ name: 'untyped', tasks: [load] });
    expect(mismatch().name).toBe('mismatch');
    expect(untyped().name).toBe('untyped');
  });

  it('shows the input as JSON Schema, of what a client sends: a field with a default is optional', () => {
    const workflow = defineWorkflow({
      name: 'orders',
      input: ordersInput,
      tasks: [defineTask({ id: 'load', run: () => {} })],
    });

    expect(workflow.inputSchema).toBe(ordersInput);
    expect(workflow.inputJsonSchema).toEqual({
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'object',
      properties: {
        day: { type: 'string', default: 'yesterday' },
        items: { type: 'array', items: { type: 'number' } },
      },
      required: ['items'],
    });
    expect(Object.isFrozen(workflow.inputJsonSchema)).toBe(true);
  });

  it('shows {} for a workflow without a schema, and passes any input through as it is', () => {
    const workflow = defineWorkflow({ name: 'plain', tasks: [defineTask({ id: 'load', run: () => {} })] });
    const input = { anything: ['goes', 1, null] };

    expect(workflow.inputSchema).toBeUndefined();
    expect(workflow.inputJsonSchema).toEqual({});
    expect(parseWorkflowInput(workflow, input)).toBe(input);
  });

  it('refuses a schema that JSON Schema cannot express, when the workflow is defined', () => {
    const error = thrownBy(() =>
      defineWorkflow({
        name: 'dated',
        input: z.object({ at: z.coerce.date() }),
        tasks: [defineTask<{ at: Date }>({ id: 'load', run: () => {} })],
      }),
    );

    expect(error).toBeInstanceOf(WorkflowDefinitionError);
    expect((error as WorkflowDefinitionError).reasons).toEqual([
      expect.stringMatching(/^input schema cannot be written as JSON Schema .*Date/),
    ]);
  });
});

describe('parseWorkflowInput', () => {
  const workflow = defineWorkflow({
    name: 'orders',
    input: ordersInput,
    tasks: [defineTask({ id: 'load', run: () => {} })],
  });

  it('returns what the schema parsed: defaults filled in, undeclared keys dropped', () => {
    expect(parseWorkflowInput(workflow, { items: [1, 2], note: 'dropped' })).toEqual({
      day: 'yesterday',
      items: [1, 2],
    });
  });

  it("refuses an input with a 400 VALIDATION_FAILED whose reasons give each issue's path", () => {
    const error = refusal(() => parseWorkflowInput(workflow, { day: 3, items: [1, 'two', 3] }));

    expect(error.statusCode).toBe(400);
    expect(error.code).toBe('VALIDATION_FAILED');
    expect(error.reasons).toEqual([
      'input.day: expected string, received number',
      'input.items.1: expected number, received string',
    ]);
    expect(error.message).toBe(
      "Invalid input for workflow 'orders': input.day: expected string, received number; input.items.1: expected number, received string",
    );
  });

  it('names the input itself when it is not even an object, and a missing field by its path', () => {
    expect(refusal(() => parseWorkflowInput(workflow, 'orders')).reasons).toEqual([
      'input: expected object, received string',
    ]);
    expect(refusal(() => parseWorkflowInput(workflow, {})).reasons).toEqual([
      'input.items: expected array, received undefined',
    ]);
  });

  it('lists at most 20 issues, then says how many more there are', () => {
    const items = Array.from({ length: 25 }, (_, index) => `item ${index}`);

    const { reasons } = refusal(() => parseWorkflowInput(workflow, { items }));

    expect(reasons).toHaveLength(21);
    expect(reasons[19]).toBe('input.items.19: expected number, received string');
    expect(reasons[20]).toBe('input: 5 more issues');
  });

  it("treats a schema whose output is not JSON as the workflow's mistake, not the client's", () => {
    const dated = defineWorkflow({
      name: 'dated',
      input: z.object({ at: z.string().transform((text) => new Date(text)) }),
      // A task typed as plain JSON would not compile here: TypeScript sees the Date too.
      tasks: [defineTask<{ at: Date }>({ id: 'load', run: () => {} })],
    });

    const error = thrownBy(() => parseWorkflowInput(dated, { at: '2026-01-01' }));

    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(ValidationError);
    expect((error as Error).message).toMatch(/^Workflow 'dated': its input schema's output is not JSON/);
  });
});

describe('the examples’ input schemas', () => {
  const examples = [tenantIsolationWorkflow, configurableWorkflow, reportPipelineWorkflow];

  it('accept the inputs the smoke test, the e2e tests, the README and the docs send', () => {
    const sent: Record<string, JsonValue[]> = {
      tenant_isolation: [{}, { values: [1, 2, 3, 10_000] }],
      configurable_processing: [{ items: [1, 2, 3, 4, 5] }, { items: [0, 1, 2, 3, 4, 5, 6] }],
      report_pipeline: [
        { rows: [{ id: 'a', amount: 3 }], destination: 's3://x' },
        { rows: [{ id: 'r1', amount: 5 }], destination: 's3://premium-reports' },
      ],
    };
    for (const workflow of examples) {
      const inputs = [...(sent[workflow.name] ?? []), EXAMPLE_INPUTS[workflow.name] as JsonValue];
      expect(inputs.length, workflow.name).toBeGreaterThan(1);
      for (const input of inputs) {
        expect(parseWorkflowInput(workflow, input), `${workflow.name} ${JSON.stringify(input)}`).toEqual(
          expect.objectContaining(input as object),
        );
      }
    }
  });

  it('refuse inputs of the wrong shape, naming where', () => {
    expect(refusal(() => parseWorkflowInput(configurableWorkflow, { items: [1, '2'] })).reasons).toEqual([
      'input.items.1: expected number, received string',
    ]);
    expect(refusal(() => parseWorkflowInput(tenantIsolationWorkflow, { values: 'many' })).reasons).toEqual([
      'input.values: expected array, received string',
    ]);
    expect(
      refusal(() => parseWorkflowInput(reportPipelineWorkflow, { rows: [{ id: 1, amount: 2 }] })).reasons,
    ).toEqual([
      'input.rows.0.id: expected string, received number',
      'input.destination: expected string, received undefined',
    ]);
  });

  it('fill in an empty list where one is left out', () => {
    expect(parseWorkflowInput(tenantIsolationWorkflow, {})).toEqual({ values: [] });
    expect(parseWorkflowInput(configurableWorkflow, {})).toEqual({ items: [] });
    expect(parseWorkflowInput(reportPipelineWorkflow, { destination: 's3://x' })).toEqual({
      rows: [],
      destination: 's3://x',
    });
  });
});
