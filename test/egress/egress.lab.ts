// Egress end to end (issue 11, ADR 0009) in a lab of its own: the demo Mapping gets
// spec.egress, its backend pod (b1) routes to the address's egress gateway, and a server in the
// client namespace c1 sees the Mapping's external address as the source of b1's connections,
// before and after a kill drill of the address's owner. Pods of another egress Mapping leave with
// their own Mapping's address, never this one; an egress-disabled Mapping's pod sent to the same
// gateway keeps its own source. What happens to existing egress connections on failover is
// measured and printed. Namespaces are created under the lab's name (deleted with it), processes
// stopped by the pid this file started.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execa, type ResultPromise } from 'execa';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { build, host, labDown, labUp, mainJs, sleep, waitFor, type Lab } from '../observability/harness.js';
import { PEER_SCRIPT, PEER_SCRIPT_FILE, type PeerArrival, type PeerTry, type StreamEvent } from './peer-script.js';

/** "eg" + 6 base-36 characters: unique to this file, and valid as a lab name. */
const NAME = `eg${BigInt(`0x${randomBytes(5).toString('hex')}`).toString(36).padStart(6, '0').slice(-6)}`;

const VIP_DEMO = '203.0.113.10';
const VIP_OTHER = '203.0.113.12';
const VIP_PLAIN = '203.0.113.13';
/** uplink1 is 203.0.113.10-19; its gateways 198.51.100.110-119 pair up in order (ADR 0009). */
const GATEWAYS = '198.51.100.110-198.51.100.119';
const GW_DEMO = '198.51.100.110';
const GW_OTHER = '198.51.100.112';
const SERVER = '198.18.1.10';
const SERVER_PORT = 9000;

/** Pods this file adds to the internal segment: name, address, its egress gateway. */
const PODS = [
  // A pod of another egress Mapping (eg/other, 203.0.113.12), routed to its own gateway.
  { name: 'p2', address: '198.51.100.42', via: GW_OTHER },
  // An egress-disabled Mapping's pod (eg/plain), routed to the demo address's gateway anyway.
  { name: 'p3', address: '198.51.100.43', via: GW_DEMO },
  // Another pod of eg/other, routed to the demo address's gateway (a node routing it wrongly).
  { name: 'p4', address: '198.51.100.44', via: GW_DEMO },
] as const;

let lab: Lab;
let script: string;
let serverLog: string;
let server: ResultPromise | undefined;

const ns = (node: string): string => `${NAME}-${node}`;

async function kubectl(args: readonly string[], input?: string): Promise<string> {
  const r = await host.run('kubectl', ['--kubeconfig', lab.descriptor.kubeconfig, ...args], { timeoutMs: 60_000, ...(input === undefined ? {} : { input }) });
  return r.stdout;
}

async function peer(node: string, args: readonly string[], timeoutMs = 120_000): Promise<string> {
  return (await host.run('ip', ['netns', 'exec', ns(node), process.execPath, script, ...args], { timeoutMs })).stdout;
}

function lines<T>(text: string): T[] {
  return text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as T);
}

async function once(node: string, proto: 'tcp' | 'udp', timeoutMs = 1000): Promise<PeerTry> {
  const [t] = lines<PeerTry>(await peer(node, ['once', proto, SERVER, String(SERVER_PORT), String(timeoutMs)]));
  if (t === undefined) throw new Error(`no output from ${node}`);
  return t;
}

async function arrivalsSince(t: number): Promise<PeerArrival[]> {
  return lines<PeerArrival>(await readFile(serverLog, 'utf8').catch(() => '')).filter((a) => a.t >= t);
}

async function holderOf(address: string): Promise<string> {
  return kubectl(['-n', 'smartnat-system', 'get', 'lease', `smartnat-addr-${address.replaceAll('.', '-')}`, '-o', 'jsonpath={.spec.holderIdentity}']);
}

/** The longest interval between consecutive times, with its ends. */
function longestGap(times: readonly number[]): { ms: number; from: number; after?: number } {
  const sorted = [...times].sort((a, b) => a - b);
  let best = { ms: 0, from: sorted[0] ?? 0 } as { ms: number; from: number; after?: number };
  for (let i = 1; i < sorted.length; i += 1) {
    const ms = sorted[i]! - sorted[i - 1]!;
    if (ms > best.ms) best = { ms, from: sorted[i - 1]!, after: sorted[i]! };
  }
  return best;
}

/** The lab agents whose int0 carries `address`. */
async function carriersOf(address: string): Promise<string[]> {
  const out: string[] = [];
  for (const a of lab.descriptor.agents) {
    const { stdout } = await host.run('ip', ['-n', a.netns, '-4', '-o', 'addr', 'show', 'dev', 'int0']);
    if (stdout.includes(` ${address}/32 `)) out.push(a.name);
  }
  return out;
}

function egressObjects(): string {
  const svc = (name: string): unknown => ({
    apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'eg' },
    spec: { ports: [{ name: 'tcp', port: 8080, protocol: 'TCP', targetPort: 8080 }] },
  });
  const eps = (name: string, addresses: readonly string[]): unknown => ({
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
    metadata: { name: `${name}-lab`, namespace: 'eg', labels: { 'kubernetes.io/service-name': name, 'endpointslice.kubernetes.io/managed-by': 'smartnat-lab' } },
    addressType: 'IPv4',
    endpoints: addresses.map((a) => ({ addresses: [a], conditions: { ready: true } })),
    ports: [{ name: 'tcp', port: 8080, protocol: 'TCP' }],
  });
  const mapping = (name: string, address: string, port: number, egress: boolean): unknown => ({
    apiVersion: 'smartnat.aureacentral.com/v1alpha1', kind: 'Mapping', metadata: { name, namespace: 'eg' },
    spec: {
      addresses: [address], allowedSources: ['198.18.1.0/24'], serviceName: name, ports: [{ port, protocol: 'tcp', servicePort: 8080 }],
      ...(egress ? { egress: { enabled: true } } : {}),
    },
  });
  const docs = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'eg' } },
    svc('other'), svc('plain'),
    eps('other', ['198.51.100.42', '198.51.100.44']), eps('plain', ['198.51.100.43']),
    mapping('other', VIP_OTHER, 9012, true), mapping('plain', VIP_PLAIN, 9013, false),
  ];
  return docs.map((d) => JSON.stringify(d)).join('\n');
}

/** A namespace on the lab's internal segment (a veth into its bridge), default route via `via`. */
async function addPod(p: (typeof PODS)[number], index: number): Promise<void> {
  await host.run('ip', ['netns', 'add', ns(p.name)]);
  await host.run('ip', ['link', 'add', 'name', 'eth0', 'netns', ns(p.name), 'type', 'veth', 'peer', 'name', `eg${index}`, 'netns', ns('s-int')]);
  await host.run('ip', ['-n', ns('s-int'), 'link', 'set', `eg${index}`, 'master', 'br0', 'up']);
  const inPod = (args: readonly string[]): Promise<unknown> => host.run('ip', ['-n', ns(p.name), ...args]);
  await host.run('ip', ['netns', 'exec', ns(p.name), 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1']);
  await inPod(['link', 'set', 'lo', 'up']);
  await inPod(['link', 'set', 'eth0', 'up']);
  await inPod(['addr', 'add', `${p.address}/24`, 'dev', 'eth0']);
  await inPod(['route', 'add', 'default', 'via', p.via]);
}

beforeAll(async () => {
  await build();
  lab = await labUp(NAME);
  script = join(lab.descriptor.dir, PEER_SCRIPT_FILE);
  serverLog = join(lab.descriptor.dir, 'egress-server.log');
  await writeFile(script, PEER_SCRIPT);
  await writeFile(serverLog, '');
  // Cluster side: the pool offers gateways, the demo Mapping turns egress on for 203.0.113.10.
  await kubectl(['patch', 'addresspool', 'uplink1', '--type', 'merge', '-p', JSON.stringify({ spec: { egress: { gateways: [GATEWAYS] } } })]);
  await kubectl(['-n', 'demo', 'patch', 'mapping', 'echo', '--type', 'merge', '-p', JSON.stringify({ spec: { egress: { enabled: true, address: VIP_DEMO } } })]);
  await kubectl(['apply', '-f', '-'], egressObjects());
  // Node side, as a cluster would do it: the pods' egress routes to their address's gateway.
  await host.run('ip', ['-n', ns('b1'), 'route', 'replace', 'default', 'via', GW_DEMO]);
  for (const [i, p] of PODS.entries()) await addPod(p, i + 1);
  server = execa('ip', ['netns', 'exec', ns('c1'), process.execPath, script, 'server', String(SERVER_PORT), serverLog, String(process.pid)], { reject: false, stdio: 'ignore' });
  await waitFor('b1 egress answered with the demo address', async () => {
    const t = await once('b1', 'tcp', 500);
    return t.ok && t.peer === VIP_DEMO ? t : undefined;
  }, 60_000, 250);
}, 900_000);

afterAll(async () => {
  if (server?.pid !== undefined && server.exitCode === null) {
    server.kill('SIGTERM');
    await server;
  }
  for (const p of PODS) await host.run('ip', ['netns', 'del', ns(p.name)], { okExitCodes: [0, 1] });
  await labDown(NAME);
}, 300_000);

/**
 * Runs `smartnat drill KIND` against the demo address while the pod opens a TCP connection every
 * 50 ms and keeps one long-lived connection; checks that every answer, before and after, came
 * from the demo address, through the new owner, and prints what happened to both.
 */
async function egressThroughDrill(kind: 'kill' | 'drain'): Promise<{ newGapMs: number; failed: number; survived: boolean }> {
  const before = await holderOf(VIP_DEMO);
  const loop = peer('b1', ['loop', 'tcp', SERVER, String(SERVER_PORT), '40000', '50', '300'], 120_000);
  const stream = peer('b1', ['stream', SERVER, String(SERVER_PORT), '40000', '100'], 120_000);
  const udpStream = peer('b1', ['udpstream', SERVER, String(SERVER_PORT), '40000', '100'], 120_000);
  // The drill's exit code is its verdict on the *ingress* probes (drills.lab.ts tests those; a
  // loaded machine can fail a drain's zero-loss rule): here only the move and egress count.
  const drillRun = sleep(2000).then(() => host.run(process.execPath, [mainJs, 'drill', kind, '--name', NAME, '--json'], { timeoutMs: 240_000, okExitCodes: [0, 1] }));
  const [drillOut, loopOut, streamOut, udpOut] = await Promise.allSettled([drillRun, loop, stream, udpStream]);
  if (drillOut.status === 'rejected') throw drillOut.reason;
  if (loopOut.status === 'rejected') throw loopOut.reason;
  if (streamOut.status === 'rejected') throw streamOut.reason;
  if (udpOut.status === 'rejected') throw udpOut.reason;
  const drill = JSON.parse(drillOut.value.stdout) as {
    ok: boolean;
    runs: { previousOwner: string; owner: string; moved: boolean; injectedAt: string; gapMs: number; problems: string[] }[];
  };
  const [tries, events] = [lines<PeerTry>(loopOut.value), lines<StreamEvent>(streamOut.value)];
  const run = drill.runs[0]!;
  expect({ moved: run.moved, previousOwner: run.previousOwner }).toEqual({ moved: true, previousOwner: before });
  const after = await holderOf(VIP_DEMO);
  expect(after).toBe(run.owner);
  expect(after).not.toBe(before);
  // The gateway moved with the address (same VRRP instance): on the new owner only.
  expect(await waitFor('the gateway on the new owner alone', async () => {
    const on = await carriersOf(GW_DEMO);
    return on.length === 1 && on[0] === after ? on : undefined;
  }, 10_000, 200)).toEqual([after]);

  // New connections: every success, before and after, came from the demo address; they resume.
  // Gaps are measured from the probes' own clock (the drill's injectedAt is on another clock).
  const ok = tries.filter((t) => t.ok);
  expect([...new Set(ok.map((t) => t.peer))]).toEqual([VIP_DEMO]);
  const newGap = longestGap(ok.map((t) => t.t));
  const lastTry = tries[tries.length - 1]!;
  expect(lastTry.ok).toBe(true);
  const later = await once('b1', 'tcp');
  expect({ ok: later.ok, peer: later.peer }).toEqual({ ok: true, peer: VIP_DEMO });

  // Existing connection: did connection 1 get replies after the outage, or was it cut?
  const first = events.filter((e) => e.conn === 1);
  const replies = first.filter((e) => e.event === 'reply');
  const oldGap = longestGap(replies.map((e) => e.t));
  const fate = first.find((e) => e.event === 'error' || e.event === 'closed');
  const survived = oldGap.after !== undefined && replies.some((e) => e.t > newGap.from + 1);
  const existing = {
    survived,
    longestSilenceMs: oldGap.ms,
    ended: fate ? `${fate.event}${fate.error ? ` ${fate.error}` : ''}` : 'not ended',
    reopened: events.filter((e) => e.event === 'connected').length - 1,
    peers: [...new Set(replies.map((e) => e.peer))],
  };
  // The same for one UDP flow (one socket, one source port) sending every 100 ms.
  const udpReplies = lines<StreamEvent>(udpOut.value).filter((e) => e.event === 'reply');
  const udpGap = longestGap(udpReplies.map((e) => e.t));
  const existingUdp = {
    survived: udpGap.after !== undefined && udpReplies.some((e) => e.t > newGap.from + 1),
    longestSilenceMs: udpGap.ms,
    peers: [...new Set(udpReplies.map((e) => e.peer))],
  };
  const failed = tries.filter((t) => !t.ok).length;
  const measured = { lab: NAME, kind, drillOk: drill.ok, drillProblems: run.problems, drillGapMs: run.gapMs, egressNewConnectionGapMs: newGap.ms, failedNewConnections: failed, tries: tries.length, existingEgressConnection: existing, existingUdpFlow: existingUdp };
  console.log(JSON.stringify(measured));
  expect(replies.length).toBeGreaterThan(0);
  // Whatever its fate, an existing connection never shows another source address.
  expect(existing.peers).toEqual([VIP_DEMO]);
  expect(existingUdp.peers).toEqual([VIP_DEMO]);
  return { newGapMs: newGap.ms, failed, survived };
}

describe('egress: pods leave with their Mapping\'s external address', () => {
  test('a backend pod\'s TCP and UDP connections reach a client-side server from the Mapping\'s address, and the replies come back', async () => {
    const since = Date.now();
    const tcp = await once('b1', 'tcp');
    const udp = await once('b1', 'udp');
    expect([tcp, udp].map((t) => ({ ok: t.ok, peer: t.peer }))).toEqual([{ ok: true, peer: VIP_DEMO }, { ok: true, peer: VIP_DEMO }]);
    expect((await arrivalsSince(since)).map((a) => `${a.proto} ${a.peer}`)).toEqual([`tcp ${VIP_DEMO}`, `udp ${VIP_DEMO}`]);
    // The gateway is on the address's owner, and only there; the Mapping's status names it.
    expect(await carriersOf(GW_DEMO)).toEqual([await holderOf(VIP_DEMO)]);
    const status = await waitFor('status.egress written by the leader', async () => {
      const text = await kubectl(['-n', 'demo', 'get', 'mapping', 'echo', '-o', 'jsonpath={.status.egress}']);
      return text.trim() === '' ? undefined : (JSON.parse(text) as unknown);
    }, 30_000, 500);
    expect(status).toEqual({ address: VIP_DEMO, gateway: GW_DEMO });
  }, 60_000);

  test('pods of another egress Mapping leave with that Mapping\'s address, never this one, even through this one\'s gateway', async () => {
    const p2 = await once('p2', 'tcp');
    expect({ ok: p2.ok, peer: p2.peer }).toEqual({ ok: true, peer: VIP_OTHER });
    const since = Date.now();
    await once('p4', 'udp');
    const seen = (await arrivalsSince(since)).map((a) => a.peer);
    // p4's datagram reaches the owner of 203.0.113.10: translated to 203.0.113.12 if that agent
    // owns it too, else forwarded untranslated. Never the demo Mapping's address.
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.filter((s) => s !== VIP_OTHER && s !== '198.51.100.44')).toEqual([]);
  }, 60_000);

  test('an egress-disabled Mapping\'s pod sent to the same gateway keeps its own source address', async () => {
    const since = Date.now();
    await once('p3', 'udp');
    await sleep(300);
    const seen = (await arrivalsSince(since)).map((a) => a.peer);
    expect(seen.length).toBeGreaterThan(0);
    expect([...new Set(seen)]).toEqual(['198.51.100.43']);
  }, 60_000);

  test('after a kill drill of the owner, new connections leave through the new owner with the same address; existing ones are measured', async () => {
    const r = await egressThroughDrill('kill');
    // The outage of new connections is a failover's (a lease transition and a VRRP takeover), not nothing.
    expect(r.newGapMs).toBeGreaterThan(500);
  }, 420_000);

  test('after a planned handoff (drain), egress goes on through the successor with the same address', async () => {
    const r = await egressThroughDrill('drain');
    // A planned handoff moves the gateway by a VRRP priority swap: a short gap at most.
    expect(r.newGapMs).toBeLessThan(2000);
  }, 420_000);
});
