/**
 * `npx tenantflow <command>`: the entry point `bin/tenantflow.mjs` imports, with the real
 * dependencies (fetch, the AWS credentials chain, CloudFormation, npm).
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { runCli } from './program.js';
import { cloudFormationStackOutputs } from './stack-outputs.js';

/** The repository root, where `npm run migrate|recover|smoke` are defined. */
const REPOSITORY = fileURLToPath(new URL('../../', import.meta.url));

function runScript(script: string, args: readonly string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', '--silent', script, '--', ...args], {
      cwd: REPOSITORY,
      stdio: 'inherit',
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve(code ?? (signal === 'SIGINT' ? 130 : 1)));
  });
}

process.exitCode = await runCli(process.argv.slice(2), {
  env: process.env,
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
  credentials: defaultProvider(),
  stackOutputs: cloudFormationStackOutputs(),
  readFile: (path) => readFile(path, 'utf8'),
  runScript,
});
