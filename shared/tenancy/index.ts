export * from './api-keys.js';
export * from './pg-tenant-registry.js';
export * from './tenant-config.js';
export * from './tenant-connections.js';
export * from './tenant-context.js';
export * from './tenant-registry.js';
