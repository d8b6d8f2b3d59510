import { describe, expect, it } from '@jest/globals';
import { DEFAULT_HEALTH_SETTINGS as S, decideHealth, initialHealth, nextHealthChangeAt, sampleReason, vrrpSamples, type LinkSample } from './agent-health.js';

const UP: LinkSample[] = [
  { name: 'ext0', role: 'external', up: true },
  { name: 'ext1', role: 'external', up: true },
  { name: 'int0', role: 'internal', up: true },
];
const EXT1_DOWN = UP.map((l) => (l.name === 'ext1' ? { ...l, up: false } : l));
const ALL_DOWN = UP.map((l) => ({ ...l, up: false }));

describe('agent health', () => {
  it('names the first failing link, external before internal', () => {
    expect(sampleReason(UP)).toBe('ok');
    expect(sampleReason(EXT1_DOWN)).toBe('externalLinkDown:ext1');
    expect(sampleReason(ALL_DOWN)).toBe('externalLinkDown:ext0');
    expect(sampleReason(UP.map((l) => (l.role === 'internal' ? { ...l, up: false } : l)))).toBe('internalLinkDown:int0');
  });

  it('turns unhealthy only after the short hold-down, healthy only after the long one', () => {
    let h = initialHealth(0);
    h = decideHealth(h, EXT1_DOWN, 100, S);
    expect(h.published).toBe('ok');
    expect(nextHealthChangeAt(h, S)).toBe(100 + S.unhealthyAfterMs);
    h = decideHealth(h, EXT1_DOWN, 100 + S.unhealthyAfterMs, S);
    expect(h.published).toBe('externalLinkDown:ext1');
    h = decideHealth(h, UP, 2000, S);
    expect(h.published).toBe('externalLinkDown:ext1');
    h = decideHealth(h, UP, 2000 + S.healthyAfterMs - 1, S);
    expect(h.published).toBe('externalLinkDown:ext1');
    h = decideHealth(h, UP, 2000 + S.healthyAfterMs, S);
    expect(h.published).toBe('ok');
  });

  it('does not flap: a link that comes back briefly keeps the agent unhealthy', () => {
    let h = decideHealth(decideHealth(initialHealth(0), EXT1_DOWN, 0, S), EXT1_DOWN, S.unhealthyAfterMs, S);
    for (let t = 2000; t < 30_000; t += 3000) {
      h = decideHealth(h, UP, t, S);
      h = decideHealth(h, EXT1_DOWN, t + 1500, S);
      expect(h.published).not.toBe('ok');
    }
  });

  it('a blip shorter than the hold-down changes nothing', () => {
    let h = decideHealth(initialHealth(0), EXT1_DOWN, 100, S);
    h = decideHealth(h, UP, 100 + S.unhealthyAfterMs - 1, S);
    h = decideHealth(h, UP, 100 + S.unhealthyAfterMs + 5, S);
    expect(h.published).toBe('ok');
  });
});

describe('health inputs beyond link state', () => {
  const VIP_1 = '203.0.113.10';
  const VIP_2 = '203.0.113.11';

  it('keepalived FAULT counts only for addresses this agent made eligible, and only once reported', () => {
    const eligible = new Map([[VIP_1, true], [VIP_2, false], ['203.0.113.12', true]]);
    const states = new Map([[VIP_1, 'FAULT'], [VIP_2, 'FAULT']]);
    expect(vrrpSamples(eligible, states)).toEqual([{ name: VIP_1, role: 'external', up: false, check: 'vrrp' }]);
    expect(vrrpSamples(eligible, new Map([[VIP_1, 'MASTER']]))).toEqual([{ name: VIP_1, role: 'external', up: true, check: 'vrrp' }]);
    expect(vrrpSamples(eligible, new Map([[VIP_1, 'BACKUP']]))[0]!.up).toBe(true);
  });

  it('names the cause: a down link before the keepalived FAULT and the unreachable next hops it causes', () => {
    const fault: LinkSample = { name: VIP_1, role: 'external', up: false, check: 'vrrp' };
    const unreachable: LinkSample = { name: 'int0', role: 'internal', up: false, check: 'reachability' };
    expect(sampleReason([...UP, unreachable, fault])).toBe(`vrrpFault:${VIP_1}`);
    expect(sampleReason([...UP, unreachable])).toBe('internalUnreachable:int0');
    expect(sampleReason([...UP.map((l) => (l.name === 'int0' ? { ...l, up: false } : l)), unreachable, fault])).toBe('internalLinkDown:int0');
  });

  it('a keepalived FAULT lasting less than the hold-down (an instance leaving FAULT after the agent made it eligible) changes nothing', () => {
    const fault: LinkSample = { name: VIP_1, role: 'external', up: false, check: 'vrrp' };
    let h = decideHealth(initialHealth(0), [...UP, fault], 0, S);
    h = decideHealth(h, [...UP, { ...fault, up: true }], 50, S);
    h = decideHealth(h, [...UP, { ...fault, up: true }], 5000, S);
    expect(h.published).toBe('ok');
  });

  it('a keepalived FAULT that lasts turns the agent unhealthy after the hold-down, with the address as the reason', () => {
    const fault: LinkSample = { name: VIP_1, role: 'external', up: false, check: 'vrrp' };
    let h = decideHealth(initialHealth(0), [...UP, fault], 0, S);
    expect(h.published).toBe('ok');
    h = decideHealth(h, [...UP, fault], S.unhealthyAfterMs, S);
    expect(h.published).toBe(`vrrpFault:${VIP_1}`);
  });
});
