// The lab's standard shape (DESIGN.md 4.1) as a TopologySpec plus a plan of who has which address:
// two uplink segments behind routers r1/r2, one internal segment with agents and backends, one
// client behind each router. Pure: it only describes; topology.ts builds it.
//
//   const { spec, plan } = planStandardLab({ agents: 3, backends: [{ name: 'b1', tcpPorts: [8080] }] });
//   const lab = await buildTopology(spec);            // dies with this process unless persistent
//   await probeOnce(lab, 'c1', { proto: 'tcp', host: plan.backends[0]!.address, port: 8080 });
//   await lab.teardown();                             // idempotent; reports leftovers
import type { NodeSpec, SegmentSpec, LinkSpec, TopologySpec, InterfaceEnd, RouteSpec } from './topology-spec.js';

export interface StandardLabOptions {
  /** Agent namespaces a1..aN (1..8), each with ext0 (uplink 1), ext1 (uplink 2) and int0. Default 1. */
  readonly agents?: number;
  /** Backend namespaces on the internal segment, each running TCP and UDP echo servers. Default b1 with 8080. */
  readonly backends?: readonly StandardBackend[];
  /** Source addresses each client holds (1..20). Default 3. */
  readonly clientAddresses?: number;
  /** MTU of the link between client c1 and router r1 (both ends). Default 1500. */
  readonly c1LinkMtu?: number;
  /**
   * Link r1 and r2 (transit 198.18.254.0/30) so each client reaches both uplinks: the lab's allowed
   * client must answer through every pool address. Off by default: the data-plane traffic tests
   * need a client that can reach only one uplink, or a reply leaving by the wrong uplink would
   * still arrive and the reply-routing test could not fail.
   */
  readonly routerInterconnect?: boolean;
  /**
   * A management segment (198.19.255.0/24): hub namespace "mgmt" at .1, each agent's mgmt0 at
   * .(10+i). The hub is where bridges to the host's Unix sockets run (bridge.ts); taking one
   * agent's mgmt0 down cuts that agent alone.
   */
  readonly management?: boolean;
}

export interface StandardBackend {
  readonly name: string;
  readonly tcpPorts?: readonly number[];
  readonly udpPorts?: readonly number[];
}

export interface StandardAgentPlan {
  readonly name: string;
  /** Own address on uplink 1 (203.0.113.0/24), interface ext0. */
  readonly ext0: string;
  /** Own address on uplink 2 (192.0.2.0/24), interface ext1. */
  readonly ext1: string;
  /** Own address on the internal segment (198.51.100.0/24), interface int0. */
  readonly int0: string;
}

export interface StandardLabPlan {
  readonly agents: readonly StandardAgentPlan[];
  readonly backends: readonly { readonly name: string; readonly address: string }[];
  /** c1 sits behind r1 (uplink 1), c2 behind r2 (uplink 2); addresses[0] is the primary source. */
  readonly clients: readonly { readonly name: string; readonly router: string; readonly addresses: readonly string[] }[];
  readonly routers: readonly { readonly name: string; readonly uplink: string; readonly uplinkCidr: string; readonly clientSide: string }[];
  /** Gateways the agents use per uplink interface. */
  readonly gateways: { readonly ext0: string; readonly ext1: string };
  /** Present when the lab has a management segment. */
  readonly management?: { readonly hub: string; readonly agents: Readonly<Record<string, string>> };
  /** Floating addresses of each uplink (.10-.19) (agents hold .2-.9, backends 198.51.100.21 up). */
  readonly floating: { readonly uplink1: readonly string[]; readonly uplink2: readonly string[] };
}

const UP1 = '203.0.113';
const UP2 = '192.0.2';
const INT = '198.51.100';
const MGMT = '198.19.255';

export function planStandardLab(options: StandardLabOptions = {}): { spec: TopologySpec; plan: StandardLabPlan } {
  const agentCount = options.agents ?? 1;
  if (!Number.isInteger(agentCount) || agentCount < 1 || agentCount > 8) throw new RangeError(`agents must be 1..8, got ${agentCount}`);
  const clientAddressCount = options.clientAddresses ?? 3;
  if (!Number.isInteger(clientAddressCount) || clientAddressCount < 1 || clientAddressCount > 20) {
    throw new RangeError(`clientAddresses must be 1..20, got ${clientAddressCount}`);
  }
  const backends = options.backends ?? [{ name: 'b1', tcpPorts: [8080], udpPorts: [8080] }];
  if (backends.length > 80) throw new RangeError('at most 80 backends');

  const agents: StandardAgentPlan[] = Array.from({ length: agentCount }, (_, i) => ({
    name: `a${i + 1}`,
    ext0: `${UP1}.${i + 2}`,
    ext1: `${UP2}.${i + 2}`,
    int0: `${INT}.${i + 2}`,
  }));
  const firstAgent = agents[0]!;
  const backendPlan = backends.map((b, j) => ({ name: b.name, address: `${INT}.${j + 21}` }));
  const clients = [
    { name: 'c1', router: 'r1', net: '198.18.1' },
    { name: 'c2', router: 'r2', net: '198.18.2' },
  ].map((c) => ({
    name: c.name,
    router: c.router,
    net: c.net,
    addresses: Array.from({ length: clientAddressCount }, (_, k) => `${c.net}.${k + 10}`),
  }));
  const routers = [
    { name: 'r1', uplink: `${UP1}.1`, uplinkCidr: `${UP1}.0/24`, clientSide: '198.18.1.1', via: firstAgent.ext0 },
    { name: 'r2', uplink: `${UP2}.1`, uplinkCidr: `${UP2}.0/24`, clientSide: '198.18.2.1', via: firstAgent.ext1 },
  ];

  const TRANSIT = { r1: '198.18.254.1', r2: '198.18.254.2' } as const;
  const crossRoutes = (r: (typeof routers)[number]): RouteSpec[] => {
    if (!options.routerInterconnect) return [];
    const other = r.name === 'r1' ? { via: TRANSIT.r2, uplink: `${UP2}.0/24`, clients: '198.18.2.0/24' } : { via: TRANSIT.r1, uplink: `${UP1}.0/24`, clients: '198.18.1.0/24' };
    return [{ to: other.uplink, via: other.via }, { to: other.clients, via: other.via }];
  };
  const nodes: NodeSpec[] = [
    // Routers reach the internal segment through the first agent (the plainly routed path) and
    // nothing else: they have no default route, so no lab address can leave the lab.
    ...routers.map((r): NodeSpec => ({ name: r.name, role: 'router', routes: [{ to: `${INT}.0/24`, via: r.via }, ...crossRoutes(r)] })),
    ...agents.map((a): NodeSpec => ({ name: a.name, role: 'agent', routes: [{ to: 'default', via: `${UP1}.1` }] })),
    ...backends.map((b): NodeSpec => ({
      name: b.name,
      role: 'backend',
      routes: [{ to: 'default', via: firstAgent.int0 }],
      echo: { tcpPorts: b.tcpPorts ?? [], udpPorts: b.udpPorts ?? [] },
    })),
    ...clients.map((c): NodeSpec => ({ name: c.name, role: 'client', routes: [{ to: 'default', via: `${c.net}.1` }] })),
  ];
  const member = (node: string, ifname: string, address: string): InterfaceEnd => ({ node, ifname, addresses: [`${address}/24`] });
  const mgmtOf = (i: number): string => `${MGMT}.${i + 11}`;
  if (options.management) nodes.push({ name: 'mgmt', role: 'plain' });
  const segments: SegmentSpec[] = [
    { name: 'up1', members: [member('r1', 'up0', `${UP1}.1`), ...agents.map((a) => member(a.name, 'ext0', a.ext0))] },
    { name: 'up2', members: [member('r2', 'up0', `${UP2}.1`), ...agents.map((a) => member(a.name, 'ext1', a.ext1))] },
    {
      name: 'int',
      members: [...agents.map((a) => member(a.name, 'int0', a.int0)), ...backendPlan.map((b) => member(b.name, 'eth0', b.address))],
    },
    ...(options.management
      ? [{ name: 'mgmt', members: [member('mgmt', 'eth0', `${MGMT}.1`), ...agents.map((a, i) => member(a.name, 'mgmt0', mgmtOf(i)))] }]
      : []),
  ];
  const mtu = options.c1LinkMtu;
  const links: LinkSpec[] = clients.map((c) => ({
    a: { node: c.router, ifname: `to${c.name}`, addresses: [`${c.net}.1/24`], ...(mtu !== undefined && c.name === 'c1' ? { mtu } : {}) },
    b: { node: c.name, ifname: 'eth0', addresses: c.addresses.map((x) => `${x}/24`), ...(mtu !== undefined && c.name === 'c1' ? { mtu } : {}) },
  }));
  if (options.routerInterconnect) {
    links.push({ a: { node: 'r1', ifname: 'tor2', addresses: [`${TRANSIT.r1}/30`] }, b: { node: 'r2', ifname: 'tor1', addresses: [`${TRANSIT.r2}/30`] } });
  }

  return {
    spec: { nodes, segments, links },
    plan: {
      agents,
      backends: backendPlan,
      clients: clients.map(({ name, router, addresses }) => ({ name, router, addresses })),
      routers: routers.map(({ name, uplink, uplinkCidr, clientSide }) => ({ name, uplink, uplinkCidr, clientSide })),
      gateways: { ext0: `${UP1}.1`, ext1: `${UP2}.1` },
      ...(options.management ? { management: { hub: `${MGMT}.1`, agents: Object.fromEntries(agents.map((a, i) => [a.name, mgmtOf(i)])) } } : {}),
      floating: {
        uplink1: Array.from({ length: 10 }, (_, i) => `${UP1}.${10 + i}`),
        uplink2: Array.from({ length: 10 }, (_, i) => `${UP2}.${10 + i}`),
      },
    },
  };
}
