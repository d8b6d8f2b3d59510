// Resolves the DNAT targets of one Service port from EndpointSlices (DESIGN.md 2.1): slices by the
// kubernetes.io/service-name label, target port per slice by the Service port's name, an endpoint
// in two slices counted once, absent `ready` = ready, serving-terminating endpoints only when no
// endpoint is ready; IPv4 slices only. Pure; the result is sorted.
import type { Protocol } from '../api/types.js';
import { canonicalIpv4, parseIpv4 } from '../model/net.js';
import type { EndpointSliceInfo, ServiceInfo, SliceEndpointInfo } from '../model/snapshot.js';
import type { DesiredEndpoint } from './desired.js';

export type EndpointsReason = 'ready' | 'servingTerminating' | 'servicePortMissing' | 'noReadyEndpoints';

export interface ResolvedEndpoints {
  readonly endpoints: readonly DesiredEndpoint[];
  readonly reason: EndpointsReason;
}

export interface ResolveInput {
  readonly service: ServiceInfo;
  readonly slices: readonly EndpointSliceInfo[];
  readonly servicePort: number;
  readonly protocol: Protocol;
}

function endpointKey(e: DesiredEndpoint): string {
  return `${e.ip}:${e.port}`;
}

export function compareEndpoints(a: DesiredEndpoint, b: DesiredEndpoint): number {
  return (parseIpv4(a.ip) ?? 0) - (parseIpv4(b.ip) ?? 0) || a.port - b.port;
}

function isReady(e: SliceEndpointInfo): boolean {
  return e.ready ?? true;
}

function isServingTerminating(e: SliceEndpointInfo): boolean {
  return (e.serving ?? isReady(e)) && (e.terminating ?? false);
}

function collect(
  slices: readonly EndpointSliceInfo[],
  targetPortOf: (s: EndpointSliceInfo) => number | undefined,
  keep: (e: SliceEndpointInfo) => boolean,
): DesiredEndpoint[] {
  const byKey = new Map<string, DesiredEndpoint>();
  for (const slice of slices) {
    const port = targetPortOf(slice);
    if (port === undefined) continue;
    for (const ep of slice.endpoints) {
      const ip = ep.addresses[0] === undefined ? undefined : canonicalIpv4(ep.addresses[0]);
      if (ip === undefined || !keep(ep)) continue;
      const endpoint = { ip, port };
      byKey.set(endpointKey(endpoint), endpoint);
    }
  }
  return [...byKey.values()].sort(compareEndpoints);
}

/** Slices of a Service: same namespace, matching service-name label, IPv4. */
export function slicesOf(service: ServiceInfo, slices: readonly EndpointSliceInfo[]): EndpointSliceInfo[] {
  return slices.filter((s) => s.namespace === service.namespace && s.serviceName === service.name && s.addressType === 'IPv4');
}

export function resolveEndpoints(input: ResolveInput): ResolvedEndpoints {
  const svcPort = input.service.ports.find((p) => p.port === input.servicePort && p.protocol === input.protocol);
  if (!svcPort) return { endpoints: [], reason: 'servicePortMissing' };
  const targetPortOf = (s: EndpointSliceInfo): number | undefined => {
    const p = s.ports.find((sp) => sp.name === svcPort.name && sp.protocol === input.protocol);
    return p?.port !== undefined && Number.isInteger(p.port) && p.port >= 1 && p.port <= 65535 ? p.port : undefined;
  };
  const slices = slicesOf(input.service, input.slices);
  const ready = collect(slices, targetPortOf, isReady);
  if (ready.length > 0) return { endpoints: ready, reason: 'ready' };
  const terminating = collect(slices, targetPortOf, isServingTerminating);
  if (terminating.length > 0) return { endpoints: terminating, reason: 'servingTerminating' };
  return { endpoints: [], reason: 'noReadyEndpoints' };
}
