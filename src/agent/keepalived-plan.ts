// Decides what keepalived carries for this agent: one instance per address it is ELIGIBLE for
// (pool selector matches, it has the interface, the lease has a VRID), with unicast peers taken
// from the other eligible agents' published interface facts, and the track state per address
// (ADR 0007). Pure. Guarantees: a non-holder is never eligible (except the old owner's releasing
// grace); a holder is eligible only once its NAT is programmed. Does not write files.
import { matchesAgentSelector } from '../api/selector.js';
import type { AddressPool } from '../api/types.js';
import type { KeepalivedInstanceInput } from '../keepalived/render.js';
import type { TrackState } from '../keepalived/supervisor.js';
import { cidrContains, formatIpv4, parseInterfaceAddress, parseIpv4 } from '../model/net.js';
import type { AgentFacts } from '../model/snapshot.js';
import { ANNOTATION_INTERFACE, ANNOTATION_POOL, ANNOTATION_VRID, parseAddressLeaseName, type LeaseRecord } from '../plan/lease-names.js';
import { agentLabels } from '../plan/lease-view.js';
import { egressGatewayOf } from '../plan/egress.js';
import { ANNOTATION_INTERFACES, decodeInterfaces, type PublishedInterface } from './facts.js';

export interface KeepalivedPlanInput {
  readonly me: AgentFacts;
  readonly addressLeases: readonly LeaseRecord[];
  /** Other agents' leases, fenced ones included (a fenced old owner must still hear our adverts). */
  readonly peerLeases: readonly { readonly agent: string; readonly lease: LeaseRecord }[];
  readonly pools: readonly AddressPool[];
}

/** The interface (and this host's address on it) that carries `address`: the named one, or the
 * one whose subnet holds it. */
function findOn(interfaces: readonly { name: string; addresses: readonly string[] }[], address: number, named: string | undefined): { name: string; source: string } | undefined {
  for (const itf of interfaces) {
    if (named !== undefined && itf.name !== named) continue;
    for (const a of itf.addresses) {
      const p = parseInterfaceAddress(a);
      if (p && (named !== undefined || cidrContains(p.subnet, address))) return { name: itf.name, source: formatIpv4(p.address) };
    }
  }
  return undefined;
}

/** The egress gateway of `address` (ADR 0009) and the internal interface whose subnet holds it. */
function companionOf(me: AgentFacts, pool: AddressPool, address: string): { address: string; interface: string } | undefined {
  const verdict = egressGatewayOf(pool.spec, address);
  if (!verdict.ok) return undefined;
  const internals = me.interfaces.filter((i) => i.role === 'internal').map((i) => ({ name: i.name, addresses: i.addresses.map((a) => a.text) }));
  const on = findOn(internals, parseIpv4(verdict.gateway) ?? 0, undefined);
  return on === undefined ? undefined : { address: verdict.gateway, interface: on.name };
}

/** Instances for every eligible address, sorted by address. */
export function planKeepalivedInstances(input: KeepalivedPlanInput): KeepalivedInstanceInput[] {
  const pools = new Map(input.pools.map((p) => [p.name, p]));
  const peers = input.peerLeases.map((p) => ({ labels: agentLabels(p.lease), interfaces: decodeInterfaces(p.lease.annotations[ANNOTATION_INTERFACES]) }));
  const out: KeepalivedInstanceInput[] = [];
  for (const lease of input.addressLeases) {
    const address = parseAddressLeaseName(lease.name);
    const pool = pools.get(lease.annotations[ANNOTATION_POOL] ?? '');
    const vrid = Number(lease.annotations[ANNOTATION_VRID]);
    if (address === undefined || pool === undefined || !Number.isInteger(vrid) || vrid < 1 || vrid > 255) continue;
    if (!matchesAgentSelector(pool.spec, input.me.labels)) continue;
    const value = parseIpv4(address) ?? 0;
    const named = lease.annotations[ANNOTATION_INTERFACE] ?? pool.spec.interface;
    const externals = input.me.interfaces.filter((i) => i.role === 'external').map((i) => ({ name: i.name, addresses: i.addresses.map((a) => a.text) }));
    const itf = findOn(externals, value, named);
    if (itf === undefined) continue;
    const peerAddresses = peers
      .filter((p) => matchesAgentSelector(pool.spec, p.labels))
      .flatMap((p) => {
        const ext: PublishedInterface[] = p.interfaces.filter((i) => i.role === 'external');
        const s = findOn(ext, value, named);
        return s === undefined ? [] : [s.source];
      });
    const peersSorted = [...new Set(peerAddresses)].sort((x, y) => (parseIpv4(x) ?? 0) - (parseIpv4(y) ?? 0));
    const companion = companionOf(input.me, pool, address);
    out.push({
      address, interface: itf.name, vrid, sourceAddress: itf.source, peers: peersSorted, advertIntervalMs: pool.spec.vrrp.advertIntervalMs,
      ...(companion === undefined ? {} : { companion }),
    });
  }
  return out.sort((a, b) => (parseIpv4(a.address) ?? 0) - (parseIpv4(b.address) ?? 0));
}

export interface TrackInput {
  readonly held: ReadonlySet<string>;
  /** Held addresses whose NAT is in the kernel (or that need none). */
  readonly announceable: ReadonlySet<string>;
  /** Old owner of a planned handoff, still inside the grace period. */
  readonly releasing: ReadonlySet<string>;
  /** The renewer cannot renew (ADR 0006 self-degrade). */
  readonly degraded: boolean;
}

export function decideTrack(address: string, t: TrackInput): TrackState {
  if (t.held.has(address) && t.announceable.has(address)) return { eligible: true, role: t.degraded ? 'degraded' : 'holder' };
  if (t.releasing.has(address) && !t.held.has(address)) return { eligible: true, role: 'releasing' };
  return { eligible: false, role: 'standby' };
}
