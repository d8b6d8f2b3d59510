// The real tools accept what the renderers print, in a network namespace of our own: every golden
// iptables file passes `iptables-restore --test` (after its ipset golden is loaded with the real
// `ipset restore`), every routes golden loads with `ip -batch`, and the applier driven against
// the real kernel reads back exactly what it wrote (so a second sync writes nothing), repairs a
// deleted chain, and cleanup leaves foreign rules and sets alone.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { goldenPath } from '../../test/support/golden.js';
import { DEFAULT_SETTINGS } from '../model/settings.js';
import { planDataPlane } from '../plan/plan-dataplane.js';
import { DataPlaneApplier, ensureConntrackBatchDeleted } from './apply.js';
import { cleanupDataPlane } from './cleanup.js';
import { ExecaCommandRunner } from './command-runner.js';
import { computeRuleSet } from './render-iptables.js';
import { computeRouting } from './render-routes.js';
import { readIptables, readRouting } from './readback.js';
import { ourChains } from './render-dump.js';
import { goldenSnapshots } from './testing/fixtures.js';
import { runRender } from '../cli/render.js';
import { createAgentNamespace } from '../agent/testing/agent-netns.js';

const host = new ExecaCommandRunner();
const ns = `sn3-gold-${randomBytes(3).toString('hex')}`;
const inNs = new ExecaCommandRunner(ns);
const snaps = goldenSnapshots();
const names = readdirSync(goldenPath('dataplane')).filter((f) => f.endsWith('.iptables')).map((f) => f.replace(/\.iptables$/, ''));


async function clean(): Promise<void> {
  await cleanupDataPlane({ runner: inNs, settings: DEFAULT_SETTINGS });
}

beforeAll(async () => {
  await createAgentNamespace(ns, { secondUplink: true });
});

afterAll(async () => {
  await host.run('ip', ['netns', 'del', ns], { okExitCodes: [0, 1] });
});

describe('dataplane goldens against the real tools', () => {
  it('has a golden for every snapshot', () => {
    expect(names.sort()).toEqual(Object.keys(snaps).sort());
  });

  it.each(names)('%s: ipset restore, iptables-restore --test, ip -batch, sysctl -p accept it', async (name) => {
    await clean();
    await inNs.run('ipset', ['restore'], { input: readFileSync(goldenPath(`dataplane/${name}.ipset`), 'utf8') });
    const rules = readFileSync(goldenPath(`dataplane/${name}.iptables`), 'utf8');
    await inNs.run('iptables-restore', ['--test', '--noflush', '-w', '5'], { input: rules });
    await inNs.run('iptables-restore', ['--noflush', '-w', '5'], { input: rules });
    const { desired } = planDataPlane(snaps[name]!, DEFAULT_SETTINGS);
    const back = ourChains(await readIptables(inNs, { restore: 'iptables-restore', save: 'iptables-save', lockWaitSeconds: 5 }));
    const want = computeRuleSet(desired);
    for (const table of ['mangle', 'nat', 'filter'] as const) {
      expect(Object.fromEntries([...back[table]].sort())).toEqual(Object.fromEntries([...want[table]].sort()));
    }
    await inNs.run('ip', ['-batch', '-'], { input: readFileSync(goldenPath(`dataplane/${name}.routes`), 'utf8') });
    const routing = await readRouting(inNs, { protocol: 196, tables: [7801, 7802] });
    const expected = computeRouting(desired);
    expect([...routing.rules].sort((a, b) => a.pref - b.pref)).toEqual(expected.rules);
    expect(routing.routes.length).toBe(expected.routes.length);
    const sysctl = await inNs.run('sysctl', ['-p', '-'], { input: readFileSync(goldenPath(`dataplane/${name}.sysctl`), 'utf8') });
    expect(sysctl.stdout).toContain('net.ipv4.ip_forward = 1');
  });
});

describe('smartnat render output against the real tools', () => {
  it('examples/snapshot.yaml: every --only part is accepted', async () => {
    await clean();
    const part = async (only: string): Promise<string> => (await runRender({ snapshot: 'examples/snapshot.yaml', agent: 'agent-a', only })).stdout;
    await inNs.run('ipset', ['restore'], { input: await part('ipset') });
    await inNs.run('iptables-restore', ['--test', '--noflush', '-w', '5'], { input: await part('iptables') });
    await inNs.run('iptables-restore', ['--noflush', '-w', '5'], { input: await part('iptables') });
    await inNs.run('ip', ['-batch', '-'], { input: await part('routes') });
    await inNs.run('sysctl', ['-p', '-'], { input: await part('sysctl') });
    expect((await inNs.run('iptables-save', ['-t', 'nat'])).stdout).toContain('demo/echo 203.0.113.10:8080/tcp');
    await clean();
  });
});

describe('applier against the real kernel', () => {
  const desired = planDataPlane(snaps['two-uplinks']!, DEFAULT_SETTINGS).desired;

  it('syncs, then finds nothing to write on a full resync (read-back equals what it wrote)', async () => {
    await clean();
    const applier = new DataPlaneApplier({ runner: inNs });
    expect((await applier.sync(desired)).wrote).toEqual(['ipset', 'iptables', 'routes']);
    const again = await new DataPlaneApplier({ runner: inNs }).sync(desired);
    expect(again).toMatchObject({ mode: 'skipped', wrote: [] });
  });

  it('repairs a chain deleted behind its back, and a jump that is no longer first', async () => {
    const applier = new DataPlaneApplier({ runner: inNs });
    await applier.sync(desired);
    await inNs.run('iptables', ['-w', '5', '-t', 'filter', '-D', 'FORWARD', '-m', 'comment', '--comment', 'smartnat-entry', '-j', 'SMARTNAT-FORWARD']);
    await inNs.run('iptables', ['-w', '5', '-t', 'filter', '-F', 'SMARTNAT-FORWARD']);
    await inNs.run('iptables', ['-w', '5', '-t', 'filter', '-X', 'SMARTNAT-FORWARD']);
    await inNs.run('iptables', ['-w', '5', '-t', 'mangle', '-I', 'PREROUTING', '1', '-j', 'ACCEPT']);
    const report = await applier.sync(desired, { full: true });
    expect(report.rewrittenChains).toEqual(['filter/SMARTNAT-FORWARD']);
    const save = (await inNs.run('iptables-save', [])).stdout;
    expect(save).toContain('-A FORWARD -m comment --comment smartnat-entry -j SMARTNAT-FORWARD');
    expect(save).toMatch(/-A PREROUTING -m comment --comment smartnat-entry -j SMARTNAT-PREROUTING\n-A PREROUTING -j ACCEPT/);
    expect((await applier.sync(desired, { full: true })).mode).toBe('skipped');
  });

  it('cleanup removes ours only: foreign chains, rules and sets survive', async () => {
    await inNs.run('iptables', ['-w', '5', '-t', 'nat', '-N', 'FOREIGN']);
    await inNs.run('iptables', ['-w', '5', '-t', 'nat', '-A', 'PREROUTING', '-j', 'FOREIGN']);
    await inNs.run('ipset', ['create', 'foreign', 'hash:ip']);
    await inNs.run('ip', ['rule', 'add', 'pref', '100', 'fwmark', '0x1', 'lookup', '100']);
    await clean();
    const save = (await inNs.run('iptables-save', [])).stdout;
    expect(save).not.toMatch(/SMARTNAT|smartnat/);
    expect(save).toContain('-A PREROUTING -j FOREIGN');
    expect((await inNs.run('ipset', ['list', '-n'])).stdout.trim()).toBe('foreign');
    const rules = (await inNs.run('ip', ['rule', 'show'])).stdout;
    expect(rules).toContain('fwmark 0x1 lookup 100');
    expect(rules).not.toContain('7801');
  });

  it('deletes several conntrack entries in one `conntrack -R -` exec and leaves the others', async () => {
    const flow = (proto: string, dst: string, dport: number): string[] => ['-I', '-p', proto, '-s', '192.0.2.1', '-d', dst, '--sport', '1000', '--dport', String(dport), '-t', '100', ...(proto === 'tcp' ? ['--state', 'ESTABLISHED'] : [])];
    await inNs.run('conntrack', flow('tcp', '198.51.100.1', 80));
    await inNs.run('conntrack', flow('udp', '198.51.100.2', 53));
    await inNs.run('conntrack', flow('udp', '198.51.100.3', 53));
    await ensureConntrackBatchDeleted(inNs, [
      ['-D', '-p', 'tcp', '--orig-dst', '198.51.100.1', '--orig-port-dst', '80'],
      ['-D', '-p', 'udp', '--orig-dst', '198.51.100.2', '--orig-port-dst', '53'],
      ['-D', '-p', 'udp', '--orig-dst', '198.51.100.9', '--orig-port-dst', '53'], // matches nothing: not an error
    ]);
    const left = (await inNs.run('conntrack', ['-L'], { okExitCodes: [0, 1] })).stdout;
    expect(left).toContain('dst=198.51.100.3');
    expect(left).not.toContain('dst=198.51.100.1 ');
    expect(left).not.toContain('dst=198.51.100.2 ');
    await expect(ensureConntrackBatchDeleted(inNs, [['-D', '--orig-dst', '198.51.100.3 -F']])).rejects.toThrow(/contains a blank/);
    await inNs.run('conntrack', ['-D', '--orig-dst', '198.51.100.3'], { okExitCodes: [0, 1] });
  });
});
