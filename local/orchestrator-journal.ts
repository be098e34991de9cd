import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from '@tenantflow/shared/kernel/zod';
import type { ExecutionHandle } from '@tenantflow/shared/workflows/orchestrator';

export const JOURNALED_STATUSES = ['running', 'succeeded', 'failed', 'timed_out', 'aborted'] as const;
export type JournaledStatus = (typeof JOURNALED_STATUSES)[number];

/**
 * The orchestrator that runs an execution: its process, and its instance within that process (a
 * pid alone cannot tell a live instance from a crashed one of the same process).
 */
export interface JournalOwner {
  readonly pid: number;
  readonly instanceId: string;
}

/** What the journal holds of one execution: its state when its orchestrator last wrote it. */
export interface JournalEntry {
  readonly workflow: string;
  readonly executionId: string;
  readonly tenantId: string;
  readonly ref: string;
  readonly status: JournaledStatus;
  readonly startedAt: Date;
  readonly stoppedAt?: Date | undefined;
  readonly error?: string | undefined;
  readonly cause?: string | undefined;
  readonly redriveCount: number;
  readonly owner: JournalOwner;
}

/**
 * Where the LocalOrchestrator keeps the last known state of each execution, so that what it ran
 * outlives its process.
 *
 * @example
 * ```ts
 * const journal: ExecutionJournal = new FileExecutionJournal(join(home, 'executions'));
 * await journal.write({ ...entry, status: 'succeeded', stoppedAt: new Date() });
 * const entry = await journal.read({ workflow: 'etl', tenantId: 'acme', executionId });
 * ```
 */
export interface ExecutionJournal {
  /**
   * The execution's entry, or `undefined` when it has none. Throws {@link ExecutionJournalError}
   * when the entry exists but cannot be read, or is not this execution's.
   */
  read(handle: ExecutionHandle): Promise<JournalEntry | undefined>;
  /**
   * Replaces the execution's entry as a whole: a reader sees the previous entry or this one, never
   * a mix. Throws {@link ExecutionJournalError} when it cannot be written.
   */
  write(entry: JournalEntry): Promise<void>;
}

/** A journal file that cannot be read, parsed or written; the message names the file. */
export class ExecutionJournalError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ExecutionJournalError';
  }
}

const isoTimestamp = z
  .string()
  .refine((value) => !Number.isNaN(Date.parse(value)), 'must be an ISO timestamp');

const journalFileSchema = z.object({
  version: z.literal(1),
  workflow: z.string(),
  executionId: z.string(),
  tenantId: z.string(),
  ref: z.string(),
  status: z.enum(JOURNALED_STATUSES),
  startedAt: isoTimestamp,
  stoppedAt: isoTimestamp.optional(),
  error: z.string().optional(),
  cause: z.string().optional(),
  redriveCount: z.number().int().nonnegative(),
  // Positive: `process.kill` reads 0 and negative pids as process groups.
  owner: z.object({ pid: z.number().int().positive(), instanceId: z.string().min(1) }),
});

type JournalFile = z.infer<typeof journalFileSchema>;

/**
 * One JSON file per execution, `<directory>/<workflow>/<executionId>.json`, readable by its owner
 * only. Each write goes to a temporary file that is then renamed over the entry, so a process that
 * dies mid-write leaves the previous entry whole. No fsync: this guards against the process
 * crashing, not the machine losing power.
 */
export class FileExecutionJournal implements ExecutionJournal {
  readonly #directory: string;
  /** Names this journal's temporary files, so that two writers never share one. */
  readonly #writerId = randomUUID();
  #writes = 0;

  constructor(directory: string) {
    this.#directory = directory;
  }

  async read(handle: ExecutionHandle): Promise<JournalEntry | undefined> {
    const file = this.#fileOf(handle);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        return undefined;
      }
      throw new ExecutionJournalError(`Could not read journal file ${file}`, { cause: error });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw new ExecutionJournalError(`Journal file ${file} is not valid JSON`, { cause: error });
    }
    const checked = journalFileSchema.safeParse(parsed);
    if (!checked.success) {
      const reasons = checked.error.issues.map(
        (issue) => `${issue.path.length > 0 ? issue.path.join('.') : 'entry'}: ${issue.message}`,
      );
      throw new ExecutionJournalError(`Journal file ${file} is not a valid entry: ${reasons.join('; ')}`);
    }
    if (checked.data.workflow !== handle.workflow || checked.data.executionId !== handle.executionId) {
      throw new ExecutionJournalError(
        `Journal file ${file} holds execution '${checked.data.executionId}' of '${checked.data.workflow}'`,
      );
    }
    return fromFile(checked.data);
  }

  async write(entry: JournalEntry): Promise<void> {
    const file = this.#fileOf(entry);
    this.#writes += 1;
    const temporary = `${file}.${this.#writerId}-${this.#writes}.tmp`;
    try {
      await mkdir(dirname(file), { recursive: true, mode: 0o700 });
      await writeFile(temporary, `${JSON.stringify(toFile(entry), null, 2)}\n`, { mode: 0o600 });
      await rename(temporary, file);
    } catch (error) {
      await rm(temporary, { force: true }).catch(() => undefined);
      throw new ExecutionJournalError(`Could not write journal file ${file}`, { cause: error });
    }
  }

  #fileOf(handle: Pick<ExecutionHandle, 'workflow' | 'executionId'>): string {
    return join(this.#directory, pathSegment(handle.workflow), `${pathSegment(handle.executionId)}.json`);
  }
}

/**
 * Workflow and execution names become file names. Step Functions names never hold a path
 * separator, and refusing them keeps every entry inside the journal directory.
 */
function pathSegment(name: string): string {
  if (name === '' || name === '.' || name === '..' || /[/\\]/.test(name) || name.includes('\u0000')) {
    throw new ExecutionJournalError(`'${name}' cannot name a journal file`);
  }
  return name;
}

function toFile(entry: JournalEntry): JournalFile {
  return {
    version: 1,
    workflow: entry.workflow,
    executionId: entry.executionId,
    tenantId: entry.tenantId,
    ref: entry.ref,
    status: entry.status,
    startedAt: entry.startedAt.toISOString(),
    stoppedAt: entry.stoppedAt?.toISOString(),
    error: entry.error,
    cause: entry.cause,
    redriveCount: entry.redriveCount,
    owner: { pid: entry.owner.pid, instanceId: entry.owner.instanceId },
  };
}

function fromFile(file: JournalFile): JournalEntry {
  return {
    workflow: file.workflow,
    executionId: file.executionId,
    tenantId: file.tenantId,
    ref: file.ref,
    status: file.status,
    startedAt: new Date(file.startedAt),
    stoppedAt: file.stoppedAt === undefined ? undefined : new Date(file.stoppedAt),
    error: file.error,
    cause: file.cause,
    redriveCount: file.redriveCount,
    owner: { pid: file.owner.pid, instanceId: file.owner.instanceId },
  };
}
