// The agent: composition root of one SmartNat instance, and its reconciler. Every trigger lands in
// one coalescing sync (SyncRunner) whose phases run in order: (a) ownership: plan over the lease
// view and perform the verbs (fence first, then compare-and-swap); (b) data plane: plan and apply,
// an ownership-only change is a setOwned (no re-render on the failover path); (c) keepalived:
// instances for every eligible address, track files only after NAT is programmed; (d) report what
// was programmed on each Mapping served; then the leader's duties when this agent leads.
// Guarantees: nothing touches the kernel before the leases and the cluster objects have been
// listed once; an API outage never removes rules (holders only degrade their VRRP priority).
// Does not own the ports' implementations (cli/agent.ts builds the real ones).
import type { Logger } from 'pino';
import type { Mapping } from '../api/types.js';
import type { Clock } from '../cluster/clock.js';
import type { ConfiguredAddressWriter } from '../cluster/configured-addresses.js';
import {
  AgentLeaseRenewer,
  acquireAddress,
  fenceAgent,
  handOffAddress,
  joinAgent,
  releaseAddress,
  takeOverAddress,
  type AgentIdentity,
  type MoveResult,
} from '../cluster/lease-protocol.js';
import type { LeaseStore } from '../cluster/lease-store.js';
import { DataPlaneSyncError } from '../dataplane/apply.js';
import type { KeepalivedInstanceInput } from '../keepalived/render.js';
import type { DataPlaneSettings } from '../model/settings.js';
import { refKey } from '../model/snapshot.js';
import type { DesiredDataPlane } from '../plan/desired.js';
import { ANNOTATION_HEALTH, ANNOTATION_POOL, agentLeaseName, parseAddressLeaseName, type LeaseRecord } from '../plan/lease-names.js';
import type { LeaseSettings } from '../plan/lease-settings.js';
import { LeaseView } from '../plan/lease-view.js';
import { initialBudgets, isAgentAlive, planOwnership, rankCandidates, type OwnershipBudgets, type OwnershipDecision, type OwnershipInput } from '../plan/ownership.js';
import { planDataPlane } from '../plan/plan-dataplane.js';
import { DEFAULT_HEALTH_SETTINGS, decideHealth, initialHealth, nextHealthChangeAt, type HealthSettings, type HealthState, type LinkSample } from '../plan/agent-health.js';
import { ANNOTATION_INTERFACES, encodeInterfaces, type LocalFacts } from './facts.js';
import { decideTrack, planKeepalivedInstances } from './keepalived-plan.js';
import type { AgentMetrics } from './metrics.js';
import type { ClusterSource, DataPlanePort, KeepalivedWiring, LeaderDutiesHook, LeaderElectorPort, LeaseFeed } from './ports.js';
import { computeReports } from './report.js';
import { dataPlaneKey, parseCluster, sameKey, snapshotOf, type ParsedCluster } from './snapshot.js';
import { readAgentState, writeAgentState, type AgentState } from './state-file.js';
import { SyncRunner, type SyncOutcome, type SyncRequest } from './sync-runner.js';

export interface AgentOptions {
  readonly name: string;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: AgentMetrics;
  readonly settings: LeaseSettings;
  readonly dataPlaneSettings: DataPlaneSettings;
  readonly store: LeaseStore;
  readonly cluster: ClusterSource;
  readonly makeLeaseFeed: (view: LeaseView, changed: (what: 'renewal' | 'change') => void) => LeaseFeed;
  readonly applier: DataPlanePort;
  readonly keepalived?: KeepalivedWiring;
  readonly statusWriter?: ConfiguredAddressWriter;
  readonly local: LocalFacts;
  /** Where the last known ownership is kept across restarts; undefined = nowhere. */
  readonly stateFile?: string;
  /** How long an old owner keeps DNAT and a releasing priority after a planned handoff. */
  readonly handoffGraceMs?: number;
  /** A sync runs at least this often (liveness heartbeat). Default 1000 ms. */
  readonly heartbeatMs?: number;
  /** Full data-plane resync (read back, repair drift). Default 60 s. */
  readonly fullResyncMs?: number;
  /** The leader's pass runs on every input change and at least this often. Default 30 s. */
  readonly leaderResyncMs?: number;
  /** /healthz fails when no sync finished for this long. Default 10 x heartbeat. */
  readonly livenessWindowMs?: number;
  /** Leader election and duties; the agent starts and stops the elector with itself. */
  readonly leader?: { readonly elector: LeaderElectorPort; readonly duties: LeaderDutiesHook };
  /** ARP duplicate-address probe run about 1 s after this agent starts announcing an address. */
  readonly arpProbe?: (iface: string, address: string) => Promise<'free' | 'duplicate'>;
  /** Reads the agent's links for its health (published on its lease); absent = always healthy. */
  readonly links?: () => Promise<readonly LinkSample[]>;
  readonly health?: HealthSettings;
  /** Told when an address this agent received is in service here (NAT programmed, announced as holder). */
  readonly onTakenOver?: (e: TakenOver) => void;
}

/** An address that came to this agent, now in service: by takeover (failover) or by a planned handoff. */
export interface TakenOver {
  readonly address: string;
  readonly kind: 'failover' | 'handoff';
  /** The previous holder, when known. */
  readonly from: string;
  /** Failover: from the last renewal of the old holder this agent observed; handoff: from the lease naming this agent observed. */
  readonly seconds: number;
}

export interface AgentHealth {
  readonly ok: boolean;
  readonly detail: string;
}

export class ApiTimeoutError extends Error {
  override readonly name = 'ApiTimeoutError';
}

/**
 * API calls inside a sync are bounded: a hung connection must not stall the loop, because the
 * loop's progress is what /healthz reports (liveness never depends on the API server). The
 * request itself may still land later; the watch then tells us.
 */
async function bounded<T>(what: string, ms: number, call: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ApiTimeoutError(`${what}: no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([call, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** One turn of the event loop for timers and I/O (the renewer) between long synchronous phases. */
async function yieldToTimers(): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve));
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  return a.size === b.size && [...a].every((x) => b.has(x));
}

export class Agent {
  readonly view: LeaseView;
  private readonly runner: SyncRunner;
  private readonly feed: LeaseFeed;
  private renewer: AgentLeaseRenewer | undefined;
  private budgets: OwnershipBudgets;
  private viewSettled = false;
  private clusterSettled = false;
  private resourcesVersion = 0;
  private parsedVersion = -1;
  /** Lease changes other than renewals (LeaseView.observe). */
  private leaseVersion = 0;
  private parsed: ParsedCluster | undefined;
  /** What the data plane was last planned from (dataPlaneKey), so a status-only change plans nothing. */
  private plannedKey: readonly string[] | undefined;
  private leaderInputKey: string | undefined;
  private leaderRanAt: number | undefined;
  private leaderRetry = false;
  private leaderMore = false;
  private reportedFrom: { applied: DesiredDataPlane | undefined; mappings: ReadonlyMap<string, Mapping> } | undefined;
  private reportRetry = false;
  private mappings = new Map<string, Mapping>();
  private appliedOwned = new Set<string>();
  private releasing = new Map<string, number>();
  private reported = new Map<string, string>();
  private keepalivedKey: string | undefined;
  private stateKey: string | undefined;
  private adoptedFromState = false;
  private stopping = false;
  private stopped = false;
  private lastJoinError: string | undefined;
  private lastInstances: readonly KeepalivedInstanceInput[] = [];
  /** Our own lease API calls are failing or not completing: judge nobody (ADR 0005). */
  private apiImpaired = false;
  private healthState: HealthState;
  /** Addresses this agent announces as holder (for the one-off duplicate-address probe). */
  private readonly announced = new Set<string>();
  /** Addresses received but not yet in service here, with what their duration is measured from. */
  private readonly arriving = new Map<string, { kind: 'failover' | 'handoff'; from: string; since: number }>();
  /** Addresses held at the end of the previous sync (undefined before the first one that was joined). */
  private heldBefore: ReadonlySet<string> | undefined;
  /** Free leases this agent acquired since the last sync (not arrivals to measure). */
  private readonly acquiredFree = new Set<string>();

  constructor(private readonly o: AgentOptions) {
    this.healthState = initialHealth(o.clock.now());
    this.view = new LeaseView(o.settings.leaseDurationMs);
    this.budgets = initialBudgets(o.settings, o.clock.now());
    this.runner = new SyncRunner({
      clock: o.clock,
      sync: async (req) => this.sync(req),
      heartbeatMs: o.heartbeatMs ?? 1000,
      fullResyncMs: o.fullResyncMs ?? 60_000,
      onError: (err: unknown) => o.log.error({ err }, 'sync failed'),
    });
    this.feed = o.makeLeaseFeed(this.view, (what) => {
      if (!this.view.blind) this.viewSettled = true;
      // A live peer renewing needs no sync (ADR 0006): its expiry is judged at the wake-up the
      // ownership plan asks for. Syncing on every renewal cost a sync per 250 ms per agent.
      if (what === 'renewal') return;
      this.leaseVersion++;
      this.trigger('leases');
    });
  }

  get name(): string {
    return this.o.name;
  }

  /** Bound of one API call inside a sync: a lease duration (at least 1 s). */
  private get apiTimeoutMs(): number {
    return Math.max(1000, this.o.settings.leaseDurationMs);
  }

  /** Every trigger (watch event, timer, keepalived notification) comes through here. */
  trigger(reason: string): void {
    this.runner.trigger(reason);
  }

  /** Called by the cluster informers' change callback. */
  resourcesChanged(): void {
    this.resourcesVersion++;
    if (this.o.cluster.synced) this.clusterSettled = true;
    this.trigger('resources');
  }

  async start(): Promise<void> {
    await this.o.cluster.start();
    await this.feed.start();
    this.runner.start();
    this.o.leader?.elector.start();
  }

  /** Waits for a sync that starts now to finish (tests). */
  async settle(): Promise<void> {
    await this.runner.settle();
  }

  /** Addresses whose lease this agent holds in its view (empty while it is not joined). */
  held(): Set<string> {
    if (this.renewer === undefined) return new Set();
    return new Set(this.view.addressViews().filter((a) => a.holder === this.o.name).map((a) => a.address));
  }

  /** The owned set the data plane was last given. */
  ownedInKernel(): ReadonlySet<string> {
    return this.appliedOwned;
  }

  /** Addresses in their planned-handoff grace on this agent. */
  releasingNow(): Set<string> {
    const now = this.o.clock.now();
    return new Set([...this.releasing].filter(([, until]) => until > now).map(([a]) => a));
  }

  live(): AgentHealth {
    const last = this.runner.lastFinishedAt;
    const window = this.o.livenessWindowMs ?? 10 * (this.o.heartbeatMs ?? 1000);
    if (this.stopped) return { ok: false, detail: 'stopped' };
    if (last === undefined) return { ok: true, detail: 'starting' };
    const age = this.o.clock.now() - last;
    return age <= window ? { ok: true, detail: `last sync ${Math.round(age)} ms ago` } : { ok: false, detail: `no sync finished for ${Math.round(age)} ms` };
  }

  ready(): AgentHealth {
    const missing: string[] = [];
    if (this.renewer === undefined) missing.push(`agent lease not joined${this.lastJoinError ? ` (${this.lastJoinError})` : ''}`);
    if (!this.viewSettled) missing.push('leases not listed');
    missing.push(...this.o.cluster.unsynced().map((u) => `${u} not synced`));
    return missing.length === 0 ? { ok: true, detail: 'synced' } : { ok: false, detail: missing.join('; ') };
  }

  private identity(): AgentIdentity {
    return {
      agent: this.o.name,
      labels: this.o.local.facts.labels,
      annotations: { [ANNOTATION_INTERFACES]: encodeInterfaces(this.o.local), [ANNOTATION_HEALTH]: this.healthState.published },
    };
  }

  // ---- the sync --------------------------------------------------------------------------

  private async timed<T>(phase: string, f: () => Promise<T>): Promise<T> {
    const end = this.o.metrics.syncDuration.startTimer({ phase });
    try {
      return await f();
    } finally {
      end();
    }
  }

  /** Samples the links and publishes a changed health on the agent lease (DESIGN.md 3.1). */
  private async healthPhase(): Promise<number | undefined> {
    if (this.o.links === undefined) return undefined;
    const settings = this.o.health ?? DEFAULT_HEALTH_SETTINGS;
    let links: readonly LinkSample[];
    try {
      links = await this.o.links();
    } catch (err: unknown) {
      this.o.log.warn({ component: 'health', err }, 'cannot read link state; health unchanged');
      return undefined;
    }
    const before = this.healthState.published;
    this.healthState = decideHealth(this.healthState, links, this.o.clock.now(), settings);
    if (this.healthState.published !== before) {
      this.o.log.warn({ component: 'health', reason: this.healthState.published, previous: before }, this.healthState.published === 'ok' ? 'healthy again: peers may rank this agent' : 'unhealthy: handing addresses off');
      this.renewer?.setIdentity(this.identity());
    }
    return nextHealthChangeAt(this.healthState, settings);
  }

  private async sync(req: SyncRequest): Promise<SyncOutcome> {
    if (this.stopping) return {};
    const wake: number[] = [];
    const healthWake = await this.timed('health', async () => this.healthPhase());
    if (healthWake !== undefined) wake.push(healthWake);
    if (this.renewer === undefined) {
      const next = await this.timed('join', async () => this.join());
      if (next !== undefined) wake.push(next);
    } else if (this.viewSettled) {
      const next = await this.timed('ownership', async () => this.ownershipPhase());
      if (next !== undefined) wake.push(next);
    }
    const held = this.held();
    this.o.metrics.ownedAddresses.set(held.size);
    this.noteArrivals(held);
    await yieldToTimers();
    const dp = await this.timed('dataplane', async () => this.dataPlanePhase(held, req.full));
    if (dp.retryAt !== undefined) wake.push(dp.retryAt);
    await this.timed('keepalived', async () => this.keepalivedPhase(held));
    if (this.o.keepalived === undefined) this.completeArrivals(this.announceable(held));
    this.kickReport();
    await yieldToTimers(); // lets the lease renewer's timers run between phases
    const leaderWake = await this.timed('leader', async () => this.leaderPhase());
    if (leaderWake !== undefined) wake.push(leaderWake);
    await this.saveState(held);
    const now = this.o.clock.now();
    for (const [address, until] of this.releasing) {
      if (until <= now) this.releasing.delete(address);
      else wake.push(until);
    }
    return { ...(wake.length > 0 ? { nextWakeAt: Math.min(...wake) } : {}), fullDone: dp.fullDone };
  }

  // (a) ownership -----------------------------------------------------------------------

  private ownershipInput(now: number, draining = false): OwnershipInput {
    const poolSelectors = new Map((this.parsed?.pools ?? []).map((p) => [p.name, p.spec.agentSelector] as const));
    const agents = this.view.agentViews(now).map((a) => (draining && a.name === this.o.name ? { ...a, draining: true } : a));
    return { me: this.o.name, now, settings: this.o.settings, blind: this.view.blind || this.apiImpaired, agents, poolSelectors };
  }

  private ensureParsed(): ParsedCluster {
    if (this.parsed === undefined || this.parsedVersion !== this.resourcesVersion) {
      this.parsedVersion = this.resourcesVersion;
      this.parsed = parseCluster(this.o.cluster.objects());
      this.mappings = new Map(this.parsed.mappings.flatMap((m) => (m.ok ? [[refKey(m.mapping), m.mapping] as const] : [])));
    }
    return this.parsed;
  }

  private async ownershipPhase(): Promise<number | undefined> {
    if (!this.clusterSettled) return undefined; // pools (selectors) unknown yet
    this.ensureParsed();
    const now = this.o.clock.now();
    const plan = planOwnership(this.ownershipInput(now), this.view.addressViews(), this.budgets);
    this.budgets = plan.budgets;
    // The last renewal observed from each holder, before fencing rewrites its lease: where a
    // failover's duration starts (the holder may have died just after it).
    const lastSeen = new Map(this.view.agentViews(now).map((a) => [a.name, a.observedAt] as const));
    const fenced = new Set<string>();
    await Promise.all(plan.fence.map(async (holder) => {
      const observed = this.view.agentLease(holder);
      if (observed === undefined) return;
      try {
        const r = await bounded('fence', this.apiTimeoutMs, fenceAgent(this.o.store, observed, this.o.name, this.o.clock));
        const at = this.o.clock.now();
        if (r.outcome === 'gone') this.view.forget(agentLeaseName(holder));
        else this.view.observe(r.lease, at);
        this.o.metrics.fences.inc({ outcome: r.outcome });
        if (r.outcome === 'fenced' || r.outcome === 'alreadyFenced') fenced.add(holder);
        this.o.log.info({ component: 'ownership', lease: observed.name, reason: r.outcome }, 'fence');
      } catch (err: unknown) {
        this.apiWorks(false);
        this.o.log.warn({ component: 'ownership', lease: observed.name, err }, 'fence failed');
      }
    }));
    await Promise.all(plan.decisions.map(async (d) => this.perform(d, fenced, lastSeen)));
    return plan.nextWakeAt;
  }

  private async perform(d: OwnershipDecision, fenced: ReadonlySet<string>, lastSeen: ReadonlyMap<string, number>): Promise<void> {
    if (d.action === 'keep' || d.action === 'wait') return;
    const lease = this.view.addressLease(d.address);
    if (lease === undefined) return;
    let r: MoveResult;
    try {
      if (d.action === 'acquireFree') {
        r = await bounded('acquire', this.apiTimeoutMs, acquireAddress(this.o.store, lease, this.o.name, this.o.clock));
        if (r.outcome === 'moved') this.acquiredFree.add(d.address);
      }
      else if (d.action === 'takeOver') {
        if (d.fenceFirst && !fenced.has(d.from)) return;
        r = await bounded('takeOver', this.apiTimeoutMs, takeOverAddress(this.o.store, lease, d.from, this.o.name, this.o.clock));
        if (r.outcome === 'moved') this.arriving.set(d.address, { kind: 'failover', from: d.from, since: lastSeen.get(d.from) ?? this.o.clock.now() });
      } else {
        await this.beginRelease(d.address);
        r = await bounded('handOff', this.apiTimeoutMs, handOffAddress(this.o.store, lease, this.o.name, d.to, this.o.clock));
      }
    } catch (err: unknown) {
      this.o.log.warn({ component: 'ownership', address: d.address, reason: d.reason, err }, `${d.action} failed`);
      return;
    }
    await this.afterMove(d.address, lease.name, r, d.reason, d.action === 'handOff');
  }

  private async afterMove(address: string, leaseName: string, r: MoveResult, reason: string, handOff: boolean): Promise<void> {
    const now = this.o.clock.now();
    if (r.outcome === 'moved') {
      this.view.observe(r.lease, now);
      this.o.metrics.leaseTransitions.inc({ reason });
      if (handOff) this.releasing.set(address, now + (this.o.handoffGraceMs ?? 2000));
      this.o.log.info({ component: 'ownership', address, lease: leaseName, reason, holder: r.lease.holder }, 'address lease moved');
      return;
    }
    this.o.log.debug({ component: 'ownership', address, reason: r.reason }, 'lost a compare-and-swap; re-reading');
    try {
      const fresh = await bounded('get', this.apiTimeoutMs, this.o.store.get(leaseName));
      if (fresh === undefined) this.view.forget(leaseName);
      else this.view.observe(fresh, this.o.clock.now());
    } catch {
      // The watch will bring it.
    }
  }

  /**
   * A planned handoff lowers our priority to 'releasing' BEFORE the compare-and-swap: the
   * successor raises its own only after its NAT is programmed, so at no moment do two holders
   * claim the address on the wire (ADR 0007). A lost CAS restores 'holder' on the next sync.
   */
  private async beginRelease(address: string): Promise<void> {
    this.releasing.set(address, this.o.clock.now() + (this.o.handoffGraceMs ?? 2000));
    await this.o.keepalived?.port.writeTrack(address, { eligible: true, role: 'releasing' });
  }

  /** Not joined (start, or demoted after a fence): join, handing off what still names us first. */
  private async join(): Promise<number | undefined> {
    const retryAt = this.o.clock.now() + this.o.settings.retryPeriodMs;
    try {
      const r = await bounded('join', this.apiTimeoutMs, joinAgent(this.o.store, this.identity(), this.o.settings, this.o.clock));
      if (r.outcome === 'mustHandOff') {
        await this.handOffAfterFence(r.addresses);
        return retryAt;
      }
      this.lastJoinError = undefined;
      this.view.observe(r.lease, this.o.clock.now());
      this.startRenewer(r.lease);
      this.o.log.info({ component: 'agent', lease: r.lease.name, reason: r.outcome }, 'agent lease joined');
      return undefined;
    } catch (err: unknown) {
      this.lastJoinError = err instanceof Error ? err.message : String(err);
      this.o.log.warn({ component: 'agent', err }, 'cannot join the agent lease yet');
      await this.adoptFromState();
      return retryAt;
    }
  }

  private async handOffAfterFence(leases: readonly LeaseRecord[]): Promise<void> {
    this.ensureParsed();
    const input = this.ownershipInput(this.o.clock.now(), true);
    for (const lease of leases) {
      const address = parseAddressLeaseName(lease.name);
      if (address === undefined) continue;
      const to = rankCandidates(input, lease.annotations[ANNOTATION_POOL] ?? '', address).find((a) => a !== this.o.name);
      const r = await bounded('handOff', this.apiTimeoutMs, to === undefined ? releaseAddress(this.o.store, lease, this.o.name, this.o.clock) : handOffAddress(this.o.store, lease, this.o.name, to, this.o.clock));
      await this.afterMove(address, lease.name, r, 'fenced', false);
    }
  }

  /**
   * Observation clocks are only trustworthy while our own API access works: a failing (or hung,
   * hence degraded) renewal makes this agent judge nobody, and the first renewal that succeeds
   * afterwards restarts every observation, so a full lease duration of working access is needed
   * before anyone can be judged dead (ADR 0005). Without this an API restart that delays every
   * agent's renewals lets the agents fence each other.
   */
  private apiWorks(ok: boolean): void {
    if (!ok) {
      if (!this.apiImpaired) this.o.log.info({ component: 'agent' }, 'lease API failing: judging nobody');
      this.apiImpaired = true;
      return;
    }
    if (!this.apiImpaired) return;
    this.apiImpaired = false;
    // A view that is blind (watch down) is reset by the watch's reconnect instead.
    if (!this.view.blind) this.view.reset(this.o.clock.now());
    this.o.log.info({ component: 'agent' }, 'lease API works again: observation clocks restarted');
    this.trigger('apiRecovered');
  }

  private startRenewer(lease: LeaseRecord): void {
    const renewer = new AgentLeaseRenewer(this.o.store, this.identity(), this.o.settings, this.o.clock, {
      fenced: (by) => {
        this.o.log.warn({ component: 'agent', reason: 'fenced', by }, 'agent lease fenced: demoting');
        if (this.renewer === renewer) this.renewer = undefined;
        this.trigger('fenced');
      },
      degraded: () => {
        this.o.log.warn({ component: 'agent' }, 'cannot renew within the renew deadline: degraded VRRP priority');
        this.apiWorks(false);
        this.trigger('degraded');
      },
      recovered: () => this.trigger('recovered'),
      renewed: () => this.apiWorks(true),
      error: (err: unknown) => {
        this.apiWorks(false);
        this.o.log.debug({ component: 'agent', err }, 'renewal failed');
      },
    }, lease);
    this.renewer = renewer;
    renewer.start();
  }

  // (b) data plane ----------------------------------------------------------------------

  private async dataPlanePhase(held: ReadonlySet<string>, full: boolean): Promise<{ retryAt?: number; fullDone: boolean }> {
    // Nothing touches the kernel before both the leases and the cluster objects were listed: a
    // sync from an empty view would remove the rules a restarting holder still serves with.
    if (!this.viewSettled || !this.clusterSettled) return { fullDone: false };
    const owned = new Set([...held, ...this.releasingNow()]);
    try {
      const parsed = this.ensureParsed();
      const key = dataPlaneKey(parsed);
      if (this.o.applier.current() === undefined || !sameKey(this.plannedKey, key) || full) {
        const plan = planDataPlane(snapshotOf(parsed, this.o.local.facts, owned), this.o.dataPlaneSettings);
        await this.o.applier.sync(plan.desired, { full });
        this.plannedKey = key;
      } else if (!sameSet(owned, this.appliedOwned)) {
        await this.o.applier.setOwned(owned);
      }
      this.appliedOwned = owned;
      return { fullDone: true };
    } catch (err: unknown) {
      const tool = err instanceof DataPlaneSyncError ? err.phase : 'unknown';
      this.o.metrics.dataplaneApplyFailures.inc({ tool });
      this.o.log.error({ component: 'dataplane', err }, 'data-plane apply failed; keeping the previous rules');
      return { retryAt: this.o.clock.now() + Math.max(100, this.o.applier.retryDelayMs()), fullDone: false };
    }
  }

  /** Held addresses whose NAT is in the kernel, or that have nothing to program. */
  private announceable(held: ReadonlySet<string>): Set<string> {
    const current: DesiredDataPlane | undefined = this.o.applier.current();
    const planned = new Set((current?.addresses ?? []).map((a) => a.address));
    return new Set([...held].filter((a) => (planned.has(a) ? this.appliedOwned.has(a) : this.clusterSettled)));
  }

  // (c) keepalived ----------------------------------------------------------------------

  private async keepalivedPhase(held: ReadonlySet<string>): Promise<void> {
    const k = this.o.keepalived;
    if (k === undefined || !this.viewSettled || !this.clusterSettled) return;
    this.ensureParsed();
    const now = this.o.clock.now();
    const addressLeases = this.view.addressViews().flatMap((a) => this.view.addressLease(a.address) ?? []);
    const peerLeases = this.view
      .agentViews(now)
      // Fenced peers stay peers: a cut-off old owner still advertises at its degraded priority,
      // and only our adverts (sent to it unicast) make it step down; dropping it left the
      // address on both hosts until its API access came back (test/reliability/overlap.lab.ts).
      .filter((a) => a.name !== this.o.name)
      .flatMap((a) => {
        const lease = this.view.agentLease(a.name);
        return lease ? [{ agent: a.name, lease }] : [];
      });
    const instances = planKeepalivedInstances({ me: this.o.local.facts, addressLeases, peerLeases, pools: this.parsed?.pools ?? [] });
    this.lastInstances = instances;
    const tracks = { held, announceable: this.announceable(held), releasing: this.releasingNow(), degraded: this.renewer?.degraded ?? true };
    const announcing = new Set<string>();
    for (const i of instances) {
      const track = decideTrack(i.address, tracks);
      await k.port.writeTrack(i.address, track);
      if (track.eligible && track.role === 'holder') announcing.add(i.address);
    }
    this.probeNewlyAnnounced(instances, announcing);
    this.completeArrivals(announcing);
    const key = JSON.stringify(instances);
    if (key !== this.keepalivedKey) {
      await k.port.applyConfig(k.render({ agent: this.o.name, stateDir: k.stateDir, instances }), instances.map((i) => i.address));
      this.keepalivedKey = key;
    }
    await k.port.writeAgentAlive(true);
  }

  /**
   * A new owner checks that no other host answers for the address (DESIGN.md 3.3): once, about a
   * second after it starts announcing it (VRRP master-down has passed), without blocking the sync.
   */
  private probeNewlyAnnounced(instances: readonly KeepalivedInstanceInput[], announcing: ReadonlySet<string>): void {
    for (const a of [...this.announced]) if (!announcing.has(a)) this.announced.delete(a);
    const probe = this.o.arpProbe;
    for (const i of instances) {
      if (!announcing.has(i.address) || this.announced.has(i.address)) continue;
      this.announced.add(i.address);
      if (probe === undefined) continue;
      const timer = setTimeout(() => {
        if (this.stopping || !this.announced.has(i.address)) return;
        probe(i.interface, i.address).then(
          (result) => {
            if (result !== 'duplicate') return;
            this.o.metrics.duplicateAddresses.inc();
            this.o.log.error({ component: 'agent', address: i.address, reason: 'DuplicateAddress', interface: i.interface }, 'another host answers ARP for an address this agent owns');
          },
          (err: unknown) => this.o.log.warn({ component: 'agent', address: i.address, err }, 'duplicate-address probe failed'),
        );
      }, 1000);
      timer.unref();
    }
  }

  /**
   * An address newly held that this agent did not take itself was handed to it (planned handoff):
   * measured from when the lease naming it was observed. The first joined sync adopts silently.
   */
  private noteArrivals(held: ReadonlySet<string>): void {
    if (this.renewer === undefined) {
      this.heldBefore = undefined;
      return;
    }
    for (const a of [...this.arriving.keys()]) if (!held.has(a)) this.arriving.delete(a);
    if (this.heldBefore !== undefined) {
      const views = new Map(this.view.addressViews().map((v) => [v.address, v] as const));
      for (const a of held) {
        if (this.heldBefore.has(a) || this.arriving.has(a)) continue;
        // A free lease (the leader creates them without a holder) this agent acquired: not a handoff.
        if (this.acquiredFree.has(a)) continue;
        this.arriving.set(a, { kind: 'handoff', from: '', since: views.get(a)?.observedAt ?? this.o.clock.now() });
      }
    }
    this.acquiredFree.clear();
    this.heldBefore = new Set(held);
  }

  /** Received addresses now announced as holder: observe the duration, tell the composition root. */
  private completeArrivals(announcing: ReadonlySet<string>): void {
    const now = this.o.clock.now();
    for (const [address, a] of [...this.arriving]) {
      if (!announcing.has(address)) continue;
      this.arriving.delete(address);
      const seconds = Math.max(0, now - a.since) / 1000;
      (a.kind === 'failover' ? this.o.metrics.failoverDuration : this.o.metrics.handoffDuration).observe(seconds);
      this.o.log.info({ component: 'ownership', address, reason: a.kind, from: a.from, seconds }, a.kind === 'failover' ? 'failover completed: address in service here' : 'handoff completed: address in service here');
      this.o.onTakenOver?.({ address, kind: a.kind, from: a.from, seconds });
    }
  }

  /** API unreachable at start: carry what the state file says we held, at the degraded priority. */
  private async adoptFromState(): Promise<void> {
    const k = this.o.keepalived;
    if (this.adoptedFromState || k === undefined || this.o.stateFile === undefined) return;
    const state = await readAgentState(this.o.stateFile, this.o.name);
    this.adoptedFromState = true;
    if (state === undefined || state.held.length === 0) return;
    this.o.log.warn({ component: 'agent', addresses: state.held.length }, 're-adopting the last known ownership at the degraded priority');
    for (const i of state.instances) await k.port.writeTrack(i.address, state.held.includes(i.address) ? { eligible: true, role: 'degraded' } : { eligible: false, role: 'standby' });
    await k.port.applyConfig(k.render({ agent: this.o.name, stateDir: k.stateDir, instances: state.instances }), state.instances.map((i) => i.address));
    this.keepalivedKey = JSON.stringify(state.instances);
    this.lastInstances = state.instances;
    await k.port.writeAgentAlive(true);
  }

  private async saveState(held: ReadonlySet<string>): Promise<void> {
    if (this.o.stateFile === undefined || this.renewer === undefined || !this.viewSettled) return;
    const state: AgentState = { agent: this.o.name, held: [...held].sort(), instances: this.lastInstances };
    const key = JSON.stringify(state);
    if (key === this.stateKey) return;
    try {
      await writeAgentState(this.o.stateFile, state);
      this.stateKey = key;
    } catch (err: unknown) {
      this.o.log.warn({ component: 'agent', err }, 'cannot write the state file');
    }
  }

  // (d) report --------------------------------------------------------------------------

  private reporting: Promise<void> | undefined;
  private reportAgain = false;

  /**
   * Status writes run beside the sync, one pass at a time (a pass asked for while one runs
   * follows it): slow or failing status writes never hold up ownership or the data plane.
   */
  private kickReport(): void {
    // Only when what it is computed from changed, or a write failed: computing the reports walks
    // every owned endpoint, too much for every sync at 1,000 Mappings.
    const from = { applied: this.o.applier.current(), mappings: this.mappings };
    if (!this.reportRetry && this.reportedFrom !== undefined && this.reportedFrom.applied === from.applied && this.reportedFrom.mappings === from.mappings) return;
    if (this.reporting !== undefined) {
      this.reportAgain = true;
      return;
    }
    this.reporting = (async () => {
      do {
        this.reportAgain = false;
        await this.timed('report', async () => this.reportPhase());
      } while (this.reportAgain && !this.stopped);
    })()
      .catch((err: unknown) => this.o.log.warn({ component: 'report', err }, 'report pass failed'))
      .finally(() => {
        this.reporting = undefined;
      });
  }

  private async reportPhase(): Promise<void> {
    const writer = this.o.statusWriter;
    const applied = this.o.applier.current();
    if (writer === undefined || applied === undefined || !this.clusterSettled) return;
    this.reportRetry = false;
    this.reportedFrom = { applied, mappings: this.mappings };
    const reports = computeReports(applied, this.o.name, this.mappings);
    const keys = new Set([...reports.keys(), ...this.reported.keys()]);
    for (const key of [...keys].sort()) {
      if (this.stopped) {
        this.reportRetry = true;
        return;
      }
      const report = reports.get(key);
      const entries = report?.entries ?? {};
      const text = JSON.stringify(entries);
      if (this.reported.get(key) === text) continue;
      const [namespace = '', name = ''] = key.split('/');
      if (report === undefined && !this.mappings.has(key)) {
        this.reported.delete(key); // the Mapping is gone: nothing to clear
        continue;
      }
      const stamp = this.o.clock.wallTime().toISOString().replace(/\.\d{3}Z$/, 'Z');
      const withTime = Object.fromEntries(Object.entries(entries).map(([a, e]) => [a, { ...e, programmedAt: stamp }]));
      try {
        await bounded('configuredAddresses apply', 10_000, writer.apply({ namespace, name }, withTime));
        if (report === undefined) this.reported.delete(key);
        else this.reported.set(key, text);
      } catch (err: unknown) {
        this.reportRetry = true;
        this.o.log.warn({ component: 'report', mapping: key, err }, 'cannot apply configuredAddresses');
      }
    }
  }

  // (e) leader duties -------------------------------------------------------------------

  /**
   * Only over complete caches: a pass over a partial view would delete leases it does not see.
   * Only when its input changed (cluster objects, leases other than renewals, which agents are
   * live), after a failure, on becoming leader, after a pass that stopped at its budget, and every
   * leaderResyncMs: a pass reads every Mapping, so running it on each sync starved the loop at
   * 1,000 Mappings (ADR 0006); a pass writes for at most its budget (ADR 0008 amendment 2).
   */
  private async leaderPhase(): Promise<number | undefined> {
    const leader = this.o.leader;
    if (leader === undefined || !leader.elector.isLeader) {
      this.leaderInputKey = undefined;
      this.leaderMore = false;
      return undefined;
    }
    if (this.view.blind || !this.viewSettled || !this.o.cluster.synced) return undefined;
    const now = this.o.clock.now();
    const live = this.view.agentViews(now).map((a) => `${a.name}=${isAgentAlive({ me: this.o.name, now, settings: this.o.settings }, a) ? 1 : 0}`).join(',');
    const key = `${this.resourcesVersion}/${this.leaseVersion}/${live}`;
    const resyncMs = this.o.leaderResyncMs ?? 30_000;
    const due = this.leaderRanAt === undefined || now - this.leaderRanAt >= resyncMs;
    if (key === this.leaderInputKey && !this.leaderRetry && !this.leaderMore && !due) return (this.leaderRanAt ?? now) + resyncMs;
    this.leaderInputKey = key;
    this.leaderRanAt = now;
    try {
      const { more } = await leader.duties.run();
      this.leaderRetry = false;
      // A pass that stopped at its budget: the next one starts as soon as the other phases ran.
      this.leaderMore = more;
      return more ? this.o.clock.now() : now + resyncMs;
    } catch (err: unknown) {
      this.o.log.warn({ component: 'leader', err }, 'leader pass failed');
      this.leaderRetry = true;
      return now + Math.max(250, this.o.settings.retryPeriodMs);
    }
  }

  // ---- leaving -------------------------------------------------------------------------

  /**
   * SIGTERM: hand every held address to its successor (one compare-and-swap each), keep DNAT and a
   * releasing priority for the grace period, then withdraw, stop keepalived and everything else.
   */
  async shutdown(opts: { graceMs?: number } = {}): Promise<{ handedOff: string[] }> {
    this.stopping = true;
    await this.o.leader?.elector.stop({ release: true });
    await this.runner.stop();
    const handedOff: string[] = [];
    if (this.renewer !== undefined) {
      this.ensureParsed();
      const input = this.ownershipInput(this.o.clock.now(), true);
      const mine = this.view.addressViews().filter((a) => a.holder === this.o.name);
      await Promise.all(mine.map(async (a) => {
        const to = rankCandidates(input, a.pool, a.address).find((x) => x !== this.o.name);
        const lease = this.view.addressLease(a.address);
        if (to === undefined || lease === undefined) return;
        try {
          await this.beginRelease(a.address);
          const r = await bounded('handOff', this.apiTimeoutMs, handOffAddress(this.o.store, lease, this.o.name, to, this.o.clock));
          await this.afterMove(a.address, lease.name, r, 'shutdown', true);
          if (r.outcome === 'moved') handedOff.push(a.address);
        } catch (err: unknown) {
          this.o.log.warn({ component: 'agent', address: a.address, err }, 'handoff at shutdown failed');
        }
      }));
    }
    const k = this.o.keepalived;
    const grace = opts.graceMs ?? this.o.handoffGraceMs ?? 2000;
    if (handedOff.length > 0 && grace > 0) await new Promise((r) => setTimeout(r, grace));
    if (k !== undefined) {
      for (const a of handedOff) await k.port.writeTrack(a, { eligible: false, role: 'standby' });
      await k.port.stop();
    }
    const stillHeld = this.held();
    if (this.o.applier.current() !== undefined) {
      await this.o.applier.setOwned(stillHeld).catch((err: unknown) => this.o.log.warn({ err }, 'withdrawing the owned set failed'));
      this.appliedOwned = stillHeld;
    }
    await this.stopEverything();
    return { handedOff: handedOff.sort() };
  }

  /** A crash as far as the cluster can tell: stop renewing and watching, write nothing. */
  async kill(): Promise<void> {
    this.stopping = true;
    await this.o.leader?.elector.stop({ release: false });
    await this.runner.stop();
    await this.stopEverything();
  }

  private async stopEverything(): Promise<void> {
    this.stopped = true;
    await this.reporting;
    const renewer = this.renewer;
    this.renewer = undefined;
    await renewer?.stop();
    await this.feed.stop();
    await this.o.cluster.stop();
  }
}
