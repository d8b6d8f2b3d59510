// Internal reachability as a health input (DESIGN.md 3.1 per-address health, 3.4 "pod addresses
// must be routable from the instance's internal interface"): can this agent reach any ready
// endpoint it would DNAT to? Pure: which endpoints to try this round (a few, rotating, so a large
// cluster costs the same as a small one), their internal next hop from a route lookup, and the
// verdict as a health sample. The agent's monitor runs the lookups and ARP probes.
import type { DesiredDataPlane } from './desired.js';
import type { LinkSample } from './agent-health.js';
import { parseIpv4 } from '../model/net.js';

/** What `ip route get ENDPOINT` said: the device and, when routed, the gateway. */
export interface EndpointRoute {
  readonly endpoint: string;
  readonly device?: string;
  readonly gateway?: string;
}

export interface NextHop {
  readonly device: string;
  /** The gateway, or the endpoint itself when it is on the device's segment. */
  readonly hop: string;
}

export interface HopResult extends NextHop {
  readonly answered: boolean;
}

const byAddress = (a: string, b: string): number => (parseIpv4(a) ?? 0) - (parseIpv4(b) ?? 0);

/** Every ready endpoint address the data plane DNATs to (all eligible addresses), sorted, once each. */
export function endpointAddresses(desired: DesiredDataPlane | undefined): string[] {
  if (desired === undefined) return [];
  return [...new Set(desired.addresses.flatMap((a) => a.ports.flatMap((p) => p.endpoints.map((e) => e.ip))))].sort(byAddress);
}

/** `count` items starting at round*count, wrapping: successive rounds walk the whole list. */
export function rotatingPick<T>(items: readonly T[], round: number, count: number): T[] {
  if (items.length <= count) return [...items];
  const start = (round * count) % items.length;
  return Array.from({ length: count }, (_, i) => items[(start + i) % items.length]!);
}

/** The distinct next hops on internal interfaces, in the order given; routes via other devices are dropped. */
export function internalNextHops(routes: readonly EndpointRoute[], internal: ReadonlySet<string>): NextHop[] {
  const seen = new Set<string>();
  const hops: NextHop[] = [];
  for (const r of routes) {
    if (r.device === undefined || !internal.has(r.device)) continue;
    const hop = { device: r.device, hop: r.gateway ?? r.endpoint };
    const key = `${hop.device}/${hop.hop}`;
    if (seen.has(key)) continue;
    seen.add(key);
    hops.push(hop);
  }
  return hops;
}

/** Rounds in a row without any answer before the agent reports itself unable to reach its endpoints (one lost ARP reply is not an outage). */
export const FAILED_ROUNDS_TO_REPORT = 2;

/** A round succeeds when any tried next hop answered; one with nothing to try (no internal route) fails. */
export function roundAnswered(tried: readonly HopResult[]): boolean {
  return tried.some((t) => t.answered);
}

/**
 * The verdict as health samples: nothing to judge without ready endpoints; otherwise one sample per
 * internal interface, failing once `failedRounds` in a row had no answer at all.
 */
export function reachabilitySamples(endpoints: number, failedRounds: number, internal: readonly string[]): LinkSample[] {
  if (endpoints === 0) return [];
  const up = failedRounds < FAILED_ROUNDS_TO_REPORT;
  return [...internal].sort().map((device) => ({ name: device, role: 'internal' as const, up, check: 'reachability' as const }));
}
