export * from './database-admin.js';
export * from './passwords.js';
export * from './provisioning-registration.js';
export * from './provisioning-service.js';
export * from './tenant-credentials.js';
export * from './tenant-migrations.js';
