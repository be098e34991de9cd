import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { API_ROUTES, type ApiRoute } from '../../../functions/api/routes.js';

/**
 * docs/deploy.md's first calls and operator policy against the route table the API is built from:
 * the documented commands call routes that exist, and the documented IAM policy allows exactly the
 * admin (IAM-authorized) routes.
 */

const doc = readFileSync(new URL('../../../docs/deploy.md', import.meta.url), 'utf8');

/** A route's resource with each `{param}` filled in, as a request path. */
const samplePath = (route: ApiRoute) => route.resource.replaceAll(/\{[^}]+\}/g, 'acme');

/** Whether an execute-api ARN's `METHOD/path` part (where `*` matches anything, `/` included) allows `request`. */
function allows(pattern: string, request: string): boolean {
  const regex = new RegExp(
    `^${pattern
      .split('*')
      .map((part) => part.replaceAll(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );
  return regex.test(request);
}

/** Whether `path` is a request path of `route` (each `{param}` one path segment). */
function isPathOf(route: ApiRoute, path: string): boolean {
  return new RegExp(`^${route.resource.replaceAll(/\{[^}]+\}/g, '[^/]+')}$`).test(path);
}

function documentedPolicyResources(): string[] {
  const start = doc.indexOf('<!-- admin-policy:start -->');
  const end = doc.indexOf('<!-- admin-policy:end -->');
  const json = doc.slice(start, end).match(/```json\n([\s\S]*?)```/)?.[1];
  if (start < 0 || json === undefined) {
    throw new Error('docs/deploy.md has no admin policy between its markers');
  }
  const policy = JSON.parse(json) as { Statement: { Action: string; Resource: string[] }[] };
  expect(policy.Statement.map((statement) => statement.Action)).toEqual(['execute-api:Invoke']);
  // arn:aws:execute-api:<region>:<account>:<api-id>/<stage>/<METHOD>/<path>
  return policy.Statement.flatMap((statement) =>
    statement.Resource.map((arn) => {
      const [, , method = '', ...path] = (arn.split(':')[5] ?? '').split('/');
      return `${method}/${path.join('/')}`;
    }),
  );
}

describe('docs/deploy.md first calls', () => {
  const admin = API_ROUTES.filter((route) => route.authorization === 'admin');

  it('allows every admin route in the operator policy', () => {
    const resources = documentedPolicyResources();
    for (const route of admin) {
      const request = `${route.method}${samplePath(route)}`;
      expect(
        resources.some((resource) => allows(resource, request)),
        `${route.method} ${route.resource}`,
      ).toBe(true);
    }
  });

  it('names in the operator policy only what some admin route answers', () => {
    for (const resource of documentedPolicyResources()) {
      expect(
        admin.some((route) => allows(resource, `${route.method}${samplePath(route)}`)),
        resource,
      ).toBe(true);
    }
  });

  it('calls only routes that exist, under the output-derived $API_URL without a doubled slash', () => {
    const paths = [...doc.matchAll(/"\$API_URL(\/[^"]*)"/g)].map((match) => match[1] ?? '');
    expect(paths.length).toBeGreaterThan(0);
    for (const path of paths) {
      expect(path.startsWith('//'), path).toBe(false);
      expect(
        API_ROUTES.some((route) => isPathOf(route, path)),
        path,
      ).toBe(true);
    }
    expect(doc).toContain("OutputKey=='ApiUrl'");
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the shell's parameter expansion the doc must contain, not a placeholder
    expect(doc).toContain('API_URL=${API_URL%/}');
    expect(doc).toMatch(/awscurl --service execute-api --region "\$AWS_REGION"/);
  });
});
