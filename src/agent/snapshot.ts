// Builds the planner's Snapshot from the raw objects the informers cache, through src/api's
// parsers. Guarantees: an invalid Mapping becomes a MappingEntry with its errors (never thrown);
// invalid pools, Services and slices are left out and counted. Does not decide ownership: the
// owned set is passed in.
import { parseAddressPool, parseMapping } from '../api/parse.js';
import { parseEndpointSlice, parseService } from '../api/core.js';
import type { AddressPool, ObjectRef } from '../api/types.js';
import type { ClusterObjects } from '../cluster/informers.js';
import type { AgentFacts, EndpointSliceInfo, MappingEntry, ServiceInfo, Snapshot } from '../model/snapshot.js';
import { endpointSliceInfo, serviceInfo } from '../model/snapshot.js';

export interface ParsedCluster {
  readonly mappings: readonly MappingEntry[];
  readonly services: readonly ServiceInfo[];
  readonly endpointSlices: readonly EndpointSliceInfo[];
  readonly pools: readonly AddressPool[];
  /** Objects that could not be parsed at all (pools, Services, slices). */
  readonly dropped: number;
}

function refOf(raw: unknown): ObjectRef {
  const meta = typeof raw === 'object' && raw !== null ? (raw as { metadata?: { namespace?: unknown; name?: unknown } }).metadata : undefined;
  return { namespace: typeof meta?.namespace === 'string' ? meta.namespace : '', name: typeof meta?.name === 'string' ? meta.name : '' };
}

export function parseCluster(objects: ClusterObjects): ParsedCluster {
  let dropped = 0;
  const mappings = objects.mappings.map((raw): MappingEntry => {
    const r = parseMapping(raw);
    return r.ok ? { ok: true, mapping: r.value } : { ok: false, ref: refOf(raw), errors: r.errors };
  });
  const pools = objects.addressPools.flatMap((raw) => {
    const r = parseAddressPool(raw);
    if (!r.ok) dropped++;
    return r.ok ? [r.value] : [];
  });
  const services = objects.services.flatMap((raw) => {
    const r = parseService(raw);
    if (!r.ok) dropped++;
    return r.ok ? [serviceInfo(r.value)] : [];
  });
  const endpointSlices = objects.endpointSlices.flatMap((raw) => {
    const r = parseEndpointSlice(raw);
    if (!r.ok) dropped++;
    return r.ok ? [endpointSliceInfo(r.value)] : [];
  });
  return { mappings, pools, services, endpointSlices, dropped };
}

export function snapshotOf(cluster: ParsedCluster, agent: AgentFacts, owned: ReadonlySet<string>): Snapshot {
  // claimsFrom 'leader': program only the pairs the leader granted (ADR 0008 amendment), so the
  // kernel never serves a clash the leader refused.
  return { mappings: cluster.mappings, services: cluster.services, endpointSlices: cluster.endpointSlices, pools: cluster.pools, owned, agent, claimsFrom: 'leader' };
}
