import { describe, expect, it } from '@jest/globals';
import { parseMonitorLine, replayWire, type AddressEvent } from './wire-timeline.js';

const VIP_1 = '203.0.113.10';
const T0 = Date.UTC(2026, 10, 26, 16, 35, 0);

describe('parseMonitorLine', () => {
  it('reads additions and deletions of the address with microseconds', () => {
    expect(parseMonitorLine(`[2026-11-26T16:35:00.380616] 3: ext0    inet ${VIP_1}/32 scope global ext0`, VIP_1)).toEqual({ t: T0 + 380.616, added: true });
    expect(parseMonitorLine(`[2026-11-26T16:35:00.382110] Deleted 3: ext0    inet ${VIP_1}/32 scope global ext0`, VIP_1)).toEqual({ t: T0 + 382.11, added: false });
  });

  it('ignores other addresses, a longer address sharing the prefix, IPv6 and continuation lines', () => {
    expect(parseMonitorLine('[2026-11-26T16:35:00.380616] 3: ext0    inet 203.0.113.11/32 scope global ext0', VIP_1)).toBeUndefined();
    expect(parseMonitorLine('[2026-11-26T16:35:00.380616] 3: ext0    inet 203.0.113.100/32 scope global ext0', VIP_1)).toBeUndefined();
    expect(parseMonitorLine('[2026-11-26T16:35:01.073393] 3: d0    inet6 fe80::7470:b3ff:fe66:aa58/64 scope link ', VIP_1)).toBeUndefined();
    expect(parseMonitorLine('       valid_lft forever preferred_lft forever', VIP_1)).toBeUndefined();
  });
});

describe('replayWire', () => {
  const ev = (t: number, agent: string, added: boolean): AddressEvent => ({ t, agent, added });

  it('a clean move (old deletes before new adds) has no duplicate, and the vacancy between them', () => {
    const w = replayWire(['a1'], [ev(100, 'a1', false), ev(130, 'a2', true)], 0, 1000);
    expect(w).toEqual({ duplicates: [], vacant: [{ from: 100, to: 130, agents: [] }], final: ['a2'] });
  });

  it('an add on the new owner before the old one deletes is a duplicate, with both names', () => {
    const w = replayWire(['a1'], [ev(130, 'a1', false), ev(100, 'a2', true)], 0, 1000);
    expect(w.duplicates).toEqual([{ from: 100, to: 130, agents: ['a1', 'a2'] }]);
    expect(w.vacant).toEqual([]);
  });

  it('a deletion and an addition at the same instant are not a duplicate', () => {
    expect(replayWire(['a1'], [ev(100, 'a2', true), ev(100, 'a1', false)], 0, 1000).duplicates).toEqual([]);
  });

  it('touching duplicate stretches merge; one still open at the end closes there', () => {
    const w = replayWire(['a1', 'a2'], [ev(10, 'a3', true), ev(20, 'a1', false), ev(30, 'a2', false)], 0, 50);
    expect(w.duplicates).toEqual([{ from: 0, to: 30, agents: ['a1', 'a2', 'a3'] }]);
    expect(replayWire(['a1'], [ev(40, 'a2', true)], 0, 50).duplicates).toEqual([{ from: 40, to: 50, agents: ['a1', 'a2'] }]);
  });

  it('events outside the watch are ignored; a stray deletion does not go below zero', () => {
    const w = replayWire(['a1'], [ev(-5, 'a2', true), ev(10, 'a3', false), ev(60, 'a2', true)], 0, 50);
    expect(w).toEqual({ duplicates: [], vacant: [], final: ['a1'] });
  });
});
