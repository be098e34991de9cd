#!/usr/bin/env node
// The `tenantflow` command: registers tsx, as `npm start` does with `node --import tsx`, so the
// CLI runs from its TypeScript source with no build step, then hands over to it.
import { register } from 'tsx/esm/api';

register();
await import('../src/main.ts');
