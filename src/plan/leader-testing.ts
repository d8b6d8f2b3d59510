// Owns: builders for the leader planner's tests (Mappings and pools through the real parsers,
// address leases, applying a plan's writes to the input as the API server would).
// Guarantees: objects are what parseMapping/parseAddressPool return for equivalent raw objects.
// Does not decide anything; used by leader-*.test.ts only.

import { parseAddressPool, parseMapping } from '../api/parse.js';
import { API_VERSION, type AddressPool, type Mapping, type MappingStatus } from '../api/types.js';
import { readLeaderMapping, type LeaderInput, type LeaderMappingEntry, type LeaderPlan } from './leader-input.js';
import { ANNOTATION_INTERFACE, ANNOTATION_POOL, ANNOTATION_VRID, LABEL_ROLE, addressLeaseName, type LeaseRecord } from './lease-names.js';

export interface MappingOptions {
  namespace?: string;
  addresses?: string[];
  ports?: { port: number; protocol?: string }[];
  created?: string;
  generation?: number;
  status?: Record<string, unknown>;
  deleting?: boolean;
  finalizers?: string[];
  serviceName?: string;
  /** spec.egress (ADR 0009). */
  egress?: Record<string, unknown>;
}

export function rawMapping(name: string, o: MappingOptions = {}): Record<string, unknown> {
  const namespace = o.namespace ?? 'default';
  return {
    apiVersion: API_VERSION,
    kind: 'Mapping',
    metadata: {
      name,
      namespace,
      uid: `uid-${namespace}-${name}`,
      generation: o.generation ?? 1,
      creationTimestamp: o.created ?? '2026-01-01T00:00:00Z',
      ...(o.deleting ? { deletionTimestamp: '2026-01-02T00:00:00Z' } : {}),
      ...(o.finalizers ? { finalizers: o.finalizers } : {}),
    },
    spec: {
      addresses: o.addresses ?? ['203.0.113.10'],
      serviceName: o.serviceName ?? 'echo',
      ports: (o.ports ?? [{ port: 80 }]).map((p) => ({ port: p.port, protocol: p.protocol ?? 'tcp' })),
      ...(o.egress ? { egress: o.egress } : {}),
    },
    ...(o.status ? { status: o.status } : {}),
  };
}

export function mapping(name: string, o: MappingOptions = {}): Mapping {
  const r = parseMapping(rawMapping(name, o));
  if (!r.ok) throw new Error(`bad test Mapping ${name}: ${JSON.stringify(r.errors)}`);
  return r.value;
}

export function entry(name: string, o: MappingOptions = {}): LeaderMappingEntry {
  return readLeaderMapping(rawMapping(name, o));
}

export interface PoolOptions {
  addresses?: string[];
  interface?: string;
  allowedNamespaces?: string[];
  vridRange?: { first: number; last: number };
  status?: Record<string, unknown>;
  /** spec.egress.gateways (ADR 0009). */
  gateways?: string[];
}

export function pool(name: string, o: PoolOptions = {}): AddressPool {
  const r = parseAddressPool({
    apiVersion: API_VERSION,
    kind: 'AddressPool',
    metadata: { name, uid: `uid-pool-${name}`, generation: 1, creationTimestamp: '2026-01-01T00:00:00Z' },
    spec: {
      addresses: o.addresses ?? ['203.0.113.0/24'],
      ...(o.interface ? { interface: o.interface } : {}),
      ...(o.allowedNamespaces ? { allowedNamespaces: o.allowedNamespaces } : {}),
      ...(o.vridRange ? { vrrp: { vridRange: o.vridRange } } : {}),
      ...(o.gateways ? { egress: { gateways: o.gateways } } : {}),
    },
    ...(o.status ? { status: o.status } : {}),
  });
  if (!r.ok) throw new Error(`bad test pool ${name}: ${JSON.stringify(r.errors)}`);
  return r.value;
}

export function addressLease(address: string, o: { pool?: string; vrid?: number; interface?: string; holder?: string; transitions?: number } = {}): LeaseRecord {
  return {
    name: addressLeaseName(address),
    resourceVersion: `rv-${address}`,
    holder: o.holder ?? '',
    leaseDurationSeconds: 2,
    leaseTransitions: o.transitions ?? 0,
    ...(o.holder ? { acquireTime: new Date('2026-01-01T00:00:05Z') } : {}),
    labels: { [LABEL_ROLE]: 'address' },
    annotations: {
      [ANNOTATION_POOL]: o.pool ?? 'pool-a',
      ...(o.vrid === undefined ? {} : { [ANNOTATION_VRID]: String(o.vrid) }),
      ...(o.interface === undefined ? {} : { [ANNOTATION_INTERFACE]: o.interface }),
    },
  };
}

export function baseInput(patch: Partial<LeaderInput> = {}): LeaderInput {
  return {
    mappings: [],
    pools: [pool('pool-a')],
    services: [{ namespace: 'default', name: 'echo', clusterIP: '198.19.0.10', ports: [{ name: '', port: 80, protocol: 'tcp' }] }],
    addressLeases: [],
    agents: [],
    now: '2026-01-01T01:00:00Z',
    ...patch,
  };
}

/**
 * What the API server would hold after the plan's writes: Mapping status replaced in the
 * leader's fields, leases created/deleted/re-annotated, pool status replaced. Lets tests run a
 * second pass as a new leader would see it.
 */
export function applyPlan(input: LeaderInput, plan: LeaderPlan, now: string): LeaderInput {
  const writes = new Map(plan.mappingWrites.map((w) => [w.uid, w.status]));
  const mappings = input.mappings.map((e): LeaderMappingEntry => {
    const meta = e.ok ? e.mapping : e.meta;
    const s = writes.get(meta.uid);
    if (s === undefined) return e;
    const { serviceVIP: _vip, claims: _claims, egress: _egress, owners: _owners, ...rest } = meta.status;
    const next: MappingStatus = {
      ...rest,
      invalid: s.invalid,
      observedGeneration: s.observedGeneration,
      conditions: s.conditions,
      ...(s.serviceVIP === undefined ? {} : { serviceVIP: s.serviceVIP }),
      ...(s.claims.length > 0 ? { claims: s.claims } : {}),
      ...(s.egress === undefined ? {} : { egress: s.egress }),
      ...(s.owners === undefined || s.owners === '' ? {} : { owners: s.owners }),
    };
    return e.ok ? { ok: true, mapping: { ...e.mapping, status: next } } : { ...e, meta: { ...e.meta, status: next } };
  });
  const deleted = new Set(plan.leaseDeletes.map((d) => d.name));
  const reannotated = new Map(plan.leaseReannotations.map((r) => [r.name, r]));
  const leases = input.addressLeases
    .filter((l) => !deleted.has(l.name))
    .map((l) => {
      const r = reannotated.get(l.name);
      return r === undefined ? l : addressLease(r.address, { pool: r.pool, vrid: r.vrid, ...(r.interface ? { interface: r.interface } : {}), holder: l.holder, transitions: l.leaseTransitions });
    });
  for (const c of plan.leaseCreates) leases.push(addressLease(c.address, { pool: c.pool, vrid: c.vrid, ...(c.interface ? { interface: c.interface } : {}) }));
  const poolWrites = new Map(plan.poolWrites.map((w) => [w.name, w.status]));
  const pools = input.pools.map((p) => ({ ...p, status: poolWrites.get(p.name) ?? p.status }));
  return { ...input, mappings, addressLeases: leases, pools, now };
}
