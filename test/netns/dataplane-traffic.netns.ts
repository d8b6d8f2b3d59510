// The data plane with real traffic: the planner and applier program a real agent namespace of the
// standard lab; clients behind two routers reach echo backends through floating addresses. Every
// drop is checked as a timeout next to an allowed control, every reject as refused; each test
// states which kernel object it depends on and, where cheap, removes it to watch the test fail.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { loadavg } from 'node:os';
import { buildTopology, type Topology } from '../../src/lab/topology.js';
import { startCapture } from '../../src/lab/capture.js';
import { planStandardLab } from '../../src/lab/standard-lab.js';
import { probe, probeOnce, longestGapMs, countResults, type ProbeOutcome } from '../../src/lab/probe.js';
import { addAddress, setMtu, setSysctls, readSysctl, listIpRules } from '../../src/lab/link-control.js';
import type { CommandRunner, RunOptions, RunResult } from '../../src/dataplane/command-runner.js';
import { DataPlaneApplier } from '../../src/dataplane/apply.js';
import { cleanupDataPlane } from '../../src/dataplane/cleanup.js';
import { ensureSysctls } from '../../src/dataplane/host-checks.js';
import { addressChain, serviceChain } from '../../src/dataplane/render-names.js';
import { DEFAULT_SETTINGS } from '../../src/model/settings.js';
import { planDataPlane } from '../../src/plan/plan-dataplane.js';
import type { DesiredDataPlane } from '../../src/plan/desired.js';
import type { Mapping } from '../../src/api/types.js';
import { agent, mapping, ok, service, slice, snapshot } from '../../src/dataplane/testing/fixtures.js';

// Addresses (STYLE.md plan). Floating addresses sit in the standard lab's .10-.19 range.
const VIP_1 = '203.0.113.10';
const VIP_2 = '203.0.113.11';
const VIP_STANDBY = '203.0.113.12';
const VIP_FLIP = '203.0.113.13';
const VIP_LATE = '203.0.113.14';
const VIP_B = '192.0.2.10';
const POD_1 = '198.51.100.21';
const POD_2 = '198.51.100.22';
const POD_3 = '198.51.100.23';
const POD_4 = '198.51.100.24';
const AGENT_INT = '198.51.100.2';
const CLIENT_ALLOWED_IP = '198.18.1.10'; // allowed as a bare IP
const CLIENT_DENIED = '198.18.1.11'; // in no allowed source
const CLIENT_ALLOWED_NET = '198.18.1.12'; // allowed through the CIDR 198.18.1.12/31
const CLIENT_B = '198.18.2.10'; // behind r2 (uplink 2)

const lab = planStandardLab({
  agents: 1,
  backends: [
    { name: 'b1', tcpPorts: [8080], udpPorts: [5353] },
    { name: 'b2', tcpPorts: [8080], udpPorts: [5353] },
    { name: 'b3', tcpPorts: [8080], udpPorts: [7000] },
    { name: 'b4', tcpPorts: [8080] },
  ],
});

/** A runner that can pretend conntrack deletions succeed without running them (fault injection). */
class SwitchableRunner implements CommandRunner {
  skipConntrack = false;
  constructor(private readonly inner: CommandRunner) {}
  async run(cmd: string, args: readonly string[], options?: RunOptions): Promise<RunResult> {
    if (this.skipConntrack && cmd === 'conntrack' && (args[0] === '-D' || args[0] === '-R')) return { stdout: '', stderr: '', exitCode: 0 };
    return this.inner.run(cmd, args, options);
  }
}

const http = { name: 'http', port: 80 };
const dns = { name: 'dns', port: 53, protocol: 'udp' as const };
const MAPPINGS: Record<string, Mapping> = {
  echo: mapping({ name: 'echo', addresses: [VIP_1], ports: [{ port: 80 }, { port: 53, protocol: 'udp' }] }),
  other: mapping({ name: 'other', addresses: [VIP_2], ports: [{ port: 80 }] }),
  spread: mapping({ name: 'spread', addresses: [VIP_1], ports: [{ port: 81, servicePort: 80 }] }),
  allow: mapping({
    name: 'allow', serviceName: 'echo', addresses: [VIP_1],
    ports: [{ port: 82, servicePort: 80 }, { port: 82, protocol: 'udp', servicePort: 53 }],
    allowedSources: [CLIENT_ALLOWED_IP, '198.18.1.12/31'],
  }),
  empty: mapping({ name: 'empty', addresses: [VIP_1], ports: [{ port: 83, servicePort: 80 }, { port: 83, protocol: 'udp', servicePort: 53 }] }),
  uplinkb: mapping({ name: 'uplinkb', serviceName: 'echo', addresses: [VIP_B], ports: [{ port: 80 }] }),
  emptyb: mapping({ name: 'emptyb', serviceName: 'empty', addresses: [VIP_B], ports: [{ port: 83, servicePort: 80 }] }),
  standby: mapping({ name: 'standby', serviceName: 'echo', addresses: [VIP_STANDBY], ports: [{ port: 80 }] }),
  flip: mapping({ name: 'flip', addresses: [VIP_FLIP], ports: [{ port: 7000, protocol: 'udp' }] }),
  late: mapping({ name: 'late', serviceName: 'echo', addresses: [VIP_LATE], ports: [{ port: 53, protocol: 'udp' }] }),
};
const SERVICES = [
  service('echo', [http, dns]),
  service('other', [http]),
  service('spread', [http]),
  service('empty', [http, dns]),
  service('flip', [{ name: 'flip', port: 7000, protocol: 'udp' }]),
];
const SLICES = [
  slice({ name: 'echo-1', service: 'echo', ports: [{ name: 'http', port: 8080 }, { name: 'dns', port: 5353, protocol: 'udp' }], endpoints: [POD_1] }),
  slice({ name: 'other-1', service: 'other', ports: [{ name: 'http', port: 8080 }], endpoints: [POD_2] }),
  slice({ name: 'spread-1', service: 'spread', ports: [{ name: 'http', port: 8080 }], endpoints: [POD_1, POD_2, POD_3, { ip: POD_4, ready: false }] }),
  slice({ name: 'flip-1', service: 'flip', ports: [{ name: 'flip', port: 7000, protocol: 'udp' }], endpoints: [POD_3] }),
];
const OWNED = [VIP_1, VIP_2, VIP_B];

interface DesiredOptions {
  /** Mappings left out (default: "late"). */
  readonly without?: readonly string[];
  readonly owned?: readonly string[];
  /** Mappings replaced by name. */
  readonly mappings?: Readonly<Record<string, Mapping>>;
  /** EndpointSlices replaced by name. */
  readonly slices?: Readonly<Record<string, (typeof SLICES)[number]>>;
}

function desiredOf(o: DesiredOptions = {}): DesiredDataPlane {
  const all = { ...MAPPINGS, ...(o.mappings ?? {}) };
  const names = Object.keys(all).filter((n) => !(o.without ?? ['late']).includes(n));
  const snap = snapshot({
    agent: agent({ twoUplinks: true }),
    mappings: names.map((n) => ok(all[n]!)),
    services: SERVICES,
    endpointSlices: SLICES.map((sl) => o.slices?.[sl.name] ?? sl),
    owned: new Set(o.owned ?? OWNED),
  });
  return planDataPlane(snap, DEFAULT_SETTINGS).desired;
}

let topo: Topology;
let a1: CommandRunner;
let runner: SwitchableRunner;
let applier: DataPlaneApplier;
let foreignBefore: string;

const tcp = (host: string, port: number, source = CLIENT_ALLOWED_IP, extra: { timeoutMs?: number; request?: string } = {}): Promise<ProbeOutcome> =>
  probeOnce(topo, 'c1', { proto: 'tcp', host, port, source, timeoutMs: extra.timeoutMs ?? 600, ...(extra.request ? { request: extra.request } : {}) });
const udp = (host: string, port: number, source = CLIENT_ALLOWED_IP, sourcePort?: number): Promise<ProbeOutcome> =>
  probeOnce(topo, 'c1', { proto: 'udp', host, port, source, timeoutMs: 600, ...(sourcePort ? { sourcePort } : {}) });

/** iptables-save without counters and comments lines, ipset save, and ip rules: what "untouched" compares. */
async function kernelText(): Promise<string> {
  const save = (await a1.run('iptables-save', [])).stdout.split('\n').filter((l) => !l.startsWith('#')).map((l) => l.replace(/\[\d+:\d+\]/, '')).join('\n');
  const sets = (await a1.run('ipset', ['save'])).stdout;
  const rules = (await a1.run('ip', ['rule', 'show'])).stdout;
  return `${save}\n--- ipset\n${sets}\n--- rules\n${rules}`;
}

async function addForeignObjects(): Promise<void> {
  await a1.run('iptables', ['-w', '5', '-t', 'nat', '-N', 'FOREIGN-NAT']);
  await a1.run('iptables', ['-w', '5', '-t', 'nat', '-A', 'PREROUTING', '-d', '203.0.113.99', '-j', 'FOREIGN-NAT']);
  await a1.run('iptables', ['-w', '5', '-t', 'filter', '-A', 'INPUT', '-p', 'tcp', '--dport', '9', '-m', 'comment', '--comment', 'foreign', '-j', 'ACCEPT']);
  await a1.run('iptables', ['-w', '5', '-t', 'mangle', '-A', 'PREROUTING', '-m', 'mark', '--mark', '0x1/0x1', '-j', 'RETURN']);
  await a1.run('ipset', ['create', 'foreign-set', 'hash:ip']);
  await a1.run('ipset', ['add', 'foreign-set', '198.18.9.9']);
  await a1.run('ip', ['rule', 'add', 'pref', '100', 'fwmark', '0x1/0x1', 'lookup', '100']);
}

beforeAll(async () => {
  topo = await buildTopology(lab.spec);
  a1 = topo.runner('a1');
  for (const vip of [VIP_1, VIP_2, VIP_STANDBY, VIP_FLIP, VIP_LATE]) await addAddress(topo, 'a1', 'ext0', `${vip}/32`);
  await addAddress(topo, 'a1', 'ext1', `${VIP_B}/32`);
  await addForeignObjects();
  foreignBefore = await kernelText();
  runner = new SwitchableRunner(a1);
  applier = new DataPlaneApplier({ runner });
  const desired = desiredOf();
  expect(await ensureSysctls(a1, desired)).toEqual([]);
  const report = await applier.sync(desired);
  expect(report.failedMappings).toEqual([]);
}, 60_000);

afterAll(async () => {
  if (topo) {
    const report = await topo.teardown();
    expect(report.leftoverNamespaces).toEqual([]);
    expect(report.leftoverProcesses).toEqual([]);
  }
}, 60_000);

describe('forwarding', () => {
  it('TCP and UDP are translated to the endpoint port, and the endpoint sees the agent (masquerade)', async () => {
    const t = await tcp(VIP_1, 80);
    expect(t).toMatchObject({ result: 'ok', reply: { name: 'b1', local: `${POD_1}:8080` } });
    expect(t.reply!.peer.split(':')[0]).toBe(AGENT_INT);
    const u = await udp(VIP_1, 53);
    expect(u).toMatchObject({ result: 'ok', reply: { name: 'b1', local: '0.0.0.0:5353' } });
    expect(u.reply!.peer.split(':')[0]).toBe(AGENT_INT);
    // The same backend port is not reachable on the floating address itself: only mapped ports are.
    expect((await tcp(VIP_1, 8080)).result).toBe('timeout');
  });

  it('two Mappings on the same port of different addresses reach different Services', async () => {
    expect(await tcp(VIP_1, 80)).toMatchObject({ result: 'ok', reply: { name: 'b1' } });
    expect(await tcp(VIP_2, 80)).toMatchObject({ result: 'ok', reply: { name: 'b2' } });
  });

  it('spreads connections over the ready endpoints, and a not-ready endpoint gets none', async () => {
    const outcomes = await probe(topo, 'c1', { proto: 'tcp', host: VIP_1, port: 81, source: CLIENT_ALLOWED_IP, count: 90, timeoutMs: 1000 });
    expect(countResults(outcomes)).toEqual({ ok: 90 });
    const per: Record<string, number> = {};
    for (const o of outcomes) per[o.reply!.name] = (per[o.reply!.name] ?? 0) + 1;
    // Binomial(90, 1/3) per endpoint: below 10 is more than 4 standard deviations off.
    for (const b of ['b1', 'b2', 'b3']) expect(per[b] ?? 0).toBeGreaterThanOrEqual(10);
    expect(per['b4']).toBeUndefined();
  });
});

describe('allowed sources', () => {
  it('a bare IP and a CIDR get through; a source in neither is dropped (timeout, not refused)', async () => {
    expect(await tcp(VIP_1, 82, CLIENT_ALLOWED_IP)).toMatchObject({ result: 'ok', reply: { name: 'b1' } });
    expect(await tcp(VIP_1, 82, CLIENT_ALLOWED_NET)).toMatchObject({ result: 'ok', reply: { name: 'b1' } });
    expect(await tcp(VIP_1, 82, CLIENT_DENIED)).toMatchObject({ result: 'timeout', connected: false });
    expect(await udp(VIP_1, 82, CLIENT_ALLOWED_IP)).toMatchObject({ result: 'ok', reply: { name: 'b1' } });
    expect(await udp(VIP_1, 82, CLIENT_DENIED)).toMatchObject({ result: 'timeout' });
  });

  it('0.0.0.0/0 lets every source through, including the one dropped above', async () => {
    for (const source of [CLIENT_ALLOWED_IP, CLIENT_DENIED, CLIENT_ALLOWED_NET]) {
      expect(await tcp(VIP_1, 80, source)).toMatchObject({ result: 'ok' });
    }
  });
});

describe('rejects and ownership', () => {
  it('a port with zero endpoints is refused (TCP reset, ICMP port unreachable), not dropped', async () => {
    expect(await tcp(VIP_1, 83)).toMatchObject({ result: 'refused', error: 'ECONNREFUSED' });
    expect(await udp(VIP_1, 83)).toMatchObject({ result: 'refused', error: 'ECONNREFUSED' });
  });

  it('an address this agent does not own gets no NAT, even though it is on the interface', async () => {
    expect(await tcp(VIP_STANDBY, 80)).toMatchObject({ result: 'timeout', connected: false });
    const nat = (await a1.run('conntrack', ['-L', '-d', VIP_STANDBY], { okExitCodes: [0, 1] })).stdout;
    expect(nat).not.toContain('198.51.100.');
    // Control: owning it makes the same probe succeed.
    await applier.setOwned(new Set([...OWNED, VIP_STANDBY]));
    try {
      expect(await tcp(VIP_STANDBY, 80)).toMatchObject({ result: 'ok', reply: { name: 'b1' } });
    } finally {
      await applier.setOwned(new Set(OWNED));
    }
    expect((await tcp(VIP_STANDBY, 80)).result).toBe('timeout');
  });
});

describe('two uplinks', () => {
  it('replies leave by the uplink the connection came in on; without the fwmark rule they do not', async () => {
    expect(await probeOnce(topo, 'c2', { proto: 'tcp', host: VIP_B, port: 80, source: CLIENT_B })).toMatchObject({ result: 'ok', reply: { name: 'b1' } });
    const rule = (await listIpRules(topo, 'a1')).find((r) => r.startsWith('7802:'));
    expect(rule).toMatch(/fwmark 0x20\/0xf0 lookup 7802/);
    await a1.run('ip', ['rule', 'del', 'pref', '7802']);
    const broken = await probeOnce(topo, 'c2', { proto: 'tcp', host: VIP_B, port: 80, source: CLIENT_B, timeoutMs: 800 });
    const control = await tcp(VIP_1, 80);
    // The full resync reads ip rules back and puts the missing one back.
    const report = await applier.sync(desiredOf(), { full: true });
    expect(broken).toMatchObject({ result: 'timeout' });
    expect(control.result).toBe('ok');
    expect(report.wrote).toContain('routes');
    expect(await probeOnce(topo, 'c2', { proto: 'tcp', host: VIP_B, port: 80, source: CLIENT_B })).toMatchObject({ result: 'ok' });
  });

  it('the reset of a reject on uplink 2 also leaves by uplink 2 (mark restored in mangle OUTPUT)', async () => {
    const c2 = (timeoutMs = 2000): Promise<ProbeOutcome> => probeOnce(topo, 'c2', { proto: 'tcp', host: VIP_B, port: 83, source: CLIENT_B, timeoutMs });
    expect(await c2()).toMatchObject({ result: 'refused', error: 'ECONNREFUSED' });
    await a1.run('ip', ['rule', 'del', 'pref', '7802']);
    const lost = await c2();
    await applier.sync(desiredOf(), { full: true });
    expect(lost).toMatchObject({ result: 'timeout' });
    expect(await c2()).toMatchObject({ result: 'refused' });
  });

  it('strict conf.all.rp_filter=1: the second uplink works once the agent sets the uplink to 2 (the kernel takes the larger)', async () => {
    // A host like RHEL: all=1, and the uplink strict too. Effective max(all, ext1) = 1: the client's
    // packets arrive on ext1 but the main table's way back is ext0, so they are dropped on arrival.
    await setSysctls(topo, 'a1', { 'net.ipv4.conf.all.rp_filter': '1', 'net.ipv4.conf.ext1.rp_filter': '1' });
    try {
      const strict = await probeOnce(topo, 'c2', { proto: 'tcp', host: VIP_B, port: 80, source: CLIENT_B, timeoutMs: 800 });
      const uplink1 = await tcp(VIP_1, 80);
      expect(strict.result).toBe('timeout');
      expect(uplink1.result).toBe('ok');
      const findings = await ensureSysctls(a1, desiredOf());
      console.log(`ensureSysctls findings with conf.all.rp_filter=1: ${JSON.stringify(findings)}`);
      expect(findings.filter((f) => f.key.includes('ext1'))).toEqual([]);
      expect(await readSysctl(topo, 'a1', 'net.ipv4.conf.ext1.rp_filter')).toBe('2');
      expect(await readSysctl(topo, 'a1', 'net.ipv4.conf.all.rp_filter')).toBe('1');
      expect(await probeOnce(topo, 'c2', { proto: 'tcp', host: VIP_B, port: 80, source: CLIENT_B })).toMatchObject({ result: 'ok' });
    } finally {
      await setSysctls(topo, 'a1', { 'net.ipv4.conf.all.rp_filter': '0', 'net.ipv4.conf.ext1.rp_filter': '2' });
    }
  });
});

describe('path MTU', () => {
  it('a 1280-byte link between router and client still carries a 100 KB reply (ICMP frag-needed crosses the NAT)', async () => {
    await setMtu(topo, 'r1', 'toc1', 1280);
    try {
      const r = await tcp(VIP_1, 80, CLIENT_ALLOWED_IP, { request: 'big 102400', timeoutMs: 5000 });
      expect(r).toMatchObject({ result: 'ok', bytes: 102400 });
      // The backend learned the smaller path MTU toward the masquerading agent: PMTU discovery worked.
      const cached = (await topo.host.run('ip', ['-n', topo.ns('b1'), 'route', 'get', AGENT_INT])).stdout;
      expect(cached).toMatch(/mtu 1280/);
    } finally {
      await setMtu(topo, 'r1', 'toc1', 1500);
      await topo.host.run('ip', ['-n', topo.ns('b1'), 'route', 'flush', 'cache']);
    }
  });
});

describe('MSS clamping', () => {
  it('a 1280-byte internal link: clamped SYNs keep a 100 KB reply flowing; without the clamp it stalls', async () => {
    // The agent's int0 drops frames above its MTU (a veth does, silently): only a clamped MSS saves
    // the backend's 1500-byte segments. The client side stays at 1500, so its own MSS is 1460.
    await setMtu(topo, 'a1', 'int0', 1280);
    const jump = ['-t', 'mangle', '-D', 'FORWARD', '-m', 'comment', '--comment', 'smartnat-entry', '-j', 'SMARTNAT-MSS'];
    try {
      const big = (): Promise<ProbeOutcome> => tcp(VIP_1, 80, CLIENT_ALLOWED_IP, { request: 'big 102400', timeoutMs: 3000 });
      expect(await big()).toMatchObject({ result: 'ok', bytes: 102400 });
      await a1.run('iptables', ['-w', '5', ...jump]);
      const stalled = await big();
      expect(stalled).toMatchObject({ result: 'timeout', connected: true });
      const report = await applier.sync(desiredOf(), { full: true });
      expect(report.wrote).toContain('iptables');
      expect(await big()).toMatchObject({ result: 'ok', bytes: 102400 });
    } finally {
      await setMtu(topo, 'a1', 'int0', 1500);
    }
  });
});

describe('conntrack on acquire', () => {
  const LATE_PORT = 40000;

  async function makeStaleEntry(): Promise<void> {
    // VIP_LATE is on the interface but in no Mapping: the host itself answers (port unreachable),
    // and conntrack keeps an untranslated entry for this 5-tuple.
    expect(await udp(VIP_LATE, 53, CLIENT_ALLOWED_IP, LATE_PORT)).toMatchObject({ result: 'refused' });
    const entries = (await a1.run('conntrack', ['-L', '-p', 'udp', '-d', VIP_LATE], { okExitCodes: [0, 1] })).stdout;
    expect(entries).toContain(`sport=${LATE_PORT}`);
  }

  it('a UDP flow that hit the host before it owned the address works once it does', async () => {
    await makeStaleEntry();
    const report = await applier.sync(desiredOf({ without: [], owned: [...OWNED, VIP_LATE] }));
    expect(report.conntrack.map((c) => c.reason)).toContain('addressAcquired');
    expect(await udp(VIP_LATE, 53, CLIENT_ALLOWED_IP, LATE_PORT)).toMatchObject({ result: 'ok', reply: { name: 'b1' } });
    await applier.sync(desiredOf());
  });

  it('(control) without the conntrack deletion the same flow stays broken', async () => {
    await makeStaleEntry();
    runner.skipConntrack = true;
    try {
      await applier.sync(desiredOf({ without: [], owned: [...OWNED, VIP_LATE] }));
    } finally {
      runner.skipConntrack = false;
    }
    expect(await udp(VIP_LATE, 53, CLIENT_ALLOWED_IP, LATE_PORT)).toMatchObject({ result: 'refused' });
    expect(await udp(VIP_LATE, 53, CLIENT_ALLOWED_IP, LATE_PORT + 1)).toMatchObject({ result: 'ok' });
    await a1.run('conntrack', ['-D', '-p', 'udp', '--orig-dst', VIP_LATE], { okExitCodes: [0, 1] });
    expect(await udp(VIP_LATE, 53, CLIENT_ALLOWED_IP, LATE_PORT)).toMatchObject({ result: 'ok' });
    await applier.sync(desiredOf());
  });
});

describe('conntrack on change, with flows open', () => {
  const narrowed = { allow: { ...MAPPINGS['allow']!, spec: { ...MAPPINGS['allow']!.spec, allowedSources: [`${CLIENT_ALLOWED_IP}/32`] } } };

  it('removing a source from the allow-list cuts its open UDP flow; other sources keep working', async () => {
    expect(await udp(VIP_1, 82, CLIENT_ALLOWED_NET, 41000)).toMatchObject({ result: 'ok' });
    const report = await applier.sync(desiredOf({ mappings: narrowed }));
    expect(report.conntrack.map((c) => c.reason)).toContain('sourceRemoved');
    expect(await udp(VIP_1, 82, CLIENT_ALLOWED_NET, 41000)).toMatchObject({ result: 'timeout' });
    expect(await udp(VIP_1, 82, CLIENT_ALLOWED_IP, 41001)).toMatchObject({ result: 'ok' });
    await applier.sync(desiredOf());
  });

  it('(control) without the conntrack deletion the removed source keeps its open flow', async () => {
    expect(await udp(VIP_1, 82, CLIENT_ALLOWED_NET, 41002)).toMatchObject({ result: 'ok' });
    runner.skipConntrack = true;
    try {
      await applier.sync(desiredOf({ mappings: narrowed }));
    } finally {
      runner.skipConntrack = false;
    }
    expect(await udp(VIP_1, 82, CLIENT_ALLOWED_NET, 41002)).toMatchObject({ result: 'ok' });
    expect(await udp(VIP_1, 82, CLIENT_ALLOWED_NET, 41003)).toMatchObject({ result: 'timeout' });
    await applier.sync(desiredOf());
    await a1.run('conntrack', ['-D', '-p', 'udp', '--orig-dst', VIP_1, '--orig-port-dst', '82'], { okExitCodes: [0, 1] });
  });

  it('an endpoint that leaves: its open UDP flow moves to the remaining endpoint', async () => {
    expect(await udp(VIP_1, 53, CLIENT_ALLOWED_IP, 42000)).toMatchObject({ result: 'ok', reply: { name: 'b1' } });
    const moved = slice({ name: 'echo-1', service: 'echo', ports: [{ name: 'http', port: 8080 }, { name: 'dns', port: 5353, protocol: 'udp' }], endpoints: [POD_2] });
    const report = await applier.sync(desiredOf({ slices: { 'echo-1': moved } }));
    expect(report.conntrack.map((c) => c.reason)).toContain('endpointGone');
    expect(await udp(VIP_1, 53, CLIENT_ALLOWED_IP, 42000)).toMatchObject({ result: 'ok', reply: { name: 'b2' } });
    await applier.sync(desiredOf());
  });
});

describe('changes, drift and restarts', () => {
  it('removing a Mapping removes exactly its rules and set entries', async () => {
    const before = (await kernelText()).split('\n');
    const report = await applier.sync(desiredOf({ without: ['late', 'other'] }));
    const after = (await kernelText()).split('\n');
    const removed = before.filter((l) => !after.includes(l));
    const added = after.filter((l) => !before.includes(l));
    const otherChains = [addressChain(VIP_2), serviceChain({ mapping: { namespace: 'default', name: 'other' }, address: VIP_2, protocol: 'tcp', port: 80 })];
    expect([...report.deletedChains].sort()).toEqual(otherChains.map((c) => `nat/${c}`).sort());
    expect(added).toEqual([]);
    expect(removed.length).toBeGreaterThanOrEqual(5);
    for (const line of removed) {
      expect(line.includes('default/other') || line.includes(VIP_2) || otherChains.some((c) => line.includes(c))).toBe(true);
    }
    // VIP_2 is no longer a floating address here: the host answers for itself (reset), nothing is forwarded.
    expect(await tcp(VIP_2, 80)).toMatchObject({ result: 'refused' });
    expect(await tcp(VIP_1, 80)).toMatchObject({ result: 'ok' });
    await applier.sync(desiredOf());
    expect(await tcp(VIP_2, 80)).toMatchObject({ result: 'ok', reply: { name: 'b2' } });
  });

  it('a deleted chain is repaired by the next full resync', async () => {
    const chain = serviceChain({ mapping: { namespace: 'default', name: 'echo' }, address: VIP_1, protocol: 'tcp', port: 80 });
    await a1.run('iptables', ['-w', '5', '-t', 'nat', '-F', addressChain(VIP_1)]);
    await a1.run('iptables', ['-w', '5', '-t', 'nat', '-F', chain]);
    await a1.run('iptables', ['-w', '5', '-t', 'nat', '-X', chain]);
    expect((await a1.run('iptables-save', ['-t', 'nat'])).stdout).not.toContain(`:${chain} `);
    const broken = await tcp(VIP_1, 80);
    const report = await applier.sync(desiredOf(), { full: true });
    expect(broken.result).not.toBe('ok');
    expect(report.rewrittenChains).toEqual(expect.arrayContaining([`nat/${addressChain(VIP_1)}`, `nat/${chain}`]));
    expect(await tcp(VIP_1, 80)).toMatchObject({ result: 'ok', reply: { name: 'b1' } });
  });

  it('a restart (new applier, full sync over rules in place) causes no gap', async () => {
    const loop = probe(topo, 'c1', { proto: 'tcp', host: VIP_1, port: 80, source: CLIENT_ALLOWED_IP, timeoutMs: 200, intervalMs: 10, durationMs: 2500 });
    await new Promise((r) => setTimeout(r, 800));
    const restarted = new DataPlaneApplier({ runner });
    const report = await restarted.sync(desiredOf());
    const outcomes = await loop;
    applier = restarted;
    expect(report.mode).not.toBe('partial');
    expect(report.rewrittenChains).toEqual([]);
    expect(outcomes.length).toBeGreaterThan(50);
    expect(countResults(outcomes)).toEqual({ ok: outcomes.length });
    expect(longestGapMs(outcomes)).toBeLessThan(150);
  });
});

describe('ownership flip timing', () => {
  it('measures ownership change -> first translated packet on the backend wire', async () => {
    const trials = Number(process.env['SMARTNAT_FLIP_TRIALS'] ?? 9);
    const latencies: number[] = [];
    const applyTimes: number[] = [];
    for (let i = 0; i < trials; i++) {
      const capture = await startCapture(topo, 'b3', { ifname: 'eth0', filter: ['udp', 'and', 'dst', 'port', '7000'], count: 1, label: `tcpdump${i}` });
      const blast = probe(topo, 'c1', { proto: 'udp', host: VIP_FLIP, port: 7000, source: CLIENT_ALLOWED_IP, intervalMs: 1, durationMs: 900, noWait: true });
      await new Promise((r) => setTimeout(r, 300));
      const t0 = performance.timeOrigin + performance.now();
      await applier.setOwned(new Set([...OWNED, VIP_FLIP]));
      applyTimes.push(performance.timeOrigin + performance.now() - t0);
      const sent = await blast;
      await capture.stop();
      const [first] = await capture.packets();
      expect(first).toBeDefined();
      expect(first!.text).toContain(`${POD_3}.7000`);
      latencies.push(first!.t - t0);
      expect(sent.length).toBeGreaterThan(100);
      await applier.setOwned(new Set(OWNED));
    }
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const summary = { trials, medianMs: median(latencies), maxMs: Math.max(...latencies), minMs: Math.min(...latencies), setOwnedMedianMs: median(applyTimes) };
    console.log(
      `ownership flip -> first translated packet: ${JSON.stringify(summary)} all=${JSON.stringify(latencies.map((x) => Math.round(x * 10) / 10))} loadavg=${loadavg().map((x) => x.toFixed(1)).join(',')}`,
    );
    // Nothing was translated before the flip (the address was eligible but not owned), and the flip
    // took effect. The figure itself is load-dependent (two shared cores): the bound only catches a
    // flip that waits for something (a resync, a timer); the target (< 50 ms) is reported, not asserted.
    for (const l of latencies) expect(l).toBeGreaterThan(0);
    expect(summary.medianMs).toBeLessThan(2000);
  }, 600_000);
});

describe('cleanup', () => {
  it('removes everything of ours and leaves foreign rules, sets and ip rules exactly as they were', async () => {
    await cleanupDataPlane({ runner: a1, settings: DEFAULT_SETTINGS });
    const after = await kernelText();
    expect(after).toEqual(foreignBefore);
    expect(after).toContain('FOREIGN-NAT');
    expect(after).toContain('foreign-set');
    expect(after).not.toMatch(/SMARTNAT|smartnat-/);
    // And traffic stops being translated.
    expect((await tcp(VIP_1, 80)).result).not.toBe('ok');
  });
});
