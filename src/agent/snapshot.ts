// Builds the planner's Snapshot from the raw objects the informers cache, through src/api's
// parsers. Guarantees: an invalid Mapping becomes a MappingEntry with its errors (never thrown);
// invalid pools, Services and slices are left out and counted; each raw object is parsed once
// (memoised by identity: the informers hand out the same object until it changes), so a watch
// event costs the parse of the changed object, not of the cluster. Does not decide ownership:
// the owned set is passed in.
import { parseAddressPool, parseMapping } from '../api/parse.js';
import { parseEndpointSlice, parseService } from '../api/core.js';
import type { AddressPool, ObjectRef } from '../api/types.js';
import type { ClusterObjects } from '../cluster/informers.js';
import type { AgentFacts, EndpointSliceInfo, MappingEntry, ServiceInfo, Snapshot } from '../model/snapshot.js';
import { endpointSliceInfo, serviceInfo } from '../model/snapshot.js';
import { judged } from '../plan/provisional.js';

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

/** f(raw), computed once per raw object (objects only; anything else is computed each time). */
function memo<T>(f: (raw: unknown) => T): (raw: unknown) => T {
  const cache = new WeakMap<object, T>();
  return (raw) => {
    if (typeof raw !== 'object' || raw === null) return f(raw);
    const hit = cache.get(raw);
    if (hit !== undefined) return hit;
    const value = f(raw);
    cache.set(raw, value);
    return value;
  };
}

const mappingEntryOf = memo((raw): MappingEntry => {
  const r = parseMapping(raw);
  return r.ok ? { ok: true, mapping: r.value } : { ok: false, ref: refOf(raw), errors: r.errors };
});
const poolOf = memo((raw): AddressPool | null => {
  const r = parseAddressPool(raw);
  return r.ok ? r.value : null;
});
const serviceOf = memo((raw): ServiceInfo | null => {
  const r = parseService(raw);
  return r.ok ? serviceInfo(r.value) : null;
});
const sliceOf = memo((raw): EndpointSliceInfo | null => {
  const r = parseEndpointSlice(raw);
  return r.ok ? endpointSliceInfo(r.value) : null;
});

export function parseCluster(objects: ClusterObjects): ParsedCluster {
  let dropped = 0;
  const mappings = objects.mappings.map(mappingEntryOf);
  const keep = <T>(value: T | null): T[] => {
    if (value === null) dropped++;
    return value === null ? [] : [value];
  };
  const pools = objects.addressPools.flatMap((raw) => keep(poolOf(raw)));
  const services = objects.services.flatMap((raw) => keep(serviceOf(raw)));
  const endpointSlices = objects.endpointSlices.flatMap((raw) => keep(sliceOf(raw)));
  return { mappings, pools, services, endpointSlices, dropped };
}

const fingerprints = new WeakMap<object, string>();

function fingerprint(x: object, relevant: () => unknown): string {
  const hit = fingerprints.get(x);
  if (hit !== undefined) return hit;
  const text = JSON.stringify(relevant());
  fingerprints.set(x, text);
  return text;
}

/**
 * What the data-plane plan depends on, one string per object in cache order: a Mapping's spec,
 * identity, deletion, leader-granted claims and whether the leader judged its generation (so a
 * refusal that changes no claim still drops a provisional Mapping, ADR 0008 amendment 3); not the
 * rest of its status, which the owners and the leader rewrite all the time; and every other
 * object whole. Equal keys plan equal rules.
 */
export function dataPlaneKey(cluster: ParsedCluster): readonly string[] {
  const mappings = cluster.mappings.map((e) =>
    fingerprint(e, () => (e.ok ? [e.mapping.namespace, e.mapping.name, e.mapping.uid, e.mapping.creationTimestamp, e.mapping.generation, e.mapping.deleting, e.mapping.spec, e.mapping.status.claims ?? null, judged(e.mapping)] : e)),
  );
  const whole = (x: object): string => fingerprint(x, () => x);
  return [...mappings, '|', ...cluster.pools.map(whole), '|', ...cluster.services.map(whole), '|', ...cluster.endpointSlices.map(whole)];
}

export function sameKey(a: readonly string[] | undefined, b: readonly string[]): boolean {
  return a !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);
}

export function snapshotOf(cluster: ParsedCluster, agent: AgentFacts, owned: ReadonlySet<string>): Snapshot {
  // claimsFrom 'leader': program only the pairs the leader granted (ADR 0008 amendment), so the
  // kernel never serves a clash the leader refused.
  return { mappings: cluster.mappings, services: cluster.services, endpointSlices: cluster.endpointSlices, pools: cluster.pools, owned, agent, claimsFrom: 'leader' };
}
