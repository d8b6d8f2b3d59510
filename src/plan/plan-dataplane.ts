// planDataPlane: snapshot -> DesiredDataPlane for one agent, plus a reason for everything left out.
// Pure and deterministic: the output depends on the snapshot's content, never on its order (inputs
// are sorted first; with claimsFrom 'leader' only the leader's granted claims are programmed (and,
// until the leader's first verdict on a generation, a Mapping none of whose pairs anyone else wants), else
// port clashes go to the oldest Mapping, then namespace/name). Rules are planned
// for every address the agent is eligible for; ownership only flips a flag (the owned set).
import { matchesAgentSelector } from '../api/selector.js';
import type { AddressPool, Mapping, MappingPort, ObjectRef } from '../api/types.js';
import { cidrContains, parseCidr, parseIpv4 } from '../model/net.js';
import type { DataPlaneSettings } from '../model/settings.js';
import { maxUplinks, uplinkMark } from '../model/settings.js';
import type { AgentFacts, AgentInterface, EndpointSliceInfo, ServiceInfo, Snapshot } from '../model/snapshot.js';
import { refKey } from '../model/snapshot.js';
import type { DataPlanePlan, DesiredAddress, DesiredEgress, DesiredPort, DesiredRoute, DesiredUplink, LeftOut } from './desired.js';
import { egressGatewayOf, egressSourcesOf } from './egress.js';
import { resolveEndpoints } from './endpoints.js';
import { claimKey } from './leader-input.js';
import { provisionalMappings } from './provisional.js';

interface AddressPlacement {
  readonly pool: AddressPool;
  readonly uplink: DesiredUplink;
}

type Placement = { readonly ok: true; readonly value: AddressPlacement } | { readonly ok: false; readonly leftOut: Omit<LeftOut, 'mapping'> };

function byString(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareMappings(a: Mapping, b: Mapping): number {
  return byString(a.creationTimestamp, b.creationTimestamp) || byString(a.namespace, b.namespace) || byString(a.name, b.name);
}

function routesOf(itf: AgentInterface): DesiredRoute[] {
  const connected = new Map<string, DesiredRoute>();
  for (const a of itf.addresses) connected.set(a.subnet.text, { destination: a.subnet.text, device: itf.name, scope: 'link' });
  const routes = [...connected.values()].sort((x, y) => byString(x.destination, y.destination));
  if (itf.gateway) routes.push({ destination: 'default', gateway: itf.gateway, device: itf.name, scope: 'global' });
  return routes;
}

/** External interfaces sorted by name, numbered 1..n; those beyond the mark field are left out. */
export function planUplinks(agent: AgentFacts, settings: DataPlaneSettings): { uplinks: DesiredUplink[]; leftOut: LeftOut[] } {
  const external = agent.interfaces.filter((i) => i.role === 'external').sort((a, b) => byString(a.name, b.name));
  const max = maxUplinks(settings);
  const uplinks = external.slice(0, max).map((itf, i) => ({
    name: itf.name,
    index: i + 1,
    mark: uplinkMark(settings, i + 1),
    table: settings.tableBase + i + 1,
    pref: settings.prefBase + i + 1,
    routes: routesOf(itf),
  }));
  const leftOut = external.slice(max).map((itf): LeftOut => ({
    reason: 'tooManyUplinks', effect: 'nothing', message: `external interface ${itf.name} beyond the ${max} the mark mask can number`,
  }));
  return { uplinks, leftOut };
}

function findUplink(address: number, pool: AddressPool, ctx: PlanContext): DesiredUplink | undefined {
  if (pool.spec.interface !== undefined) return ctx.uplinks.find((u) => u.name === pool.spec.interface);
  const itf = ctx.externals.find((i) => i.addresses.some((a) => cidrContains(a.subnet, address)));
  return itf ? ctx.uplinks.find((u) => u.name === itf.name) : undefined;
}

function placeAddress(address: string, namespace: string, ctx: PlanContext): Placement {
  const value = parseIpv4(address) ?? -1;
  const pool = ctx.pools.find((p) => p.spec.addresses.some((r) => value >= r.first && value <= r.last));
  if (!pool) return { ok: false, leftOut: { reason: 'addressNotInPool', effect: 'nothing', address, message: `${address} is in no AddressPool` } };
  if (pool.spec.allowedNamespaces && !pool.spec.allowedNamespaces.includes(namespace)) {
    return { ok: false, leftOut: { reason: 'namespaceNotAllowed', effect: 'nothing', address, message: `pool ${pool.name} is closed to namespace ${namespace}` } };
  }
  if (!matchesAgentSelector(pool.spec, ctx.agent.labels)) {
    return { ok: false, leftOut: { reason: 'notEligible', effect: 'nothing', address, message: `agent ${ctx.agent.name} does not match pool ${pool.name}'s agentSelector` } };
  }
  const uplink = findUplink(value, pool, ctx);
  if (!uplink) {
    const where = pool.spec.interface ?? 'an external interface whose subnet holds it';
    return { ok: false, leftOut: { reason: 'noExternalInterface', effect: 'nothing', address, message: `${address} needs ${where} on agent ${ctx.agent.name}` } };
  }
  return { ok: true, value: { pool, uplink } };
}

function indexSlices(slices: readonly EndpointSliceInfo[]): Map<string, EndpointSliceInfo[]> {
  const out = new Map<string, EndpointSliceInfo[]>();
  for (const s of slices) {
    const key = `${s.namespace}/${s.serviceName}`;
    const list = out.get(key);
    if (list === undefined) out.set(key, [s]);
    else list.push(s);
  }
  return out;
}

interface PlanContext {
  readonly snapshot: Snapshot;
  readonly agent: AgentFacts;
  readonly pools: readonly AddressPool[];
  readonly uplinks: readonly DesiredUplink[];
  readonly externals: readonly AgentInterface[];
  readonly services: ReadonlyMap<string, ServiceInfo>;
  /** EndpointSlices by "namespace/serviceName" (indexed once: resolving each port against every slice was quadratic). */
  readonly slicesByService: ReadonlyMap<string, readonly EndpointSliceInfo[]>;
  /** address -> uplink and ports accepted so far, keyed "proto/port". */
  readonly addresses: Map<string, { uplink: string; ports: Map<string, DesiredPort> }>;
  readonly leftOut: LeftOut[];
  /** claimsFrom 'leader': uids of Mappings programmed before the leader's verdict (provisional.ts). */
  provisional: ReadonlySet<string>;
}

function planPort(mapping: Mapping, address: string, port: MappingPort, ctx: PlanContext): DesiredPort {
  const where = { mapping: ref(mapping), address, protocol: port.protocol, port: port.port };
  const service = ctx.services.get(`${mapping.namespace}/${mapping.spec.serviceName}`);
  const base = { mapping: ref(mapping), protocol: port.protocol, port: port.port, sources: sortedSources(mapping) };
  if (!service) {
    ctx.leftOut.push({ ...where, reason: 'serviceMissing', effect: 'reject', message: `Service ${mapping.namespace}/${mapping.spec.serviceName} not found` });
    return { ...base, endpoints: [] };
  }
  const resolved = resolveEndpoints({ service, slices: ctx.slicesByService.get(refKey(service)) ?? [], servicePort: port.servicePort, protocol: port.protocol });
  if (resolved.reason === 'servicePortMissing' || resolved.reason === 'noReadyEndpoints') {
    const message = resolved.reason === 'servicePortMissing'
      ? `Service ${refKey(service)} has no ${port.protocol} port ${port.servicePort}`
      : service.externalName !== undefined
        ? `Service ${refKey(service)} is of type ExternalName (${service.externalName}): it has no endpoints to forward to`
        : `Service ${refKey(service)} has no ready endpoints for port ${port.servicePort}`;
    ctx.leftOut.push({ ...where, reason: resolved.reason, effect: 'reject', message });
  }
  return { ...base, endpoints: resolved.endpoints };
}

function ref(m: ObjectRef): ObjectRef {
  return { namespace: m.namespace, name: m.name };
}

function sortedSources(mapping: Mapping): string[] {
  const cidrs = mapping.spec.allowedSources.map((s) => parseCidr(s)).filter((c) => c !== undefined);
  const unique = new Map(cidrs.map((c) => [c.text, c]));
  return [...unique.values()].sort((a, b) => a.network - b.network || a.prefix - b.prefix).map((c) => c.text);
}

function planMappingAddress(mapping: Mapping, address: string, ctx: PlanContext): void {
  const placed = placeAddress(address, mapping.namespace, ctx);
  if (!placed.ok) {
    ctx.leftOut.push({ ...placed.leftOut, mapping: ref(mapping) });
    return;
  }
  const entry = ctx.addresses.get(address) ?? { uplink: placed.value.uplink.name, ports: new Map<string, DesiredPort>() };
  ctx.addresses.set(address, entry);
  const claims = ctx.snapshot.claimsFrom === 'leader' && !ctx.provisional.has(mapping.uid) ? new Set(mapping.status.claims ?? []) : undefined;
  for (const port of mapping.spec.ports) {
    const key = `${port.protocol}/${port.port}`;
    if (claims && !claims.has(claimKey(address, port.port, port.protocol))) {
      ctx.leftOut.push({
        mapping: ref(mapping), address, protocol: port.protocol, port: port.port, reason: 'notClaimed', effect: 'nothing',
        message: `${address}:${port.port}/${port.protocol} is not (yet) granted to this Mapping by the leader (status.claims)`,
      });
      continue;
    }
    const holder = entry.ports.get(key);
    if (holder) {
      ctx.leftOut.push({
        mapping: ref(mapping), address, protocol: port.protocol, port: port.port, reason: 'portConflict', effect: 'nothing',
        message: `${address}:${port.port}/${port.protocol} already belongs to ${refKey(holder.mapping)}`,
      });
      continue;
    }
    entry.ports.set(key, planPort(mapping, address, port, ctx));
  }
}

/** Valid, not-deleting Mappings, oldest first (the order every tie is broken in). */
function planMappings(ctx: PlanContext): Mapping[] {
  const valid: Mapping[] = [];
  for (const entry of ctx.snapshot.mappings) {
    if (!entry.ok) {
      ctx.leftOut.push({ mapping: entry.ref, reason: 'invalidMapping', effect: 'nothing', message: entry.errors.map((e) => `${e.field}: ${e.message}`).join('; ') });
    } else if (entry.mapping.deleting) {
      ctx.leftOut.push({ mapping: ref(entry.mapping), reason: 'mappingDeleting', effect: 'nothing', message: 'Mapping is being deleted' });
    } else valid.push(entry.mapping);
  }
  if (ctx.snapshot.claimsFrom === 'leader') ctx.provisional = provisionalMappings(valid, ctx.pools);
  for (const mapping of valid.sort(compareMappings)) {
    const addresses = [...new Set(mapping.spec.addresses)].sort((a, b) => (parseIpv4(a) ?? 0) - (parseIpv4(b) ?? 0));
    for (const address of addresses) planMappingAddress(mapping, address, ctx);
  }
  return valid;
}

interface EgressEntry {
  readonly uplink: string;
  readonly mappings: ObjectRef[];
  readonly sources: string[];
}

/** Whether the leader granted the Mapping any port on `address` (only a claimant may use it for egress). */
function holdsClaimOn(mapping: Mapping, address: string, ctx: PlanContext): boolean {
  if (ctx.snapshot.claimsFrom !== 'leader') return true;
  const claims = new Set(mapping.status.claims ?? []);
  return mapping.spec.ports.some((p) => claims.has(claimKey(address, p.port, p.protocol)));
}

/**
 * Egress (ADR 0009), for Mappings oldest first: the Service's endpoint IPs leave with the
 * Mapping's egress address, on the agents eligible for it. A pod IP already taken by an older
 * egress Mapping stays with that one (reason egressConflict for the younger).
 */
function planEgress(valid: readonly Mapping[], ctx: PlanContext): DesiredEgress[] {
  const byAddress = new Map<string, EgressEntry>();
  const taken = new Map<string, ObjectRef>();
  for (const mapping of valid) {
    const egress = mapping.spec.egress;
    if (egress === undefined) continue;
    const address = egress.address;
    const placed = placeAddress(address, mapping.namespace, ctx);
    if (!placed.ok) continue; // already reported for the address's ports
    const gateway = egressGatewayOf(placed.value.pool.spec, address);
    if (!gateway.ok) {
      ctx.leftOut.push({ mapping: ref(mapping), address, reason: 'noEgressGateway', effect: 'nothing', message: `no egress for ${address}: pool ${placed.value.pool.name}: ${gateway.message}` });
      continue;
    }
    if (!holdsClaimOn(mapping, address, ctx)) {
      ctx.leftOut.push({ mapping: ref(mapping), address, reason: 'notClaimed', effect: 'nothing', message: `no egress for ${address}: the leader granted this Mapping no port on it (status.claims)` });
      continue;
    }
    const service = ctx.services.get(`${mapping.namespace}/${mapping.spec.serviceName}`);
    if (service === undefined) continue; // serviceMissing is reported per port
    const entry = byAddress.get(address) ?? { uplink: placed.value.uplink.name, mappings: [], sources: [] };
    byAddress.set(address, entry);
    entry.mappings.push(ref(mapping));
    const clashes: string[] = [];
    for (const ip of egressSourcesOf(service, ctx.snapshot.endpointSlices)) {
      const holder = taken.get(ip);
      if (holder !== undefined) {
        if (refKey(holder) !== refKey(mapping)) clashes.push(`${ip} (${refKey(holder)})`);
        continue;
      }
      taken.set(ip, ref(mapping));
      entry.sources.push(ip);
    }
    if (clashes.length > 0) {
      ctx.leftOut.push({
        mapping: ref(mapping), address, reason: 'egressConflict', effect: 'nothing',
        message: `pods already leaving with an older Mapping's address keep it: ${clashes.slice(0, 8).join(', ')}${clashes.length > 8 ? `, and ${clashes.length - 8} more` : ''}`,
      });
    }
  }
  const owned = ctx.snapshot.owned;
  return [...byAddress]
    .sort(([a], [b]) => (parseIpv4(a) ?? 0) - (parseIpv4(b) ?? 0))
    .map(([address, e]) => ({
      address,
      uplink: e.uplink,
      owned: owned === 'allEligible' || owned.has(address),
      mappings: [...e.mappings].sort((x, y) => byString(refKey(x), refKey(y))),
      sources: [...e.sources].sort((x, y) => (parseIpv4(x) ?? 0) - (parseIpv4(y) ?? 0)),
    }));
}

function comparePorts(a: DesiredPort, b: DesiredPort): number {
  return byString(a.protocol, b.protocol) || a.port - b.port;
}

function finishAddresses(ctx: PlanContext): DesiredAddress[] {
  const owned = ctx.snapshot.owned;
  const result: DesiredAddress[] = [];
  for (const [address, entry] of ctx.addresses) {
    const isOwned = owned === 'allEligible' || owned.has(address);
    if (!isOwned) ctx.leftOut.push({ address, reason: 'notOwned', effect: 'standby', message: `rules for ${address} are rendered but gated off: another agent owns it` });
    if (entry.ports.size === 0) continue;
    result.push({ address, uplink: entry.uplink, owned: isOwned, ports: [...entry.ports.values()].sort(comparePorts) });
  }
  if (owned !== 'allEligible') {
    for (const address of owned) {
      if (!ctx.addresses.has(address)) ctx.leftOut.push({ address, reason: 'ownedNotEligible', effect: 'nothing', message: `${address} is owned but no Mapping on this agent uses it` });
    }
  }
  return result.sort((a, b) => (parseIpv4(a.address) ?? 0) - (parseIpv4(b.address) ?? 0));
}

function compareLeftOut(a: LeftOut, b: LeftOut): number {
  const key = (l: LeftOut): string =>
    [l.mapping ? refKey(l.mapping) : '', String(parseIpv4(l.address ?? '') ?? -1).padStart(11, '0'), l.protocol ?? '', String(l.port ?? 0).padStart(5, '0'), l.reason, l.message].join('\u0000');
  return byString(key(a), key(b));
}

function internalInterfaces(agent: AgentFacts): string[] {
  return agent.interfaces.filter((i) => i.role === 'internal').map((i) => i.name).sort(byString);
}

/** The desired data plane of `snapshot.agent`, and what was left out and why. */
export function planDataPlane(snapshot: Snapshot, settings: DataPlaneSettings): DataPlanePlan {
  const { uplinks, leftOut } = planUplinks(snapshot.agent, settings);
  const ctx: PlanContext = {
    snapshot,
    agent: snapshot.agent,
    pools: [...snapshot.pools].sort((a, b) => byString(a.name, b.name)),
    uplinks,
    externals: snapshot.agent.interfaces.filter((i) => i.role === 'external').sort((a, b) => byString(a.name, b.name)),
    services: new Map(snapshot.services.map((s) => [refKey(s), s])),
    slicesByService: indexSlices(snapshot.endpointSlices),
    addresses: new Map(),
    leftOut,
    provisional: new Set(),
  };
  const valid = planMappings(ctx);
  const addresses = finishAddresses(ctx);
  const egress = planEgress(valid, ctx);
  const desired = egress.length === 0
    ? { settings, uplinks, addresses }
    : { settings, uplinks, addresses, egress, internalInterfaces: internalInterfaces(snapshot.agent) };
  return { desired, leftOut: ctx.leftOut.sort(compareLeftOut) };
}
