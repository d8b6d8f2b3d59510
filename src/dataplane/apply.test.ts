import { beforeEach, describe, expect, it } from '@jest/globals';
import { DEFAULT_SETTINGS } from '../model/settings.js';
import type { Snapshot } from '../model/snapshot.js';
import { planDataPlane } from '../plan/plan-dataplane.js';
import { CommandFailedError } from './command-runner.js';
import { DataPlaneApplier, DataPlaneSyncError } from './apply.js';
import { cleanupDataPlane } from './cleanup.js';
import { tokenize } from './render-dump.js';
import { CHAIN_PREFIX } from './render-names.js';
import { FakeKernel } from './testing/fake-kernel.js';
import { traceAll, tracePacket } from './testing/trace.js';
import type { Packet } from './testing/trace.js';
import {
  CLIENT_ALLOWED, CLIENT_OTHER, CLIENTS_ALLOWED_NET, POD_1, POD_2, POD_3, VIP_1, VIP_2, mapping, ok, service, slice, snapshot,
} from './testing/fixtures.js';

const VIP_FOREIGN = '203.0.113.99';

function world(options: { endpointsB?: string[]; owned?: ReadonlySet<string> | 'allEligible'; extra?: Partial<Snapshot> } = {}) {
  const snap = snapshot({
    owned: options.owned ?? 'allEligible',
    mappings: [
      ok(mapping({ name: 'web', addresses: [VIP_1], ports: [{ port: 8080, servicePort: 80 }], allowedSources: [CLIENTS_ALLOWED_NET] })),
      ok(mapping({ name: 'api', addresses: [VIP_2], ports: [{ port: 8080, servicePort: 80 }, { port: 53, protocol: 'udp' }] })),
    ],
    services: [service('web', [{ name: 'http', port: 80 }]), service('api', [{ name: 'http', port: 80 }, { name: 'dns', port: 53, protocol: 'udp' }])],
    endpointSlices: [
      slice({ name: 'web-1', service: 'web', ports: [{ name: 'http', port: 8080 }], endpoints: [POD_1] }),
      slice({ name: 'api-1', service: 'api', ports: [{ name: 'http', port: 9000 }, { name: 'dns', port: 5353, protocol: 'udp' }], endpoints: options.endpointsB ?? [POD_2] }),
    ],
    ...options.extra,
  });
  return planDataPlane(snap, DEFAULT_SETTINGS).desired;
}

/** Every jump in the dump names a chain that exists (or a built-in target). */
function danglingJumps(kernel: FakeKernel): string[] {
  const targets = new Set(['ACCEPT', 'DROP', 'RETURN', 'REJECT', 'DNAT', 'MARK', 'CONNMARK', 'TCPMSS', 'MASQUERADE']);
  const out: string[] = [];
  for (const [table, chains] of kernel.tables) {
    for (const [chain, dump] of chains) {
      for (const rule of dump.rules) {
        const t = tokenize(rule);
        if (!t.includes('-j')) continue; // a counting rule (ADR 0011) jumps nowhere
        const target = t[t.indexOf('-j') + 1] ?? '';
        if (!targets.has(target) && !chains.has(target)) out.push(`${table}/${chain} -> ${target}`);
      }
    }
  }
  return out;
}

function trace(kernel: FakeKernel, p: Partial<Packet>) {
  return tracePacket({ tables: kernel.tables, sets: kernel.sets }, { src: CLIENT_ALLOWED, dst: VIP_1, proto: 'tcp', dport: 8080, inIface: 'ext0', ...p });
}

/** Commands that wrote rules, sets or routes. */
function writers(kernel: FakeKernel): string[] {
  return kernel.calls.filter((c) => c.input !== undefined && c.cmd !== 'conntrack').map((c) => c.cmd);
}

/** Every conntrack deletion run, single (`conntrack -D ...`) or batched (FakeKernel keeps a -R file's lines). */
function conntrackDeletions(kernel: FakeKernel): string[] {
  return kernel.callsOf('conntrack').flatMap((c) => (c.args[0] === '-R' ? (c.input ?? '').split('\n').filter((l) => l !== '') : [c.args.join(' ')]));
}

describe('DataPlaneApplier with a FakeKernel', () => {
  let kernel: FakeKernel;
  let applier: DataPlaneApplier;

  beforeEach(() => {
    kernel = new FakeKernel();
    applier = new DataPlaneApplier({ runner: kernel });
  });

  it('a first sync programs everything: jumps first in their chains, no dangling jump, traffic translated', async () => {
    const report = await applier.sync(world());
    expect(report.mode).toBe('full');
    expect(writers(kernel)).toEqual(['ipset', 'iptables-restore', 'ip']);
    expect(kernel.callsOf('iptables-restore')[0]?.args).toEqual(['--noflush', '-w', '5']);
    expect(danglingJumps(kernel)).toEqual([]);
    expect(kernel.tables.get('nat')?.get('PREROUTING')?.rules[0]).toBe('-m comment --comment smartnat-entry -j SMARTNAT-SERVICES');
    expect(trace(kernel, {})).toEqual({ kind: 'dnat', to: `${POD_1}:8080`, masquerade: true, connmark: 0x10 });
    expect(trace(kernel, { src: CLIENT_OTHER })).toEqual({ kind: 'drop', chain: 'SMARTNAT-PREROUTING' });
    expect(trace(kernel, { dport: 22 })).toMatchObject({ kind: 'drop' });
    expect(trace(kernel, { dst: VIP_FOREIGN })).toEqual({ kind: 'untouched', connmark: 0 });
    expect(trace(kernel, { dst: VIP_2, proto: 'udp', dport: 53, src: CLIENT_OTHER })).toMatchObject({ kind: 'dnat', to: `${POD_2}:5353` });
    expect(kernel.ipRules).toEqual([{ pref: 7801, fwmark: '0x10/0xf0', table: 7801, protocol: 196 }]);
  });

  it('is idempotent: a second sync of the same state writes nothing, partial or full', async () => {
    await applier.sync(world());
    const before = kernel.calls.length;
    expect((await applier.sync(world())).mode).toBe('skipped');
    expect((await applier.sync(world(), { full: true })).mode).toBe('skipped');
    expect(kernel.calls.slice(before).filter((c) => c.input !== undefined)).toEqual([]);
  });

  it('a partial sync rewrites only the changed Mapping chain and deletes conntrack of the gone endpoint', async () => {
    await applier.sync(world());
    kernel.calls.length = 0;
    const report = await applier.sync(world({ endpointsB: [POD_3] }));
    expect(report.mode).toBe('partial');
    expect(writers(kernel)).toEqual(['iptables-restore']);
    const input = kernel.callsOf('iptables-restore')[0]?.input ?? '';
    expect(report.rewrittenChains).toHaveLength(2);
    expect(input).not.toContain('default/web');
    expect(input).toContain(`--to-destination ${POD_3}:9000`);
    expect(report.conntrack.map((c) => c.reason)).toEqual(['endpointGone', 'endpointGone']);
    expect(conntrackDeletions(kernel)).toContain(`-D -p tcp --orig-dst ${VIP_2} --orig-port-dst 8080 --reply-src ${POD_2}`);
    expect(kernel.callsOf('conntrack')).toHaveLength(1); // two deletions, one exec
    expect(trace(kernel, { dst: VIP_2 })).toMatchObject({ kind: 'dnat', to: `${POD_3}:9000` });
  });

  it('spreads over several endpoints (statistic cascade)', async () => {
    await applier.sync(world({ endpointsB: [POD_1, POD_2, POD_3] }));
    const outcomes = traceAll({ tables: kernel.tables, sets: kernel.sets }, { src: CLIENT_OTHER, dst: VIP_2, proto: 'tcp', dport: 8080, inIface: 'ext0' });
    expect(outcomes.map((o) => (o.kind === 'dnat' ? o.to : o.kind))).toEqual([`${POD_1}:9000`, `${POD_2}:9000`, `${POD_3}:9000`]);
  });

  it('zero endpoints gives a reject (tcp reset / port unreachable), and endpoints arriving clear conntrack', async () => {
    await applier.sync(world({ endpointsB: [] }));
    expect(trace(kernel, { dst: VIP_2 })).toEqual({ kind: 'reject', with: 'tcp-reset' });
    expect(trace(kernel, { dst: VIP_2, proto: 'udp', dport: 53 })).toEqual({ kind: 'reject', with: 'icmp-port-unreachable' });
    const report = await applier.sync(world());
    expect(report.conntrack.map((c) => c.reason)).toEqual(['endpointsFromNone', 'endpointsFromNone']);
    expect(danglingJumps(kernel)).toEqual([]);
  });

  it('an ownership change is one set change plus conntrack, never a rule rewrite', async () => {
    await applier.sync(world());
    kernel.calls.length = 0;
    kernel.flows.set(VIP_1, 3);
    const report = await applier.setOwned(new Set([VIP_2]));
    expect(writers(kernel)).toEqual(['ipset']);
    expect(kernel.callsOf('ipset')[0]?.input).toBe(`del smartnat-owned ${VIP_1} -exist\n`);
    expect(report.conntrack).toEqual([{ reason: 'addressReleased', args: ['-D', '--orig-dst', VIP_1] }]);
    expect(kernel.flows.has(VIP_1)).toBe(false);
    expect(trace(kernel, {})).toEqual({ kind: 'drop', chain: 'SMARTNAT-PREROUTING' });
    await applier.setOwned(new Set([VIP_1, VIP_2]));
    expect(trace(kernel, {})).toMatchObject({ kind: 'dnat' });
  });

  it('an ownership change after a failed sync falls back to a full sync (read-back first)', async () => {
    await applier.sync(world());
    kernel.failNext.set('iptables-restore', 1);
    await expect(applier.sync(world({ endpointsB: [POD_3] }))).rejects.toBeInstanceOf(DataPlaneSyncError);
    const report = await applier.setOwned(new Set([VIP_2]));
    expect(report.mode).toBe('full');
    expect(trace(kernel, {})).toEqual({ kind: 'drop', chain: 'SMARTNAT-PREROUTING' });
    expect(trace(kernel, { dst: VIP_2 })).toMatchObject({ kind: 'dnat', to: `${POD_2}:9000` });
  });

  it('a refused restore keeps the previous state, reports evidence, and the next sync is full', async () => {
    await applier.sync(world());
    const before = kernel.save();
    kernel.failLine = (line) => line === 'COMMIT';
    const err = await applier.sync(world({ endpointsB: [POD_3] })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataPlaneSyncError);
    const cause = (err as DataPlaneSyncError).cause as CommandFailedError;
    expect(cause.exitCode).toBe(1);
    expect(cause.stderr).toMatch(/line \d+ failed/);
    expect(cause.inputExcerpt.join('\n')).toContain('COMMIT');
    expect(kernel.save()).toBe(before);
    expect(applier.retryDelayMs()).toBe(500);
    kernel.failLine = () => false;
    expect((await applier.sync(world({ endpointsB: [POD_3] }))).mode).toBe('full');
    expect(applier.retryDelayMs()).toBe(0);
  });

  it('a Mapping whose rules the kernel refuses is left out and marked failed; the others still apply', async () => {
    kernel.failLine = (line) => line.includes('"default/api ');
    const report = await applier.sync(world());
    expect(report.failedMappings.map((f) => f.mapping)).toEqual([{ namespace: 'default', name: 'api' }]);
    expect(report.failedMappings[0]?.error).toContain('iptables-restore');
    expect(trace(kernel, {})).toMatchObject({ kind: 'dnat', to: `${POD_1}:8080` });
    expect(trace(kernel, { dst: VIP_2, src: CLIENT_OTHER })).toMatchObject({ kind: 'drop' });
    expect(danglingJumps(kernel)).toEqual([]);
  });

  it('a full resync repairs drift: a deleted chain comes back, a moved jump returns to position 1', async () => {
    await applier.sync(world());
    const nat = kernel.tables.get('nat')!;
    const [stolen] = [...nat.keys()].filter((c) => c.startsWith('SMARTNAT-S-'));
    nat.get('SMARTNAT-A-203.0.113.10')!.rules.length = 0;
    nat.delete(stolen!);
    const pre = kernel.tables.get('mangle')!.get('PREROUTING')!;
    pre.rules.unshift('-j FOREIGN-FIRST');
    kernel.tables.get('mangle')!.set('FOREIGN-FIRST', { policy: '-', rules: [] });
    const report = await applier.sync(world(), { full: true });
    expect(report.mode).toBe('full');
    expect(nat.has(stolen!) || kernel.tables.get('nat')!.has(stolen!)).toBe(true);
    expect(kernel.tables.get('mangle')!.get('PREROUTING')!.rules).toEqual(['-m comment --comment smartnat-entry -j SMARTNAT-PREROUTING', '-j FOREIGN-FIRST']);
    expect(trace(kernel, {})).toMatchObject({ kind: 'dnat', to: `${POD_1}:8080` });
  });

  it('adopts what is in place on start without rewriting it (no gap)', async () => {
    await applier.sync(world());
    const restarted = new DataPlaneApplier({ runner: kernel });
    kernel.calls.length = 0;
    const report = await restarted.sync(world());
    expect(report.mode).toBe('skipped');
    expect(writers(kernel)).toEqual([]);
  });

  it('removing a Mapping removes exactly its chains and set entries', async () => {
    await applier.sync(world());
    const chainsBefore = [...kernel.tables.get('nat')!.keys()];
    const onlyWeb = planDataPlane(snapshot({
      mappings: [ok(mapping({ name: 'web', addresses: [VIP_1], ports: [{ port: 8080, servicePort: 80 }], allowedSources: [CLIENTS_ALLOWED_NET] }))],
      services: [service('web', [{ name: 'http', port: 80 }])],
      endpointSlices: [slice({ name: 'web-1', service: 'web', ports: [{ name: 'http', port: 8080 }], endpoints: [POD_1] })],
    }), DEFAULT_SETTINGS).desired;
    const report = await applier.sync(onlyWeb);
    expect([...report.deletedChains].sort()).toEqual(chainsBefore.filter((c) => c.startsWith('SMARTNAT-S-') || c === 'SMARTNAT-A-203.0.113.11').filter((c) => !new Set(kernel.tables.get('nat')!.keys()).has(c)).map((c) => `nat/${c}`).sort());
    expect(report.deletedChains).toHaveLength(3);
    expect([...kernel.sets.get('smartnat-allow')!.entries].some((e) => e.startsWith(`${VIP_2},`))).toBe(false);
    expect(danglingJumps(kernel)).toEqual([]);
    expect(trace(kernel, {})).toMatchObject({ kind: 'dnat' });
  });

  it('cleanup removes everything ours and leaves foreign rules, chains and sets alone', async () => {
    kernel.tables.get('nat')!.set('FOREIGN', { policy: '-', rules: ['-j RETURN'] });
    kernel.tables.get('nat')!.get('PREROUTING')!.rules.push('-j FOREIGN');
    kernel.sets.set('foreign-set', { type: 'hash:ip', header: 'family inet', entries: new Set(['192.0.2.99']) });
    kernel.ipRules.push({ pref: 100, fwmark: '0x1/0x1', table: 100, protocol: 4 });
    await applier.sync(world());
    const report = await cleanupDataPlane({ runner: kernel, settings: DEFAULT_SETTINGS });
    expect(report.jumps).toBe(7);
    expect(report.sets).toEqual(['smartnat-allow', 'smartnat-count-allowed', 'smartnat-count-denied', 'smartnat-eligible', 'smartnat-owned']);
    const remaining = [...kernel.tables.values()].flatMap((t) => [...t.keys()]).filter((c) => c.startsWith(CHAIN_PREFIX));
    expect(remaining).toEqual([]);
    expect(kernel.tables.get('nat')!.get('PREROUTING')!.rules).toEqual(['-j FOREIGN']);
    expect([...kernel.sets.keys()]).toEqual(['foreign-set']);
    expect(kernel.ipRules).toEqual([{ pref: 100, fwmark: '0x1/0x1', table: 100, protocol: 4 }]);
    expect(kernel.ipRoutes).toEqual([]);
    kernel.calls.length = 0;
    await cleanupDataPlane({ runner: kernel, settings: DEFAULT_SETTINGS });
    expect(writers(kernel)).toEqual([]);
  });

  it('start-up clears conntrack of eligible addresses it does not own, tolerating "0 flow entries"', async () => {
    const report = await applier.sync(world({ owned: new Set([VIP_1]) }));
    expect(report.conntrack).toEqual([{ reason: 'startupNotOwned', args: ['-D', '--orig-dst', VIP_2] }]);
    expect(report.conntrackErrors).toEqual([]);
  });
});

describe('DataPlaneApplier: egress sets (ADR 0009)', () => {
  const gatewayPool = { pools: [{ ...snapshot({}).pools[0]!, spec: { ...snapshot({}).pools[0]!.spec, egress: { gateways: [{ first: 0xc6336464, last: 0xc63364c8, text: '198.51.100.100-198.51.100.200' }] } } }] };
  const withEgress = (owned: ReadonlySet<string> | 'allEligible', egress: boolean) => {
    const snap = snapshot({
      ...gatewayPool,
      owned,
      mappings: [ok(mapping({ name: 'web', addresses: [VIP_1], ports: [{ port: 8080, servicePort: 80 }], ...(egress ? { egress: VIP_1 } : {}) }))],
      services: [service('web', [{ name: 'http', port: 80 }])],
      endpointSlices: [slice({ name: 'web-1', service: 'web', ports: [{ name: 'http', port: 8080 }], endpoints: [POD_1, POD_2] })],
    });
    return planDataPlane(snap, DEFAULT_SETTINGS).desired;
  };
  let kernel: FakeKernel;
  let applier: DataPlaneApplier;

  beforeEach(() => {
    kernel = new FakeKernel();
    applier = new DataPlaneApplier({ runner: kernel });
  });

  it('an ownership change moves the pods in or out of the egress set, and rewrites no rule', async () => {
    await applier.sync(withEgress(new Set([VIP_1]), true));
    expect([...(kernel.sets.get('smartnat-eg-203.0.113.10')?.entries ?? [])]).toEqual([POD_1, POD_2]);
    kernel.calls.length = 0;
    await applier.setOwned(new Set());
    expect(writers(kernel)).toEqual(['ipset']);
    expect(kernel.callsOf('ipset')[0]?.input).toBe(
      `del smartnat-owned ${VIP_1} -exist\ndel smartnat-eg-203.0.113.10 ${POD_1} -exist\ndel smartnat-eg-203.0.113.10 ${POD_2} -exist\n`,
    );
    expect(kernel.sets.get('smartnat-eg-203.0.113.10')?.entries.size).toBe(0);
    await applier.setOwned(new Set([VIP_1]));
    expect([...(kernel.sets.get('smartnat-eg-203.0.113.10')?.entries ?? [])]).toEqual([POD_1, POD_2]);
    // The applier's memory follows: a resync finds nothing to write.
    expect((await applier.sync(withEgress(new Set([VIP_1]), true), { full: true })).mode).toBe('skipped');
  });

  it('a partial sync creates a new egress set before the rules using it, and destroys it after they are gone', async () => {
    await applier.sync(withEgress('allEligible', false));
    const on = await applier.sync(withEgress('allEligible', true));
    expect(on.mode).toBe('partial');
    expect(kernel.sets.has('smartnat-eg-203.0.113.10')).toBe(true);
    expect(kernel.save()).toContain('--match-set smartnat-eg-203.0.113.10 src -j SNAT --to-source 203.0.113.10');
    const off = await applier.sync(withEgress('allEligible', false));
    expect(off.wrote).toEqual(['iptables', 'ipset-deletions']);
    expect(kernel.sets.has('smartnat-eg-203.0.113.10')).toBe(false);
    expect(kernel.save()).not.toContain('smartnat-eg-');
  });
});
