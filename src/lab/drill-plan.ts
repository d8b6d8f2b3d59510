// The pure half of `smartnat drill`: the drill kinds and what each must show, the timings derived
// from the lease settings, probe arithmetic (gap, refused/failed counts, recovery), when to stop
// probing, the verdict and the p50/p99/max summary. No I/O, no clock: callers pass times in.
import { longestGapMs, type ProbeOutcome } from './probe.js';

export const DRILL_KINDS = ['kill', 'agent-crash', 'drain', 'partition', 'apiserver-down', 'keepalived', 'link-down'] as const;
export type DrillKind = (typeof DRILL_KINDS)[number];

export function parseDrillKind(text: string): DrillKind | undefined {
  return (DRILL_KINDS as readonly string[]).includes(text) ? (text as DrillKind) : undefined;
}

/** Whether the address lease must change holder ('yes'), must not ('no'), or may ('either'). */
export type MoveExpectation = 'yes' | 'no' | 'either';

export interface DrillExpectation {
  readonly move: MoveExpectation;
  /** The fault is held this long, then undone before traffic is judged (apiserver-down, partition). */
  readonly holdsFault: boolean;
  /** No refused and no failed probe at all (planned handoff: no dropped SYN). */
  readonly lossless: boolean;
  /** Traffic keeps flowing through the fault: no refused probe, no gap of a lease duration or more. */
  readonly keepsFlowing: boolean;
}

const EXPECTATIONS: Readonly<Record<DrillKind, DrillExpectation>> = {
  // A dead host: its lease expires, the successor fences it and takes the address.
  kill: { move: 'yes', holdsFault: false, lossless: false, keepsFlowing: false },
  // keepalived dies with the agent (pdeathsig); whoever restarts the agent within a lease
  // duration re-adopts, otherwise the successor takes over: either is right.
  'agent-crash': { move: 'either', holdsFault: false, lossless: false, keepsFlowing: false },
  drain: { move: 'yes', holdsFault: false, lossless: true, keepsFlowing: true },
  // An owner cut off from the API cannot renew: to its peers it is dead, they fence it and take
  // over while it degrades its VRRP priority, so the wire follows the new holder (DESIGN 3.1,
  // 3.3). Whether the takeover lands inside the hold depends on timing: either is right, but
  // traffic must keep flowing and one agent must carry the address.
  partition: { move: 'either', holdsFault: true, lossless: false, keepsFlowing: true },
  // An API outage never by itself moves an address (DESIGN 2.3, 3.3).
  'apiserver-down': { move: 'no', holdsFault: true, lossless: false, keepsFlowing: true },
  // The supervisor restarts keepalived; a health handoff may move the address meanwhile.
  keepalived: { move: 'either', holdsFault: false, lossless: false, keepsFlowing: false },
  // The owner's uplink of the address goes down (held, then back up): the owner turns unhealthy
  // after its health hold-down and hands the address to its successor (DESIGN 3.1 per-address
  // health); it does not take it back when the link returns (no fail-back).
  'link-down': { move: 'yes', holdsFault: true, lossless: false, keepsFlowing: false },
};

export function expectationFor(kind: DrillKind): DrillExpectation {
  return EXPECTATIONS[kind];
}

/** The lease timings the lab's agents run with (ADR 0006); only the duration matters here. */
export interface DrillLeaseTimings {
  readonly leaseDurationMs: number;
}

export interface DrillTimings {
  /** Probing before the fault; it must show working traffic or the drill aborts. */
  readonly baselineMs: number;
  /** apiserver-down / partition: how long the fault is held ("a few lease durations"). */
  readonly holdMs: number;
  /** Traffic counts as flowing again after this long without a failed try on every protocol. */
  readonly stableMs: number;
  /** Kinds that may move the address wait at least this long after the fault before judging. */
  readonly settleMs: number;
  /** Give up waiting for traffic this long after the fault (or after undoing a held fault). */
  readonly deadlineMs: number;
}

/** Every wait of a drill, derived from the lease duration so a faster lab drills faster. */
export function computeDrillTimings(lease: DrillLeaseTimings): DrillTimings {
  const d = lease.leaseDurationMs;
  return {
    baselineMs: 1000,
    holdMs: 3 * d,
    stableMs: Math.max(1000, d),
    settleMs: 2 * d,
    // Detection (one lease duration) + fencing + NAT + VRRP master-down fit in ~2 durations
    // (ADR 0006 budget); a loaded 2-core lab gets three times that, never less than 10 s.
    deadlineMs: Math.max(10_000, 6 * d),
  };
}

export interface ProbeSummary {
  readonly tries: number;
  readonly ok: number;
  /** Reset or ICMP unreachable (including a reset after the connection was established). */
  readonly refused: number;
  /** Timed out, or answered with something that is not an echo reply. */
  readonly failed: number;
  /** Longest time without a successful try (probe.ts longestGapMs). */
  readonly gapMs: number;
  /**
   * TCP, present when > 0: refused tries whose handshake had completed (a reset after connect).
   * In a planned handoff this is the signature of a connection whose first packets reached one
   * agent and whose next ones reached the other (README, "what a handoff costs").
   */
  readonly resetAfterHandshake?: number;
}

export function isRefused(o: ProbeOutcome): boolean {
  return o.result === 'refused' || (o.result === 'error' && o.error === 'ECONNRESET');
}

export function summarizeProbe(outcomes: readonly ProbeOutcome[]): ProbeSummary {
  let ok = 0;
  let refused = 0;
  let failed = 0;
  let resets = 0;
  for (const o of outcomes) {
    if (o.result === 'ok') ok++;
    else if (isRefused(o)) {
      refused++;
      if (o.connected === true) resets++;
    } else if (o.result !== 'sent') failed++;
  }
  return { tries: outcomes.length, ok, refused, failed, gapMs: round(longestGapMs(outcomes)), ...(resets > 0 ? { resetAfterHandshake: resets } : {}) };
}

/**
 * The start time of the first try of the final all-ok run that began at or after `from`, i.e. when
 * traffic flowed again for good; undefined when the last try failed or there is none after `from`.
 * A run that was already ok at `from` (nothing failed since) counts from `from`.
 */
export function recoveredAt(outcomes: readonly ProbeOutcome[], from: number): number | undefined {
  const after = [...outcomes].filter((o) => o.t >= from).sort((a, b) => a.t - b.t);
  if (!after.length || after[after.length - 1]!.result !== 'ok') return undefined;
  let i = after.length - 1;
  while (i > 0 && after[i - 1]!.result === 'ok') i--;
  return i === 0 ? from : after[i]!.t;
}

/** True when every try that started in (now - stableMs, now] succeeded and there is at least one. */
export function stableSince(outcomes: readonly ProbeOutcome[], now: number, stableMs: number): boolean {
  const window = outcomes.filter((o) => o.t > now - stableMs && o.t <= now);
  return window.length > 0 && window.every((o) => o.result === 'ok');
}

export interface StopInput {
  readonly kind: DrillKind;
  readonly timings: DrillTimings;
  /** Epoch ms: fault injected, and (held faults) undone. */
  readonly injectedAt: number;
  readonly undoneAt?: number;
  /** Epoch ms the address lease was first seen with another holder; undefined while it has not. */
  readonly movedAt?: number;
  /** Tries so far per protocol (only those that finished). */
  readonly protocols: readonly (readonly ProbeOutcome[])[];
  /** Tries finish up to one probe timeout after they start: judge up to now - timeoutMs. */
  readonly probeTimeoutMs: number;
  readonly now: number;
}

export type StopDecision = 'continue' | 'recovered' | 'deadline';

/** When the drill stops probing: traffic is back (and the expected move happened), or the deadline passed. */
export function decideStop(s: StopInput): StopDecision {
  const e = expectationFor(s.kind);
  const start = e.holdsFault ? s.undoneAt : s.injectedAt;
  if (start === undefined) return 'continue';
  if (s.now - start > s.timings.deadlineMs) return 'deadline';
  const judged = s.now - s.probeTimeoutMs;
  if (e.move === 'yes' && (s.movedAt === undefined || judged - s.movedAt < s.timings.stableMs)) return 'continue';
  if (e.move === 'either' && judged - s.injectedAt < s.timings.settleMs) return 'continue';
  if (judged - start < s.timings.stableMs) return 'continue';
  const stable = s.protocols.every((outcomes) => stableSince(outcomes, judged, s.timings.stableMs));
  return stable ? 'recovered' : 'continue';
}

export interface DrillObservation {
  readonly kind: DrillKind;
  readonly lease: DrillLeaseTimings;
  readonly stop: StopDecision;
  readonly previousOwner: string;
  /** Holder of the address lease once traffic was back (before the lab was restored). */
  readonly finalOwner: string | undefined;
  readonly tcp: ProbeSummary;
  readonly udp: ProbeSummary;
  /** Agents whose interfaces carried the address once traffic was back (kill, agent-crash). */
  readonly addressOn?: readonly string[];
}

/** Every way the observation falls short of the kind's expectation; [] = passed. */
export function judgeDrill(o: DrillObservation): string[] {
  const e = expectationFor(o.kind);
  const problems: string[] = [];
  if (o.stop !== 'recovered') problems.push('traffic did not flow again before the deadline');
  const moved = o.finalOwner !== undefined && o.finalOwner !== o.previousOwner;
  if (o.finalOwner === undefined || o.finalOwner === '') problems.push('the address lease has no holder');
  if (e.move === 'yes' && !moved) problems.push(`the address stayed with ${o.previousOwner}`);
  if (e.move === 'no' && moved) problems.push(`the address moved from ${o.previousOwner} to ${o.finalOwner}`);
  const refused = o.tcp.refused + o.udp.refused;
  const failed = o.tcp.failed + o.udp.failed;
  const resets = (o.tcp.resetAfterHandshake ?? 0) + (o.udp.resetAfterHandshake ?? 0);
  const afterHandshake = resets > 0 ? ` (${resets} reset after the handshake completed)` : '';
  if (e.lossless && refused + failed > 0) problems.push(`a planned handoff lost probes: ${refused} refused${afterHandshake}, ${failed} failed`);
  if (e.keepsFlowing && !e.lossless) {
    if (refused > 0) problems.push(`${refused} probes refused while traffic should have kept flowing`);
    const gap = Math.max(o.tcp.gapMs, o.udp.gapMs);
    if (gap >= o.lease.leaseDurationMs) problems.push(`traffic stopped for ${gap} ms (>= one lease duration, ${o.lease.leaseDurationMs} ms)`);
  }
  if (o.addressOn !== undefined) {
    if (o.addressOn.length !== 1) problems.push(`the address is on ${o.addressOn.length} agents (${o.addressOn.join(', ') || 'none'}), not exactly one`);
    else if (o.finalOwner !== undefined && o.addressOn[0] !== o.finalOwner) problems.push(`the address is on ${o.addressOn[0]} but the lease holder is ${o.finalOwner}`);
  }
  return problems;
}

export interface Spread {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

/** Nearest-rank percentile (p in 0..100) of a non-empty list. */
export function percentile(values: readonly number[], p: number): number {
  if (!values.length) throw new RangeError('percentile of an empty list');
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

export function spread(values: readonly number[]): Spread | null {
  if (!values.length) return null;
  return { p50: percentile(values, 50), p99: percentile(values, 99), max: Math.max(...values) };
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

export { round as roundMs };
