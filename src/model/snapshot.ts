// The validated snapshot the planner consumes: typed Mappings (or their parse errors), Services,
// EndpointSlices, AddressPools, what this agent owns and what it knows about itself. Everything
// here is already parsed and canonical; the planner never sees raw objects. Building a snapshot
// from the API or a file is the callers' job (src/api parsers, cli/render.ts, the agent).
import type { AddressPool, FieldError, Mapping, ObjectRef, Protocol } from '../api/types.js';
import type { CoreProtocol, EndpointSlice, Service } from '../api/core.js';
import type { InterfaceAddress } from './net.js';

export type MappingEntry =
  | { readonly ok: true; readonly mapping: Mapping }
  | { readonly ok: false; readonly ref: ObjectRef; readonly errors: readonly FieldError[] };

export interface ServicePortInfo {
  /** '' when the Service has a single unnamed port. */
  readonly name: string;
  readonly port: number;
  readonly protocol: Protocol | 'sctp';
}

export interface ServiceInfo extends ObjectRef {
  readonly clusterIP?: string;
  /** Set for an ExternalName Service (its DNS name): it has no endpoints, so nothing to forward to. */
  readonly externalName?: string;
  readonly ports: readonly ServicePortInfo[];
}

export interface SlicePortInfo {
  readonly name: string;
  readonly port?: number;
  readonly protocol: Protocol | 'sctp';
}

export interface SliceEndpointInfo {
  readonly addresses: readonly string[];
  /** Absent means ready (EndpointConditions semantics). */
  readonly ready?: boolean;
  readonly serving?: boolean;
  readonly terminating?: boolean;
}

export interface EndpointSliceInfo extends ObjectRef {
  /** The kubernetes.io/service-name label; a slice without it belongs to no Service. */
  readonly serviceName?: string;
  readonly addressType: 'IPv4' | 'IPv6' | 'FQDN';
  readonly ports: readonly SlicePortInfo[];
  readonly endpoints: readonly SliceEndpointInfo[];
}

export type InterfaceRole = 'external' | 'internal';

export interface AgentInterface {
  readonly name: string;
  readonly role: InterfaceRole;
  readonly addresses: readonly InterfaceAddress[];
  /** Default gateway of an external interface (dotted quad). */
  readonly gateway?: string;
}

export interface AgentFacts {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly interfaces: readonly AgentInterface[];
}

export interface Snapshot {
  readonly mappings: readonly MappingEntry[];
  readonly services: readonly ServiceInfo[];
  readonly endpointSlices: readonly EndpointSliceInfo[];
  readonly pools: readonly AddressPool[];
  /** Canonical addresses this agent owns now; 'allEligible' = every address it is eligible for. */
  readonly owned: ReadonlySet<string> | 'allEligible';
  readonly agent: AgentFacts;
  /**
   * 'leader' (the agent): a port is programmed only when the leader recorded its claim in the
   * Mapping's status.claims (ADR 0008), so the kernel never disagrees with the leader's verdict.
   * Absent (snapshot files for `smartnat render`, which carry no status): clashes are resolved
   * locally, oldest Mapping first.
   */
  readonly claimsFrom?: 'leader';
}

export function refKey(ref: ObjectRef): string {
  return `${ref.namespace}/${ref.name}`;
}

function lowerProtocol(p: CoreProtocol): Protocol | 'sctp' {
  return p === 'TCP' ? 'tcp' : p === 'UDP' ? 'udp' : 'sctp';
}

/** Adapts a parsed core Service (src/api/core.ts) to the planner's view. */
export function serviceInfo(s: Service): ServiceInfo {
  const base = { namespace: s.namespace, name: s.name, ports: s.ports.map((p) => ({ name: p.name, port: p.port, protocol: lowerProtocol(p.protocol) })) };
  const withName = s.externalName === undefined ? base : { ...base, externalName: s.externalName };
  return s.clusterIP ? { ...withName, clusterIP: s.clusterIP } : withName;
}

/** Adapts a parsed EndpointSlice (src/api/core.ts) to the planner's view. */
export function endpointSliceInfo(s: EndpointSlice): EndpointSliceInfo {
  const base = {
    namespace: s.namespace,
    name: s.name,
    addressType: s.addressType,
    ports: s.ports.map((p) => (p.port === undefined ? { name: p.name, protocol: lowerProtocol(p.protocol) } : { name: p.name, port: p.port, protocol: lowerProtocol(p.protocol) })),
    endpoints: s.endpoints.map((e) => ({ addresses: e.addresses, ready: e.ready, serving: e.serving, terminating: e.terminating })),
  };
  return s.serviceName === undefined ? base : { ...base, serviceName: s.serviceName };
}
