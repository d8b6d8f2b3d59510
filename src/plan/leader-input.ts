// Owns: what the leader's planner reads (Mappings parsed or refused with their metadata, pools,
// Services, address leases, agent liveness) and what it decides (ADR 0008), as plain types.
// Guarantees: an unparseable Mapping still carries uid, generation and status, so it can be
// refused in status; pure, never throws. Does not fetch anything (src/agent/leader-duties.ts does).

import { field, isRecord } from '../api/fields.js';
import { parseMapping } from '../api/parse.js';
import { parseMappingStatus } from '../api/status.js';
import type { AddressPool, AddressPoolStatus, Condition, EgressStatus, FieldError, Mapping, MappingStatus, ObjectRef } from '../api/types.js';
import type { ServiceInfo } from '../model/snapshot.js';
import type { LeaseRecord } from './lease-names.js';

/** Metadata of a Mapping, available even when its spec does not parse. */
export interface MappingMeta extends ObjectRef {
  readonly uid: string;
  readonly generation: number;
  readonly creationTimestamp: string;
  readonly deleting: boolean;
  readonly finalizers: readonly string[];
  readonly status: MappingStatus;
}

export type LeaderMappingEntry =
  | { readonly ok: true; readonly mapping: Mapping }
  | { readonly ok: false; readonly meta: MappingMeta; readonly errors: readonly FieldError[] };

/** What the leader knows of an agent from its agent lease (ADR 0005): live = fresh and not fenced. */
export interface AgentLiveness {
  readonly name: string;
  readonly live: boolean;
}

export interface LeaderInput {
  readonly mappings: readonly LeaderMappingEntry[];
  readonly pools: readonly AddressPool[];
  readonly services: readonly ServiceInfo[];
  /** Leases with role `address` (others are ignored). */
  readonly addressLeases: readonly LeaseRecord[];
  readonly agents: readonly AgentLiveness[];
  /** Wall time for new lastTransitionTimes, RFC 3339 in whole seconds. */
  readonly now: string;
}

function text(obj: unknown, key: string): string | undefined {
  const v = isRecord(obj) ? field(obj, key) : undefined;
  return typeof v === 'string' ? v : undefined;
}

/** A raw Mapping from the API server as the leader sees it: parsed, or refused with its metadata. */
export function readLeaderMapping(raw: unknown): LeaderMappingEntry {
  const parsed = parseMapping(raw);
  if (parsed.ok) return { ok: true, mapping: parsed.value };
  const meta = isRecord(raw) ? field(raw, 'metadata') : undefined;
  const generation = isRecord(meta) ? field(meta, 'generation') : undefined;
  const finalizers = isRecord(meta) ? field(meta, 'finalizers') : undefined;
  return {
    ok: false,
    meta: {
      namespace: text(meta, 'namespace') ?? '',
      name: text(meta, 'name') ?? '',
      uid: text(meta, 'uid') ?? '',
      generation: typeof generation === 'number' && Number.isInteger(generation) && generation >= 0 ? generation : 0,
      creationTimestamp: text(meta, 'creationTimestamp') ?? '',
      deleting: text(meta, 'deletionTimestamp') !== undefined,
      finalizers: Array.isArray(finalizers) ? finalizers.filter((f): f is string => typeof f === 'string') : [],
      status: parseMappingStatus(isRecord(raw) ? field(raw, 'status') : undefined),
    },
    errors: parsed.errors,
  };
}

export function metaOf(entry: LeaderMappingEntry): MappingMeta {
  if (!entry.ok) return entry.meta;
  const m = entry.mapping;
  return {
    namespace: m.namespace,
    name: m.name,
    uid: m.uid,
    generation: m.generation,
    creationTimestamp: m.creationTimestamp,
    deleting: m.deleting,
    finalizers: m.finalizers,
    status: m.status,
  };
}

/** Why a Mapping is refused (the Accepted=False reason). */
export type RefusalReason = 'InvalidSpec' | 'AddressNotInPool' | 'NamespaceNotAllowed' | 'PortConflict' | 'NoRouterIdLeft';

/** Why a Mapping is not Programmed / not Ready. */
export type NotReadyReason = 'Refused' | 'ServiceNotFound' | 'NoOwner' | 'NotProgrammed' | 'OwnerNotLive' | 'NoReadyEndpoints' | 'ServiceTypeUnsupported';

export type Verdict =
  | { readonly accepted: true }
  | { readonly accepted: false; readonly reason: RefusalReason; readonly message: string; readonly winners?: readonly string[] };

/** The status fields the leader owns on a Mapping (never configuredAddresses: owners write it). */
export interface LeaderMappingStatus {
  readonly invalid: string;
  readonly serviceVIP?: string;
  readonly observedGeneration: number;
  readonly conditions: readonly Condition[];
  readonly claims: readonly string[];
  /** Present when spec.egress is on and the Mapping is accepted (ADR 0009). */
  readonly egress?: EgressStatus;
  /** Holders of the Mapping's address leases, sorted and comma-separated; '' when none or refused. */
  readonly owners?: string;
}

export interface MappingWrite {
  readonly ref: ObjectRef;
  readonly uid: string;
  readonly status: LeaderMappingStatus;
}

export interface PoolWrite {
  readonly name: string;
  readonly status: AddressPoolStatus;
}

export type LeaderEventReason = 'MappingRefused' | 'MappingAccepted' | 'OwnerChanged';

export interface LeaderEvent {
  readonly regarding: ObjectRef & { readonly uid: string };
  readonly type: 'Normal' | 'Warning';
  readonly reason: LeaderEventReason;
  readonly message: string;
}

export interface LeaseCreate {
  readonly address: string;
  readonly pool: string;
  readonly vrid: number;
  readonly interface?: string;
}

/** An existing address lease whose pool, interface or router id no longer fit: patched in place. */
export interface LeaseReannotate extends LeaseCreate {
  readonly name: string;
}

export type LeaseDeleteReason = 'unused' | 'badName';

export interface LeaseDelete {
  readonly name: string;
  readonly resourceVersion: string;
  readonly reason: LeaseDeleteReason;
}

export interface FinalizerRemoval {
  readonly ref: ObjectRef;
  readonly uid: string;
  /** Index of the legacy finalizer in metadata.finalizers as read (the patch tests it). */
  readonly index: number;
}

export interface LeaderPlan {
  /** Every non-deleting Mapping's verdict, keyed "namespace/name". */
  readonly verdicts: ReadonlyMap<string, Verdict>;
  readonly mappingWrites: readonly MappingWrite[];
  readonly poolWrites: readonly PoolWrite[];
  readonly leaseCreates: readonly LeaseCreate[];
  readonly leaseReannotations: readonly LeaseReannotate[];
  readonly leaseDeletes: readonly LeaseDelete[];
  readonly events: readonly LeaderEvent[];
  readonly finalizerRemovals: readonly FinalizerRemoval[];
}

export function claimKey(address: string, port: number, protocol: string): string {
  return `${address}:${port}/${protocol}`;
}
