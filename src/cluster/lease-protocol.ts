// The lease protocol's I/O verbs over a LeaseStore (ADR 0005): join, renew, fence, acquire,
// take over, hand off, release; and the agent-lease renewer. Guarantees: every ownership change
// is one compare-and-swap; a takeover of an expired holder is only done after its agent lease was
// fenced; renewals keep annotations the agent does not own. Does not decide who should own what
// (src/plan/ownership.ts does) and does not touch the data plane.
import {
  ANNOTATION_FENCED_BY,
  ANNOTATION_INTERFACE,
  ANNOTATION_POOL,
  ANNOTATION_VRID,
  LABEL_ROLE,
  addressLeaseName,
  agentLeaseName,
  isFenced,
  parseAgentLeaseName,
  type LeaseRecord,
} from '../plan/lease-names.js';
import { leaseDurationSeconds, type LeaseSettings } from '../plan/lease-settings.js';
import type { Clock } from './clock.js';
import type { LeaseStore } from './lease-store.js';

/** What an agent publishes on its own lease. Annotations set to null are removed; others kept. */
export interface AgentIdentity {
  readonly agent: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string | null>>;
}

function mergeAnnotations(current: Readonly<Record<string, string>>, owned: Readonly<Record<string, string | null>>): Record<string, string> {
  const out: Record<string, string> = { ...current };
  for (const [k, v] of Object.entries(owned)) {
    if (v === null) delete out[k];
    else out[k] = v;
  }
  return out;
}

function agentLeaseBody(id: AgentIdentity, base: LeaseRecord | undefined, settings: LeaseSettings, clock: Clock): LeaseRecord {
  const now = clock.wallTime();
  const { [ANNOTATION_FENCED_BY]: _fence, ...kept } = base?.annotations ?? {};
  return {
    name: agentLeaseName(id.agent),
    resourceVersion: base?.resourceVersion ?? '',
    holder: id.agent,
    leaseDurationSeconds: leaseDurationSeconds(settings),
    leaseTransitions: base?.leaseTransitions ?? 0,
    acquireTime: now,
    renewTime: now,
    labels: { ...id.labels, [LABEL_ROLE]: 'agent' },
    annotations: mergeAnnotations(kept, id.annotations),
  };
}

export type JoinResult =
  | { readonly outcome: 'created' | 'readopted' | 'rejoined'; readonly lease: LeaseRecord }
  /** Fenced earlier and address leases still name it: hand them off first (ADR 0005). */
  | { readonly outcome: 'mustHandOff'; readonly addresses: readonly LeaseRecord[]; readonly lease: LeaseRecord };

/**
 * Start (or restart) as `id.agent`: create the agent lease, re-adopt it if it is still ours and
 * unfenced (a restart within the lease duration), or rejoin after a fence once no address lease
 * names us. Retries its own compare-and-swap races a few times.
 */
export async function joinAgent(store: LeaseStore, id: AgentIdentity, settings: LeaseSettings, clock: Clock): Promise<JoinResult> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const current = await store.get(agentLeaseName(id.agent));
    if (current === undefined) {
      const r = await store.create(agentLeaseBody(id, undefined, settings, clock));
      if (r.outcome === 'written') return { outcome: 'created', lease: r.lease };
      continue;
    }
    const fenced = isFenced(current, id.agent);
    if (fenced) {
      const named = (await store.list('address')).items.filter((l) => l.holder === id.agent);
      if (named.length > 0) return { outcome: 'mustHandOff', addresses: named, lease: current };
    }
    const body = agentLeaseBody(id, current, settings, clock);
    const r = await store.replace(fenced ? { ...body, leaseTransitions: current.leaseTransitions + 1 } : { ...body, acquireTime: current.acquireTime ?? body.renewTime! });
    if (r.outcome === 'written') return { outcome: fenced ? 'rejoined' : 'readopted', lease: r.lease };
  }
  throw new Error(`join of agent ${id.agent}: lost 5 compare-and-swap races in a row`);
}

export type RenewResult =
  | { readonly outcome: 'renewed'; readonly lease: LeaseRecord }
  /** Our lease was fenced (or deleted): demote at once (ADR 0005). */
  | { readonly outcome: 'fenced'; readonly lease: LeaseRecord | undefined; readonly by: string }
  /** Raced twice with other writers (not a fence): try again next period. */
  | { readonly outcome: 'conflict' };

/**
 * One renewal: compare-and-swap of our agent lease. A 409 is re-read: a fence demotes; anything
 * else (a drain annotation, say) is kept and the renewal retried once on the fresh version.
 */
export async function renewAgent(store: LeaseStore, current: LeaseRecord, id: AgentIdentity, settings: LeaseSettings, clock: Clock): Promise<RenewResult> {
  let base = current;
  for (let attempt = 0; attempt < 2; attempt++) {
    const body = { ...agentLeaseBody(id, base, settings, clock), acquireTime: base.acquireTime ?? clock.wallTime() };
    const r = await store.replace(body);
    if (r.outcome === 'written') return { outcome: 'renewed', lease: r.lease };
    const fresh = await store.get(current.name);
    if (fresh === undefined) return { outcome: 'fenced', lease: undefined, by: '(deleted)' };
    if (isFenced(fresh, id.agent)) return { outcome: 'fenced', lease: fresh, by: fresh.annotations[ANNOTATION_FENCED_BY] ?? fresh.holder };
    base = fresh;
  }
  return { outcome: 'conflict' };
}

export type FenceResult =
  | { readonly outcome: 'fenced' | 'alreadyFenced'; readonly lease: LeaseRecord }
  /** The holder wrote after our observation: it is alive, nothing may move. */
  | { readonly outcome: 'holderAlive'; readonly lease: LeaseRecord }
  | { readonly outcome: 'gone' };

/**
 * Fence a holder judged dead: compare-and-swap its agent lease *at the version we judged it by*,
 * clearing holderIdentity and recording the fencer (ADR 0005).
 */
export async function fenceAgent(store: LeaseStore, observed: LeaseRecord, fencer: string, clock: Clock): Promise<FenceResult> {
  const agent = parseAgentLeaseName(observed.name);
  if (agent === undefined) throw new Error(`fence: ${observed.name} is not an agent lease`);
  const r = await store.replace({
    ...observed,
    holder: '',
    leaseTransitions: observed.leaseTransitions + 1,
    renewTime: clock.wallTime(),
    annotations: { ...observed.annotations, [ANNOTATION_FENCED_BY]: fencer },
  });
  if (r.outcome === 'written') return { outcome: 'fenced', lease: r.lease };
  const fresh = await store.get(observed.name);
  if (fresh === undefined) return { outcome: 'gone' };
  return isFenced(fresh, agent) ? { outcome: 'alreadyFenced', lease: fresh } : { outcome: 'holderAlive', lease: fresh };
}

export type MoveResult = { readonly outcome: 'moved'; readonly lease: LeaseRecord } | { readonly outcome: 'lost'; readonly reason: 'conflict' | 'notFound' | 'holderChanged' };

async function moveAddress(store: LeaseStore, current: LeaseRecord, expectedHolder: string, to: string, clock: Clock): Promise<MoveResult> {
  if (current.holder !== expectedHolder) return { outcome: 'lost', reason: 'holderChanged' };
  const now = clock.wallTime();
  const r = await store.replace({
    ...current,
    holder: to,
    leaseTransitions: current.leaseTransitions + (to === '' ? 0 : 1),
    ...(to === '' ? {} : { acquireTime: now }),
    renewTime: now,
  });
  if (r.outcome === 'written') return { outcome: 'moved', lease: r.lease };
  return { outcome: 'lost', reason: r.outcome === 'notFound' ? 'notFound' : 'conflict' };
}

/** Take a free address lease (holder ''), by compare-and-swap. */
export async function acquireAddress(store: LeaseStore, current: LeaseRecord, me: string, clock: Clock): Promise<MoveResult> {
  return moveAddress(store, current, '', me, clock);
}

/** Take an address lease from `from`, whose agent lease must already be fenced (ADR 0005). */
export async function takeOverAddress(store: LeaseStore, current: LeaseRecord, from: string, me: string, clock: Clock): Promise<MoveResult> {
  return moveAddress(store, current, from, me, clock);
}

/** Planned handoff: holderIdentity swapped from us to `to` in one compare-and-swap. */
export async function handOffAddress(store: LeaseStore, current: LeaseRecord, me: string, to: string, clock: Clock): Promise<MoveResult> {
  return moveAddress(store, current, me, to, clock);
}

/** Give an address lease up with no successor (nobody else eligible); rare by design. */
export async function releaseAddress(store: LeaseStore, current: LeaseRecord, me: string, clock: Clock): Promise<MoveResult> {
  return moveAddress(store, current, me, '', clock);
}

export interface AddressLeaseSpec {
  readonly address: string;
  readonly pool: string;
  readonly vrid: number;
  readonly interface?: string;
}

/** The leader creates a free address lease with its pool and VRRP router id. */
export async function createAddressLease(store: LeaseStore, spec: AddressLeaseSpec, settings: LeaseSettings): Promise<MoveResult | { outcome: 'exists' }> {
  const r = await store.create({
    name: addressLeaseName(spec.address),
    resourceVersion: '',
    holder: '',
    leaseDurationSeconds: leaseDurationSeconds(settings),
    leaseTransitions: 0,
    labels: { [LABEL_ROLE]: 'address' },
    annotations: {
      [ANNOTATION_POOL]: spec.pool,
      [ANNOTATION_VRID]: String(spec.vrid),
      ...(spec.interface !== undefined ? { [ANNOTATION_INTERFACE]: spec.interface } : {}),
    },
  });
  if (r.outcome === 'written') return { outcome: 'moved', lease: r.lease };
  return { outcome: 'exists' };
}

/** Events from the renewer, for the agent (demote, degrade VRRP priority, recover). */
export interface RenewerEvents {
  renewed?(lease: LeaseRecord): void;
  fenced(by: string, lease: LeaseRecord | undefined): void;
  degraded(): void;
  recovered(): void;
  error?(err: unknown): void;
}

/**
 * Renews the agent lease every retryPeriod, one request in flight. Degraded when no renewal
 * *sent* within renewDeadline has succeeded (ADR 0006); stops for good when fenced.
 */
/** A renewal attempt that got no answer in time (the request may still land; the next one CASes). */
export class RenewTimeoutError extends Error {
  override readonly name = 'RenewTimeoutError';
}

/**
 * How long one renewal attempt may take before the renewer gives up on it and tries again: half
 * the renew deadline (at least one retry period), so a hung connection costs at most one of the
 * two attempts the deadline leaves room for.
 */
export function renewRequestTimeoutMs(settings: LeaseSettings): number {
  return Math.max(settings.retryPeriodMs, Math.floor(settings.renewDeadlineMs / 2));
}

export class AgentLeaseRenewer {
  private lease: LeaseRecord;
  private lastSuccessSentAt: number;
  private isDegraded = false;
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private deadlineTimer: ReturnType<typeof setTimeout> | undefined;
  private sleepTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly store: LeaseStore,
    private identity: AgentIdentity,
    private readonly settings: LeaseSettings,
    private readonly clock: Clock,
    private readonly events: RenewerEvents,
    initial: LeaseRecord,
    private readonly requestTimeoutMs: number = renewRequestTimeoutMs(settings),
  ) {
    this.lease = initial;
    this.lastSuccessSentAt = clock.now();
  }

  get current(): LeaseRecord {
    return this.lease;
  }

  get degraded(): boolean {
    return this.isDegraded;
  }

  /** New labels/annotations to publish from the next renewal on. */
  setIdentity(id: AgentIdentity): void {
    this.identity = id;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.armDeadline();
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.deadlineTimer);
    clearTimeout(this.sleepTimer);
    this.wake?.();
    await this.loop;
  }

  /** One renewal attempt; exposed so tests can drive the renewer without timers. */
  async renewOnce(): Promise<RenewResult | { outcome: 'error'; err: unknown }> {
    const sentAt = this.clock.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new RenewTimeoutError(`lease renewal: no answer within ${this.requestTimeoutMs} ms`)), this.requestTimeoutMs);
      });
      const r = await Promise.race([renewAgent(this.store, this.lease, this.identity, this.settings, this.clock), timeout]);
      if (r.outcome === 'renewed') {
        this.lease = r.lease;
        this.lastSuccessSentAt = Math.max(this.lastSuccessSentAt, sentAt);
        if (this.isDegraded) {
          this.isDegraded = false;
          this.events.recovered();
        }
        this.armDeadline();
        this.events.renewed?.(r.lease);
      } else if (r.outcome === 'fenced') {
        this.running = false;
        clearTimeout(this.deadlineTimer);
        this.events.fenced(r.by, r.lease);
      }
      return r;
    } catch (err: unknown) {
      this.events.error?.(err);
      this.checkDeadline();
      return { outcome: 'error', err };
    } finally {
      clearTimeout(timer);
    }
  }

  private async run(): Promise<void> {
    while (this.running) {
      const started = this.clock.now();
      await this.renewOnce();
      if (!this.running) break;
      const wait = Math.max(0, this.settings.retryPeriodMs - (this.clock.now() - started));
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        this.sleepTimer = setTimeout(resolve, wait);
      });
    }
  }

  private checkDeadline(): void {
    if (!this.isDegraded && this.clock.now() - this.lastSuccessSentAt >= this.settings.renewDeadlineMs) {
      this.isDegraded = true;
      this.events.degraded();
    }
  }

  private armDeadline(): void {
    clearTimeout(this.deadlineTimer);
    if (!this.running) return;
    const due = Math.max(0, this.lastSuccessSentAt + this.settings.renewDeadlineMs - this.clock.now());
    this.deadlineTimer = setTimeout(() => {
      this.checkDeadline();
      if (!this.isDegraded) this.armDeadline();
    }, due);
  }
}
