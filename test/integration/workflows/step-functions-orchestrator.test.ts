import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  CreateStateMachineCommand,
  DescribeExecutionCommand,
  ListExecutionsCommand,
  SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import { ConfigurationError, ConflictError, ForeignExecutionError } from '@tenantflow/shared/kernel/errors';
import { executionNameFor } from '@tenantflow/shared/workflows/execution-name';
import {
  executionArnFor,
  StepFunctionsOrchestrator,
} from '@tenantflow/shared/workflows/step-functions-orchestrator';
import { afterAll, describe, expect, inject, it, onTestFinished } from 'vitest';
import { MOTO_INSTALL_HINT } from '../../support/moto-setup.js';

const motoEndpoint = inject('motoEndpoint');
const motoMissing = motoEndpoint === '';

/**
 * Two tenant ids that share the 43 characters an execution name keeps of a tenant id, so their
 * executions of one execution id have the same name: what the input check is there for.
 */
const TWIN_ACME = `${'t'.repeat(43)}_acme`;
const TWIN_GLOBEX = `${'t'.repeat(43)}_globex`;

/** A name no other test uses, so tests share one moto_server without seeing each other's executions. */
const uniqueName = (prefix: string) => `${prefix}-${randomBytes(6).toString('hex')}`;

const clients: SFNClient[] = [];

function sfnClient(endpoint: string): SFNClient {
  const client = new SFNClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    // An answer the test did not expect must fail the test, not be retried into a different one.
    maxAttempts: 1,
  });
  clients.push(client);
  return client;
}

afterAll(() => {
  for (const client of clients) {
    client.destroy();
  }
});

const PASS_DEFINITION = JSON.stringify({
  StartAt: 'Done',
  States: { Done: { Type: 'Pass', End: true } },
});

/** A state machine of its own in moto, registered as `workflow`, and an orchestrator over it. */
async function freshWorkflow() {
  const client = sfnClient(motoEndpoint);
  const workflow = uniqueName('onboarding');
  const created = await client.send(
    new CreateStateMachineCommand({
      name: workflow,
      definition: PASS_DEFINITION,
      roleArn: 'arn:aws:iam::123456789012:role/test',
    }),
  );
  const stateMachineArn = created.stateMachineArn ?? '';
  const orchestrator = new StepFunctionsOrchestrator({
    client,
    stateMachineArns: { [workflow]: stateMachineArn },
  });
  const listExecutions = async () =>
    (await client.send(new ListExecutionsCommand({ stateMachineArn }))).executions ?? [];
  return { client, orchestrator, workflow, stateMachineArn, listExecutions };
}

describe('StepFunctionsOrchestrator configuration', () => {
  const stateMachineArn = 'arn:aws:states:eu-west-1:123456789012:stateMachine:onboarding';

  it('derives the execution ARN of a Standard state machine from its ARN and the execution id', () => {
    expect(executionArnFor(stateMachineArn, 'exec_42')).toBe(
      'arn:aws:states:eu-west-1:123456789012:execution:onboarding:exec_42',
    );
    expect(executionArnFor('arn:aws-cn:states:cn-north-1:123456789012:stateMachine:billing', 'x-1')).toBe(
      'arn:aws-cn:states:cn-north-1:123456789012:execution:billing:x-1',
    );
  });

  it.each([
    ['a version-qualified ARN', `${stateMachineArn}:3`],
    ['an activity ARN', 'arn:aws:states:eu-west-1:123456789012:activity:onboarding'],
    ['a name', 'onboarding'],
  ])('refuses to derive an execution ARN from %s', (_, arn) => {
    expect(() => executionArnFor(arn, 'exec_42')).toThrow(ConfigurationError);
  });

  it('refuses a malformed state machine ARN at construction, naming the workflow', () => {
    const build = () =>
      new StepFunctionsOrchestrator({
        client: sfnClient('http://127.0.0.1:9'),
        stateMachineArns: { onboarding: stateMachineArn, billing: 'billing' },
      });

    expect(build).toThrow(ConfigurationError);
    expect(build).toThrow(/workflow 'billing'.*'billing'/);
  });

  it('throws a ConfigurationError naming an unknown workflow and the configured ones, before calling AWS', async () => {
    const fake = await startFakeStepFunctions({});
    const orchestrator = new StepFunctionsOrchestrator({
      client: sfnClient(fake.endpoint),
      stateMachineArns: {
        onboarding: stateMachineArn,
        billing: 'arn:aws:states:eu-west-1:123456789012:stateMachine:billing',
      },
    });

    const attempt = orchestrator.start({ workflow: 'payroll', tenantId: 'acme', executionId: 'exec_1' });

    await expect(attempt).rejects.toBeInstanceOf(ConfigurationError);
    await expect(attempt).rejects.toThrow("'payroll'");
    await expect(attempt).rejects.toThrow('onboarding, billing');
    await expect(
      orchestrator.describe({ workflow: 'payroll', tenantId: 'acme', executionId: 'exec_1' }),
    ).rejects.toThrow(ConfigurationError);
    expect(fake.received).toEqual([]);
  });
});

describe.skipIf(motoMissing)(
  motoMissing
    ? `StepFunctionsOrchestrator on moto_server (skipped: moto_server is not on the PATH; install it with ${MOTO_INSTALL_HINT})`
    : 'StepFunctionsOrchestrator on moto_server',
  () => {
    describe('start', () => {
      it('starts an execution named <tenantId>-<executionId>, whose ARN executionArnFor derives', async () => {
        const { orchestrator, workflow, stateMachineArn, listExecutions } = await freshWorkflow();
        const executionId = uniqueName('exec');

        const started = await orchestrator.start({ workflow, tenantId: 'acme', executionId });

        expect(started).toEqual({
          ref: executionArnFor(stateMachineArn, `acme-${executionId}`),
          alreadyStarted: false,
        });
        const executions = await listExecutions();
        expect(executions.map(({ name, executionArn }) => ({ name, executionArn }))).toEqual([
          { name: `acme-${executionId}`, executionArn: started.ref },
        ]);
      });

      it('sends only the tenant id and the execution id as input, never a context', async () => {
        const { client, orchestrator, workflow } = await freshWorkflow();
        const executionId = uniqueName('exec');

        const { ref } = await orchestrator.start({ workflow, tenantId: 'acme', executionId });

        const described = await client.send(new DescribeExecutionCommand({ executionArn: ref }));
        expect(JSON.parse(described.input ?? 'null')).toStrictEqual({ tenantId: 'acme', executionId });
      });

      // AWS documents that a StartExecution repeating the name and input of a RUNNING execution
      // "succeeds and returns the same response as the original request"; moto does the same. The
      // adapter cannot tell such a repeat from a first start, so it says alreadyStarted: false.
      it('answers a start repeated while the execution runs with the same ref, creating no second execution', async () => {
        const { orchestrator, workflow, listExecutions } = await freshWorkflow();
        const executionId = uniqueName('exec');
        const first = await orchestrator.start({ workflow, tenantId: 'acme', executionId });

        const repeated = await orchestrator.start({ workflow, tenantId: 'acme', executionId });

        expect(repeated).toEqual({ ref: first.ref, alreadyStarted: false });
        expect((await listExecutions()).map(({ executionArn }) => executionArn)).toEqual([first.ref]);
      });

      // Once the execution has ended, AWS (and moto) answer a repeated name with ExecutionAlreadyExists.
      it('reports a start repeated after the execution ended as alreadyStarted, with the same ref', async () => {
        const { orchestrator, workflow, listExecutions } = await freshWorkflow();
        const executionId = uniqueName('exec');
        const first = await orchestrator.start({ workflow, tenantId: 'acme', executionId });
        await orchestrator.stop(
          { workflow, tenantId: 'acme', executionId },
          { error: 'Test', cause: 'ended by the test' },
        );

        const repeated = await orchestrator.start({ workflow, tenantId: 'acme', executionId });

        expect(repeated).toEqual({ ref: first.ref, alreadyStarted: true });
        expect((await listExecutions()).map(({ executionArn }) => executionArn)).toEqual([first.ref]);
      });

      it("refuses with a ConflictError an execution name already used by another tenant's execution", async () => {
        const { client, orchestrator, workflow, listExecutions } = await freshWorkflow();
        const executionId = uniqueName('exec');
        const acmes = await orchestrator.start({ workflow, tenantId: TWIN_ACME, executionId });

        const attempt = orchestrator.start({ workflow, tenantId: TWIN_GLOBEX, executionId });

        await expect(attempt).rejects.toBeInstanceOf(ConflictError);
        await expect(attempt).rejects.toBeInstanceOf(ForeignExecutionError);
        await expect(attempt).rejects.not.toThrow('_acme');
        expect(await listExecutions()).toHaveLength(1);
        const described = await client.send(new DescribeExecutionCommand({ executionArn: acmes.ref }));
        expect(JSON.parse(described.input ?? 'null')).toMatchObject({ tenantId: TWIN_ACME });
      });
    });

    describe('describe', () => {
      it('describes a running execution as running, with its ref and start date', async () => {
        const { orchestrator, workflow } = await freshWorkflow();
        const executionId = uniqueName('exec');
        const before = Date.now();
        const { ref } = await orchestrator.start({ workflow, tenantId: 'acme', executionId });

        const description = await orchestrator.describe({ workflow, tenantId: 'acme', executionId });

        expect(description).toMatchObject({
          status: 'running',
          ref,
          redrivable: false,
          stoppedAt: undefined,
        });
        // moto stamps the start with its own clock at millisecond precision; allow a second of skew.
        expect(description.startedAt?.getTime()).toBeGreaterThanOrEqual(before - 1_000);
        expect(description.startedAt?.getTime()).toBeLessThanOrEqual(Date.now() + 1_000);
      });

      it('describes an execution id that was never started as not_found', async () => {
        const { orchestrator, workflow } = await freshWorkflow();
        await orchestrator.start({ workflow, tenantId: 'acme', executionId: uniqueName('exec') });

        const description = await orchestrator.describe({
          workflow,
          tenantId: 'acme',
          executionId: uniqueName('never'),
        });

        expect(description).toEqual({ status: 'not_found', redrivable: false });
      });

      it("describes another tenant's execution by the same name as foreign, telling nothing of it", async () => {
        const { orchestrator, workflow } = await freshWorkflow();
        const executionId = uniqueName('exec');
        await orchestrator.start({ workflow, tenantId: TWIN_GLOBEX, executionId });

        const description = await orchestrator.describe({ workflow, tenantId: TWIN_ACME, executionId });

        expect(description).toStrictEqual({ status: 'foreign', redrivable: false });
      });

      it.each([
        [
          'another execution id',
          (executionId: string) => ({ tenantId: 'acme', executionId: `${executionId}-x` }),
        ],
        ['no tenant id', (executionId: string) => ({ executionId })],
        ['a tenant id that is not a string', (executionId: string) => ({ tenantId: ['acme'], executionId })],
        ['input that is not an object', () => 'acme'],
      ])('describes an execution by the name whose input carries %s as foreign', async (_, input) => {
        const { client, orchestrator, workflow, stateMachineArn } = await freshWorkflow();
        const executionId = uniqueName('exec');
        await client.send(
          new StartExecutionCommand({
            stateMachineArn,
            name: executionId,
            input: JSON.stringify(input(executionId)),
          }),
        );

        const description = await orchestrator.describe({ workflow, tenantId: 'acme', executionId });

        expect(description).toStrictEqual({ status: 'foreign', redrivable: false });
      });
    });

    describe('stop', () => {
      // moto marks a stopped execution ABORTED, as AWS does, but keeps neither error nor cause.
      it('stops a running execution, which is then described as aborted with a stop date', async () => {
        const { orchestrator, workflow } = await freshWorkflow();
        const executionId = uniqueName('exec');
        await orchestrator.start({ workflow, tenantId: 'acme', executionId });

        await orchestrator.stop(
          { workflow, tenantId: 'acme', executionId },
          { error: 'Cancelled', cause: 'by the operator' },
        );

        const description = await orchestrator.describe({ workflow, tenantId: 'acme', executionId });
        expect(description.status).toBe('aborted');
        expect(description.stoppedAt).toBeInstanceOf(Date);
      });

      // moto answers a second StopExecution with success (and moves the stop date).
      it('treats stopping an execution that was already stopped as done', async () => {
        const { orchestrator, workflow } = await freshWorkflow();
        const executionId = uniqueName('exec');
        await orchestrator.start({ workflow, tenantId: 'acme', executionId });
        const reason = { error: 'Cancelled', cause: 'by the operator' };
        const handle = { workflow, tenantId: 'acme', executionId };
        await orchestrator.stop(handle, reason);

        await expect(orchestrator.stop(handle, reason)).resolves.toBeUndefined();
        expect((await orchestrator.describe(handle)).status).toBe('aborted');
      });

      it("refuses to stop another tenant's execution by the same name, which keeps running", async () => {
        const { orchestrator, workflow } = await freshWorkflow();
        const executionId = uniqueName('exec');
        await orchestrator.start({ workflow, tenantId: TWIN_GLOBEX, executionId });

        const attempt = orchestrator.stop(
          { workflow, tenantId: TWIN_ACME, executionId },
          { error: 'Cancelled', cause: 'by the wrong tenant' },
        );

        await expect(attempt).rejects.toBeInstanceOf(ForeignExecutionError);
        await expect(attempt).rejects.not.toThrow('globex');
        expect((await orchestrator.describe({ workflow, tenantId: TWIN_GLOBEX, executionId })).status).toBe(
          'running',
        );
      });

      it('treats stopping an execution that does not exist as done', async () => {
        const { orchestrator, workflow, listExecutions } = await freshWorkflow();

        await expect(
          orchestrator.stop(
            { workflow, tenantId: 'acme', executionId: uniqueName('never') },
            { error: 'E', cause: 'C' },
          ),
        ).resolves.toBeUndefined();
        expect(await listExecutions()).toEqual([]);
      });
    });
  },
);

/**
 * moto does not implement RedriveExecution (it answers HTTP 500), and it cannot make an execution
 * fail, time out or report a redrive status. These tests therefore run the adapter, through the real
 * SDK client, against a local HTTP server that answers in the AWS JSON 1.0 protocol Step Functions
 * speaks, with the shapes the SDK's deserializer reads: a 200 with the output members, or a 400
 * whose `__type` (or `x-amzn-errortype` header) names the exception and whose body has `message`.
 * They prove what the adapter sends and how it maps answers; no call to real AWS is tested here.
 */
describe('StepFunctionsOrchestrator against a recorded AWS JSON 1.0 endpoint', () => {
  const stateMachineArn = 'arn:aws:states:us-east-1:123456789012:stateMachine:onboarding';
  const handle = { workflow: 'onboarding', tenantId: 'acme', executionId: 'exec_42' };
  const executionArn = executionArnFor(stateMachineArn, executionNameFor(handle));
  /** What DescribeExecution answers for an execution started with another tenant's id by this name. */
  const globexInput = JSON.stringify({ tenantId: 'globex', executionId: handle.executionId });

  async function orchestratorAnswering(answers: FakeAnswers) {
    const fake = await startFakeStepFunctions(answers);
    const orchestrator = new StepFunctionsOrchestrator({
      client: sfnClient(fake.endpoint),
      stateMachineArns: { onboarding: stateMachineArn },
    });
    return { orchestrator, received: fake.received };
  }

  const doesNotExist = {
    status: 400,
    errorType: 'ExecutionDoesNotExist',
    body: { __type: 'ExecutionDoesNotExist', message: 'Execution Does Not Exist' },
  } as const;

  describe('redrive', () => {
    it("checks with DescribeExecution that the execution is the tenant's, then sends RedriveExecution for the derived ARN and reports the redrive date", async () => {
      const redriveDate = new Date('2026-01-02T03:04:05.678Z');
      const { orchestrator, received } = await orchestratorAnswering({
        DescribeExecution: { status: 200, body: describedAs('FAILED') },
        RedriveExecution: { status: 200, body: { redriveDate: redriveDate.getTime() / 1_000 } },
      });

      const outcome = await orchestrator.redrive(handle);

      expect(outcome).toEqual({ kind: 'redriven', redrivenAt: redriveDate });
      expect(received.map(({ target }) => target)).toEqual([
        'AWSStepFunctions.DescribeExecution',
        'AWSStepFunctions.RedriveExecution',
      ]);
      expect(received[1]).toMatchObject({
        method: 'POST',
        target: 'AWSStepFunctions.RedriveExecution',
        contentType: 'application/x-amz-json-1.0',
        body: { executionArn },
      });
    });

    it("refuses to redrive another tenant's execution by the same name, and sends no RedriveExecution", async () => {
      const { orchestrator, received } = await orchestratorAnswering({
        DescribeExecution: {
          status: 200,
          body: { ...describedAs('FAILED'), input: globexInput, redriveStatus: 'REDRIVABLE' },
        },
        RedriveExecution: { status: 200, body: { redriveDate: Date.now() / 1_000 } },
      });

      const attempt = orchestrator.redrive(handle);

      await expect(attempt).rejects.toBeInstanceOf(ForeignExecutionError);
      await expect(attempt).rejects.not.toThrow('globex');
      expect(received.map(({ target }) => target)).toEqual(['AWSStepFunctions.DescribeExecution']);
    });

    it('answers not_redrivable for an execution that does not exist, and sends no RedriveExecution', async () => {
      const { orchestrator, received } = await orchestratorAnswering({ DescribeExecution: doesNotExist });

      expect(await orchestrator.redrive(handle)).toEqual({
        kind: 'not_redrivable',
        reason: 'Execution does not exist',
      });
      // By its name, then by the bare execution id it would have had before names carried the tenant.
      expect(received.map(({ target, body }) => [target, body])).toEqual([
        ['AWSStepFunctions.DescribeExecution', { executionArn }],
        [
          'AWSStepFunctions.DescribeExecution',
          { executionArn: executionArnFor(stateMachineArn, handle.executionId) },
        ],
      ]);
    });

    it('redrives an execution started before names carried the tenant id by its legacy ARN', async () => {
      const legacyArn = executionArnFor(stateMachineArn, handle.executionId);
      const { orchestrator, received } = await orchestratorAnswering({
        DescribeExecution: [
          doesNotExist,
          {
            status: 200,
            body: { ...describedAs('FAILED'), executionArn: legacyArn, redriveStatus: 'REDRIVABLE' },
          },
        ],
        RedriveExecution: { status: 200, body: { redriveDate: Date.now() / 1_000 } },
      });

      expect((await orchestrator.redrive(handle)).kind).toBe('redriven');
      expect(received.map(({ target, body }) => [target, body])).toEqual([
        ['AWSStepFunctions.DescribeExecution', { executionArn }],
        ['AWSStepFunctions.DescribeExecution', { executionArn: legacyArn }],
        ['AWSStepFunctions.RedriveExecution', expect.objectContaining({ executionArn: legacyArn })],
      ]);
    });

    it.each([
      ['a namespaced __type', 'com.amazonaws.swf.service.v2.model#ExecutionNotRedrivable'],
      ['a bare __type', 'ExecutionNotRedrivable'],
    ])('maps ExecutionNotRedrivable (%s) to not_redrivable with its message', async (_, type) => {
      const message = `Execution '${executionArn}' is not redrivable: it succeeded`;
      const { orchestrator } = await orchestratorAnswering({
        DescribeExecution: { status: 200, body: describedAs('SUCCEEDED') },
        RedriveExecution: {
          status: 400,
          errorType: 'ExecutionNotRedrivable',
          body: { __type: type, message },
        },
      });

      expect(await orchestrator.redrive(handle)).toEqual({ kind: 'not_redrivable', reason: message });
    });

    it('lets any other error propagate', async () => {
      const { orchestrator } = await orchestratorAnswering({
        DescribeExecution: { status: 200, body: describedAs('FAILED') },
        RedriveExecution: doesNotExist,
      });

      await expect(orchestrator.redrive(handle)).rejects.toMatchObject({ name: 'ExecutionDoesNotExist' });
    });
  });

  describe('describe', () => {
    it('reports a failed, redrivable execution with its error, cause, dates and redrive count', async () => {
      const startDate = new Date('2026-01-02T03:00:00.000Z');
      const stopDate = new Date('2026-01-02T03:04:00.500Z');
      const { orchestrator, received } = await orchestratorAnswering({
        DescribeExecution: {
          status: 200,
          body: {
            ...describedAs('FAILED'),
            startDate: startDate.getTime() / 1_000,
            stopDate: stopDate.getTime() / 1_000,
            error: 'States.TaskFailed',
            cause: 'the task threw',
            redriveCount: 2,
            redriveStatus: 'REDRIVABLE',
          },
        },
      });

      const description = await orchestrator.describe(handle);

      expect(description).toEqual({
        status: 'failed',
        ref: executionArn,
        startedAt: startDate,
        stoppedAt: stopDate,
        error: 'States.TaskFailed',
        cause: 'the task threw',
        redrivable: true,
        redriveCount: 2,
      });
      expect(received[0]).toMatchObject({
        target: 'AWSStepFunctions.DescribeExecution',
        body: { executionArn },
      });
    });

    it("reports another tenant's failed, redrivable execution as foreign, with nothing of its own", async () => {
      const { orchestrator } = await orchestratorAnswering({
        DescribeExecution: {
          status: 200,
          body: {
            ...describedAs('FAILED'),
            input: globexInput,
            error: 'States.TaskFailed',
            cause: "globex's cause",
            redriveStatus: 'REDRIVABLE',
          },
        },
      });

      expect(await orchestrator.describe(handle)).toStrictEqual({ status: 'foreign', redrivable: false });
    });

    it('reports an execution without input as foreign', async () => {
      const { input: _input, ...withoutInput } = describedAs('RUNNING');
      const { orchestrator } = await orchestratorAnswering({
        DescribeExecution: { status: 200, body: withoutInput },
      });

      expect(await orchestrator.describe(handle)).toStrictEqual({ status: 'foreign', redrivable: false });
    });

    it.each([
      ['RUNNING', 'running'],
      ['SUCCEEDED', 'succeeded'],
      ['FAILED', 'failed'],
      ['TIMED_OUT', 'timed_out'],
      ['ABORTED', 'aborted'],
      ['PENDING_REDRIVE', 'pending_redrive'],
    ])('maps status %s to %s', async (awsStatus, status) => {
      const { orchestrator } = await orchestratorAnswering({
        DescribeExecution: { status: 200, body: describedAs(awsStatus) },
      });

      expect((await orchestrator.describe(handle)).status).toBe(status);
    });

    it.each([
      ['NOT_REDRIVABLE', false],
      ['REDRIVABLE_BY_MAP_RUN', false],
      ['REDRIVABLE', true],
    ])('reports redrive status %s as redrivable: %s', async (redriveStatus, redrivable) => {
      const { orchestrator } = await orchestratorAnswering({
        DescribeExecution: { status: 200, body: { ...describedAs('TIMED_OUT'), redriveStatus } },
      });

      expect((await orchestrator.describe(handle)).redrivable).toBe(redrivable);
    });

    it('refuses to map a status it does not know, naming it', async () => {
      const { orchestrator } = await orchestratorAnswering({
        DescribeExecution: { status: 200, body: describedAs('PAUSED') },
      });

      await expect(orchestrator.describe(handle)).rejects.toThrow(/"PAUSED"/);
    });
  });

  describe('stop', () => {
    const stopRefused = {
      status: 400,
      errorType: 'ValidationException',
      body: { __type: 'ValidationException', message: 'refused' },
    } as const;

    it("checks with DescribeExecution that the execution is the tenant's, then sends StopExecution with the derived ARN, error and cause", async () => {
      const { orchestrator, received } = await orchestratorAnswering({
        DescribeExecution: { status: 200, body: describedAs('RUNNING') },
        StopExecution: { status: 200, body: { stopDate: Date.now() / 1_000 } },
      });

      await orchestrator.stop(handle, { error: 'Cancelled', cause: 'by the operator' });

      expect(received).toEqual([
        expect.objectContaining({ target: 'AWSStepFunctions.DescribeExecution', body: { executionArn } }),
        expect.objectContaining({
          target: 'AWSStepFunctions.StopExecution',
          body: { executionArn, error: 'Cancelled', cause: 'by the operator' },
        }),
      ]);
    });

    it("refuses to stop another tenant's execution by the same name, and sends no StopExecution", async () => {
      const { orchestrator, received } = await orchestratorAnswering({
        DescribeExecution: { status: 200, body: { ...describedAs('RUNNING'), input: globexInput } },
        StopExecution: { status: 200, body: { stopDate: Date.now() / 1_000 } },
      });

      await expect(orchestrator.stop(handle, { error: 'E', cause: 'C' })).rejects.toBeInstanceOf(
        ForeignExecutionError,
      );
      expect(received.map(({ target }) => target)).toEqual(['AWSStepFunctions.DescribeExecution']);
    });

    it.each([
      // Looked up by its name and by its legacy name (the bare execution id).
      ['does not exist', doesNotExist, 2],
      ['has already ended', { status: 200, body: describedAs('SUCCEEDED') }, 1],
    ] as const)(
      'treats stopping an execution that %s as done, and sends no StopExecution',
      async (_, described, lookups) => {
        const { orchestrator, received } = await orchestratorAnswering({ DescribeExecution: described });

        await expect(orchestrator.stop(handle, { error: 'E', cause: 'C' })).resolves.toBeUndefined();
        expect(received.map(({ target }) => target)).toEqual(
          Array.from({ length: lookups }, () => 'AWSStepFunctions.DescribeExecution'),
        );
      },
    );

    it('treats ExecutionDoesNotExist from StopExecution as done without asking for the status again', async () => {
      const { orchestrator, received } = await orchestratorAnswering({
        DescribeExecution: { status: 200, body: describedAs('RUNNING') },
        StopExecution: doesNotExist,
      });

      await expect(orchestrator.stop(handle, { error: 'E', cause: 'C' })).resolves.toBeUndefined();
      expect(received.map(({ target }) => target)).toEqual([
        'AWSStepFunctions.DescribeExecution',
        'AWSStepFunctions.StopExecution',
      ]);
    });

    it('treats a refused stop of an execution that ended meanwhile as done', async () => {
      const { orchestrator, received } = await orchestratorAnswering({
        DescribeExecution: [
          { status: 200, body: describedAs('RUNNING') },
          { status: 200, body: describedAs('SUCCEEDED') },
        ],
        StopExecution: stopRefused,
      });

      await expect(orchestrator.stop(handle, { error: 'E', cause: 'C' })).resolves.toBeUndefined();
      expect(received.map(({ target }) => target)).toEqual([
        'AWSStepFunctions.DescribeExecution',
        'AWSStepFunctions.StopExecution',
        'AWSStepFunctions.DescribeExecution',
      ]);
    });

    it('lets a refused stop of an execution that is still running propagate', async () => {
      const { orchestrator } = await orchestratorAnswering({
        StopExecution: stopRefused,
        DescribeExecution: { status: 200, body: describedAs('RUNNING') },
      });

      await expect(orchestrator.stop(handle, { error: 'E', cause: 'C' })).rejects.toMatchObject({
        name: 'ValidationException',
      });
    });
  });

  /** A DescribeExecution answer for the handle's own execution, started with its tenant's input. */
  function describedAs(status: string) {
    return {
      executionArn,
      stateMachineArn,
      name: handle.executionId,
      status,
      startDate: Date.parse('2026-01-02T03:00:00Z') / 1_000,
      input: JSON.stringify({ tenantId: handle.tenantId, executionId: handle.executionId }),
    };
  }
});

interface FakeAnswer {
  readonly status: number;
  /** Sent as `x-amzn-errortype`, as AWS does on error responses. */
  readonly errorType?: string;
  readonly body: unknown;
}

/**
 * Answers by operation name (the part of `x-amz-target` after `AWSStepFunctions.`). A list answers
 * successive calls in turn, its last answer repeating.
 */
type FakeAnswers = Readonly<Record<string, FakeAnswer | readonly FakeAnswer[]>>;

interface ReceivedRequest {
  readonly method: string | undefined;
  readonly target: string | undefined;
  readonly contentType: string | undefined;
  readonly body: unknown;
}

/**
 * A stand-in for the Step Functions endpoint on 127.0.0.1, recording every request. An operation
 * without an answer gets a 400 UnknownOperationException, so an unexpected call fails the test.
 */
async function startFakeStepFunctions(answers: FakeAnswers) {
  const received: ReceivedRequest[] = [];
  const calls = new Map<string, number>();
  const nextAnswer = (operation: string): FakeAnswer | undefined => {
    const answer = answers[operation];
    if (answer === undefined || !Array.isArray(answer)) {
      return answer as FakeAnswer | undefined;
    }
    const call = calls.get(operation) ?? 0;
    calls.set(operation, call + 1);
    return answer[Math.min(call, answer.length - 1)];
  };
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', function answerLikeStepFunctions() {
      const target = headerOf(request.headers, 'x-amz-target');
      received.push({
        method: request.method,
        target,
        contentType: headerOf(request.headers, 'content-type'),
        body: JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null'),
      });
      const operation = target?.replace(/^AWSStepFunctions\./, '') ?? '';
      const answer: FakeAnswer = nextAnswer(operation) ?? {
        status: 400,
        errorType: 'UnknownOperationException',
        body: { __type: 'UnknownOperationException', message: `No answer for ${String(target)}` },
      };
      response.writeHead(answer.status, {
        'content-type': 'application/x-amz-json-1.0',
        'x-amzn-requestid': randomBytes(8).toString('hex'),
        ...(answer.errorType === undefined ? {} : { 'x-amzn-errortype': answer.errorType }),
      });
      response.end(JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const { port } = server.address() as AddressInfo;
  return { endpoint: `http://127.0.0.1:${port}`, received };
}

function headerOf(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}
