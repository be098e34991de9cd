export * from './recovery-history.js';
export * from './recovery-journal.js';
export * from './recovery-service.js';
export * from './recovery-store.js';
