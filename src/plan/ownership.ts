// Per-address ownership decisions over one agent's local view of the leases (ADR 0005, 0006).
// Guarantees: pure and deterministic; given the same view, all agents agree on who may write an
// address lease, so at most one of them tries; every decision carries a reason. Does not write
// anything: src/cluster/lease-protocol.ts performs the verbs with compare-and-swap.
import { rankAgents } from './ranking.js';
import type { LeaseSettings } from './lease-settings.js';
import { fullBucket, nextTokenAt, takeToken, type BucketRate, type TokenBucket } from './ownership-rate.js';

/** One agent as this agent observes it; times are this agent's monotonic milliseconds. */
export interface AgentView {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly draining: boolean;
  readonly fenced: boolean;
  readonly healthy: boolean;
  /** When its agent lease last changed (or the view was reset). */
  readonly observedAt: number;
  /** Since when it has been continuously live, undrained and healthy; undefined if it is not. */
  readonly readySince?: number;
}

export interface AddressView {
  readonly address: string;
  /** '' = free. */
  readonly holder: string;
  readonly pool: string;
  /** When the address lease last changed (or the view was reset). */
  readonly observedAt: number;
}

export interface OwnershipInput {
  readonly me: string;
  readonly now: number;
  readonly settings: LeaseSettings;
  /** True while the lease watch is down or the API is failing: nobody is judged. */
  readonly blind: boolean;
  readonly agents: readonly AgentView[];
  /** Pool name -> agentSelector (matchLabels). A pool missing here has no candidates. */
  readonly poolSelectors: ReadonlyMap<string, Readonly<Record<string, string>>>;
}

export type AcquireReason = 'preferredFree';
export type KeepReason = 'owner' | 'noSuccessor' | 'viewBlind' | 'rebalanceRateLimited';
export type HandOffReason = 'draining' | 'unhealthy' | 'notEligible' | 'rebalance';
export type TakeOverReason = 'holderExpired' | 'holderFenced' | 'holderGone';
export type WaitReason =
  | 'viewBlind'
  | 'selfFenced'
  | 'holderAlive'
  | 'notPreferred'
  | 'notSuccessor'
  | 'noCandidate'
  | 'takeoverRateLimited'
  | 'fenceRateLimited';

export type OwnershipDecision =
  | { readonly action: 'acquireFree'; readonly address: string; readonly reason: AcquireReason }
  | { readonly action: 'keep'; readonly address: string; readonly reason: KeepReason }
  | { readonly action: 'handOff'; readonly address: string; readonly to: string; readonly reason: HandOffReason }
  | {
      readonly action: 'takeOver';
      readonly address: string;
      readonly from: string;
      /** The holder's agent lease must be fenced (CAS) before the address lease is written. */
      readonly fenceFirst: boolean;
      readonly reason: TakeOverReason;
    }
  | { readonly action: 'wait'; readonly address: string; readonly reason: WaitReason };

export type OwnershipReason = OwnershipDecision['reason'];

/** Whether `agent` counts as alive in this view. The deciding agent's own lease is judged by its
 * renewer (it demotes when fenced), so it is alive here unless fenced. */
export function isAgentAlive(input: Pick<OwnershipInput, 'me' | 'now' | 'settings'>, agent: AgentView): boolean {
  if (agent.fenced) return false;
  if (agent.name === input.me) return true;
  return input.now - agent.observedAt < input.settings.leaseDurationMs;
}

export function matchesSelector(labels: Readonly<Record<string, string>>, selector: Readonly<Record<string, string>>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** Agents that may own addresses of `pool`, best first (ADR 0006). */
export function rankCandidates(input: OwnershipInput, pool: string, address: string): string[] {
  const selector = input.poolSelectors.get(pool);
  if (selector === undefined) return [];
  const eligible = input.agents.filter(
    (a) => isAgentAlive(input, a) && !a.draining && a.healthy && matchesSelector(a.labels, selector),
  );
  return rankAgents(
    eligible.map((a) => a.name),
    address,
  );
}

function decideOwn(input: OwnershipInput, self: AgentView, addr: AddressView, ranked: string[]): OwnershipDecision {
  const address = addr.address;
  if (input.blind) return { action: 'keep', address, reason: 'viewBlind' };
  const successor = ranked.find((a) => a !== input.me);
  if (!ranked.includes(input.me)) {
    if (successor === undefined) return { action: 'keep', address, reason: 'noSuccessor' };
    const reason: HandOffReason = self.draining ? 'draining' : !self.healthy ? 'unhealthy' : 'notEligible';
    return { action: 'handOff', address, to: successor, reason };
  }
  const preferred = ranked[0];
  const rebalance = input.settings.rebalance;
  if (rebalance && preferred !== undefined && preferred !== input.me) {
    const target = input.agents.find((a) => a.name === preferred);
    if (target?.readySince !== undefined && input.now - target.readySince >= rebalance.holdDownMs) {
      return { action: 'handOff', address, to: preferred, reason: 'rebalance' };
    }
  }
  return { action: 'keep', address, reason: 'owner' };
}

/** What agent `input.me` should do about one address, before rate limits. */
export function decideAddress(input: OwnershipInput, addr: AddressView): OwnershipDecision {
  const address = addr.address;
  const self = input.agents.find((a) => a.name === input.me);
  if (self === undefined || self.fenced) return { action: 'wait', address, reason: 'selfFenced' };
  const ranked = rankCandidates(input, addr.pool, address);
  if (addr.holder === input.me) return decideOwn(input, self, addr, ranked);
  if (input.blind) return { action: 'wait', address, reason: 'viewBlind' };
  if (addr.holder === '') {
    if (ranked.length === 0) return { action: 'wait', address, reason: 'noCandidate' };
    return ranked[0] === input.me
      ? { action: 'acquireFree', address, reason: 'preferredFree' }
      : { action: 'wait', address, reason: 'notPreferred' };
  }
  const holder = input.agents.find((a) => a.name === addr.holder);
  let takeOver: { fenceFirst: boolean; reason: TakeOverReason };
  if (holder === undefined) {
    // No agent lease at all: the address lease must have sat unchanged for a lease duration.
    if (input.now - addr.observedAt < input.settings.leaseDurationMs) return { action: 'wait', address, reason: 'holderAlive' };
    takeOver = { fenceFirst: false, reason: 'holderGone' };
  } else if (holder.fenced) {
    takeOver = { fenceFirst: false, reason: 'holderFenced' };
  } else if (isAgentAlive(input, holder)) {
    return { action: 'wait', address, reason: 'holderAlive' };
  } else {
    takeOver = { fenceFirst: true, reason: 'holderExpired' };
  }
  const successor = ranked.find((a) => a !== addr.holder);
  if (successor === undefined) return { action: 'wait', address, reason: 'noCandidate' };
  if (successor !== input.me) return { action: 'wait', address, reason: 'notSuccessor' };
  return { action: 'takeOver', address, from: addr.holder, ...takeOver };
}

/** Rate-limit state an agent carries from one planning round to the next. */
export interface OwnershipBudgets {
  readonly takeovers: TokenBucket;
  readonly fences: TokenBucket;
  readonly rebalances: TokenBucket;
}

export interface OwnershipPlan {
  /** One decision per address, in address order. */
  readonly decisions: readonly OwnershipDecision[];
  /** Holders to fence (agent lease CAS) before the takeovers that name them, sorted. */
  readonly fence: readonly string[];
  readonly budgets: OwnershipBudgets;
  /** When the plan may change with no lease event (an expiry, a hold-down, a refill); undefined = never. */
  readonly nextWakeAt?: number;
}

export function ownershipRates(s: LeaseSettings): { takeovers: BucketRate; fences: BucketRate; rebalances: BucketRate } {
  const rb = s.rebalance ?? { maxPerInterval: 1, intervalMs: 1000, holdDownMs: 0 };
  return {
    takeovers: { burst: s.takeoverBurst, perMs: s.takeoverPerSecond / 1000 },
    fences: { burst: s.fenceBurst, perMs: 1 / s.leaseDurationMs },
    rebalances: { burst: rb.maxPerInterval, perMs: rb.maxPerInterval / rb.intervalMs },
  };
}

export function initialBudgets(s: LeaseSettings, now: number): OwnershipBudgets {
  const r = ownershipRates(s);
  return { takeovers: fullBucket(r.takeovers, now), fences: fullBucket(r.fences, now), rebalances: fullBucket(r.rebalances, now) };
}

/** Earliest time some agent's liveness or a rebalance hold-down changes the answer. */
function nextTimedChange(input: OwnershipInput, addresses: readonly AddressView[]): number | undefined {
  let next: number | undefined;
  const consider = (t: number): void => {
    if (t > input.now && (next === undefined || t < next)) next = t;
  };
  for (const a of input.agents) {
    if (a.name === input.me || a.fenced) continue;
    consider(a.observedAt + input.settings.leaseDurationMs);
    if (input.settings.rebalance && a.readySince !== undefined) consider(a.readySince + input.settings.rebalance.holdDownMs);
  }
  for (const addr of addresses) {
    if (addr.holder !== '' && !input.agents.some((a) => a.name === addr.holder)) {
      consider(addr.observedAt + input.settings.leaseDurationMs);
    }
  }
  return next;
}

/**
 * Decisions for every address, with rate limits applied: takeovers and rebalance handoffs beyond
 * their buckets wait; a holder is fenced at most once per plan, and only if a fence token allows.
 */
export function planOwnership(input: OwnershipInput, addresses: readonly AddressView[], budgets: OwnershipBudgets): OwnershipPlan {
  const rates = ownershipRates(input.settings);
  let { takeovers, fences, rebalances } = budgets;
  const fenceGranted = new Map<string, boolean>();
  let limitedUntil: number | undefined;
  const limited = (t: number): void => {
    limitedUntil = limitedUntil === undefined ? t : Math.min(limitedUntil, t);
  };
  const sorted = [...addresses].sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  const decisions = sorted.map((addr): OwnershipDecision => {
    const d = decideAddress(input, addr);
    if (d.action === 'takeOver') {
      if (d.fenceFirst) {
        let granted = fenceGranted.get(d.from);
        if (granted === undefined) {
          const t = takeToken(fences, rates.fences, input.now);
          fences = t.bucket;
          granted = t.granted;
          fenceGranted.set(d.from, granted);
          if (!granted) limited(nextTokenAt(fences, rates.fences, input.now));
        }
        if (!granted) return { action: 'wait', address: d.address, reason: 'fenceRateLimited' };
      }
      const t = takeToken(takeovers, rates.takeovers, input.now);
      takeovers = t.bucket;
      if (!t.granted) {
        limited(nextTokenAt(takeovers, rates.takeovers, input.now));
        return { action: 'wait', address: d.address, reason: 'takeoverRateLimited' };
      }
    }
    if (d.action === 'handOff' && d.reason === 'rebalance') {
      const t = takeToken(rebalances, rates.rebalances, input.now);
      rebalances = t.bucket;
      if (!t.granted) {
        limited(nextTokenAt(rebalances, rates.rebalances, input.now));
        return { action: 'keep', address: d.address, reason: 'rebalanceRateLimited' };
      }
    }
    return d;
  });
  const fence = [...fenceGranted].filter(([, granted]) => granted).map(([holder]) => holder).sort();
  const timed = nextTimedChange(input, addresses);
  const candidates = [timed, limitedUntil].filter((t): t is number => t !== undefined);
  const plan: OwnershipPlan = { decisions, fence, budgets: { takeovers, fences, rebalances } };
  return candidates.length > 0 ? { ...plan, nextWakeAt: Math.min(...candidates) } : plan;
}
