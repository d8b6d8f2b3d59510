import { describe, expect, it } from '@jest/globals';
import { expectGolden } from '../../test/support/golden.js';
import { DEFAULT_SETTINGS } from '../model/settings.js';
import { planDataPlane } from '../plan/plan-dataplane.js';
import { withOwned } from '../plan/desired.js';
import { goldenSnapshots, mapping, ok, service, slice, snapshot, VIP_1, POD_1, POD_2 } from './testing/fixtures.js';
import type { RuleCache } from './render-iptables.js';
import { computeRuleSet, emptyRuleSet, insertAllJumps, planJumpFixes, probability, renderIptablesFull, renderIptablesRestore } from './render-iptables.js';
import { computeSets, maxElem, renderIpsetDelta, renderIpsetFromNothing, renderIpsetFull } from './render-ipset.js';
import { computeRouting, renderRoutes, renderRoutesFromNothing } from './render-routes.js';
import { renderSysctl } from './render-sysctl.js';
import { fitComment, hashKey, quoteComment } from './render-names.js';
import { JUMPS, jumpSpec } from './render-names.js';

const snaps = goldenSnapshots();

describe('golden files (test/golden/dataplane/)', () => {
  it.each(Object.keys(snaps))('%s', (name) => {
    const { desired } = planDataPlane(snaps[name]!, DEFAULT_SETTINGS);
    expectGolden(`dataplane/${name}.iptables`, renderIptablesFull(desired));
    expectGolden(`dataplane/${name}.ipset`, renderIpsetFromNothing(desired));
    expectGolden(`dataplane/${name}.routes`, renderRoutesFromNothing(desired));
    expectGolden(`dataplane/${name}.sysctl`, renderSysctl(desired));
  });
});

const echo = service('echo', [{ name: 'http', port: 80 }]);
function twoMappings(endpoints: string[]) {
  return planDataPlane(snapshot({
    mappings: [
      ok(mapping({ name: 'a', serviceName: 'echo', addresses: [VIP_1], ports: [{ port: 1000, servicePort: 80 }] })),
      ok(mapping({ name: 'b', serviceName: 'echo2', addresses: [VIP_1], ports: [{ port: 2000, servicePort: 80 }] })),
    ],
    services: [echo, service('echo2', [{ name: 'http', port: 80 }])],
    endpointSlices: [
      slice({ name: 'e', service: 'echo', ports: [{ name: 'http', port: 80 }], endpoints: [POD_1] }),
      slice({ name: 'e2', service: 'echo2', ports: [{ name: 'http', port: 80 }], endpoints }),
    ],
  }), DEFAULT_SETTINGS).desired;
}

describe('partial iptables restore', () => {
  it('is empty when nothing changed', () => {
    const rules = computeRuleSet(twoMappings([POD_1]));
    expect(renderIptablesRestore({ desired: rules, current: rules, jumps: [] }).text).toBe('');
  });

  it('rewrites only the service chain whose endpoints changed', () => {
    const before = computeRuleSet(twoMappings([POD_1]));
    const after = computeRuleSet(twoMappings([POD_1, POD_2]));
    const plan = renderIptablesRestore({ desired: after, current: before, jumps: [] });
    expect(plan.rewritten).toHaveLength(1);
    expect(plan.rewritten[0]).toMatch(/^nat\/SMARTNAT-S-/);
    expect(plan.text).toContain('default/b 203.0.113.10:2000/tcp');
    expect(plan.text).not.toContain('default/a ');
  });

  it('deletes stale chains after flushing, and after the chains that referenced them', () => {
    const before = computeRuleSet(twoMappings([POD_1]));
    const after = computeRuleSet(twoMappings([]));
    const plan = renderIptablesRestore({ desired: after, current: before, jumps: [] });
    const all = plan.text.split('\n');
    const lines = all.slice(all.indexOf('*nat'), all.indexOf('COMMIT', all.indexOf('*nat')));
    const stale = plan.deleted[0]!.split('/')[1]!;
    expect(plan.deleted).toHaveLength(1);
    expect(lines.indexOf(`:${stale} - [0:0]`)).toBeGreaterThan(0);
    const lastAppend = Math.max(...lines.map((l, i) => (l.startsWith('-A ') ? i : -1)));
    expect(lines.indexOf(`-X ${stale}`)).toBeGreaterThan(lastAppend);
    expect(plan.text).toMatch(/-A SMARTNAT-REJECT .*2000.*tcp-reset/);
  });
});

describe('rule cache', () => {
  const flat = (r: ReturnType<typeof computeRuleSet>) => JSON.stringify(Object.entries(r).map(([t, m]) => [t, [...m]]));

  it('gives the same rules as rendering from scratch, across changes, and reuses unchanged chains', () => {
    const cache: RuleCache = new Map();
    const states = [twoMappings([POD_1]), twoMappings([POD_1, POD_2]), twoMappings([]), twoMappings([POD_2]), ...Object.values(snaps).map((s) => planDataPlane(s, DEFAULT_SETTINGS).desired)];
    let previous: ReturnType<typeof computeRuleSet> | undefined;
    for (const d of states) {
      const cached = computeRuleSet(d, cache);
      expect(flat(cached)).toBe(flat(computeRuleSet(d)));
      previous = cached;
    }
    const again = computeRuleSet(states[states.length - 1]!, cache);
    expect([...again.nat].every(([chain, rules]) => previous!.nat.get(chain) === rules || chain === 'SMARTNAT-SERVICES' || chain === 'SMARTNAT-POSTROUTING')).toBe(true);
  });
});

describe('jump fixes', () => {
  const builtin = (rules: Record<string, string[]>) => ({ ...emptyRuleSet(), mangle: new Map(Object.entries(rules)) });
  const pre = JUMPS[0]!;
  const others = Object.fromEntries(JUMPS.filter((j) => j.table === 'mangle' && j !== pre).map((j) => [j.from, [jumpSpec(j)]]));

  it('leaves a jump at position 1 alone', () => {
    const fixes = planJumpFixes(builtin({ ...others, PREROUTING: [jumpSpec(pre), '-j ACCEPT'] }));
    expect(fixes.filter((f) => f.table === 'mangle')).toEqual([]);
  });

  it('moves a jump that is not first, and removes duplicates', () => {
    const fixes = planJumpFixes(builtin({ ...others, PREROUTING: ['-j FOREIGN', jumpSpec(pre), jumpSpec(pre)] }));
    expect(fixes.filter((f) => f.table === 'mangle').map((f) => f.action)).toEqual(['delete', 'delete', 'insert']);
  });

  it('inserts every jump from nothing', () => {
    expect(planJumpFixes(emptyRuleSet())).toEqual(insertAllJumps());
  });
});

describe('ipset rendering', () => {
  it('adds and deletes only the difference; an ownership change is one set line', () => {
    const desired = twoMappings([POD_1]);
    const flipped = withOwned(desired, new Set());
    expect(renderIpsetDelta(computeSets(desired), computeSets(flipped))).toBe(`del smartnat-owned ${VIP_1} -exist\n`);
    expect(renderIptablesRestore({ desired: computeRuleSet(flipped), current: computeRuleSet(desired), jumps: [] }).text).toBe('');
  });

  it('swaps through a temporary set, destroying a leftover one first and not re-creating an existing set', () => {
    const text = renderIpsetFull(computeSets(twoMappings([POD_1])), { existing: new Set(['smartnat-owned', 'smartnat-tmp-owned']), only: new Set(['smartnat-owned']) });
    expect(text).toBe([
      'destroy smartnat-tmp-owned',
      'create smartnat-tmp-owned hash:ip family inet hashsize 1024 maxelem 65536',
      `add smartnat-tmp-owned ${VIP_1}`,
      'swap smartnat-tmp-owned smartnat-owned',
      'destroy smartnat-tmp-owned',
      '',
    ].join('\n'));
  });

  it('sizes maxelem from the data', () => {
    expect([maxElem(0), maxElem(32768), maxElem(40000), maxElem(70000)]).toEqual([65536, 65536, 131072, 262144]);
  });
});

describe('routes', () => {
  it('adds nothing when the kernel already has it, and deletes only what is ours and stale', () => {
    const desired = computeRouting(twoMappings([POD_1]));
    expect(renderRoutes({ desired, current: desired, protocol: 196 })).toBe('');
    const stale = { rules: [{ pref: 7802, fwmark: '0x20/0xf0', table: 7802 }], routes: [{ table: 7802, destination: 'default', gateway: '192.0.2.1', device: 'ext1', scope: 'global' as const }] };
    expect(renderRoutes({ desired, current: { rules: [...desired.rules, ...stale.rules], routes: [...desired.routes, ...stale.routes] }, protocol: 196 })).toBe(
      'route del default dev ext1 table 7802 proto 196\nrule del pref 7802 fwmark 0x20/0xf0 lookup 7802 protocol 196\n',
    );
  });
});

describe('names and comments', () => {
  it('keeps comments within 255 bytes and distinct when cut', () => {
    const long = 'n'.repeat(63);
    const a = fitComment(`${long}/${'a'.repeat(253)} 203.0.113.10:1/tcp`);
    const b = fitComment(`${long}/${'a'.repeat(252)}b 203.0.113.10:1/tcp`);
    expect(Buffer.byteLength(a)).toBeLessThanOrEqual(255);
    expect(a).not.toBe(b);
    expect(fitComment('ns/x"; rm -rf')).toBe('ns/x__ rm -rf');
  });

  it('quotes comments as iptables-save does', () => {
    expect(quoteComment('smartnat-entry')).toBe('smartnat-entry');
    expect(quoteComment('ns/a 1.2.3.4:1/tcp')).toBe('"ns/a 1.2.3.4:1/tcp"');
  });

  it('hashes to base32 of the requested length', () => {
    expect(hashKey('default/echo/203.0.113.10/tcp/8080')).toMatch(/^[A-Z2-7]{16}$/);
  });

  it('prints probabilities as the kernel stores them', () => {
    expect([probability(2), probability(3), probability(4)]).toEqual(['0.50000000000', '0.33333333349', '0.25000000000']);
  });
});

describe('egress rules (ADR 0009)', () => {
  const egressDesired = planDataPlane(snaps['egress']!, DEFAULT_SETTINGS).desired;
  const markRules = (d: typeof egressDesired): string[] => (computeRuleSet(d).mangle.get('SMARTNAT-PREROUTING') ?? []).filter((r) => r.includes('-j MARK'));

  it('marks only on the internal interfaces, or on any interface when the agent names none', () => {
    expect(markRules(egressDesired).every((r) => r.startsWith('-i int0 '))).toBe(true);
    const anyInput = markRules({ ...egressDesired, internalInterfaces: [] });
    expect(anyInput).toHaveLength(2);
    expect(anyInput.some((r) => r.includes('-i '))).toBe(false);
  });

  it('renders nothing for an egress address whose uplink the agent lacks (no rule can route or translate it)', () => {
    const orphan = { ...egressDesired, egress: [{ ...egressDesired.egress![0]!, uplink: 'ext9' }] };
    const rules = computeRuleSet(orphan);
    expect(markRules(orphan)).toEqual([]);
    expect((rules.nat.get('SMARTNAT-POSTROUTING') ?? []).filter((r) => r.includes('SNAT'))).toEqual([]);
  });

  it('without egress, no egress rule, set or FORWARD accept exists', () => {
    const { desired } = planDataPlane(snaps['one-mapping']!, DEFAULT_SETTINGS);
    expect(renderIptablesFull(desired)).not.toMatch(/egress/);
    expect([...computeSets(desired).keys()]).toEqual(['smartnat-eligible', 'smartnat-owned', 'smartnat-allow', 'smartnat-count-allowed', 'smartnat-count-denied']);
  });
});
