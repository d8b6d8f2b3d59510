import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { Mapping } from '../api/types.js';
import { refKey } from '../model/snapshot.js';
import { wantedKeys } from './leader-claims.js';
import { planLeaderDuties } from './leader-plan.js';
import { applyPlan, baseInput, mapping, pool } from './leader-testing.js';
import { judged, provisionalMappings } from './provisional.js';

const POOLS = [pool('pool-a', { addresses: ['203.0.113.10-203.0.113.11'] }), pool('pool-b', { addresses: ['203.0.113.12'], allowedNamespaces: ['team-a'] })];
const ADDRESSES = ['203.0.113.10', '203.0.113.11', '203.0.113.12', '203.0.113.99'];

const uids = (live: Mapping[]): string[] => [...provisionalMappings(live, POOLS)].sort();

describe('provisionalMappings (ADR 0008 amendment 3)', () => {
  it('takes a new Mapping whose pairs nobody else asks for or holds', () => {
    const m = mapping('new', { addresses: ['203.0.113.10'], ports: [{ port: 80 }] });
    expect(uids([m])).toEqual([m.uid]);
  });

  it('takes neither of two new Mappings asking for the same pair, in any order', () => {
    const a = mapping('a', { addresses: ['203.0.113.10'], ports: [{ port: 80 }, { port: 81 }] });
    const b = mapping('b', { addresses: ['203.0.113.10'], ports: [{ port: 81 }] });
    expect(uids([a, b])).toEqual([]);
    expect(uids([b, a])).toEqual([]);
  });

  it('does not take a pair another Mapping holds in status.claims, even after that Mapping stopped asking for it', () => {
    const holder = mapping('holder', { addresses: ['203.0.113.10'], ports: [{ port: 82 }], status: { observedGeneration: 1, claims: ['203.0.113.10:80/tcp'] }, generation: 2 });
    const newcomer = mapping('new', { addresses: ['203.0.113.10'], ports: [{ port: 80 }] });
    expect(uids([holder, newcomer])).not.toContain(newcomer.uid);
  });

  it('does not take a Mapping the leader judged at its generation, accepted or refused', () => {
    const refused = mapping('refused', { addresses: ['203.0.113.10'], ports: [{ port: 80 }], status: { observedGeneration: 1, invalid: 'PortConflict: ...' } });
    expect(judged(refused)).toBe(true);
    expect(uids([refused])).toEqual([]);
    const edited = mapping('edited', { addresses: ['203.0.113.10'], ports: [{ port: 80 }], generation: 3, status: { observedGeneration: 2, invalid: 'no' } });
    expect(judged(edited)).toBe(false);
    expect(uids([edited])).toEqual([edited.uid]);
  });

  it('does not take a Mapping the pools would refuse, for any of its addresses', () => {
    const closed = mapping('closed', { namespace: 'team-b', addresses: ['203.0.113.10', '203.0.113.12'], ports: [{ port: 80 }] });
    const outside = mapping('outside', { addresses: ['203.0.113.11', '203.0.113.99'], ports: [{ port: 80 }] });
    const open = mapping('open', { namespace: 'team-a', addresses: ['203.0.113.12'], ports: [{ port: 81 }] });
    expect(uids([closed, outside, open])).toEqual([open.uid]);
  });

  // The contract with the leader: whatever the history (Mappings accepted, then edited, plus
  // newcomers), a Mapping an owner programs early is one the leader's next pass accepts whole.
  it('agrees with the leader: every provisional Mapping is accepted with every pair it asks for', () => {
    const spec = fc.record({
      namespace: fc.constantFrom('team-a', 'team-b'),
      addresses: fc.uniqueArray(fc.constantFrom(...ADDRESSES), { minLength: 1, maxLength: 2 }),
      ports: fc.uniqueArray(fc.constantFrom(80, 81, 82), { minLength: 1, maxLength: 2 }),
      created: fc.constantFrom('2026-01-01T00:00:00Z', '2026-01-01T00:00:01Z'),
    });
    fc.assert(
      fc.property(fc.array(spec, { maxLength: 5 }), fc.array(fc.option(spec, { nil: undefined }), { maxLength: 5 }), fc.array(spec, { maxLength: 4 }), (first, edits, newcomers) => {
        const build = (name: string, s: { namespace: string; addresses: string[]; ports: number[]; created: string }, extra: { generation?: number } = {}): Mapping =>
          mapping(name, { namespace: s.namespace, addresses: s.addresses, ports: s.ports.map((port) => ({ port })), created: s.created, ...extra });
        let input = baseInput({ pools: POOLS, mappings: first.map((s, i) => ({ ok: true, mapping: build(`m${i}`, s) })) });
        input = applyPlan(input, planLeaderDuties(input), '2026-01-01T00:01:00Z');
        // Some judged Mappings are edited (a new generation the leader has not seen), newcomers arrive.
        const edited = input.mappings.map((e, i) => {
          const s = edits[i];
          if (!e.ok || s === undefined) return e;
          const next = build(e.mapping.name, { ...s, namespace: e.mapping.namespace, created: e.mapping.creationTimestamp }, { generation: e.mapping.generation + 1 });
          return { ok: true as const, mapping: { ...e.mapping, generation: next.generation, spec: next.spec } };
        });
        const arrived = newcomers.map((s, i) => ({ ok: true as const, mapping: build(`n${i}`, s) }));
        const now = { ...input, mappings: [...edited, ...arrived] };
        const live = now.mappings.flatMap((e) => (e.ok ? [e.mapping] : []));
        const early = provisionalMappings(live, POOLS);
        const verdicts = planLeaderDuties(now);
        const writes = new Map(verdicts.mappingWrites.map((w) => [w.uid, w.status.claims]));
        for (const m of live.filter((x) => early.has(x.uid))) {
          expect(verdicts.verdicts.get(refKey(m))?.accepted).toBe(true);
          const claims = writes.get(m.uid) ?? m.status.claims ?? [];
          expect([...claims].sort()).toEqual(wantedKeys(m));
        }
      }),
      { numRuns: 300 },
    );
  });
});
