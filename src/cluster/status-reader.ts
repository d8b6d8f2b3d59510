// Reads what `smartnat status` shows: the leases of the agents' namespace (twice, an observation
// window apart, so liveness is judged by change as the agents judge it) and every Mapping.
// Read-only; a 429 (the API server throttling, or starting up) is retried as client-go does
// (Retry-After, at most 5 times); other API failures propagate with their cause. Invalid Mappings
// are counted, not shown.
import { CustomObjectsApi, type KubeConfig } from './k8s.js';
import { parseMapping } from '../api/parse.js';
import { GROUP, VERSION, type Mapping } from '../api/types.js';
import { LEADER_LEASE_NAME } from '../plan/lease-names.js';
import type { StatusInput } from '../plan/status-view.js';
import type { LeaseStore } from './lease-store.js';

export interface StatusReadOptions {
  readonly observeMs: number;
  readonly sleep: (ms: number) => Promise<void>;
}

/** The HTTP status of a client-node or lease-store error, when it carries one. */
function statusOf(err: unknown): number | undefined {
  for (let e: unknown = err, depth = 0; typeof e === 'object' && e !== null && depth < 3; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'number') return code;
  }
  return undefined;
}

/** Seconds of a Retry-After header on a client-node ApiException, else undefined. */
function retryAfterMs(err: unknown): number | undefined {
  const headers = (err as { headers?: Record<string, string> } | null)?.headers;
  const v = Number(headers?.['retry-after']);
  return Number.isFinite(v) && v > 0 ? Math.min(v, 10) * 1000 : undefined;
}

export async function withThrottleRetry<T>(call: () => Promise<T>, sleep: (ms: number) => Promise<void>, attempts = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await call();
    } catch (err: unknown) {
      if (statusOf(err) !== 429 || i >= attempts) throw err;
      await sleep(retryAfterMs(err) ?? 1000);
    }
  }
}

export async function readClusterStatus(kc: KubeConfig, leases: LeaseStore, opts: StatusReadOptions): Promise<StatusInput & { invalidMappings: number }> {
  const retry = <T>(call: () => Promise<T>): Promise<T> => withThrottleRetry(call, opts.sleep);
  const agentsBefore = (await retry(async () => leases.list('agent'))).items;
  const objects = kc.makeApiClient(CustomObjectsApi);
  const listed: unknown = await retry(async () => objects.listClusterCustomObject({ group: GROUP, version: VERSION, plural: 'mappings' }));
  const items = typeof listed === 'object' && listed !== null && 'items' in listed && Array.isArray(listed.items) ? (listed.items as unknown[]) : [];
  const mappings: Mapping[] = [];
  let invalidMappings = 0;
  for (const raw of items) {
    const parsed = parseMapping(raw);
    if (parsed.ok) mappings.push(parsed.value);
    else invalidMappings++;
  }
  await opts.sleep(opts.observeMs);
  const [agentsAfter, addresses, leader] = await Promise.all([retry(async () => leases.list('agent')), retry(async () => leases.list('address')), retry(async () => leases.get(LEADER_LEASE_NAME))]);
  return { agentsBefore, agentsAfter: agentsAfter.items, addresses: addresses.items, leader, mappings, invalidMappings };
}
