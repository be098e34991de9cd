export * from './admin-auth.middleware.js';
export * from './error-mapper.middleware.js';
export * from './json-body.js';
export * from './request-authorizer.js';
export * from './responses.js';
export * from './route.js';
export * from './tenant-access.middleware.js';
export * from './validation.middleware.js';
