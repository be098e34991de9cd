export * from './memory-tenant-registry.js';
export * from './pg-tenant-registry.js';
export * from './tenant-admin-service.js';
export * from './tenant-config.js';
export * from './tenant-context.js';
export * from './tenant-id.js';
export * from './tenant-registry.js';
