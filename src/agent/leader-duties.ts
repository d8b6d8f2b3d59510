// Owns: the leader's duties (DESIGN 3.2, ADR 0008) as one entry point the agent's reconcile loop
// calls while it holds `smartnat-leader`:
//
//   const duties = new LeaderDuties({ leases, status, events, namespace, log, clock });
//   const report = await duties.sync({ mappings, pools, services, addressLeases, agents });
//
//   mappings       readLeaderMapping(raw) of every Mapping in the cluster (src/plan/leader-input.ts)
//   pools          parsed AddressPools (unparseable ones left out)
//   services       ServiceInfo of every Service that Mappings may name
//   addressLeases  the leases with role `address` in `namespace` (lease informer's cache)
//   agents         every agent lease as { name, live } (live = fresh by local observation, not fenced)
//
// Call it only once every cache has synced: a pass over a partial view deletes the leases of
// addresses it does not see. It may be called often: it writes only what differs from what is
// stored, and every pass is computed whole from the input (nothing is remembered between passes
// except the Event de-duplication), so a new leader picks up exactly where the old one stopped.
// Guarantees: one failing write never stops the others (all are attempted, failures reported);
// a Mapping's Accepted/Refused Event is recorded only after its status write succeeded, so the
// stored status is the record of which transitions were announced. Does not elect (leader-elector).
//
// Bounded passes (ADR 0008 amendment 2): the pass runs inside the agent's one reconcile loop, so a
// burst of 1,000 new Mappings (1,000 status writes) must not hold the loop for tens of seconds.
// Mapping status writes go out `writeConcurrency` at a time, grants first (a Mapping whose claims
// or acceptance change: an owner is waiting for it), and no new one starts after `passBudgetMs`;
// the report then says `more` and the agent runs the next pass at once, planned afresh (so a
// Mapping created meanwhile is judged in the next pass, not after the whole burst). A write whose
// result has not come back through the watch yet is not sent again with the same content.
import type { Clock } from '../cluster/clock.js';
import type { EventRecorder } from '../cluster/events.js';
import { createAddressLease } from '../cluster/lease-protocol.js';
import type { LeaseStore } from '../cluster/lease-store.js';
import type { StatusWriter } from '../cluster/status-writer.js';
import type { Logger } from '../log/logger.js';
import type { LeaderEvent, LeaderInput, LeaderMappingEntry, LeaderPlan, MappingWrite } from '../plan/leader-input.js';
import { metaOf } from '../plan/leader-input.js';
import { mappingStatusPatch } from '../cluster/status-writer.js';
import { planLeaderDuties } from '../plan/leader-plan.js';
import { ANNOTATION_INTERFACE, ANNOTATION_POOL, ANNOTATION_VRID } from '../plan/lease-names.js';
import { DEFAULT_LEASE_SETTINGS, type LeaseSettings } from '../plan/lease-settings.js';

export interface LeaderDutiesOptions {
  readonly leases: LeaseStore;
  readonly status: StatusWriter;
  readonly events: EventRecorder;
  /** The agents' namespace, where the address leases live (must be the lease store's). */
  readonly namespace: string;
  readonly log: Logger;
  readonly clock: Clock;
  /** For the leaseDurationSeconds written on new address leases; default DEFAULT_LEASE_SETTINGS. */
  readonly settings?: LeaseSettings;
  /** Mapping status writes in flight at once (default 4). */
  readonly writeConcurrency?: number;
  /** No Mapping status write starts after this long into a pass (default 1000 ms); the rest waits for the next pass. */
  readonly passBudgetMs?: number;
}

/** The planner's input without `now`: the wall time is taken from the clock at each pass. */
export type LeaderDutiesInput = Omit<LeaderInput, 'now'>;

export type LeaderOperation = 'finalizer' | 'leaseDelete' | 'leaseCreate' | 'leaseAnnotate' | 'mappingStatus' | 'poolStatus' | 'event';

export interface LeaderSyncReport {
  readonly plan: LeaderPlan;
  /** How many writes of each kind went through (an Event counts when recorded, not when deduplicated). */
  readonly done: Readonly<Record<LeaderOperation, number>>;
  readonly failures: readonly { readonly operation: LeaderOperation; readonly target: string; readonly err: unknown }[];
  /** Mapping status writes left for the next pass (the pass budget ran out). */
  readonly more: boolean;
}

/** RFC 3339 in whole seconds, as metav1.Time serialises. */
export function wallSeconds(clock: Clock): string {
  return clock.wallTime().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** A write the leader made, and the stored object it was planned from (the informer's entry). */
interface SentWrite {
  readonly from: LeaderMappingEntry;
  readonly body: string;
}

export class LeaderDuties {
  private readonly settings: LeaseSettings;
  /** uid -> the last status write sent, until the watch brings the Mapping back changed. */
  private readonly sent = new Map<string, SentWrite>();

  constructor(private readonly o: LeaderDutiesOptions) {
    if (o.leases.namespace !== o.namespace) throw new Error(`LeaderDuties: lease store namespace ${o.leases.namespace} is not ${o.namespace}`);
    this.settings = o.settings ?? DEFAULT_LEASE_SETTINGS;
  }

  async sync(input: LeaderDutiesInput): Promise<LeaderSyncReport> {
    const plan = planLeaderDuties({ ...input, now: wallSeconds(this.o.clock) });
    const done: Record<LeaderOperation, number> = { finalizer: 0, leaseDelete: 0, leaseCreate: 0, leaseAnnotate: 0, mappingStatus: 0, poolStatus: 0, event: 0 };
    const failures: { operation: LeaderOperation; target: string; err: unknown }[] = [];
    const attempt = async (operation: LeaderOperation, target: string, run: () => Promise<boolean>): Promise<boolean> => {
      try {
        const ok = await run();
        if (ok) done[operation]++;
        return ok;
      } catch (err: unknown) {
        failures.push({ operation, target, err });
        this.o.log.warn({ component: 'leader', reason: operation, lease: target, err }, 'leader write failed');
        return false;
      }
    };

    for (const f of plan.finalizerRemovals) {
      await attempt('finalizer', `${f.ref.namespace}/${f.ref.name}`, async () => (await this.o.status.removeLegacyFinalizer(f)) === 'removed');
    }
    for (const d of plan.leaseDeletes) {
      await attempt('leaseDelete', d.name, async () => (await this.o.leases.delete(d.name, d.resourceVersion)).outcome === 'deleted');
    }
    for (const c of plan.leaseCreates) {
      await attempt('leaseCreate', c.address, async () => (await createAddressLease(this.o.leases, c, this.settings)).outcome === 'moved');
    }
    for (const r of plan.leaseReannotations) {
      await attempt('leaseAnnotate', r.name, async () => {
        const annotations = { [ANNOTATION_POOL]: r.pool, [ANNOTATION_VRID]: String(r.vrid), [ANNOTATION_INTERFACE]: r.interface ?? null };
        return (await this.o.leases.patchAnnotations(r.name, annotations)).outcome === 'written';
      });
    }
    const announced = new Set<string>();
    const more = await this.writeMappings(input.mappings, plan.mappingWrites, announced, attempt);
    let poolsWritten = true;
    for (const w of plan.poolWrites) {
      poolsWritten = (await attempt('poolStatus', w.name, async () => (await this.o.status.writePoolStatus(w)) === 'written')) && poolsWritten;
    }
    for (const e of plan.events) {
      if (!this.mayRecord(e, announced, poolsWritten)) continue;
      await attempt('event', `${e.regarding.namespace}/${e.regarding.name}`, async () => (await this.o.events.record(e)) === 'recorded');
    }
    const counts = Object.fromEntries(Object.entries(done).filter(([, n]) => n > 0));
    if (Object.keys(counts).length > 0 || failures.length > 0 || more) this.o.log.info({ component: 'leader', ...counts, failures: failures.length, more }, 'leader pass');
    return { plan, done, failures, more };
  }

  /**
   * The pass's Mapping status writes: grants first, `writeConcurrency` in flight, none started after
   * the pass budget. Returns whether some were left for the next pass.
   */
  private async writeMappings(
    mappings: readonly LeaderMappingEntry[],
    writes: readonly MappingWrite[],
    announced: Set<string>,
    attempt: (operation: LeaderOperation, target: string, run: () => Promise<boolean>) => Promise<boolean>,
  ): Promise<boolean> {
    const started = this.o.clock.now();
    const budget = this.o.passBudgetMs ?? 1000;
    const stored = new Map(mappings.map((m) => [metaOf(m).uid, m]));
    for (const uid of this.sent.keys()) if (!stored.has(uid)) this.sent.delete(uid);
    const queue = writes
      .map((w) => ({ w, body: writeKey(w), from: stored.get(w.uid), grant: isGrant(stored.get(w.uid), w) }))
      // Already sent with this content and the watch has not brought the Mapping back yet: in flight.
      .filter((q) => !(q.from !== undefined && this.sent.get(q.w.uid)?.from === q.from && this.sent.get(q.w.uid)?.body === q.body))
      .sort((a, b) => Number(b.grant) - Number(a.grant));
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < queue.length && this.o.clock.now() - started < budget) {
        const q = queue[next++];
        if (q === undefined) return;
        const ok = await attempt('mappingStatus', `${q.w.ref.namespace}/${q.w.ref.name}`, async () => (await this.o.status.writeMappingStatus(q.w)) === 'written');
        if (ok) {
          announced.add(q.w.uid);
          if (q.from !== undefined) this.sent.set(q.w.uid, { from: q.from, body: q.body });
        } else this.sent.delete(q.w.uid);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, this.o.writeConcurrency ?? 4) }, worker));
    return next < queue.length;
  }

  /** An Event is announced only once the status that records its transition is stored. */
  private mayRecord(e: LeaderEvent, announced: ReadonlySet<string>, poolsWritten: boolean): boolean {
    return e.reason === 'OwnerChanged' ? poolsWritten : announced.has(e.regarding.uid);
  }
}

/**
 * What a write says, without its conditions' lastTransitionTime: a pass planned while the previous
 * write is still on its way back stamps a new time on the same transition.
 */
function writeKey(w: MappingWrite): string {
  return JSON.stringify(mappingStatusPatch({ ...w, status: { ...w.status, conditions: w.status.conditions.map((c) => ({ ...c, lastTransitionTime: '' })) } }));
}

/** A write that changes what a Mapping holds or whether it is accepted: an owner waits for it. */
function isGrant(stored: LeaderMappingEntry | undefined, w: MappingWrite): boolean {
  if (stored === undefined) return true;
  const before = metaOf(stored).status;
  const accepted = (conditions: readonly { type: string; status: string }[]): string => conditions.find((c) => c.type === 'Accepted')?.status ?? '';
  return (before.claims ?? []).join() !== w.status.claims.join() || accepted(before.conditions) !== accepted(w.status.conditions);
}
