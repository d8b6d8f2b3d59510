// Reads what `smartnat status` shows: the leases of the agents' namespace (twice, an observation
// window apart, so liveness is judged by change as the agents judge it) and every Mapping.
// Read-only; API failures propagate with their cause. Invalid Mappings are counted, not shown.
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { parseMapping } from '../api/parse.js';
import { GROUP, VERSION, type Mapping } from '../api/types.js';
import { LEADER_LEASE_NAME } from '../plan/lease-names.js';
import type { StatusInput } from '../plan/status-view.js';
import type { LeaseStore } from './lease-store.js';

export interface StatusReadOptions {
  readonly observeMs: number;
  readonly sleep: (ms: number) => Promise<void>;
}

export async function readClusterStatus(kc: KubeConfig, leases: LeaseStore, opts: StatusReadOptions): Promise<StatusInput & { invalidMappings: number }> {
  const agentsBefore = (await leases.list('agent')).items;
  const objects = kc.makeApiClient(CustomObjectsApi);
  const listed: unknown = await objects.listClusterCustomObject({ group: GROUP, version: VERSION, plural: 'mappings' });
  const items = typeof listed === 'object' && listed !== null && 'items' in listed && Array.isArray(listed.items) ? (listed.items as unknown[]) : [];
  const mappings: Mapping[] = [];
  let invalidMappings = 0;
  for (const raw of items) {
    const parsed = parseMapping(raw);
    if (parsed.ok) mappings.push(parsed.value);
    else invalidMappings++;
  }
  await opts.sleep(opts.observeMs);
  const [agentsAfter, addresses, leader] = await Promise.all([leases.list('agent'), leases.list('address'), leases.get(LEADER_LEASE_NAME)]);
  return { agentsBefore, agentsAfter: agentsAfter.items, addresses: addresses.items, leader, mappings, invalidMappings };
}
