// Owns: the leader-owned status of Mappings (invalid, serviceVIP, observedGeneration, conditions
// Accepted/Programmed/Ready, claims) and of AddressPools (addresses in use), and the Events their
// transitions call for (ADR 0008).
// Guarantees: pure; a condition keeps its lastTransitionTime while its status holds; Programmed and
// Ready come from the owners' configuredAddresses entries checked against the address lease's
// holder, so Ready means "in the kernel of the live owner"; equal inputs give equal outputs.
// Does not write, and never produces configuredAddresses (owners apply their own entries).

import type { AddressInUse, AddressPool, AddressPoolStatus, Condition, ConditionStatus, EgressStatus, Mapping, MappingStatus } from '../api/types.js';
import type { ServiceInfo } from '../model/snapshot.js';
import { byAddress } from './leader-claims.js';
import type { LeaderEvent, LeaderMappingStatus, MappingMeta, NotReadyReason, Verdict } from './leader-input.js';
import type { AddressAssignment } from './leader-vrid.js';

const MESSAGE_MAX = 1024;

function clip(message: string): string {
  return message.length <= MESSAGE_MAX ? message : `${message.slice(0, MESSAGE_MAX - 3)}...`;
}

interface ConditionDraft {
  readonly type: 'Accepted' | 'Programmed' | 'Ready';
  readonly status: ConditionStatus;
  readonly reason: string;
  readonly message: string;
}

/** A condition with the lastTransitionTime kept from `previous` while the status is unchanged. */
export function settleCondition(draft: ConditionDraft, previous: readonly Condition[], generation: number, now: string): Condition {
  const before = previous.find((c) => c.type === draft.type);
  const since = before !== undefined && before.status === draft.status && before.lastTransitionTime !== '' ? before.lastTransitionTime : now;
  return { type: draft.type, status: draft.status, observedGeneration: generation, lastTransitionTime: since, reason: draft.reason, message: clip(draft.message) };
}

/** What the owners report about an accepted Mapping's addresses, judged against the leases. */
export interface Readiness {
  readonly programmed: { readonly ok: true } | { readonly ok: false; readonly reason: NotReadyReason; readonly message: string };
  readonly ready: { readonly ok: true } | { readonly ok: false; readonly reason: NotReadyReason; readonly message: string };
}

export interface ReadinessInput {
  readonly mapping: Mapping;
  readonly service: ServiceInfo | undefined;
  readonly assignments: ReadonlyMap<string, AddressAssignment>;
  readonly liveAgents: ReadonlySet<string>;
}

export function computeReadiness({ mapping, service, assignments, liveAgents }: ReadinessInput): Readiness {
  const notProgrammed: string[] = [];
  let reason: NotReadyReason = 'NotProgrammed';
  const notReady: { reason: NotReadyReason; message: string }[] = [];
  for (const address of [...new Set(mapping.spec.addresses)].sort(byAddress)) {
    const holder = assignments.get(address)?.lease?.holder ?? '';
    const entry = mapping.status.configuredAddresses[address];
    if (holder === '') {
      if (notProgrammed.length === 0) reason = 'NoOwner';
      notProgrammed.push(`${address} has no owner yet`);
    } else if (entry?.owner !== holder || entry.observedGeneration !== mapping.generation) {
      reason = 'NotProgrammed';
      notProgrammed.push(`${address}: owner ${holder} has not reported generation ${mapping.generation}`);
    } else if (!liveAgents.has(holder)) {
      notReady.push({ reason: 'OwnerNotLive', message: `${address}: owner ${holder} is not live` });
    } else if (entry.endpoints.length === 0 && entry.podIPs.length === 0) {
      notReady.push({ reason: 'NoReadyEndpoints', message: `${address}: no ready endpoints programmed` });
    }
  }
  const programmed = notProgrammed.length === 0 ? ({ ok: true } as const) : ({ ok: false, reason, message: notProgrammed.join('; ') } as const);
  if (service === undefined) {
    return { programmed, ready: { ok: false, reason: 'ServiceNotFound', message: `Service ${mapping.namespace}/${mapping.spec.serviceName} not found` } };
  }
  if (service.externalName !== undefined) {
    const message = `Service ${mapping.namespace}/${mapping.spec.serviceName} is of type ExternalName (${service.externalName}): it has no endpoints to forward to`;
    return { programmed, ready: { ok: false, reason: 'ServiceTypeUnsupported', message } };
  }
  if (!programmed.ok) return { programmed, ready: programmed };
  const first = notReady[0];
  if (first === undefined) return { programmed, ready: { ok: true } };
  return { programmed, ready: { ok: false, reason: first.reason, message: notReady.map((n) => n.message).join('; ') } };
}

export interface MappingStatusInput {
  readonly meta: MappingMeta;
  readonly verdict: Verdict;
  /** The first parse error, for an unparseable Mapping. */
  readonly invalid?: string;
  readonly service?: ServiceInfo;
  readonly readiness?: Readiness;
  readonly claims: readonly string[];
  /** spec.egress's address and gateway (accepted Mappings with egress on only). */
  readonly egress?: EgressStatus;
  /** Holders of the Mapping's address leases (accepted Mappings only; empty holders left out). */
  readonly owners?: readonly string[];
  readonly now: string;
}

export function computeMappingStatus(input: MappingStatusInput): LeaderMappingStatus {
  const { meta, verdict, now } = input;
  const previous = meta.status.conditions;
  const settle = (d: ConditionDraft): Condition => settleCondition(d, previous, meta.generation, now);
  let drafts: ConditionDraft[];
  if (!verdict.accepted) {
    const refused = `refused: ${verdict.reason}`;
    drafts = [
      { type: 'Accepted', status: 'False', reason: verdict.reason, message: verdict.message },
      { type: 'Programmed', status: 'False', reason: 'Refused', message: refused },
      { type: 'Ready', status: 'False', reason: 'Refused', message: refused },
    ];
  } else {
    const r = input.readiness;
    const prog = r?.programmed ?? { ok: false, reason: 'NotProgrammed', message: 'not yet reported' };
    const ready = r?.ready ?? prog;
    drafts = [
      { type: 'Accepted', status: 'True', reason: 'Accepted', message: 'every address and port is available to this Mapping' },
      prog.ok
        ? { type: 'Programmed', status: 'True', reason: 'Programmed', message: 'every address is programmed by its owner' }
        : { type: 'Programmed', status: 'False', reason: prog.reason, message: prog.message },
      ready.ok
        ? { type: 'Ready', status: 'True', reason: 'Ready', message: 'every address is programmed with ready endpoints by a live owner' }
        : { type: 'Ready', status: 'False', reason: ready.reason, message: ready.message },
    ];
  }
  const invalid = verdict.accepted ? 'no' : clip(input.invalid ?? verdict.message);
  return {
    invalid,
    ...(input.service?.clusterIP === undefined ? {} : { serviceVIP: input.service.clusterIP }),
    observedGeneration: meta.generation,
    conditions: drafts.map(settle),
    claims: verdict.accepted ? [...input.claims].sort() : [],
    ...(verdict.accepted && input.egress !== undefined ? { egress: input.egress } : {}),
    owners: verdict.accepted ? [...new Set((input.owners ?? []).filter((o) => o !== ''))].sort().join(',') : '',
  };
}

function sameEgress(a: EgressStatus | undefined, b: EgressStatus | undefined): boolean {
  return a?.address === b?.address && a?.gateway === b?.gateway && a?.message === b?.message;
}

function sameCondition(a: Condition, b: Condition): boolean {
  return (
    a.type === b.type &&
    a.status === b.status &&
    a.reason === b.reason &&
    a.message === b.message &&
    a.lastTransitionTime === b.lastTransitionTime &&
    a.observedGeneration === b.observedGeneration
  );
}

function sameConditions(a: readonly Condition[], b: readonly Condition[]): boolean {
  const sort = (l: readonly Condition[]): Condition[] => [...l].sort((x, y) => (x.type < y.type ? -1 : x.type > y.type ? 1 : 0));
  const sa = sort(a);
  const sb = sort(b);
  return sa.length === sb.length && sa.every((c, i) => sameCondition(c, sb[i]!));
}

/** Whether the stored status already says what the leader would write. */
export function mappingStatusMatches(current: MappingStatus, desired: LeaderMappingStatus): boolean {
  const claims = current.claims ?? [];
  return (
    current.invalid === desired.invalid &&
    current.serviceVIP === desired.serviceVIP &&
    current.observedGeneration === desired.observedGeneration &&
    sameConditions(current.conditions, desired.conditions) &&
    claims.length === desired.claims.length &&
    claims.every((c, i) => c === desired.claims[i]) &&
    sameEgress(current.egress, desired.egress) &&
    (current.owners ?? '') === (desired.owners ?? '')
  );
}

/** Events for a Mapping whose Accepted condition changes (status, reason or message). */
export function mappingEvents(meta: MappingMeta, desired: LeaderMappingStatus): LeaderEvent[] {
  const before = meta.status.conditions.find((c) => c.type === 'Accepted');
  const after = desired.conditions.find((c) => c.type === 'Accepted');
  if (after === undefined) return [];
  if (before !== undefined && before.status === after.status && before.reason === after.reason && before.message === after.message) return [];
  const regarding = { namespace: meta.namespace, name: meta.name, uid: meta.uid };
  if (after.status === 'True') {
    return before === undefined || before.status !== 'True' ? [{ regarding, type: 'Normal', reason: 'MappingAccepted', message: after.message }] : [];
  }
  return [{ regarding, type: 'Warning', reason: 'MappingRefused', message: clip(`${after.reason}: ${after.message}`) }];
}

export interface PoolStatusInput {
  readonly pool: AddressPool;
  readonly assignments: readonly AddressAssignment[];
  /** Addresses of this pool refused for want of a router id, with the message. */
  readonly noRouterId: ReadonlyMap<string, string>;
  readonly now: string;
}

function leaseTime(a: AddressAssignment): string | undefined {
  const t = a.lease?.acquireTime;
  return t === undefined || a.lease?.holder === '' ? undefined : t.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function computePoolStatus({ pool, assignments, noRouterId, now }: PoolStatusInput): AddressPoolStatus {
  const previous = new Map(pool.status.addresses.map((a) => [a.address, a]));
  const addresses = [...assignments]
    .sort((a, b) => byAddress(a.address, b.address))
    .map((a): AddressInUse => {
      const owner = a.lease?.holder ?? '';
      const before = previous.get(a.address);
      const lastTransitionTime = before !== undefined && before.owner === owner && before.lastTransitionTime !== undefined ? before.lastTransitionTime : (leaseTime(a) ?? now);
      return { address: a.address, owner, vrid: a.vrid, lastTransitionTime, transitions: a.lease?.leaseTransitions ?? 0 };
    });
  const refused = [...noRouterId.entries()].sort((a, b) => byAddress(a[0], b[0]));
  const ready: ConditionDraft =
    refused.length === 0
      ? { type: 'Ready', status: 'True', reason: 'AddressesAvailable', message: `${addresses.length} address(es) in use` }
      : { type: 'Ready', status: 'False', reason: 'NoRouterIdLeft', message: refused.map(([addr, msg]) => `${addr}: ${msg}`).join('; ') };
  return { observedGeneration: pool.generation, addresses, conditions: [settleCondition(ready, pool.status.conditions, pool.generation, now)] };
}

export function poolStatusMatches(current: AddressPoolStatus, desired: AddressPoolStatus): boolean {
  const same = (a: AddressInUse, b: AddressInUse): boolean =>
    a.address === b.address && a.owner === b.owner && a.vrid === b.vrid && a.lastTransitionTime === b.lastTransitionTime && a.transitions === b.transitions;
  return (
    current.observedGeneration === desired.observedGeneration &&
    current.addresses.length === desired.addresses.length &&
    current.addresses.every((a, i) => same(a, desired.addresses[i]!)) &&
    sameConditions(current.conditions, desired.conditions)
  );
}

/** OwnerChanged events: an address whose holder differs from the owner the pool status last recorded. */
export function ownerEvents(pool: AddressPool, assignments: readonly AddressAssignment[], usersOf: (address: string) => readonly MappingMeta[]): LeaderEvent[] {
  const previous = new Map(pool.status.addresses.map((a) => [a.address, a.owner]));
  const events: LeaderEvent[] = [];
  for (const a of [...assignments].sort((x, y) => byAddress(x.address, y.address))) {
    const owner = a.lease?.holder ?? '';
    const before = previous.get(a.address) ?? '';
    if (owner === before) continue;
    const message = owner === '' ? `${a.address} has no owner (was ${before})` : before === '' ? `${a.address} is now owned by ${owner}` : `${a.address} moved from ${before} to ${owner}`;
    for (const m of usersOf(a.address)) events.push({ regarding: { namespace: m.namespace, name: m.name, uid: m.uid }, type: 'Normal', reason: 'OwnerChanged', message });
  }
  return events;
}
