import { randomBytes, randomUUID } from 'node:crypto';
import {
  CreateStateMachineCommand,
  ListExecutionsCommand,
  SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import { TENANT_ID_MAX_LENGTH } from '@tenantflow/shared/kernel/tenant-id';
import { executionNameFor } from '@tenantflow/shared/workflows/execution-name';
import {
  executionArnFor,
  StepFunctionsOrchestrator,
} from '@tenantflow/shared/workflows/step-functions-orchestrator';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { MOTO_INSTALL_HINT } from '../../support/moto-setup.js';

/**
 * Execution names that carry the tenant id, on moto_server: the longest tenant id still gives a
 * name Step Functions takes, and executions started before the change (named by the bare execution
 * id) are still found, described and stopped, and never started a second time.
 */

const motoEndpoint = inject('motoEndpoint');
const motoMissing = motoEndpoint === '';

const client = new SFNClient({
  endpoint: motoEndpoint || 'http://127.0.0.1:1',
  region: 'us-east-1',
  credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  maxAttempts: 1,
});

afterAll(() => client.destroy());

async function freshWorkflow() {
  const workflow = `names-${randomBytes(6).toString('hex')}`;
  const created = await client.send(
    new CreateStateMachineCommand({
      name: workflow,
      definition: JSON.stringify({ StartAt: 'Done', States: { Done: { Type: 'Pass', End: true } } }),
      roleArn: 'arn:aws:iam::123456789012:role/test',
    }),
  );
  const stateMachineArn = created.stateMachineArn ?? '';
  const orchestrator = new StepFunctionsOrchestrator({
    client,
    stateMachineArns: { [workflow]: stateMachineArn },
  });
  const listNames = async () =>
    ((await client.send(new ListExecutionsCommand({ stateMachineArn }))).executions ?? []).map(
      (execution) => execution.name,
    );
  return { workflow, stateMachineArn, orchestrator, listNames };
}

describe.skipIf(motoMissing)(
  motoMissing
    ? `Execution names on moto_server (skipped: moto_server is not on the PATH; install it with ${MOTO_INSTALL_HINT})`
    : 'Execution names on moto_server',
  () => {
    it('starts the execution of a 58-character tenant id under a name of at most 80 characters', async () => {
      const { workflow, orchestrator, listNames } = await freshWorkflow();
      const tenantId = `t${'0123456789'.repeat(6)}`.slice(0, TENANT_ID_MAX_LENGTH);
      const executionId = randomUUID();

      const started = await orchestrator.start({ workflow, tenantId, executionId });

      const [name] = await listNames();
      expect(tenantId).toHaveLength(58);
      expect(name).toBe(executionNameFor({ tenantId, executionId }));
      expect(name?.length).toBeLessThanOrEqual(80);
      expect(name?.startsWith(tenantId.slice(0, 43))).toBe(true);
      expect(started.ref.endsWith(`:${name}`)).toBe(true);
      expect((await orchestrator.describe({ workflow, tenantId, executionId })).status).toBe('running');
    });

    it('describes and stops a running execution named by the bare execution id (started before the change)', async () => {
      const { workflow, stateMachineArn, orchestrator, listNames } = await freshWorkflow();
      const executionId = randomUUID();
      const handle = { workflow, tenantId: 'acme', executionId };
      // What an earlier release started: the execution id as the name, the same input.
      await client.send(
        new StartExecutionCommand({
          stateMachineArn,
          name: executionId,
          input: JSON.stringify({ tenantId: 'acme', executionId }),
        }),
      );

      const described = await orchestrator.describe(handle);
      expect(described).toMatchObject({
        status: 'running',
        ref: executionArnFor(stateMachineArn, executionId),
      });

      await orchestrator.stop(handle, { error: 'Cancelled', cause: 'by the test' });

      expect((await orchestrator.describe(handle)).status).toBe('aborted');
      // Nothing was started under the new name: recovery, which describes before it starts, never
      // starts a duplicate of an execution it finds this way.
      expect(await listNames()).toEqual([executionId]);
    });

    it("still refuses a legacy-named execution whose input is another tenant's", async () => {
      const { workflow, stateMachineArn, orchestrator } = await freshWorkflow();
      const executionId = randomUUID();
      await client.send(
        new StartExecutionCommand({
          stateMachineArn,
          name: executionId,
          input: JSON.stringify({ tenantId: 'globex', executionId }),
        }),
      );

      expect(await orchestrator.describe({ workflow, tenantId: 'acme', executionId })).toStrictEqual({
        status: 'foreign',
        redrivable: false,
      });
    });
  },
);
