/**
 * `npm run bench`: runs every benchmark and prints the figures it measured. Nothing here asserts a
 * time: figures go into docs/benchmarks.md with the machine they were measured on.
 */
import { cpus } from 'node:os';
import { benchmarkTenantSwitch } from './tenant-switch.bench.js';

const cpu = cpus()[0]?.model ?? 'unknown CPU';
console.log(`tenantflow benchmarks — Node ${process.version}, ${cpus().length} × ${cpu}\n`);

const result = await benchmarkTenantSwitch();
console.log('TenantContextSwitch.switch() vs bare AsyncLocalStorage.run (async callback, awaited)');
console.log(`  iterations per round        ${result.iterations.toLocaleString('en-US')} (best of 5 rounds)`);
console.log(`  AsyncLocalStorage.run       ${result.baselineNsPerCall.toFixed(0)} ns/call`);
console.log(`  switch() (memory registry)  ${result.switchNsPerCall.toFixed(0)} ns/call`);
console.log(`  ratio                       ${result.ratio.toFixed(2)}× (target ≤ 2×)`);
