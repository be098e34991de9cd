import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ExecutionJournalError,
  FileExecutionJournal,
  type JournalEntry,
} from '../../../local/orchestrator-journal.js';

let directory: string;

beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'tenantflow-orchestrator-journal-'));
});

afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

function runningEntry(overrides: Partial<JournalEntry> = {}): JournalEntry {
  const executionId = overrides.executionId ?? randomUUID();
  return {
    workflow: 'etl',
    executionId,
    tenantId: 'acme',
    ref: `arn:aws:states:local:000000000000:execution:etl:${executionId}`,
    status: 'running',
    startedAt: new Date('2025-01-02T03:04:05.678Z'),
    redriveCount: 0,
    owner: { pid: 4242, instanceId: 'instance-a' },
    ...overrides,
  };
}

function fileOf(entry: Pick<JournalEntry, 'workflow' | 'executionId'>): string {
  return join(directory, entry.workflow, `${entry.executionId}.json`);
}

async function writeRaw(
  entry: Pick<JournalEntry, 'workflow' | 'executionId'>,
  content: unknown,
): Promise<void> {
  await mkdir(join(directory, entry.workflow), { recursive: true });
  await writeFile(fileOf(entry), typeof content === 'string' ? content : JSON.stringify(content));
}

describe('FileExecutionJournal', () => {
  describe('write and read', () => {
    it('reads back the entry it wrote, dates and all', async () => {
      const journal = new FileExecutionJournal(directory);
      const entry = runningEntry({
        status: 'failed',
        stoppedAt: new Date('2025-01-02T03:05:00.000Z'),
        error: 'WorkflowFailed',
        cause: 'A task failed',
        redriveCount: 2,
      });

      await journal.write(entry);
      const read = await journal.read(entry);

      expect(read).toEqual(entry);
      expect(read?.startedAt).toBeInstanceOf(Date);
      expect(read?.stoppedAt?.toISOString()).toBe('2025-01-02T03:05:00.000Z');
    });

    it('keeps one versioned JSON file per execution, readable by its owner only', async () => {
      const journal = new FileExecutionJournal(directory);
      const entry = runningEntry();

      await journal.write(entry);

      expect(JSON.parse(await readFile(fileOf(entry), 'utf8'))).toEqual({
        version: 1,
        workflow: 'etl',
        executionId: entry.executionId,
        tenantId: 'acme',
        ref: entry.ref,
        status: 'running',
        startedAt: '2025-01-02T03:04:05.678Z',
        redriveCount: 0,
        owner: { pid: 4242, instanceId: 'instance-a' },
      });
      expect((await stat(fileOf(entry))).mode & 0o777).toBe(0o600);
      expect((await stat(join(directory, 'etl'))).mode & 0o777).toBe(0o700);
    });

    it('answers undefined for an execution it never journaled', async () => {
      const journal = new FileExecutionJournal(directory);
      await journal.write(runningEntry());

      const read = await journal.read({ workflow: 'etl', tenantId: 'acme', executionId: randomUUID() });

      expect(read).toBeUndefined();
    });

    it('replaces an entry as a whole and leaves no temporary file behind', async () => {
      const journal = new FileExecutionJournal(directory);
      const running = runningEntry({ error: 'Transient', cause: 'first run' });
      await journal.write(running);

      const settled: JournalEntry = {
        ...running,
        status: 'succeeded',
        stoppedAt: new Date('2025-01-02T03:06:00.000Z'),
        error: undefined,
        cause: undefined,
      };
      await journal.write(settled);

      expect(await journal.read(running)).toEqual(settled);
      expect(JSON.parse(await readFile(fileOf(running), 'utf8'))).not.toHaveProperty('error');
      expect(await readdir(join(directory, 'etl'))).toEqual([`${running.executionId}.json`]);
    });

    it('reads what another journal on the same directory wrote', async () => {
      const entry = runningEntry();
      await new FileExecutionJournal(directory).write(entry);

      const read = await new FileExecutionJournal(directory).read(entry);

      expect(read).toEqual(entry);
    });
  });

  describe('a journal file it cannot trust', () => {
    const otherExecution = randomUUID();
    it.each([
      ['not JSON', '{"version": 1,', /is not valid JSON/],
      ['an unknown version', { version: 2 }, /version/],
      ['an unknown status', { status: 'paused' }, /status/],
      ['no owner', { owner: undefined }, /owner/],
      ['a process group as owner', { owner: { pid: 0, instanceId: 'x' } }, /owner\.pid/],
      ['a bad timestamp', { startedAt: 'yesterday' }, /startedAt: must be an ISO timestamp/],
      [
        'another execution',
        { executionId: otherExecution },
        new RegExp(`holds execution '${otherExecution}'`),
      ],
    ])('is refused when it holds %s, with an error naming the file', async (_case, content, reason) => {
      const journal = new FileExecutionJournal(directory);
      const entry = runningEntry();
      const onDisk = {
        version: 1,
        workflow: entry.workflow,
        executionId: entry.executionId,
        tenantId: entry.tenantId,
        ref: entry.ref,
        status: entry.status,
        startedAt: entry.startedAt.toISOString(),
        redriveCount: entry.redriveCount,
        owner: entry.owner,
      };
      await writeRaw(entry, typeof content === 'string' ? content : { ...onDisk, ...content });

      const attempt = journal.read(entry);

      await expect(attempt).rejects.toBeInstanceOf(ExecutionJournalError);
      await expect(attempt).rejects.toThrow(fileOf(entry));
      await expect(attempt).rejects.toThrow(reason);
    });

    it('is refused when it cannot be read at all', async () => {
      const journal = new FileExecutionJournal(directory);
      const entry = runningEntry();
      // A directory where the file should be: it exists, but reading it fails.
      await mkdir(fileOf(entry), { recursive: true });

      const attempt = journal.read(entry);

      await expect(attempt).rejects.toBeInstanceOf(ExecutionJournalError);
      await expect(attempt).rejects.toThrow(`Could not read journal file ${fileOf(entry)}`);
    });
  });

  describe('a write that fails', () => {
    it('throws an error naming the file when the directory cannot be made', async () => {
      const journal = new FileExecutionJournal(directory);
      const entry = runningEntry();
      await writeFile(join(directory, entry.workflow), 'a file where the directory should be');

      const attempt = journal.write(entry);

      await expect(attempt).rejects.toBeInstanceOf(ExecutionJournalError);
      await expect(attempt).rejects.toThrow(`Could not write journal file ${fileOf(entry)}`);
    });

    it('removes its temporary file when the rename fails, and keeps what was there', async () => {
      const journal = new FileExecutionJournal(directory);
      const entry = runningEntry();
      // A non-empty directory cannot be renamed over.
      await mkdir(join(fileOf(entry), 'occupied'), { recursive: true });

      await expect(journal.write(entry)).rejects.toBeInstanceOf(ExecutionJournalError);

      expect(await readdir(join(directory, entry.workflow))).toEqual([`${entry.executionId}.json`]);
      expect(await readdir(fileOf(entry))).toEqual(['occupied']);
    });
  });

  describe('names that would leave the journal directory', () => {
    it.each([
      ['a parent directory', { executionId: '..' }],
      ['a path', { executionId: '../../escaped' }],
      ['a backslash', { workflow: 'etl\\..\\..' }],
      ['an empty workflow', { workflow: '' }],
      ['a NUL byte', { executionId: 'a\u0000b' }],
    ])('refuses %s on write and read, and writes nothing', async (_case, names) => {
      const journal = new FileExecutionJournal(directory);
      const entry = runningEntry(names);

      await expect(journal.write(entry)).rejects.toThrow(/cannot name a journal file/);
      await expect(journal.read({ ...entry })).rejects.toBeInstanceOf(ExecutionJournalError);
      expect(await readdir(directory)).toEqual([]);
    });
  });
});
