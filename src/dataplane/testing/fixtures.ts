// Test fixtures for the data plane: named addresses from the documentation ranges (STYLE.md) and
// small builders for typed Mappings, Services, EndpointSlices, pools and agent facts. Used by
// unit, component and netns tests; never by production code.
import type { AddressPool, Mapping, MappingPort } from '../../api/types.js';
import { parseInterfaceAddress, parseIpv4 } from '../../model/net.js';
import type { AgentFacts, AgentInterface, EndpointSliceInfo, ServiceInfo, SliceEndpointInfo, Snapshot } from '../../model/snapshot.js';

export const VIP_1 = '203.0.113.10';
export const VIP_2 = '203.0.113.11';
export const VIP_B = '192.0.2.10';
export const VIP_NOT_IN_POOL = '203.0.113.200';
export const UPLINK_A_ADDR = '203.0.113.2/24';
export const UPLINK_A_GW = '203.0.113.1';
export const UPLINK_B_ADDR = '192.0.2.2/24';
export const UPLINK_B_GW = '192.0.2.1';
export const INTERNAL_ADDR = '198.51.100.2/24';
export const POD_1 = '198.51.100.21';
export const POD_2 = '198.51.100.22';
export const POD_3 = '198.51.100.23';
export const CLIENT_ALLOWED = '198.18.1.5';
export const CLIENT_OTHER = '198.18.2.5';
export const CLIENTS_ALLOWED_NET = '198.18.1.0/24';

function itf(name: string, role: AgentInterface['role'], addresses: string[], gateway?: string): AgentInterface {
  const parsed = addresses.map((a) => {
    const p = parseInterfaceAddress(a);
    if (!p) throw new Error(`bad fixture address ${a}`);
    return p;
  });
  return gateway ? { name, role, addresses: parsed, gateway } : { name, role, addresses: parsed };
}

export function agent(options: { name?: string; twoUplinks?: boolean; labels?: Record<string, string> } = {}): AgentFacts {
  const interfaces = [itf('ext0', 'external', [UPLINK_A_ADDR], UPLINK_A_GW), itf('int0', 'internal', [INTERNAL_ADDR])];
  if (options.twoUplinks) interfaces.push(itf('ext1', 'external', [UPLINK_B_ADDR], UPLINK_B_GW));
  return { name: options.name ?? 'agent-a', labels: options.labels ?? { 'smartnat.aureacentral.com/pool': 'edge' }, interfaces };
}

export function range(text: string): { first: number; last: number; text: string } {
  const [from = '', to = from] = text.split('-');
  return { first: parseIpv4(from) ?? 0, last: parseIpv4(to) ?? 0, text };
}

export function pool(name: string, addresses: string[], extra: Partial<AddressPool['spec']> = {}): AddressPool {
  return {
    name,
    uid: `uid-${name}`,
    generation: 1,
    creationTimestamp: '2026-11-26T09:00:00Z',
    status: { addresses: [], conditions: [] },
    spec: {
      addresses: addresses.map(range),
      agentSelector: {},
      agentMatchExpressions: [],
      vrrp: { vridRange: [1, 255], advertIntervalMs: 1000 },
      ...extra,
    },
  };
}

export interface MappingFixture {
  namespace?: string;
  name: string;
  addresses: string[];
  ports: { port: number; protocol?: 'tcp' | 'udp'; servicePort?: number }[];
  serviceName?: string;
  allowedSources?: string[];
  created?: string;
  /** spec.egress enabled with this address (ADR 0009). */
  egress?: string;
}

export function mapping(m: MappingFixture): Mapping {
  const ports: MappingPort[] = m.ports.map((p) => ({ port: p.port, protocol: p.protocol ?? 'tcp', servicePort: p.servicePort ?? p.port }));
  return {
    namespace: m.namespace ?? 'default',
    name: m.name,
    uid: `uid-${m.name}`,
    generation: 1,
    creationTimestamp: m.created ?? '2026-11-26T10:00:00Z',
    deleting: false,
    finalizers: [],
    spec: {
      addresses: m.addresses, allowedSources: m.allowedSources ?? ['0.0.0.0/0'], serviceName: m.serviceName ?? m.name, mode: 'service', ports,
      ...(m.egress === undefined ? {} : { egress: { address: m.egress } }),
    },
    status: { configuredAddresses: {}, conditions: [] },
  };
}

export function service(name: string, ports: { name?: string; port: number; protocol?: 'tcp' | 'udp' }[], namespace = 'default'): ServiceInfo {
  return { namespace, name, ports: ports.map((p) => ({ name: p.name ?? '', port: p.port, protocol: p.protocol ?? 'tcp' })) };
}

export function slice(options: {
  name: string;
  service: string;
  namespace?: string;
  ports: { name?: string; port: number; protocol?: 'tcp' | 'udp' }[];
  endpoints: (string | ({ ip: string } & Omit<SliceEndpointInfo, 'addresses'>))[];
  addressType?: EndpointSliceInfo['addressType'];
}): EndpointSliceInfo {
  return {
    namespace: options.namespace ?? 'default',
    name: options.name,
    serviceName: options.service,
    addressType: options.addressType ?? 'IPv4',
    ports: options.ports.map((p) => ({ name: p.name ?? '', port: p.port, protocol: p.protocol ?? 'tcp' })),
    endpoints: options.endpoints.map((e) => (typeof e === 'string' ? { addresses: [e] } : { ...e, addresses: [e.ip] })),
  };
}

export function snapshot(parts: Partial<Snapshot>): Snapshot {
  return {
    mappings: parts.mappings ?? [],
    services: parts.services ?? [],
    endpointSlices: parts.endpointSlices ?? [],
    pools: parts.pools ?? [pool('edge', ['203.0.113.10-203.0.113.50', '192.0.2.10-192.0.2.50'])],
    owned: parts.owned ?? 'allEligible',
    agent: parts.agent ?? agent(),
    ...(parts.claimsFrom ? { claimsFrom: parts.claimsFrom } : {}),
  };
}

export function ok(m: Mapping): Snapshot['mappings'][number] {
  return { ok: true, mapping: m };
}

/** A named set of snapshots covering the cases the goldens pin down (issue 3 item 3). */
export function goldenSnapshots(): Record<string, Snapshot> {
  const echo = service('echo', [{ name: 'http', port: 80 }]);
  const echoSlice = slice({ name: 'echo-1', service: 'echo', ports: [{ name: 'http', port: 8080 }], endpoints: [POD_1] });
  const dns = service('dns', [{ name: 'dns', port: 53, protocol: 'udp' }]);
  const dnsSlice = slice({ name: 'dns-1', service: 'dns', ports: [{ name: 'dns', port: 5353, protocol: 'udp' }], endpoints: [POD_2] });
  const one = mapping({ name: 'echo', addresses: [VIP_1], ports: [{ port: 8080, servicePort: 80 }], allowedSources: [CLIENTS_ALLOWED_NET, '198.18.3.7'] });
  return {
    'one-mapping': snapshot({ mappings: [ok(one)], services: [echo], endpointSlices: [echoSlice] }),
    'same-port-two-addresses': snapshot({
      mappings: [ok(one), ok(mapping({ name: 'dns', addresses: [VIP_2], ports: [{ port: 8080, protocol: 'tcp', servicePort: 53 }, { port: 53, protocol: 'udp' }] }))],
      services: [echo, { ...dns, ports: [...dns.ports, { name: 'dns-tcp', port: 53, protocol: 'tcp' }] }],
      endpointSlices: [echoSlice, { ...dnsSlice, ports: [...dnsSlice.ports, { name: 'dns-tcp', port: 5353, protocol: 'tcp' }] }],
    }),
    'multiple-endpoints': snapshot({
      mappings: [ok(one)],
      services: [echo],
      endpointSlices: [
        slice({ name: 'echo-1', service: 'echo', ports: [{ name: 'http', port: 8080 }], endpoints: [POD_1, POD_2, { ip: POD_3, ready: false }] }),
        slice({ name: 'echo-2', service: 'echo', ports: [{ name: 'http', port: 8080 }], endpoints: [POD_2, '198.51.100.24'] }),
      ],
    }),
    'zero-endpoints': snapshot({ mappings: [ok(one), ok(mapping({ name: 'dns', addresses: [VIP_1], ports: [{ port: 53, protocol: 'udp' }] }))], services: [echo, dns] }),
    'two-uplinks': snapshot({
      agent: agent({ twoUplinks: true }),
      mappings: [ok(one), ok(mapping({ name: 'echo-b', serviceName: 'echo', addresses: [VIP_B], ports: [{ port: 8080, servicePort: 80 }] }))],
      services: [echo],
      endpointSlices: [echoSlice],
    }),
    'any-source': snapshot({
      mappings: [ok(mapping({ name: 'echo', addresses: [VIP_1], ports: [{ port: 8080, servicePort: 80 }], allowedSources: ['0.0.0.0/0'] }))],
      services: [echo],
      endpointSlices: [echoSlice],
    }),
    // ADR 0009: echo's pods leave with VIP_1 (owned here), dns's with VIP_B (owned elsewhere: its
    // set is empty), plain's pods get no egress; POD_2 is in both echo and dns, echo is older.
    egress: snapshot({
      agent: agent({ twoUplinks: true }),
      owned: new Set([VIP_1]),
      pools: [pool('edge', ['203.0.113.10-203.0.113.50', '192.0.2.10-192.0.2.50'], { egress: { gateways: [range('198.51.100.100-198.51.100.200')] } })],
      mappings: [
        ok(mapping({ name: 'echo', addresses: [VIP_1], ports: [{ port: 8080, servicePort: 80 }], egress: VIP_1, created: '2026-11-26T09:30:00Z' })),
        ok(mapping({ name: 'dns', addresses: [VIP_B], ports: [{ port: 53, protocol: 'udp' }], egress: VIP_B })),
        ok(mapping({ name: 'plain', serviceName: 'echo', addresses: [VIP_2], ports: [{ port: 9090, servicePort: 80 }] })),
      ],
      services: [echo, dns],
      endpointSlices: [
        slice({ name: 'echo-1', service: 'echo', ports: [{ name: 'http', port: 8080 }], endpoints: [POD_1, { ip: POD_2, ready: false }] }),
        slice({ name: 'dns-1', service: 'dns', ports: [{ name: 'dns', port: 5353, protocol: 'udp' }], endpoints: [POD_2, POD_3] }),
      ],
    }),
    'not-owned': snapshot({
      owned: new Set([VIP_1]),
      mappings: [ok(one), ok(mapping({ name: 'echo-2', serviceName: 'echo', addresses: [VIP_2, VIP_NOT_IN_POOL], ports: [{ port: 9090, servicePort: 80 }] }))],
      services: [echo],
      endpointSlices: [echoSlice],
    }),
  };
}
