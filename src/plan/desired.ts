// DesiredDataPlane: the whole data-plane state one agent should have, as plain sorted data. The
// planner produces it, the renderers print it, the applier diffs it. Guarantees: every value is
// canonical (IPs, CIDRs, interface names) and every list is sorted, so equal states compare equal.
import type { ObjectRef, Protocol } from '../api/types.js';
import type { DataPlaneSettings } from '../model/settings.js';

export interface DesiredEndpoint {
  readonly ip: string;
  readonly port: number;
}

/** One accepted (address, protocol, port) of one Mapping. */
export interface DesiredPort {
  readonly mapping: ObjectRef;
  readonly protocol: Protocol;
  readonly port: number;
  /** Allowed source CIDRs, canonical, sorted; "0.0.0.0/0" kept as written (split only in sets). */
  readonly sources: readonly string[];
  /** DNAT targets, sorted; empty = the port is rejected (TCP reset / ICMP port unreachable). */
  readonly endpoints: readonly DesiredEndpoint[];
}

export interface DesiredAddress {
  readonly address: string;
  /** External interface the address lives on. */
  readonly uplink: string;
  /** In the owned set now; rules exist for every eligible address, gated by this. */
  readonly owned: boolean;
  readonly ports: readonly DesiredPort[];
}

export interface DesiredRoute {
  /** "default" or a canonical CIDR. */
  readonly destination: string;
  readonly gateway?: string;
  readonly device: string;
  readonly scope: 'link' | 'global';
}

export interface DesiredUplink {
  readonly name: string;
  /** 1-based number of the uplink, stored in the uplink mark field. */
  readonly index: number;
  readonly mark: number;
  readonly table: number;
  readonly pref: number;
  readonly routes: readonly DesiredRoute[];
}

/**
 * One external address that egress-enabled Mappings' pods leave with (ADR 0009). Rules exist for
 * every eligible egress address; `owned` gates them through set membership (the pods are members
 * of the address's egress set only while it is owned here).
 */
export interface DesiredEgress {
  readonly address: string;
  /** External interface of the address: egress leaves through it, translated to `address`. */
  readonly uplink: string;
  readonly owned: boolean;
  /** The Mappings whose pods these are, sorted by namespace/name. */
  readonly mappings: readonly ObjectRef[];
  /** Pod IPs, canonical, sorted numerically; each pod IP in at most one DesiredEgress. */
  readonly sources: readonly string[];
}

export interface DesiredDataPlane {
  readonly settings: DataPlaneSettings;
  readonly uplinks: readonly DesiredUplink[];
  readonly addresses: readonly DesiredAddress[];
  /** Egress addresses, sorted numerically; absent or empty = no egress rules at all. */
  readonly egress?: readonly DesiredEgress[];
  /** Internal interfaces (sorted) pod egress may arrive on; empty = any interface. */
  readonly internalInterfaces?: readonly string[];
}

export type LeftOutReason =
  | 'invalidMapping'
  | 'mappingDeleting'
  | 'addressNotInPool'
  | 'namespaceNotAllowed'
  | 'notEligible'
  | 'notOwned'
  | 'ownedNotEligible'
  | 'noExternalInterface'
  | 'tooManyUplinks'
  | 'portConflict'
  | 'notClaimed'
  | 'serviceMissing'
  | 'servicePortMissing'
  | 'noReadyEndpoints'
  | 'noEgressGateway'
  | 'egressConflict';

/** What happens on the wire for something left out: nothing, a reject, or rules gated off (standby). */
export type LeftOutEffect = 'nothing' | 'reject' | 'standby';

export interface LeftOut {
  readonly reason: LeftOutReason;
  readonly effect: LeftOutEffect;
  readonly mapping?: ObjectRef;
  readonly address?: string;
  readonly protocol?: Protocol;
  readonly port?: number;
  readonly message: string;
}

export interface DataPlanePlan {
  readonly desired: DesiredDataPlane;
  readonly leftOut: readonly LeftOut[];
}

/**
 * The same desired state without one Mapping's ports (used when the kernel refuses its rules).
 * Its addresses stay eligible and owned, so their traffic is dropped rather than reaching the host.
 */
export function withoutMapping(desired: DesiredDataPlane, ref: ObjectRef): DesiredDataPlane {
  const addresses = desired.addresses.map((a) => ({ ...a, ports: a.ports.filter((p) => p.mapping.namespace !== ref.namespace || p.mapping.name !== ref.name) }));
  return { ...desired, addresses };
}

/** The same desired state with a different owned set: what an ownership change is. */
export function withOwned(desired: DesiredDataPlane, owned: ReadonlySet<string>): DesiredDataPlane {
  const addresses = desired.addresses.map((a) => ({ ...a, owned: owned.has(a.address) }));
  if (desired.egress === undefined) return { ...desired, addresses };
  return { ...desired, addresses, egress: desired.egress.map((e) => ({ ...e, owned: owned.has(e.address) })) };
}
