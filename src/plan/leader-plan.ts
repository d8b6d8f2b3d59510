// Owns: planLeaderDuties, the whole of one leader pass as a pure function: verdicts, address
// leases, Mapping and AddressPool status, Events, legacy finalizer removals (ADR 0008).
// Guarantees: deterministic (input order never matters); writes are listed only where the stored
// state differs; a Mapping being deleted is never refused, blocks nothing and holds no claim.
// Does not perform the writes (src/agent/leader-duties.ts does) nor remember anything between passes.

import { LEGACY_FINALIZER, type AddressPool, type EgressStatus, type Mapping } from '../api/types.js';
import { parseIpv4 } from '../model/net.js';
import { refKey, type ServiceInfo } from '../model/snapshot.js';
import { placeMapping, resolveClaims, type Placement } from './leader-claims.js';
import {
  metaOf,
  type FinalizerRemoval,
  type LeaderEvent,
  type LeaderInput,
  type LeaderMappingEntry,
  type LeaderMappingStatus,
  type LeaderPlan,
  type MappingMeta,
  type MappingWrite,
  type PoolWrite,
  type Verdict,
} from './leader-input.js';
import {
  computeMappingStatus,
  computePoolStatus,
  computeReadiness,
  mappingEvents,
  mappingStatusMatches,
  ownerEvents,
  poolStatusMatches,
} from './leader-status.js';
import { planAddressLeases, type AddressAssignment, type LeasePlan } from './leader-vrid.js';
import { egressGatewayOf } from './egress.js';

/** status.egress of a Mapping with spec.egress on: the gateway its pool pairs with the address, or why none. */
function egressStatusOf(mapping: Mapping, pools: readonly AddressPool[]): EgressStatus | undefined {
  const egress = mapping.spec.egress;
  if (egress === undefined) return undefined;
  const value = parseIpv4(egress.address) ?? -1;
  const pool = [...pools].sort((a, b) => byString(a.name, b.name)).find((p) => p.spec.addresses.some((r) => value >= r.first && value <= r.last));
  if (pool === undefined) return { address: egress.address, message: `${egress.address} is in no AddressPool` };
  const verdict = egressGatewayOf(pool.spec, egress.address);
  return verdict.ok ? { address: egress.address, gateway: verdict.gateway } : { address: egress.address, message: `pool ${pool.name}: ${verdict.message}` };
}

function byString(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareEntries(a: LeaderMappingEntry, b: LeaderMappingEntry): number {
  const ma = metaOf(a);
  const mb = metaOf(b);
  return byString(refKey(ma), refKey(mb)) || byString(ma.uid, mb.uid);
}

interface Decision {
  readonly verdicts: Map<string, Verdict>;
  readonly granted: ReadonlyMap<string, readonly string[]>;
  readonly leases: LeasePlan;
  readonly placements: ReadonlyMap<string, readonly Placement[]>;
  /** Addresses refused for want of a router id: their pool and the reason. */
  readonly starved: ReadonlyMap<string, { readonly pool: string; readonly message: string }>;
}

/**
 * Verdicts and the lease plan, to a fixed point: an address that finds no router id refuses the
 * Mappings that use it, which may release pairs that let another Mapping in; the set of such
 * addresses only grows, so this ends.
 */
function decide(valid: readonly Mapping[], input: LeaderInput): Decision {
  const noRouterId = new Map<string, { pool: string; message: string }>();
  for (;;) {
    const verdicts = new Map<string, Verdict>();
    const placements = new Map<string, readonly Placement[]>();
    const candidates: Mapping[] = [];
    for (const m of valid) {
      const placed = placeMapping(m, input.pools);
      if (!placed.ok) {
        verdicts.set(refKey(m), { accepted: false, reason: placed.reason, message: placed.message });
        continue;
      }
      const starved = placed.placements.find((p) => noRouterId.has(p.address));
      if (starved !== undefined) {
        verdicts.set(refKey(m), { accepted: false, reason: 'NoRouterIdLeft', message: `address ${starved.address}: ${noRouterId.get(starved.address)?.message ?? ''}` });
        continue;
      }
      placements.set(refKey(m), placed.placements);
      candidates.push(m);
    }
    const claims = resolveClaims(candidates);
    for (const [k, v] of claims.verdicts) verdicts.set(k, v);
    const inUse = new Map<string, Placement>();
    for (const m of candidates) {
      if (verdicts.get(refKey(m))?.accepted !== true) continue;
      for (const p of placements.get(refKey(m)) ?? []) inUse.set(p.address, p);
    }
    const leases = planAddressLeases([...inUse.values()], input.addressLeases);
    if (leases.noRouterId.size === 0) return { verdicts, granted: claims.granted, leases, placements, starved: noRouterId };
    for (const [address, message] of leases.noRouterId) noRouterId.set(address, { pool: inUse.get(address)?.pool.name ?? '', message });
  }
}

function firstError(entry: Extract<LeaderMappingEntry, { ok: false }>): string {
  const e = entry.errors[0];
  return e === undefined ? 'invalid Mapping' : `${e.field}: ${e.message}`;
}

/** One leader pass over the whole cluster state. */
export function planLeaderDuties(input: LeaderInput): LeaderPlan {
  const entries = [...input.mappings].sort(compareEntries);
  const finalizerRemovals: FinalizerRemoval[] = [];
  for (const e of entries) {
    const meta = metaOf(e);
    const index = meta.finalizers.indexOf(LEGACY_FINALIZER);
    if (meta.deleting && index >= 0) finalizerRemovals.push({ ref: { namespace: meta.namespace, name: meta.name }, uid: meta.uid, index });
  }
  const live = entries.filter((e) => !metaOf(e).deleting);
  const valid = live.flatMap((e) => (e.ok ? [e.mapping] : []));
  const { verdicts, granted, leases, placements, starved } = decide(valid, input);
  const services = new Map<string, ServiceInfo>(input.services.map((s) => [refKey(s), s]));
  const liveAgents = new Set(input.agents.filter((a) => a.live).map((a) => a.name));
  const mappingWrites: MappingWrite[] = [];
  const events: LeaderEvent[] = [];
  const usersByAddress = new Map<string, MappingMeta[]>();
  for (const e of live) {
    const meta = metaOf(e);
    const key = refKey(meta);
    let status: LeaderMappingStatus;
    if (!e.ok) {
      const verdict: Verdict = { accepted: false, reason: 'InvalidSpec', message: e.errors.map((x) => `${x.field}: ${x.message}`).join('; ') };
      verdicts.set(key, verdict);
      status = computeMappingStatus({ meta, verdict, invalid: firstError(e), claims: [], now: input.now });
    } else {
      const verdict = verdicts.get(key) ?? { accepted: false, reason: 'InvalidSpec', message: 'not judged' };
      const service = services.get(`${meta.namespace}/${e.mapping.spec.serviceName}`);
      const readiness = verdict.accepted ? computeReadiness({ mapping: e.mapping, service, assignments: leases.assignments, liveAgents }) : undefined;
      status = computeMappingStatus({
        meta,
        verdict,
        ...(service === undefined ? {} : { service }),
        ...(readiness === undefined ? {} : { readiness }),
        claims: granted.get(key) ?? [],
        owners: e.mapping.spec.addresses.map((address) => leases.assignments.get(address)?.lease?.holder ?? ''),
        now: input.now,
        ...(verdict.accepted && e.mapping.spec.egress !== undefined ? { egress: egressStatusOf(e.mapping, input.pools) } : {}),
      });
      if (verdict.accepted) {
        for (const p of placements.get(key) ?? []) usersByAddress.set(p.address, [...(usersByAddress.get(p.address) ?? []), meta]);
      }
    }
    events.push(...mappingEvents(meta, status));
    if (!mappingStatusMatches(meta.status, status)) mappingWrites.push({ ref: { namespace: meta.namespace, name: meta.name }, uid: meta.uid, status });
  }
  const poolWrites: PoolWrite[] = [];
  for (const pool of [...input.pools].sort((a, b) => byString(a.name, b.name))) {
    const mine: AddressAssignment[] = [...leases.assignments.values()].filter((a) => a.pool === pool.name);
    const refused = new Map([...starved].filter(([, s]) => s.pool === pool.name).map(([address, s]) => [address, s.message]));
    const status = computePoolStatus({ pool, assignments: mine, noRouterId: refused, now: input.now });
    events.push(...ownerEvents(pool, mine, (address) => usersByAddress.get(address) ?? []));
    if (!poolStatusMatches(pool.status, status)) poolWrites.push({ name: pool.name, status });
  }
  return {
    verdicts,
    mappingWrites,
    poolWrites,
    leaseCreates: leases.creates,
    leaseReannotations: leases.reannotations,
    leaseDeletes: leases.deletes,
    events,
    finalizerRemovals,
  };
}
