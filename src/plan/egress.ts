// Egress (ADR 0009): which internal "companion" gateway address goes with an external address, and
// which pods leave with which external address. Pure. Guarantees: the same pool and address give
// the same gateway on every agent (no allocation, no lease annotation: the operator can write the
// nodes' routes before any Mapping exists); a pod IP leaves with at most one address (the oldest
// egress Mapping that names it wins). Does not program anything (plan-dataplane and
// keepalived-plan use it).
import type { AddressPoolSpec, AddressRange } from '../api/types.js';
import { canonicalIpv4, formatIpv4, parseIpv4 } from '../model/net.js';
import type { EndpointSliceInfo, ServiceInfo } from '../model/snapshot.js';

interface Span {
  readonly first: number;
  readonly last: number;
}

/** The ranges' union as sorted, disjoint spans (pool entries may overlap). */
function union(ranges: readonly AddressRange[]): Span[] {
  const sorted = [...ranges].sort((a, b) => a.first - b.first || a.last - b.last);
  const out: Span[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && r.first <= last.last + 1) out[out.length - 1] = { first: last.first, last: Math.max(last.last, r.last) };
    else out.push({ first: r.first, last: r.last });
  }
  return out;
}

function indexIn(spans: readonly Span[], value: number): number | undefined {
  let before = 0;
  for (const s of spans) {
    if (value >= s.first && value <= s.last) return before + (value - s.first);
    before += s.last - s.first + 1;
  }
  return undefined;
}

function atIndex(spans: readonly Span[], index: number): number | undefined {
  let left = index;
  for (const s of spans) {
    const size = s.last - s.first + 1;
    if (left < size) return s.first + left;
    left -= size;
  }
  return undefined;
}

export type GatewayVerdict =
  | { readonly ok: true; readonly gateway: string }
  | { readonly ok: false; readonly reason: 'poolWithoutEgress' | 'addressNotInPool' | 'tooFewGateways' | 'gatewayInPool'; readonly message: string };

/**
 * The companion gateway of `address` in a pool: the i-th address of the pool (ascending, overlaps
 * counted once) goes with the i-th gateway address (ascending). A gateway that is itself one of
 * the pool's external addresses is refused (it would be announced twice).
 */
export function egressGatewayOf(pool: AddressPoolSpec, address: string): GatewayVerdict {
  if (pool.egress === undefined) return { ok: false, reason: 'poolWithoutEgress', message: 'the AddressPool has no spec.egress.gateways' };
  const value = parseIpv4(address);
  const spans = union(pool.addresses);
  const index = value === undefined ? undefined : indexIn(spans, value);
  if (index === undefined) return { ok: false, reason: 'addressNotInPool', message: `${address} is not in the AddressPool` };
  const gateway = atIndex(union(pool.egress.gateways), index);
  if (gateway === undefined) {
    return { ok: false, reason: 'tooFewGateways', message: `${address} is address #${index + 1} of its AddressPool, which lists fewer egress gateways` };
  }
  if (indexIn(spans, gateway) !== undefined) {
    return { ok: false, reason: 'gatewayInPool', message: `egress gateway ${formatIpv4(gateway)} of ${address} is itself an address of the AddressPool` };
  }
  return { ok: true, gateway: formatIpv4(gateway) };
}

/**
 * Every IPv4 address of the Service's endpoints, ready or not (a pod that is not ready yet still
 * opens connections), canonical, de-duplicated, sorted numerically.
 */
export function egressSourcesOf(service: ServiceInfo, slices: readonly EndpointSliceInfo[]): string[] {
  const found = new Set<string>();
  for (const s of slices) {
    if (s.namespace !== service.namespace || s.serviceName !== service.name || s.addressType !== 'IPv4') continue;
    for (const e of s.endpoints) {
      for (const a of e.addresses) {
        const ip = canonicalIpv4(a);
        if (ip !== undefined) found.add(ip);
      }
    }
  }
  return [...found].sort((a, b) => (parseIpv4(a) ?? 0) - (parseIpv4(b) ?? 0));
}
