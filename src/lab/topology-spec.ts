// Typed description of a network-namespace topology (nodes, bridged segments, point-to-point
// links, addresses, routes, sysctls, echo servers) and its pure validation. Guarantees: a spec that
// passes validateTopology uses only the lab address plan of STYLE.md and names that fit the kernel.
// Builds nothing itself: topology.ts turns a spec into namespaces.
import { isValidInterfaceName, parseInterfaceAddress } from '../model/net.js';

/** What a namespace is for; decides defaults only (routers and agents forward). */
export type NodeRole = 'router' | 'agent' | 'backend' | 'client' | 'plain';

export interface RouteSpec {
  /** "default" or a CIDR. */
  readonly to: string;
  readonly via?: string;
  readonly dev?: string;
  /** Numeric routing table (main when absent). */
  readonly table?: number;
}

/** Echo servers started inside the node; each answers with the node's name and the addresses seen. */
export interface EchoSpec {
  readonly tcpPorts?: readonly number[];
  readonly udpPorts?: readonly number[];
}

export interface NodeSpec {
  /** Short name, [a-z][a-z0-9]{0,11}; the namespace is "<topology>-<name>". */
  readonly name: string;
  readonly role: NodeRole;
  /** net.ipv4.ip_forward; defaults to true for routers and agents. */
  readonly forwarding?: boolean;
  /** Extra sysctls written inside the namespace after the links are up, e.g. {"net.ipv4.conf.all.rp_filter": "1"}. */
  readonly sysctls?: Readonly<Record<string, string>>;
  readonly routes?: readonly RouteSpec[];
  readonly echo?: EchoSpec;
}

/** One end of a veth: the interface a node sees. */
export interface InterfaceEnd {
  readonly node: string;
  /** Interface name inside the node (<= 15 characters), e.g. "ext0". */
  readonly ifname: string;
  /** CIDRs, e.g. "203.0.113.2/24". */
  readonly addresses?: readonly string[];
  readonly mtu?: number;
}

/** An L2 segment: a bridge inside its own namespace "<topology>-s-<name>", one veth per member. */
export interface SegmentSpec {
  readonly name: string;
  readonly members: readonly InterfaceEnd[];
}

/** A point-to-point veth between two nodes. */
export interface LinkSpec {
  readonly a: InterfaceEnd;
  readonly b: InterfaceEnd;
}

export interface TopologySpec {
  readonly nodes: readonly NodeSpec[];
  readonly segments: readonly SegmentSpec[];
  readonly links: readonly LinkSpec[];
}

/** The address plan of STYLE.md: nothing outside these ranges is ever configured by the lab. */
export const LAB_ADDRESS_PLAN = {
  uplink1: '203.0.113.0/24',
  uplink2: '192.0.2.0/24',
  externalClients: '198.18.0.0/16',
  internal: '198.51.100.0/24',
  management: '198.19.255.0/24',
} as const;

const NODE_NAME = /^[a-z][a-z0-9]{0,11}$/;

/** The addresses a CIDR or interface address ("203.0.113.2/24") spans: its whole subnet. */
function spanOf(text: string): { readonly lo: number; readonly hi: number } | undefined {
  const itf = parseInterfaceAddress(text);
  if (!itf) return undefined;
  return { lo: itf.subnet.network, hi: itf.subnet.network + 2 ** (32 - itf.subnet.prefix) - 1 };
}

/** True when the address or CIDR lies wholly inside one range of the lab address plan. */
export function isInAddressPlan(text: string): boolean {
  const span = spanOf(text);
  if (!span) return false;
  return Object.values(LAB_ADDRESS_PLAN).some((range) => {
    const r = spanOf(range);
    return r !== undefined && span.lo >= r.lo && span.hi <= r.hi;
  });
}

/** Every problem of a spec, empty when it can be built. Pure. */
export function validateTopology(spec: TopologySpec): string[] {
  const errors: string[] = [];
  const nodes = new Set<string>();
  for (const n of spec.nodes) {
    if (!NODE_NAME.test(n.name)) errors.push(`node ${JSON.stringify(n.name)}: name must match ${NODE_NAME.source}`);
    if (nodes.has(n.name)) errors.push(`node ${n.name}: duplicate`);
    nodes.add(n.name);
    for (const r of n.routes ?? []) {
      if (r.to !== 'default' && !isInAddressPlan(r.to)) errors.push(`node ${n.name}: route to ${r.to} is outside the lab address plan`);
      if (r.via !== undefined && !isInAddressPlan(r.via)) errors.push(`node ${n.name}: gateway ${r.via} is outside the lab address plan`);
    }
    for (const p of [...(n.echo?.tcpPorts ?? []), ...(n.echo?.udpPorts ?? [])]) {
      if (!Number.isInteger(p) || p < 1 || p > 65535) errors.push(`node ${n.name}: bad echo port ${p}`);
    }
  }
  const segments = new Set<string>();
  for (const s of spec.segments) {
    if (!NODE_NAME.test(s.name)) errors.push(`segment ${JSON.stringify(s.name)}: name must match ${NODE_NAME.source}`);
    if (segments.has(s.name)) errors.push(`segment ${s.name}: duplicate`);
    segments.add(s.name);
  }
  const ends = [...spec.segments.flatMap((s) => s.members), ...spec.links.flatMap((l) => [l.a, l.b])];
  const ifaces = new Set<string>();
  for (const e of ends) {
    const key = `${e.node}/${e.ifname}`;
    if (!nodes.has(e.node)) errors.push(`interface ${key}: unknown node`);
    if (!isValidInterfaceName(e.ifname)) errors.push(`interface ${key}: bad interface name`);
    if (ifaces.has(key)) errors.push(`interface ${key}: duplicate`);
    ifaces.add(key);
    for (const a of e.addresses ?? []) {
      if (!parseInterfaceAddress(a) || !a.includes('/')) errors.push(`interface ${key}: ${a} is not a CIDR`);
      else if (!isInAddressPlan(a)) errors.push(`interface ${key}: ${a} is outside the lab address plan`);
    }
    if (e.mtu !== undefined && (!Number.isInteger(e.mtu) || e.mtu < 576 || e.mtu > 65535)) errors.push(`interface ${key}: bad mtu ${e.mtu}`);
  }
  return errors;
}
