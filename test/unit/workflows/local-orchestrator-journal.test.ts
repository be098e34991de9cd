import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ForeignExecutionError } from '@tenantflow/shared/kernel/errors';
import { type AslTargets, compileToAsl } from '@tenantflow/shared/workflows/asl';
import type { ExecutionHandle } from '@tenantflow/shared/workflows/orchestrator';
import { defineTask } from '@tenantflow/shared/workflows/task';
import { defineWorkflow } from '@tenantflow/shared/workflows/workflow';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ExecutionJournalError,
  LOCAL_PROCESS_EXITED,
  type LocalLambda,
  LocalOrchestrator,
  type LocalOrchestratorOptions,
} from '../../../local/local-orchestrator.js';

/**
 * The LocalOrchestrator's journal: what it writes, and what a new instance concludes from it after
 * the one that ran an execution crashed. The Lambdas are in-process fakes; no database is involved.
 */

const TARGETS: AslTargets = {
  taskRunnerArn: 'arn:aws:lambda:local:000000000000:function:journal-test-run-task',
  finalizeArn: 'arn:aws:lambda:local:000000000000:function:journal-test-finalize',
};

// The bodies never run here: the fake run-task Lambda stands in for the task runner.
const noop = () => {};
const workflow = defineWorkflow({
  name: 'journaled',
  tasks: [
    defineTask({ id: 'prepare', run: noop }),
    defineTask({ id: 'publish', run: noop, retry: { attempts: 1 } }),
  ],
  dependsOn: { publish: ['prepare'] },
});
const definitions = { [workflow.name]: compileToAsl(workflow, TARGETS) };
const TENANT = 'acme';

interface Invocation {
  readonly lambda: 'run-task' | 'finalize';
  readonly tenantId: string;
  readonly executionId: string;
  readonly step: string;
}

interface Deferred {
  readonly promise: Promise<void>;
  readonly resolve: () => void;
}

function deferred(): Deferred {
  let resolve: () => void = () => {};
  const promise = new Promise<void>((onResolve) => {
    resolve = onResolve;
  });
  return { promise, resolve };
}

/** The run-task and finalize Lambdas of one orchestrator, recording each call. */
class InProcessLambdas {
  readonly invocations: Invocation[] = [];
  /** Called as each task starts, before it does anything. */
  beforeTask: (executionId: string, taskId: string) => void = () => {};
  /** Makes `publish` throw. */
  failPublish = false;
  #gate: Deferred | undefined;
  #waiting = deferred();

  /** From now on `publish` waits until {@link release}: its execution stays in flight. */
  hold(): void {
    this.#gate = deferred();
    this.#waiting = deferred();
  }

  /** Resolves once a `publish` is waiting at the gate. */
  get held(): Promise<void> {
    return this.#waiting.promise;
  }

  release(): void {
    this.#gate?.resolve();
    this.#gate = undefined;
  }

  readonly lambdas: Record<string, LocalLambda> = {
    [TARGETS.taskRunnerArn]: async (payload) => {
      const { tenantId = '', executionId = '', taskId = '' } = payload as Record<string, string>;
      this.invocations.push({ lambda: 'run-task', tenantId, executionId, step: taskId });
      this.beforeTask(executionId, taskId);
      const gate = this.#gate;
      if (taskId === 'publish' && gate !== undefined) {
        this.#waiting.resolve();
        await gate.promise;
      }
      if (taskId === 'publish' && this.failPublish) {
        throw new Error('publish failed');
      }
      return undefined;
    },
    [TARGETS.finalizeArn]: async (payload) => {
      const { tenantId = '', executionId = '', outcome = '' } = payload as Record<string, string>;
      this.invocations.push({ lambda: 'finalize', tenantId, executionId, step: outcome });
      return undefined;
    },
  };

  stepsOf(executionId: string): string[] {
    return this.invocations.filter((call) => call.executionId === executionId).map((call) => call.step);
  }
}

interface JournalEntryOnDisk {
  version: number;
  workflow: string;
  executionId: string;
  tenantId: string;
  ref: string;
  status: string;
  startedAt: string;
  stoppedAt?: string;
  error?: string;
  cause?: string;
  redriveCount: number;
  owner: { pid: number; instanceId: string };
}

let journalDirectory: string;
const releaseAfterTest: InProcessLambdas[] = [];
const drainAfterTest: LocalOrchestrator[] = [];

beforeEach(async () => {
  journalDirectory = await mkdtemp(join(tmpdir(), 'tenantflow-journal-'));
});

afterEach(async () => {
  for (const lambdas of releaseAfterTest.splice(0)) {
    lambdas.release();
  }
  await Promise.all(
    drainAfterTest.splice(0).map((orchestrator) => orchestrator.drain().catch(() => undefined)),
  );
  await rm(journalDirectory, { recursive: true, force: true });
});

function orchestratorWith(
  lambdas: InProcessLambdas,
  options: Partial<LocalOrchestratorOptions> = {},
): LocalOrchestrator {
  const orchestrator = new LocalOrchestrator({
    definitions,
    lambdas: lambdas.lambdas,
    retryIntervalMs: 0,
    journalDirectory,
    ...options,
  });
  releaseAfterTest.push(lambdas);
  drainAfterTest.push(orchestrator);
  return orchestrator;
}

function newHandle(): ExecutionHandle {
  return { workflow: workflow.name, tenantId: TENANT, executionId: randomUUID() };
}

function journalFile(handle: ExecutionHandle): string {
  return join(journalDirectory, handle.workflow, `${handle.executionId}.json`);
}

async function readEntry(handle: ExecutionHandle): Promise<JournalEntryOnDisk> {
  return JSON.parse(await readFile(journalFile(handle), 'utf8')) as JournalEntryOnDisk;
}

/** A `running` entry as an orchestrator in another process would have left it. */
function runningEntry(handle: ExecutionHandle, pid: number): JournalEntryOnDisk {
  return {
    version: 1,
    workflow: handle.workflow,
    executionId: handle.executionId,
    tenantId: TENANT,
    ref: `arn:aws:states:local:000000000000:execution:${handle.workflow}:${handle.executionId}`,
    status: 'running',
    startedAt: '2025-01-02T03:04:05.000Z',
    redriveCount: 0,
    owner: { pid, instanceId: randomUUID() },
  };
}

async function writeEntry(handle: ExecutionHandle, entry: unknown): Promise<void> {
  await mkdir(join(journalDirectory, handle.workflow), { recursive: true });
  await writeFile(journalFile(handle), typeof entry === 'string' ? entry : JSON.stringify(entry));
}

describe('LocalOrchestrator journal', () => {
  describe('writing', () => {
    it('journals an execution as running, readable only by its owner, before its first task runs', async () => {
      const lambdas = new InProcessLambdas();
      const orchestrator = orchestratorWith(lambdas);
      const handle = newHandle();
      const seenByFirstTask: JournalEntryOnDisk[] = [];
      lambdas.beforeTask = (_executionId, taskId) => {
        if (taskId === 'prepare') {
          seenByFirstTask.push(JSON.parse(readFileSync(journalFile(handle), 'utf8')) as JournalEntryOnDisk);
        }
      };

      const started = await orchestrator.start(handle);
      await orchestrator.drain();

      expect(seenByFirstTask).toEqual([
        {
          version: 1,
          workflow: workflow.name,
          executionId: handle.executionId,
          tenantId: TENANT,
          ref: started.ref,
          status: 'running',
          startedAt: expect.any(String),
          redriveCount: 0,
          owner: { pid: process.pid, instanceId: expect.any(String) },
        },
      ]);
      expect((await stat(journalFile(handle))).mode & 0o777).toBe(0o600);
    });

    it('rewrites the entry with the final status once the run settles, before drain returns', async () => {
      const lambdas = new InProcessLambdas();
      const orchestrator = orchestratorWith(lambdas);
      const handle = newHandle();

      await orchestrator.start(handle);
      await orchestrator.drain();

      const entry = await readEntry(handle);
      expect(entry.status).toBe('succeeded');
      expect(Date.parse(entry.stoppedAt ?? '')).toBeGreaterThanOrEqual(Date.parse(entry.startedAt));
      expect(lambdas.stepsOf(handle.executionId)).toEqual(['prepare', 'publish', 'succeeded']);
    });

    it('journals a failed run with its error and cause', async () => {
      const lambdas = new InProcessLambdas();
      lambdas.failPublish = true;
      const orchestrator = orchestratorWith(lambdas);
      const handle = newHandle();

      await orchestrator.start(handle);
      await orchestrator.drain();

      expect(await readEntry(handle)).toMatchObject({
        status: 'failed',
        error: 'WorkflowFailed',
        cause: expect.stringContaining('A task failed'),
      });
    });

    it('describes a settled execution from the journal once it has left memory', async () => {
      const settled: string[] = [];
      const orchestrator = orchestratorWith(new InProcessLambdas(), {
        onExecutionSettled: ({ status }) => settled.push(status),
      });
      const handle = newHandle();
      await orchestrator.start(handle);
      await orchestrator.drain();
      expect((await orchestrator.describe(handle)).status).toBe('succeeded');

      // Were the execution still in memory, memory would answer and this edit would go unseen.
      await writeEntry(handle, { ...(await readEntry(handle)), status: 'failed', error: 'EditedOnDisk' });
      const described = await orchestrator.describe(handle);

      expect(described).toMatchObject({ status: 'failed', error: 'EditedOnDisk', redrivable: true });
      expect(settled).toEqual(['succeeded']);
    });

    it('keeps a settled execution in memory and reports the error when its final entry cannot be written', async () => {
      const lambdas = new InProcessLambdas();
      const journalErrors: unknown[] = [];
      const orchestrator = orchestratorWith(lambdas, {
        onJournalError: (error) => journalErrors.push(error),
      });
      const handle = newHandle();
      lambdas.hold();
      await orchestrator.start(handle);
      await lambdas.held;

      // A file where the workflow's directory was: no entry can be written there any more.
      await rm(join(journalDirectory, workflow.name), { recursive: true });
      await writeFile(join(journalDirectory, workflow.name), 'not a directory');
      lambdas.release();
      await orchestrator.drain();

      expect(journalErrors).toHaveLength(1);
      expect(journalErrors[0]).toBeInstanceOf(ExecutionJournalError);
      expect((journalErrors[0] as Error).message).toContain(journalFile(handle));
      expect((await orchestrator.describe(handle)).status).toBe('succeeded');
    });

    it('refuses to start, and runs nothing, when the entry cannot be written', async () => {
      const notADirectory = join(journalDirectory, 'a-file');
      await writeFile(notADirectory, '');
      const lambdas = new InProcessLambdas();
      const orchestrator = orchestratorWith(lambdas, { journalDirectory: notADirectory });

      const attempt = orchestrator.start(newHandle());

      await expect(attempt).rejects.toBeInstanceOf(ExecutionJournalError);
      await orchestrator.drain();
      expect(lambdas.invocations).toEqual([]);
    });

    it('runs a name once when it is started twice at the same time', async () => {
      const lambdas = new InProcessLambdas();
      const orchestrator = orchestratorWith(lambdas);
      const handle = newHandle();

      const starts = await Promise.all([orchestrator.start(handle), orchestrator.start(handle)]);
      await orchestrator.drain();

      expect(starts.map((started) => started.alreadyStarted).sort()).toEqual([false, true]);
      expect(lambdas.stepsOf(handle.executionId)).toEqual(['prepare', 'publish', 'succeeded']);
    });
  });

  describe('after a crash', () => {
    it('describes an execution its crashed owner left running as lost, and redrives it to succeeded', async () => {
      const lambdasOfA = new InProcessLambdas();
      const settledInA: string[] = [];
      const a = orchestratorWith(lambdasOfA, { onExecutionSettled: ({ status }) => settledInA.push(status) });
      const handle = newHandle();
      lambdasOfA.hold();
      const started = await a.start(handle);
      await lambdasOfA.held;

      a.simulateCrash();
      lambdasOfA.release();
      // Room for the crashed run to take a further step, were it still going.
      await new Promise((resolve) => setTimeout(resolve, 50));

      const leftBehind = await readEntry(handle);
      expect(leftBehind).toMatchObject({ status: 'running', redriveCount: 0 });
      expect(settledInA).toEqual([]);
      expect(lambdasOfA.stepsOf(handle.executionId)).toEqual(['prepare', 'publish']);
      await expect(a.describe(handle)).rejects.toThrow(/crashed/);

      const lambdasOfB = new InProcessLambdas();
      const b = orchestratorWith(lambdasOfB);
      expect(await b.describe(handle)).toEqual({
        status: 'failed',
        error: LOCAL_PROCESS_EXITED,
        cause: `The local process that ran this execution (pid ${process.pid}) exited before it finished; a redrive resumes it after its last committed task`,
        redrivable: true,
        ref: started.ref,
        startedAt: new Date(leftBehind.startedAt),
        redriveCount: 0,
      });

      const outcome = await b.redrive(handle);
      await b.drain();

      expect(outcome.kind).toBe('redriven');
      expect(await b.describe(handle)).toMatchObject({
        status: 'succeeded',
        ref: started.ref,
        startedAt: new Date(leftBehind.startedAt),
        redriveCount: 1,
      });
      expect(await readEntry(handle)).toMatchObject({
        status: 'succeeded',
        redriveCount: 1,
        tenantId: TENANT,
      });
      expect(lambdasOfB.invocations.map((call) => call.tenantId)).toEqual([TENANT, TENANT, TENANT]);
      expect(lambdasOfB.stepsOf(handle.executionId)).toEqual(['prepare', 'publish', 'succeeded']);
    });

    it('makes a crashed instance refuse every further call', async () => {
      const orchestrator = orchestratorWith(new InProcessLambdas());
      const handle = newHandle();

      orchestrator.simulateCrash();

      await expect(orchestrator.start(handle)).rejects.toThrow(/crashed/);
      await expect(orchestrator.describe(handle)).rejects.toThrow(/crashed/);
      await expect(orchestrator.redrive(handle)).rejects.toThrow(/crashed/);
      await expect(orchestrator.stop(handle, { error: 'E', cause: 'C' })).rejects.toThrow(/crashed/);
      await expect(orchestrator.drain()).rejects.toThrow(/crashed/);
    });

    it('redrives a failed execution from its journal entry in a new instance', async () => {
      const failing = new InProcessLambdas();
      failing.failPublish = true;
      const a = orchestratorWith(failing);
      const handle = newHandle();
      await a.start(handle);
      await a.drain();

      const b = orchestratorWith(new InProcessLambdas());
      const outcome = await b.redrive(handle);
      await b.drain();

      expect(outcome.kind).toBe('redriven');
      expect(await b.describe(handle)).toMatchObject({ status: 'succeeded', redriveCount: 1 });
    });

    it('reports running, not redrivable, while the owner is another live instance of this process', async () => {
      const lambdasOfA = new InProcessLambdas();
      const a = orchestratorWith(lambdasOfA);
      const handle = newHandle();
      lambdasOfA.hold();
      await a.start(handle);
      await lambdasOfA.held;
      const lambdasOfB = new InProcessLambdas();
      const b = orchestratorWith(lambdasOfB);

      const described = await b.describe(handle);
      const redrive = await b.redrive(handle);
      const restart = await b.start(handle);

      expect(described).toMatchObject({ status: 'running', redrivable: false });
      expect(redrive).toEqual({
        kind: 'not_redrivable',
        reason: 'Execution is still running in another LocalOrchestrator of this process',
      });
      expect(restart.alreadyStarted).toBe(true);
      expect(lambdasOfB.invocations).toEqual([]);
    });
  });

  describe('an entry owned by another process', () => {
    let child: ChildProcess | undefined;

    afterAll(() => {
      child?.kill();
    });

    it('is running and not redrivable while that process lives, and lost once it has exited', async () => {
      child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
      await once(child, 'spawn');
      const pid = child.pid ?? 0;
      const handle = newHandle();
      await writeEntry(handle, runningEntry(handle, pid));
      const orchestrator = orchestratorWith(new InProcessLambdas());

      const whileAlive = await orchestrator.describe(handle);
      const redriveWhileAlive = await orchestrator.redrive(handle);
      const exited = once(child, 'exit');
      child.kill();
      await exited;
      const afterExit = await orchestrator.describe(handle);

      expect(whileAlive).toMatchObject({ status: 'running', redrivable: false });
      expect(redriveWhileAlive).toEqual({
        kind: 'not_redrivable',
        reason: `Execution is still running in process ${pid}; redrive it once that process has exited`,
      });
      expect(afterExit).toMatchObject({
        status: 'failed',
        error: LOCAL_PROCESS_EXITED,
        cause: expect.stringContaining(`(pid ${pid})`),
        redrivable: true,
      });
    });
  });

  describe('reading', () => {
    it('treats a journaled name as taken: start answers alreadyStarted and runs nothing', async () => {
      const handle = newHandle();
      const entry = {
        ...runningEntry(handle, process.pid),
        status: 'succeeded',
        stoppedAt: '2025-01-02T03:05:00.000Z',
      };
      await writeEntry(handle, entry);
      const lambdas = new InProcessLambdas();
      const orchestrator = orchestratorWith(lambdas);

      const started = await orchestrator.start(handle);
      const redrive = await orchestrator.redrive(handle);
      await orchestrator.drain();

      expect(started).toEqual({ ref: entry.ref, alreadyStarted: true });
      expect(redrive).toEqual({
        kind: 'not_redrivable',
        reason: 'Execution already succeeded; there is nothing to redrive',
      });
      expect(lambdas.invocations).toEqual([]);
      expect(await readEntry(handle)).toEqual(entry);
    });

    it.each([
      ['not JSON', () => '{"version": 1,'],
      ['an unknown version', (handle: ExecutionHandle) => ({ ...runningEntry(handle, 1), version: 2 })],
      ['an unknown status', (handle: ExecutionHandle) => ({ ...runningEntry(handle, 1), status: 'paused' })],
      ['no owner', (handle: ExecutionHandle) => ({ ...runningEntry(handle, 1), owner: undefined })],
      ['a process group as owner', (handle: ExecutionHandle) => runningEntry(handle, 0)],
      [
        'a bad timestamp',
        (handle: ExecutionHandle) => ({ ...runningEntry(handle, 1), startedAt: 'yesterday' }),
      ],
      [
        'another execution',
        (handle: ExecutionHandle) => runningEntry({ ...handle, executionId: randomUUID() }, 1),
      ],
    ])('rejects a journal file holding %s with an error naming the file', async (_case, content) => {
      const handle = newHandle();
      await writeEntry(handle, content(handle));
      const orchestrator = orchestratorWith(new InProcessLambdas());

      const attempt = orchestrator.describe(handle);

      await expect(attempt).rejects.toBeInstanceOf(ExecutionJournalError);
      await expect(attempt).rejects.toThrow(journalFile(handle));
    });

    it('refuses an execution name that would put its entry outside the journal directory', async () => {
      const orchestrator = orchestratorWith(new InProcessLambdas());

      const attempt = orchestrator.describe({
        workflow: workflow.name,
        tenantId: TENANT,
        executionId: '../../escaped',
      });

      await expect(attempt).rejects.toThrow(/cannot name a journal file/);
    });
  });

  describe("another tenant's execution by the same name", () => {
    const OTHER = 'globex';

    it('is foreign to describe, refused by start, stop and redrive, and keeps running for its owner', async () => {
      const lambdas = new InProcessLambdas();
      const orchestrator = orchestratorWith(lambdas);
      const handle = newHandle();
      const others = { ...handle, tenantId: OTHER };
      lambdas.hold();
      await orchestrator.start(handle);
      await lambdas.held;

      const described = await orchestrator.describe(others);
      const start = orchestrator.start(others);
      const stop = orchestrator.stop(others, { error: 'Cancelled', cause: 'by the wrong tenant' });
      const redrive = orchestrator.redrive(others);

      expect(described).toStrictEqual({ status: 'foreign', redrivable: false });
      await expect(start).rejects.toBeInstanceOf(ForeignExecutionError);
      await expect(stop).rejects.toBeInstanceOf(ForeignExecutionError);
      await expect(redrive).rejects.toBeInstanceOf(ForeignExecutionError);
      await expect(stop).rejects.not.toThrow(TENANT);
      expect((await orchestrator.describe(handle)).status).toBe('running');
      lambdas.release();
      await orchestrator.drain();
      expect(lambdas.invocations.map((call) => call.tenantId)).toEqual([TENANT, TENANT, TENANT]);
      expect((await orchestrator.describe(handle)).status).toBe('succeeded');
    });

    it('is foreign in the journal too: a new instance will not redrive it for another tenant', async () => {
      const failing = new InProcessLambdas();
      failing.failPublish = true;
      const a = orchestratorWith(failing);
      const handle = newHandle();
      await a.start(handle);
      await a.drain();
      const lambdasOfB = new InProcessLambdas();
      const b = orchestratorWith(lambdasOfB);
      const others = { ...handle, tenantId: OTHER };

      const described = await b.describe(others);
      const redrive = b.redrive(others);
      const start = b.start(others);

      expect(described).toStrictEqual({ status: 'foreign', redrivable: false });
      await expect(redrive).rejects.toBeInstanceOf(ForeignExecutionError);
      await expect(start).rejects.toBeInstanceOf(ForeignExecutionError);
      await b.drain();
      expect(lambdasOfB.invocations).toEqual([]);
      expect(await readEntry(handle)).toMatchObject({ tenantId: TENANT, status: 'failed', redriveCount: 0 });
      expect(await b.describe(handle)).toMatchObject({ status: 'failed', redrivable: true });
    });
  });

  describe('without a journal directory', () => {
    it('keeps executions in memory only, as before', async () => {
      const lambdas = new InProcessLambdas();
      const settled: string[] = [];
      const orchestrator = orchestratorWith(lambdas, {
        journalDirectory: undefined,
        onExecutionSettled: ({ status }) => settled.push(status),
      });
      const handle = newHandle();

      const first = await orchestrator.start(handle);
      await orchestrator.drain();
      const repeated = await orchestrator.start(handle);
      const described = await orchestrator.describe(handle);
      const seenByAnotherInstance = await orchestratorWith(new InProcessLambdas(), {
        journalDirectory: undefined,
      }).describe(handle);

      expect(repeated).toEqual({ ref: first.ref, alreadyStarted: true });
      expect(described).toMatchObject({ status: 'succeeded', ref: first.ref, redriveCount: 0 });
      expect(seenByAnotherInstance).toEqual({ status: 'not_found', redrivable: false });
      expect(settled).toEqual(['succeeded']);
      expect(lambdas.stepsOf(handle.executionId)).toEqual(['prepare', 'publish', 'succeeded']);
    });
  });
});
