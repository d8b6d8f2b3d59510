// Owns: recording the leader's Events (core/v1 Events in the Mapping's namespace, reporting
// component `smartnat-leader`) and the duplicate filter in front of them.
// Guarantees: an Event repeating the last message recorded for the same (object uid, reason) is
// dropped, so a retried pass never repeats an Event; MappingAccepted and MappingRefused reset each
// other, so refused -> accepted -> refused again is three Events. Memory is bounded (oldest
// objects forgotten first). Does not decide which Events happen (src/plan/leader-status.ts does).
import { CoreV1Api, type CoreV1Event, type KubeConfig } from './k8s.js';
import { API_VERSION } from '../api/types.js';
import type { LeaderEvent, LeaderEventReason } from '../plan/leader-input.js';
import type { Clock } from './clock.js';

export type EventOutcome = 'recorded' | 'duplicate';

export interface EventRecorder {
  record(event: LeaderEvent): Promise<EventOutcome>;
}

/** Where Events actually go; the real one creates core/v1 Events. */
export interface EventSink {
  create(event: LeaderEvent, at: Date): Promise<void>;
}

const OPPOSITE: Partial<Record<LeaderEventReason, LeaderEventReason>> = {
  MappingAccepted: 'MappingRefused',
  MappingRefused: 'MappingAccepted',
};

/** The (uid, reason) -> last message memory; pure bookkeeping, no I/O. */
export class EventDeduper {
  private readonly last = new Map<string, Map<LeaderEventReason, string>>();

  constructor(private readonly maxObjects = 10_000) {}

  /** True when the event is new (and remembers it); false for a repeat. */
  admit(event: LeaderEvent): boolean {
    const uid = event.regarding.uid;
    const seen = this.last.get(uid) ?? new Map<LeaderEventReason, string>();
    if (seen.get(event.reason) === event.message) return false;
    seen.set(event.reason, event.message);
    const opposite = OPPOSITE[event.reason];
    if (opposite !== undefined) seen.delete(opposite);
    this.last.delete(uid); // re-insert: Map order is recency
    this.last.set(uid, seen);
    while (this.last.size > this.maxObjects) {
      const oldest = this.last.keys().next().value;
      if (oldest === undefined) break;
      this.last.delete(oldest);
    }
    return true;
  }

  /** Forget an Event that could not be recorded, so the next pass may try it again. */
  forget(event: LeaderEvent): void {
    const seen = this.last.get(event.regarding.uid);
    if (seen?.get(event.reason) === event.message) seen.delete(event.reason);
  }
}

export class DedupingEventRecorder implements EventRecorder {
  private readonly deduper: EventDeduper;

  constructor(
    private readonly sink: EventSink,
    private readonly clock: Clock,
    maxObjects?: number,
  ) {
    this.deduper = new EventDeduper(maxObjects);
  }

  async record(event: LeaderEvent): Promise<EventOutcome> {
    if (!this.deduper.admit(event)) return 'duplicate';
    try {
      await this.sink.create(event, this.clock.wallTime());
      return 'recorded';
    } catch (err: unknown) {
      this.deduper.forget(event);
      throw err;
    }
  }
}

export function coreEvent(event: LeaderEvent, at: Date, instance: string): CoreV1Event {
  const { namespace, name, uid } = event.regarding;
  return {
    metadata: { generateName: `${name}.`, namespace },
    involvedObject: { apiVersion: API_VERSION, kind: 'Mapping', namespace, name, uid },
    type: event.type,
    reason: event.reason,
    message: event.message,
    source: { component: 'smartnat-leader' },
    reportingComponent: 'smartnat.aureacentral.com/leader',
    reportingInstance: instance,
    firstTimestamp: at,
    lastTimestamp: at,
    count: 1,
  };
}

export class KubeEventSink implements EventSink {
  private readonly api: CoreV1Api;

  constructor(
    kc: KubeConfig,
    private readonly instance: string,
  ) {
    this.api = kc.makeApiClient(CoreV1Api);
  }

  async create(event: LeaderEvent, at: Date): Promise<void> {
    try {
      await this.api.createNamespacedEvent({ namespace: event.regarding.namespace, body: coreEvent(event, at, this.instance) });
    } catch (err: unknown) {
      throw new Error(`recording Event ${event.reason} for Mapping ${event.regarding.namespace}/${event.regarding.name} failed`, { cause: err });
    }
  }
}

/** The real recorder: deduplicated core/v1 Events reported by `instance` (the agent's name). */
export function kubeEventRecorder(kc: KubeConfig, instance: string, clock: Clock): EventRecorder {
  return new DedupingEventRecorder(new KubeEventSink(kc, instance), clock);
}
