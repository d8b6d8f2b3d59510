import { DEFAULT_HEALTH_SETTINGS as S, decideHealth, initialHealth, nextHealthChangeAt, sampleReason, type LinkSample } from './agent-health.js';

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
