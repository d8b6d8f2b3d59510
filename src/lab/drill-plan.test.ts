import { describe, expect, it } from '@jest/globals';
import type { ProbeOutcome, ProbeResult } from './probe.js';
import {
  DRILL_KINDS,
  computeDrillTimings,
  decideStop,
  expectationFor,
  judgeDrill,
  parseDrillKind,
  percentile,
  recoveredAt,
  spread,
  stableSince,
  summarizeProbe,
  type DrillObservation,
  type ProbeSummary,
} from './drill-plan.js';

/** Tries every 10 ms from t=1000, results from a compact pattern: '.' ok, 'r' refused, 't' timeout, 'x' reset. */
function tries(pattern: string, start = 1000, step = 10): ProbeOutcome[] {
  const map: Record<string, { result: ProbeResult; error?: string }> = {
    '.': { result: 'ok' },
    r: { result: 'refused', error: 'ECONNREFUSED' },
    t: { result: 'timeout' },
    x: { result: 'error', error: 'ECONNRESET' },
    e: { result: 'error', error: 'no reply line' },
  };
  return [...pattern].map((c, seq) => ({ seq, t: start + seq * step, ms: 1, ...map[c]! }));
}

const LEASE = { leaseDurationMs: 1500 };
const CLEAN: ProbeSummary = { tries: 100, ok: 100, refused: 0, failed: 0, gapMs: 10 };

describe('drill kinds', () => {
  it('parses exactly the six kinds of DESIGN.md 4.1 plus link-down (per-address health, 3.1)', () => {
    expect(DRILL_KINDS).toEqual(['kill', 'agent-crash', 'drain', 'partition', 'apiserver-down', 'keepalived', 'link-down']);
    for (const k of DRILL_KINDS) expect(parseDrillKind(k)).toBe(k);
    expect(parseDrillKind('reboot')).toBeUndefined();
    expect(parseDrillKind('KILL')).toBeUndefined();
  });

  it('expects a move for kill and drain, none for an API outage, either for a cut-off owner', () => {
    expect(expectationFor('kill').move).toBe('yes');
    expect(expectationFor('drain')).toMatchObject({ move: 'yes', lossless: true });
    expect(expectationFor('partition')).toMatchObject({ move: 'either', holdsFault: true, keepsFlowing: true });
    expect(expectationFor('apiserver-down')).toMatchObject({ move: 'no', holdsFault: true, keepsFlowing: true });
    expect(expectationFor('agent-crash').move).toBe('either');
    expect(expectationFor('keepalived').move).toBe('either');
  });

  it('derives every wait from the lease duration, with floors for a fast lab', () => {
    expect(computeDrillTimings({ leaseDurationMs: 1500 })).toEqual({ baselineMs: 1000, holdMs: 4500, stableMs: 1500, settleMs: 3000, deadlineMs: 10_000 });
    expect(computeDrillTimings({ leaseDurationMs: 5000 })).toMatchObject({ holdMs: 15_000, stableMs: 5000, deadlineMs: 30_000 });
    expect(computeDrillTimings({ leaseDurationMs: 300 }).stableMs).toBe(1000);
  });
});

describe('probe arithmetic', () => {
  it('counts refused (RST, ICMP, reset after connect) apart from failed (timeout, bad reply)', () => {
    expect(summarizeProbe(tries('..rrtx.e..'))).toEqual({ tries: 10, ok: 5, refused: 3, failed: 2, gapMs: 50 });
    // A reset after the handshake completed is refused, and counted apart (the handoff straddle).
    const straddled = tries('..x..').map((o) => (o.seq === 2 ? { ...o, connected: true } : o));
    expect(summarizeProbe(straddled)).toEqual({ tries: 5, ok: 4, refused: 1, failed: 0, gapMs: 20, resetAfterHandshake: 1 });
  });

  it('measures the gap from the last success before the outage to the first after it', () => {
    // ok at 1000 and 1010, failures at 1020..1090, ok again at 1100: gap 1100 - 1010 = 90.
    expect(summarizeProbe(tries('..tttttttt..')).gapMs).toBe(90);
    // the longest of two outages wins
    expect(summarizeProbe(tries('.tt.ttttt.')).gapMs).toBe(60);
    expect(summarizeProbe(tries('....')).gapMs).toBe(0);
  });

  it('finds when traffic flowed again for good after the fault', () => {
    const o = tries('....tt.t....');
    expect(recoveredAt(o, 1035)).toBe(1080);
    expect(recoveredAt(o, 1085)).toBe(1085); // nothing failed after 1085
    expect(recoveredAt(tries('...t'), 1000)).toBeUndefined();
    expect(recoveredAt(tries('...'), 2000)).toBeUndefined();
  });

  it('calls a window stable only when it holds tries and all of them succeeded', () => {
    const o = tries('tt........');
    expect(stableSince(o, 1090, 50)).toBe(true);
    expect(stableSince(o, 1090, 100)).toBe(false);
    expect(stableSince(o, 5000, 100)).toBe(false);
  });
});

describe('when to stop probing', () => {
  const timings = computeDrillTimings(LEASE);
  const base = { timings, probeTimeoutMs: 200, injectedAt: 1000 };
  const okFrom = (from: number, to: number): ProbeOutcome[] =>
    Array.from({ length: Math.floor((to - from) / 10) }, (_, seq) => ({ seq, t: from + seq * 10, ms: 1, result: 'ok' as const }));

  it('keeps probing a kill until the lease moved and traffic has been stable since', () => {
    const flowing = [okFrom(0, 10_000)];
    expect(decideStop({ ...base, kind: 'kill', protocols: flowing, now: 5000 })).toBe('continue');
    expect(decideStop({ ...base, kind: 'kill', movedAt: 3000, protocols: flowing, now: 4000 })).toBe('continue');
    expect(decideStop({ ...base, kind: 'kill', movedAt: 3000, protocols: flowing, now: 4800 })).toBe('recovered');
  });

  it('waits out the settle time for kinds that may or may not move', () => {
    const flowing = [okFrom(0, 10_000), okFrom(0, 10_000)];
    expect(decideStop({ ...base, kind: 'agent-crash', protocols: flowing, now: 3500 })).toBe('continue');
    expect(decideStop({ ...base, kind: 'agent-crash', protocols: flowing, now: 4300 })).toBe('recovered');
  });

  it('judges a held fault only after it was undone', () => {
    const flowing = [okFrom(0, 20_000)];
    expect(decideStop({ ...base, kind: 'partition', protocols: flowing, now: 9000 })).toBe('continue');
    expect(decideStop({ ...base, kind: 'partition', undoneAt: 6000, protocols: flowing, now: 7000 })).toBe('continue');
    expect(decideStop({ ...base, kind: 'partition', undoneAt: 6000, protocols: flowing, now: 7800 })).toBe('recovered');
  });

  it('does not stop while one protocol is still failing, and gives up at the deadline', () => {
    const udpDown = [okFrom(0, 20_000), tries('t'.repeat(2000), 0)];
    expect(decideStop({ ...base, kind: 'keepalived', protocols: udpDown, now: 9000 })).toBe('continue');
    expect(decideStop({ ...base, kind: 'keepalived', protocols: udpDown, now: 11_001 })).toBe('deadline');
  });
});

describe('verdicts', () => {
  const obs = (o: Partial<DrillObservation>): DrillObservation => ({
    kind: 'kill', lease: LEASE, stop: 'recovered', previousOwner: 'a1', finalOwner: 'a2', tcp: CLEAN, udp: CLEAN, ...o,
  });

  it('passes a kill that moved the address to exactly one agent', () => {
    expect(judgeDrill(obs({ addressOn: ['a2'], tcp: { ...CLEAN, failed: 150, gapMs: 1800 } }))).toEqual([]);
  });

  it('fails a kill that left the address on two agents, on none, or away from the holder', () => {
    expect(judgeDrill(obs({ addressOn: ['a1', 'a2'] }))).toEqual(['the address is on 2 agents (a1, a2), not exactly one']);
    expect(judgeDrill(obs({ addressOn: [] }))).toEqual(['the address is on 0 agents (none), not exactly one']);
    expect(judgeDrill(obs({ addressOn: ['a3'] }))).toEqual(['the address is on a3 but the lease holder is a2']);
  });

  it('fails a kill whose address never moved or whose traffic never came back', () => {
    expect(judgeDrill(obs({ finalOwner: 'a1', stop: 'deadline' }))).toEqual([
      'traffic did not flow again before the deadline',
      'the address stayed with a1',
    ]);
  });

  it('fails a drain that refused or dropped a single probe', () => {
    expect(judgeDrill(obs({ kind: 'drain' }))).toEqual([]);
    expect(judgeDrill(obs({ kind: 'drain', tcp: { ...CLEAN, refused: 1 } }))).toEqual(['a planned handoff lost probes: 1 refused, 0 failed']);
    expect(judgeDrill(obs({ kind: 'drain', udp: { ...CLEAN, failed: 2 } }))).toEqual(['a planned handoff lost probes: 0 refused, 2 failed']);
    expect(judgeDrill(obs({ kind: 'drain', tcp: { ...CLEAN, refused: 1, resetAfterHandshake: 1 } }))).toEqual(['a planned handoff lost probes: 1 refused (1 reset after the handshake completed), 0 failed']);
  });

  it('fails a control-plane fault that moved the address or stopped traffic for a lease duration', () => {
    expect(judgeDrill(obs({ kind: 'apiserver-down', finalOwner: 'a1' }))).toEqual([]);
    expect(judgeDrill(obs({ kind: 'apiserver-down', finalOwner: 'a3' }))).toEqual(['the address moved from a1 to a3']);
    expect(judgeDrill(obs({ kind: 'partition', finalOwner: 'a3', addressOn: ['a3'] }))).toEqual([]);
    expect(judgeDrill(obs({ kind: 'partition', finalOwner: 'a1', tcp: { ...CLEAN, gapMs: 1500 } }))).toEqual([
      'traffic stopped for 1500 ms (>= one lease duration, 1500 ms)',
    ]);
    expect(judgeDrill(obs({ kind: 'apiserver-down', finalOwner: 'a1', udp: { ...CLEAN, refused: 3 } }))).toEqual([
      '3 probes refused while traffic should have kept flowing',
    ]);
  });

  it('accepts either outcome for agent-crash and keepalived, but never an unheld address', () => {
    expect(judgeDrill(obs({ kind: 'agent-crash', finalOwner: 'a1', addressOn: ['a1'] }))).toEqual([]);
    expect(judgeDrill(obs({ kind: 'agent-crash', finalOwner: 'a3', addressOn: ['a3'] }))).toEqual([]);
    expect(judgeDrill(obs({ kind: 'keepalived', finalOwner: '' }))).toEqual(['the address lease has no holder']);
  });
});

describe('percentiles', () => {
  it('uses the nearest rank', () => {
    expect(percentile([5], 50)).toBe(5);
    expect(percentile([4, 1, 3, 2], 50)).toBe(2);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 99)).toBe(10);
    expect(percentile(Array.from({ length: 200 }, (_, i) => i + 1), 99)).toBe(198);
    expect(() => percentile([], 50)).toThrow(RangeError);
  });

  it('summarizes repeated runs as p50/p99/max, or null without runs', () => {
    expect(spread([1800, 1200, 2500])).toEqual({ p50: 1800, p99: 2500, max: 2500 });
    expect(spread([])).toBeNull();
  });
});
