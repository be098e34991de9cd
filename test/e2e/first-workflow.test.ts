import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { workflows } from '../../docs/first-workflow/workflows.js';
import { killTenantflow, startTenantflow } from '../../local/tenantflow-process.js';

/**
 * docs/first-workflow.md, as a reader follows it: the code it shows is the module it starts the
 * server with, and its commands, run in order by bash, print what it says they print.
 */

const DOC = 'docs/first-workflow.md';
const MODULE = 'docs/first-workflow/workflows.ts';
/** Where the page's commands send their requests; replaced by the test server's URL. */
const DOC_URL = 'http://127.0.0.1:3000';
/** The heading after which the page stops being a walkthrough to run. */
const WALKTHROUGH_END = '## Make it part of the installation';
const IN_FLIGHT = new Set(['pending', 'running']);

const run = promisify(execFile);

interface Fence {
  readonly lang: string;
  readonly text: string;
}

/** The page's fenced blocks that start at the beginning of a line (not those quoted or in lists). */
function fences(markdown: string): Fence[] {
  return [...markdown.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].map((match) => ({
    lang: match[1] ?? '',
    text: match[2] ?? '',
  }));
}

/** One command block of the walkthrough, with the output the page shows after it, if any. */
interface Step {
  readonly script: string;
  readonly expected?: Fence | undefined;
}

function walkthrough(markdown: string): { start: string; steps: Step[] } {
  const end = markdown.indexOf(WALKTHROUGH_END);
  const blocks = fences(end === -1 ? markdown : markdown.slice(0, end));
  const shell = blocks.filter((block) => block.lang === 'sh');
  const start = shell.filter((block) => /\bnpm start\b/.test(block.text));
  if (start.length !== 1 || start[0] === undefined) {
    throw new Error(`${DOC} must show exactly one npm start command before '${WALKTHROUGH_END}'`);
  }
  const steps: Step[] = [];
  blocks.forEach((block, index) => {
    if (block.lang !== 'sh' || block === start[0]) {
      return;
    }
    const next = blocks[index + 1];
    steps.push({
      script: block.text,
      expected: next !== undefined && (next.lang === 'json' || next.lang === 'text') ? next : undefined,
    });
  });
  return { start: start[0].text.trim(), steps };
}

/** `…` in a shown line stands for whatever the run printed there (a generated key, say). */
function linePattern(line: string): RegExp {
  return new RegExp(`^${line.split('…').map(escapeRegExp).join('.+')}$`);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

let directory: string;
let home: string;

beforeAll(async () => {
  // The page runs at the repository root, where `.tenantflow/` is; here a fresh directory plays it.
  directory = await mkdtemp(join(tmpdir(), 'tenantflow-first-workflow-'));
  await chmod(directory, 0o755);
  home = join(directory, '.tenantflow');
});

afterAll(async () => {
  await killTenantflow(home);
  await rm(directory, { recursive: true, force: true });
});

describe('docs/first-workflow.md', () => {
  it('shows docs/first-workflow/workflows.ts as it is', async () => {
    const [code] = fences(await readFile(DOC, 'utf8')).filter((block) => block.lang === 'ts');
    expect(code?.text).toBe(await readFile(MODULE, 'utf8'));
  });

  it('registers its workflow with the table it uses', () => {
    expect(workflows.names()).toEqual(['take_order']);
    expect(workflows.tenantMigrations().map((set) => [set.name, set.historyTable])).toEqual([
      ['orders', 'schema_migrations_orders'],
    ]);
  });

  it('runs as the page says: the server with the module, then each command prints what it shows', async () => {
    // Prepare: the server, started the way the page starts it.
    const { start, steps } = walkthrough(await readFile(DOC, 'utf8'));
    const command = /^(?<name>[A-Z_]+)=(?<value>\S+) npm start$/.exec(start);
    expect(command?.groups).toEqual({ name: 'TENANTFLOW_WORKFLOWS_MODULE', value: MODULE });
    const server = await startTenantflow(home, { TENANTFLOW_WORKFLOWS_MODULE: MODULE });
    expect(server.output()).toContain('"workflow":"take_order"');

    // Act and assert: each block in one bash, carrying the variables the page sets to the next.
    const env: NodeJS.ProcessEnv = Object.fromEntries(
      Object.entries(process.env).filter(([name]) => !/^(PG|DATABASE_URL$|TENANTFLOW_)/.test(name)),
    );
    const variables: Record<string, string> = {};
    let checked = 0;
    for (const step of steps) {
      if (/^psql /m.test(step.script) && !(await hasPsql())) {
        console.warn(`${DOC}: psql not found, so its psql step was not run`);
        continue;
      }
      const names = [...step.script.matchAll(/^([A-Z_]+)=/gm)].map((match) => match[1] as string);
      const script = [
        'set -eo pipefail',
        step.script.replaceAll(DOC_URL, server.url),
        'printf "\\n%s\\n" "--variables--"',
        ...names.map((name) => `printf '%s=%s\\n' ${name} "$${name}"`),
      ].join('\n');
      const shown = step.expected;
      const deadline = Date.now() + 30_000;
      let printed: string;
      for (;;) {
        const { stdout } = await run('bash', ['-c', script], {
          cwd: directory,
          env: { ...env, ...variables },
        });
        const [output = '', assignments = ''] = stdout.split('\n--variables--\n');
        for (const line of assignments.split('\n').filter((entry) => entry.includes('='))) {
          const at = line.indexOf('=');
          variables[line.slice(0, at)] = line.slice(at + 1);
        }
        printed = output.replace(/^\n+/, '').trimEnd();
        // A read of an execution in flight is run again, as the page tells the reader to.
        if (shown?.lang !== 'json' || !('status' in JSON.parse(shown.text))) {
          break;
        }
        const { status } = JSON.parse(printed) as { status?: string };
        if (!IN_FLIGHT.has(status ?? '') || Date.now() > deadline) {
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      if (shown?.lang === 'json') {
        expect(JSON.parse(printed), step.script).toMatchObject(JSON.parse(shown.text));
        checked += 1;
      } else if (shown?.lang === 'text') {
        const lines = printed.split('\n').map((line) => line.trimEnd());
        const expected = shown.text.trimEnd().split('\n');
        expect(lines, step.script).toHaveLength(expected.length);
        expected.forEach((line, index) => {
          expect(lines[index], step.script).toMatch(linePattern(line));
        });
        checked += 1;
      }
    }
    // The key and the three reads of an execution at least: no shown output went unchecked.
    expect(checked).toBeGreaterThanOrEqual(4);
    expect(variables.TENANT_KEY).toMatch(/^tfk_corner_shop_/);
  }, 120_000);
});

async function hasPsql(): Promise<boolean> {
  try {
    await run('psql', ['--version']);
    return true;
  } catch {
    return false;
  }
}
