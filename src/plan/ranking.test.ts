import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { rankAgents, rendezvousScore } from './ranking.js';

const VIP_1 = '203.0.113.10';
const addresses100 = Array.from({ length: 100 }, (_, i) => `203.0.113.${i + 1}`);

function shuffle<T>(xs: readonly T[], seed: number): T[] {
  const out = [...xs];
  let s = seed >>> 0 || 1;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) >>> 0;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe('rendezvous ranking', () => {
  it('scores are stable across calls and differ by agent', () => {
    expect(rendezvousScore('agent-a', VIP_1)).toBe(rendezvousScore('agent-a', VIP_1));
    expect(rendezvousScore('agent-a', VIP_1)).not.toBe(rendezvousScore('agent-b', VIP_1));
  });

  it('ranks every agent once, best score first', () => {
    const ranked = rankAgents(['agent-c', 'agent-a', 'agent-b', 'agent-a'], VIP_1);
    expect([...ranked].sort()).toEqual(['agent-a', 'agent-b', 'agent-c']);
    const scores = ranked.map((a) => rendezvousScore(a, VIP_1));
    for (let i = 1; i < scores.length; i++) expect(scores[i - 1]! >= scores[i]!).toBe(true);
  });

  it('gives each of 3 agents 25..42 of 100 addresses', () => {
    for (const agents of [
      ['agent-a', 'agent-b', 'agent-c'],
      ['sn-1', 'sn-2', 'sn-3'],
      ['ip-10-0-0-11', 'ip-10-0-0-12', 'ip-10-0-0-13'],
    ]) {
      const counts = new Map(agents.map((a) => [a, 0]));
      for (const addr of addresses100) {
        const top = rankAgents(agents, addr)[0]!;
        counts.set(top, counts.get(top)! + 1);
      }
      for (const [agent, n] of counts) {
        expect({ agent, inRange: n >= 25 && n <= 42, n }).toEqual({ agent, inRange: true, n });
      }
    }
  });

  it('shuffled input gives the same ranking', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.string({ minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 8 }), fc.ipV4(), fc.integer(), (agents, addr, seed) => {
        expect(rankAgents(shuffle(agents, seed), addr)).toEqual(rankAgents(agents, addr));
      }),
    );
  });

  it('removing an agent moves only the addresses it ranked first, and keeps the others in order', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.stringMatching(/^[a-z0-9-]{1,10}$/), { minLength: 2, maxLength: 6 }), fc.nat(), (agents, k) => {
        const gone = agents[k % agents.length]!;
        const rest = agents.filter((a) => a !== gone);
        for (const addr of addresses100.slice(0, 40)) {
          const before = rankAgents(agents, addr);
          const after = rankAgents(rest, addr);
          expect(after).toEqual(before.filter((a) => a !== gone));
          if (before[0] !== gone) expect(after[0]).toBe(before[0]);
        }
      }),
      { numRuns: 50 },
    );
  });
});
