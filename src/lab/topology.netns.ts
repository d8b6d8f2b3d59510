// Self-tests of the topology library with real namespaces and traffic: the plainly routed path
// client -> router -> agent -> backend carries TCP and UDP, the probe tells ok / refused / timeout
// apart, the link knobs work, and teardown leaves no namespace and no process behind.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { writeFile, readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer, connect, type Server } from 'node:net';
import { startBridge, renderSocatAddresses } from './bridge.js';
import { join } from 'node:path';
import { buildTopology, labStatus, startEchoServer, listLabNamespaces, sweepStaleLabs, teardownLab, type Topology } from './topology.js';
import { planStandardLab, type StandardLabPlan } from './standard-lab.js';
import { probe, probeOnce, longestGapMs, countResults, type ProbeOutcome } from './probe.js';
import { crashNode, reviveNode, nodePids } from './faults.js';
import { setMtu, setLinkState, setSysctls, readSysctl, linkInfo } from './link-control.js';
import { isRunning, signal, startBackground, stopBackground } from './processes.js';
import { ExecaCommandRunner } from '../dataplane/command-runner.js';

const host = new ExecaCommandRunner();
let topo: Topology;
let plan: StandardLabPlan;
let B1: string;
let B2: string;
let C1_MAIN: string;
let C1_OTHER: string;
let C1_THIRD: string;

beforeAll(async () => {
  const lab = planStandardLab({
    agents: 1,
    backends: [
      { name: 'b1', tcpPorts: [8080], udpPorts: [8080] },
      { name: 'b2', tcpPorts: [8080, 9000], udpPorts: [9000] },
    ],
  });
  plan = lab.plan;
  topo = await buildTopology(lab.spec);
  B1 = plan.backends[0]!.address;
  B2 = plan.backends[1]!.address;
  [C1_MAIN, C1_OTHER, C1_THIRD] = plan.clients[0]!.addresses as [string, string, string];
}, 60_000);

afterAll(async () => {
  if (topo && !topo.tornDown) await topo.teardown();
}, 60_000);

describe('standard lab, plainly routed (no NAT)', () => {
  it('builds one namespace per node and segment, all with the lab prefix', async () => {
    const listed = await listLabNamespaces(topo.name);
    expect(listed.sort()).toEqual(topo.namespaces().sort());
    expect(listed).toHaveLength(2 + 1 + 2 + 2 + 3); // routers, agent, backends, clients, segments
    expect(await readSysctl(topo, 'a1', 'net.ipv4.ip_forward')).toBe('1');
    expect(await readSysctl(topo, 'r1', 'net.ipv4.ip_forward')).toBe('1');
    expect(await readSysctl(topo, 'b1', 'net.ipv4.ip_forward')).toBe('0');
  });

  it('carries TCP from every client source to the backend, which sees the real source', async () => {
    for (const source of [C1_MAIN, C1_OTHER, C1_THIRD]) {
      const r = await probeOnce(topo, 'c1', { proto: 'tcp', host: B1, port: 8080, source });
      expect(r).toMatchObject({ result: 'ok', connected: true, reply: { name: 'b1', address: B1, local: `${B1}:8080` } });
      expect(r.reply!.peer.split(':')[0]).toBe(source);
    }
  });

  it('carries UDP round trips, and the second backend answers with its own name', async () => {
    const r1 = await probeOnce(topo, 'c1', { proto: 'udp', host: B1, port: 8080, source: C1_MAIN });
    expect(r1).toMatchObject({ result: 'ok', reply: { name: 'b1', address: B1 } });
    expect(r1.reply!.peer.split(':')[0]).toBe(C1_MAIN);
    const r2 = await probeOnce(topo, 'c1', { proto: 'udp', host: B2, port: 9000 });
    expect(r2).toMatchObject({ result: 'ok', reply: { name: 'b2', address: B2 } });
  });

  it('client c2 behind r2 reaches the backend over uplink 2', async () => {
    // The agent's default route points at r1, which knows nothing of 198.18.2.0/24: add the way back.
    const c2Net = `${plan.clients[1]!.addresses[0]!.split('.').slice(0, 3).join('.')}.0/24`;
    await topo.host.run('ip', ['-n', topo.ns('a1'), 'route', 'add', c2Net, 'via', plan.gateways.ext1]);
    const r = await probeOnce(topo, 'c2', { proto: 'tcp', host: B2, port: 8080 });
    expect(r).toMatchObject({ result: 'ok', reply: { name: 'b2' } });
    await topo.host.run('ip', ['-n', topo.ns('a1'), 'route', 'del', c2Net, 'via', plan.gateways.ext1]);
    const after = await probeOnce(topo, 'c2', { proto: 'tcp', host: B2, port: 8080, timeoutMs: 500 });
    expect(after.result).toBe('timeout');
  });

  it('tells refused (RST / ICMP port unreachable) from ok', async () => {
    const tcp = await probeOnce(topo, 'c1', { proto: 'tcp', host: B1, port: 9999 });
    expect(tcp).toMatchObject({ result: 'refused', connected: false, error: 'ECONNREFUSED' });
    const udp = await probeOnce(topo, 'c1', { proto: 'udp', host: B1, port: 9999 });
    expect(udp).toMatchObject({ result: 'refused', error: 'ECONNREFUSED' });
  });

  it('tells a silent drop (timeout) from ok, with an allowed control from another source', async () => {
    const b1 = topo.runner('b1');
    const rule = ['-s', C1_OTHER, '-p', 'tcp', '--dport', '8080', '-j', 'DROP'];
    await b1.run('iptables', ['-w', '-I', 'INPUT', ...rule]);
    try {
      const dropped = await probeOnce(topo, 'c1', { proto: 'tcp', host: B1, port: 8080, source: C1_OTHER, timeoutMs: 500 });
      const control = await probeOnce(topo, 'c1', { proto: 'tcp', host: B1, port: 8080, source: C1_MAIN, timeoutMs: 500 });
      expect(dropped).toMatchObject({ result: 'timeout', connected: false });
      expect(control).toMatchObject({ result: 'ok' });
    } finally {
      await b1.run('iptables', ['-w', '-D', 'INPUT', ...rule]);
    }
    expect(await probeOnce(topo, 'c1', { proto: 'tcp', host: B1, port: 8080, source: C1_OTHER })).toMatchObject({ result: 'ok' });
  });

  it('a probe loop reports a gap while a link is down, and routes come back with the link', async () => {
    const loop = probe(topo, 'c1', { proto: 'tcp', host: B1, port: 8080, timeoutMs: 100, intervalMs: 20, durationMs: 1500 });
    await new Promise((r) => setTimeout(r, 400));
    await setLinkState(topo, 'b1', 'eth0', 'down');
    expect((await linkInfo(topo, 'b1', 'eth0')).operstate).toBe('DOWN');
    await new Promise((r) => setTimeout(r, 400));
    await setLinkState(topo, 'b1', 'eth0', 'up');
    const outcomes = await loop;
    const gap = longestGapMs(outcomes);
    expect(countResults(outcomes).ok).toBeGreaterThan(5);
    expect(gap).toBeGreaterThan(300);
    expect(gap).toBeLessThan(1400);
    expect(outcomes[outcomes.length - 1]!.result).toBe('ok');
    // b1's default route (gone while the link was down) was put back by setLinkState('up').
    expect(await probeOnce(topo, 'c1', { proto: 'tcp', host: B1, port: 8080 })).toMatchObject({ result: 'ok' });
  });

  it('an overlapping probe loop keeps its rate while the path is down (100 tries/s, 200 ms timeout)', async () => {
    const loop = probe(topo, 'c1', { proto: 'tcp', host: B1, port: 8080, timeoutMs: 200, intervalMs: 10, durationMs: 1500, overlap: true });
    await new Promise((r) => setTimeout(r, 500));
    await setLinkState(topo, 'b1', 'eth0', 'down');
    await new Promise((r) => setTimeout(r, 400));
    await setLinkState(topo, 'b1', 'eth0', 'up');
    const outcomes = await loop;
    const counts = countResults(outcomes);
    // ~150 tries whatever happened to the path; a sequential loop would manage far fewer while timing out.
    expect(outcomes.length).toBeGreaterThan(100);
    expect(outcomes.map((o) => o.seq)).toEqual(outcomes.map((_, i) => i));
    expect(counts.timeout ?? 0).toBeGreaterThan(10);
    const gap = longestGapMs(outcomes);
    expect(gap).toBeGreaterThan(300);
    expect(gap).toBeLessThan(1200);
  });

  it('a 1280-byte link on the client path still carries a 100 KB reply', async () => {
    await setMtu(topo, 'c1', 'eth0', 1280);
    await setMtu(topo, 'r1', 'toc1', 1280);
    try {
      expect((await linkInfo(topo, 'c1', 'eth0')).mtu).toBe(1280);
      const r = await probeOnce(topo, 'c1', { proto: 'tcp', host: B1, port: 8080, request: 'big 102400', timeoutMs: 3000 });
      expect(r).toMatchObject({ result: 'ok', bytes: 102400, reply: { bytes: 102400 } });
    } finally {
      await setMtu(topo, 'c1', 'eth0', 1500);
      await setMtu(topo, 'r1', 'toc1', 1500);
    }
  });

  it('sysctls are per namespace', async () => {
    const rootValue = (await host.run('sysctl', ['-n', 'net.ipv4.conf.all.rp_filter'])).stdout.trim();
    await setSysctls(topo, 'a1', { 'net.ipv4.conf.all.rp_filter': '1' });
    expect(await readSysctl(topo, 'a1', 'net.ipv4.conf.all.rp_filter')).toBe('1');
    expect((await host.run('sysctl', ['-n', 'net.ipv4.conf.all.rp_filter'])).stdout.trim()).toBe(rootValue);
    await setSysctls(topo, 'a1', { 'net.ipv4.conf.all.rp_filter': '0' });
  });
});

describe('management segment and host bridges (no link to the host)', () => {
  let mlab: Topology;
  let server: Server;
  let apiSock: string;

  beforeAll(async () => {
    const { spec } = planStandardLab({ agents: 2, backends: [], management: true });
    mlab = await buildTopology(spec);
    apiSock = join(mlab.dir, 'api.sock');
    // Stands in for the API proxy on the host: answers one JSON line, as the echo servers do.
    server = createServer((sock) => {
      sock.once('data', (d) => sock.end(`${JSON.stringify({ name: 'host-api', address: '', local: 'unix', peer: 'unix', request: d.toString().trim(), bytes: 0 })}\n`));
    });
    await new Promise<void>((resolve) => server.listen(apiSock, resolve));
  }, 60_000);

  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
    if (mlab) expect((await mlab.teardown()).leftoverNamespaces).toEqual([]);
  }, 60_000);

  it('an agent reaches a host Unix socket through the hub, and cutting its mgmt0 cuts it alone', async () => {
    const hub = mlab.addresses('mgmt')[0]!;
    expect(hub).toBe('198.19.255.1');
    await startBridge(mlab, 'mgmt', { tcpListen: { host: hub, port: 6443 } }, { unixConnect: apiSock }, 'api');
    const reach = (node: string): Promise<string> => probeOnce(mlab, node, { proto: 'tcp', host: hub, port: 6443, timeoutMs: 500 }).then((r) => r.result);
    expect(await reach('a1')).toBe('ok');
    expect(await reach('a2')).toBe('ok');
    await setLinkState(mlab, 'a1', 'mgmt0', 'down');
    expect(await reach('a1')).not.toBe('ok');
    expect(await reach('a2')).toBe('ok');
    await setLinkState(mlab, 'a1', 'mgmt0', 'up');
    expect(await reach('a1')).toBe('ok');
  });

  it('the host reaches a TCP listener inside an agent through a Unix socket', async () => {
    const a1Mgmt = mlab.addresses('a1', 'mgmt0')[0]!;
    const ready = join(mlab.dir, 'a1-metrics.ready');
    await mlab.startProcess('a1', {
      label: 'metrics', cmd: process.execPath, readyFile: ready,
      args: [mlab.scripts.echoServer, '--name', 'a1', '--address', a1Mgmt, '--tcp', '9100', '--ready', ready, '--watch-pid', String(process.pid)],
    });
    const metricsSock = join(mlab.dir, 'a1-metrics.sock');
    await startBridge(mlab, 'mgmt', { unixListen: metricsSock }, { tcpConnect: { host: a1Mgmt, port: 9100 } }, 'metrics');
    const reply = await new Promise<string>((resolve, reject) => {
      const c = connect(metricsSock, () => c.write('hello\n'));
      let text = '';
      c.on('data', (d) => (text += d.toString()));
      c.on('end', () => resolve(text));
      c.on('error', reject);
    });
    expect(JSON.parse(reply.split('\n')[0]!)).toMatchObject({ name: 'a1', local: `${a1Mgmt}:9100` });
  });

  it('crashNode kills every process of a node and takes its links down at once; reviveNode brings the links back', async () => {
    const a2Mgmt = mlab.addresses('a2', 'mgmt0')[0]!;
    const echo = await startEchoServer(mlab, 'a2', { tcpPorts: [9200] });
    const reach = (): Promise<ProbeOutcome> => probeOnce(mlab, 'a1', { proto: 'tcp', host: a2Mgmt, port: 9200, timeoutMs: 500 });
    expect(await reach()).toMatchObject({ result: 'ok', reply: { name: 'a2' } });
    const crash = await crashNode(mlab, 'a2');
    expect(crash.killed).toContain(echo.pid);
    expect([...crash.linksDown].sort()).toEqual(['ext0', 'ext1', 'int0', 'mgmt0']);
    expect(await isRunning(echo)).toBe(false);
    expect(await nodePids(mlab, 'a2')).toEqual([]);
    expect((await linkInfo(mlab, 'a2', 'mgmt0')).operstate).toBe('DOWN');
    expect((await reach()).result).toBe('timeout');
    await reviveNode(mlab, 'a2');
    expect((await linkInfo(mlab, 'a2', 'mgmt0')).flags).toContain('UP');
    expect((await reach()).result).toBe('refused'); // the node is back, its program is not
    await startEchoServer(mlab, 'a2', { tcpPorts: [9200] });
    expect(await reach()).toMatchObject({ result: 'ok', reply: { name: 'a2' } });
  });

  it('socat addresses are built from validated values only', () => {
    expect(renderSocatAddresses({ tcpListen: { host: '198.19.255.1', port: 6443 } }, { unixConnect: '/tmp/x/api.sock' })).toEqual([
      'TCP-LISTEN:6443,bind=198.19.255.1,reuseaddr,fork',
      'UNIX-CONNECT:/tmp/x/api.sock',
    ]);
    expect(() => renderSocatAddresses({ unixListen: '/tmp/a,fork' }, { tcpConnect: { host: '198.19.255.1', port: 1 } })).toThrow(/socket path/);
    expect(() => renderSocatAddresses({ unixListen: '/tmp/a' }, { tcpConnect: { host: '198.19.255.1:80', port: 1 } })).toThrow(/IPv4/);
  });
});

describe('teardown', () => {
  it('refuses to build over a live lab of the same name, and leaves that lab alone', async () => {
    await expect(buildTopology(planStandardLab().spec, { name: topo.name })).rejects.toThrow(/already exists/);
    expect((await listLabNamespaces(topo.name)).sort()).toEqual(topo.namespaces().sort());
    expect(await probeOnce(topo, 'c1', { proto: 'tcp', host: B1, port: 8080 })).toMatchObject({ result: 'ok' });
  });

  it('a build that fails halfway removes what it made', async () => {
    const lab = planStandardLab();
    // A gateway no interface can reach: route creation fails after the namespaces exist.
    const spec = { ...lab.spec, nodes: lab.spec.nodes.map((n) => (n.name === 'c1' ? { ...n, routes: [{ to: '198.18.9.0/24', via: '198.18.200.1' }] } : n)) };
    const name = `snf${process.pid.toString(36)}`.slice(0, 10);
    await expect(buildTopology(spec, { name })).rejects.toThrow(/198\.18\.200\.1|Nexthop|unreachable/i);
    expect(await listLabNamespaces(name)).toEqual([]);
  }, 60_000);

  it('the guard tears a lab down when its owner dies without teardown (crash, SIGKILL)', async () => {
    const ownerDir = await mkdtemp(join(tmpdir(), 'snl-owner-'));
    const owner = await startBackground(host, '', {
      label: 'owner', cmd: '/usr/bin/sleep', args: ['120'], pidFile: join(ownerDir, 'pid'), logFile: join(ownerDir, 'log'),
    });
    try {
      const lab = planStandardLab({ backends: [{ name: 'b1', tcpPorts: [8082] }] });
      const orphan = await buildTopology(lab.spec, { ownerPid: owner.pid });
      const tracked = [...orphan.processes, orphan.guard!];
      expect(await listLabNamespaces(orphan.name)).toHaveLength(10 - 1);
      expect(await probeOnce(orphan, 'c1', { proto: 'tcp', host: orphan.addresses('b1')[0]!, port: 8082 })).toMatchObject({ result: 'ok' });
      const lookalike = `${orphan.name}-lookalike`;
      await host.run('ip', ['netns', 'add', lookalike]);
      signal(owner.pid, 'SIGKILL');
      const deadline = performance.now() + 10_000;
      while (performance.now() < deadline && (await listLabNamespaces(orphan.name)).length > 1) await new Promise((r) => setTimeout(r, 100));
      expect(await listLabNamespaces(orphan.name)).toEqual([lookalike]);
      await host.run('ip', ['netns', 'del', lookalike]);
      for (const p of tracked) {
        while (performance.now() < deadline && (await isRunning(p))) await new Promise((r) => setTimeout(r, 50));
        expect(await isRunning(p)).toBe(false);
      }
    } finally {
      await stopBackground(owner);
      await rm(ownerDir, { recursive: true, force: true });
    }
  }, 60_000);

  it('a lab whose owner died is swept', async () => {
    const lab = planStandardLab({ backends: [{ name: 'b1', tcpPorts: [8081] }] });
    const orphan = await buildTopology(lab.spec);
    const echo = orphan.processes[0]!;
    expect(await isRunning(echo)).toBe(true);
    // Pretend the owner crashed: point the record at a pid that does not exist.
    const ownerFile = join(orphan.dir, 'owner.json');
    const owner = JSON.parse(await readFile(ownerFile, 'utf8')) as { pid: number };
    await writeFile(ownerFile, JSON.stringify({ ...owner, pid: 4_194_000 }));
    const swept = await sweepStaleLabs();
    expect(swept).toContain(orphan.name);
    expect(await listLabNamespaces(orphan.name)).toEqual([]);
    expect(await isRunning(echo)).toBe(false);
  }, 60_000);

  it('removes every namespace and process, and is idempotent', async () => {
    const before = await labStatus(topo.name);
    expect(before).toMatchObject({ recorded: true, ownerPid: process.pid });
    expect([...before.namespaces].sort()).toEqual(topo.namespaces().sort());
    expect(before.processes.map((p) => [p.label, p.running])).toEqual([['echo', true], ['echo', true], ['guard', true]]);
    // A namespace that merely shares the prefix is not the lab's: it must survive the teardown.
    const lookalike = `${topo.name}-lookalike`;
    await host.run('ip', ['netns', 'add', lookalike]);
    const pids = topo.processes;
    expect(pids.length).toBe(2);
    for (const p of pids) expect(await isRunning(p)).toBe(true);
    const report = await topo.teardown();
    expect(report.leftoverNamespaces).toEqual([]);
    expect(report.leftoverProcesses).toEqual([]);
    expect(report.namespacesDeleted).toHaveLength(10);
    expect(topo.guard).toBeDefined();
    expect([...report.processesStopped].sort()).toEqual([...pids.map((p) => p.pid), topo.guard!.pid].sort());
    expect(await isRunning(topo.guard!)).toBe(false);
    expect(await listLabNamespaces(topo.name)).toEqual([lookalike]);
    await host.run('ip', ['netns', 'del', lookalike]);
    expect(await listLabNamespaces(topo.name)).toEqual([]);
    for (const p of pids) expect(await isRunning(p)).toBe(false);
    expect(await labStatus(topo.name)).toEqual({ name: topo.name, recorded: false, namespaces: [], processes: [] });
    const again = await teardownLab(topo.name);
    expect(again).toEqual({ namespacesDeleted: [], processesStopped: [], leftoverNamespaces: [], leftoverProcesses: [] });
  }, 60_000);
});
