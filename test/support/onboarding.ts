import type { ApiResponse, apiClient } from './http.js';

type Call = ReturnType<typeof apiClient>;

/**
 * Polls `GET /tenants/{tenantId}` (as the admin) until the tenant is in `status`, or gone when
 * `status` is `'gone'` (404), as a client of the 202 from `POST /tenants` and `DELETE` does while
 * the onboarding or offboarding state machine runs. Fails with the last answer after `timeoutMs`.
 *
 * @example
 * ```ts
 * const created = await admin('POST', '/tenants', { body: { tenantId: 'acme', name: 'Acme' } });
 * await waitForTenant(admin, 'acme', 'active');
 * ```
 */
export async function waitForTenant(
  admin: Call,
  tenantId: string,
  status: 'active' | 'provisioning' | 'deprovisioning' | 'gone',
  timeoutMs = 30_000,
): Promise<ApiResponse> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await admin('GET', `/tenants/${tenantId}`);
    const reached = status === 'gone' ? response.status === 404 : response.body?.status === status;
    if (reached) {
      return response;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `Tenant '${tenantId}' did not become ${status} within ${timeoutMs} ms; last answer ${response.status} ${JSON.stringify(response.body)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * `POST /tenants` as the admin, expecting the 202 of a started onboarding, then waits for the
 * tenant to be active. Returns the 202 (with the tenant's API key).
 */
export async function onboardOverHttp(
  admin: Call,
  body: { tenantId: string; name: string } & Record<string, unknown>,
) {
  const created = await admin('POST', '/tenants', { body });
  if (created.status !== 202) {
    throw new Error(`POST /tenants answered ${created.status} ${JSON.stringify(created.body)}, not 202`);
  }
  await waitForTenant(admin, body.tenantId, 'active');
  return created;
}
