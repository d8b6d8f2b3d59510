// Per-Mapping counters from a real kernel: the applier programs an agent namespace of a small lab
// of our own (prefix `ob`), a client opens TCP connections and sends UDP datagrams through one
// Mapping's floating address and some its allow-list refuses to another, and the scrape
// (iptables-save -c and ipset save through the applier's runner, parsed to data) credits
// connections, packets and bytes (ADR 0011) to the right Mapping and verdict only.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { Registry } from 'prom-client';
import { registerMappingTraffic } from '../../src/agent/mapping-metrics.js';
import { DataPlaneApplier } from '../../src/dataplane/apply.js';
import type { CommandRunner } from '../../src/dataplane/command-runner.js';
import { MappingCounterReader, parseRuleCounters } from '../../src/dataplane/counters.js';
import { CHAINS } from '../../src/dataplane/render-names.js';
import { ensureSysctls } from '../../src/dataplane/host-checks.js';
import { agent, mapping, ok, service, slice, snapshot } from '../../src/dataplane/testing/fixtures.js';
import { addAddress } from '../../src/lab/link-control.js';
import { probe, countResults } from '../../src/lab/probe.js';
import { planStandardLab } from '../../src/lab/standard-lab.js';
import { buildTopology, type Topology } from '../../src/lab/topology.js';
import { silentLogger } from '../../src/log/logger.js';
import { DEFAULT_SETTINGS } from '../../src/model/settings.js';
import { planDataPlane } from '../../src/plan/plan-dataplane.js';

const VIP_WEB = '203.0.113.10';
const VIP_API = '203.0.113.11';
const POD_1 = '198.51.100.21';
const POD_2 = '198.51.100.22';
const ALLOWED_ELSEWHERE = '192.0.2.0/24';
const CLIENT = '198.18.1.10';

const lab = planStandardLab({ agents: 1, backends: [{ name: 'b1', tcpPorts: [8080], udpPorts: [5353] }, { name: 'b2', tcpPorts: [8080] }] });

let topo: Topology;
let a1: CommandRunner;
let applier: DataPlaneApplier;
const registry = new Registry();

async function scraped(metric = 'connections', verdict?: 'allowed' | 'denied'): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const labels = verdict === undefined ? '' : `,verdict="${verdict}"`;
  const re = new RegExp(`^smartnat_mapping_${metric}_total\\{namespace="([^"]+)",mapping="([^"]+)"${labels}\\} (\\d+)$`);
  for (const line of (await registry.metrics()).split('\n')) {
    const m = re.exec(line);
    if (m) out[m[2] ?? ''] = Number(m[3]);
  }
  return out;
}

/** One UDP datagram of the lab probe: the request, a space and the try's number (one digit here). */
function udpIpBytes(request: string): number {
  return 20 + 8 + request.length + 2;
}

beforeAll(async () => {
  topo = await buildTopology(lab.spec, { name: `ob${randomBytes(3).toString('hex')}` });
  a1 = topo.runner('a1');
  for (const vip of [VIP_WEB, VIP_API]) await addAddress(topo, 'a1', 'ext0', `${vip}/32`);
  const desired = planDataPlane(
    snapshot({
      agent: agent({ twoUplinks: true }),
      mappings: [
        ok(mapping({ name: 'web', addresses: [VIP_WEB], ports: [{ port: 80 }, { port: 53, protocol: 'udp' }] })),
        ok(mapping({ name: 'api', addresses: [VIP_API], ports: [{ port: 80 }] })),
        ok(mapping({ name: 'locked', addresses: [VIP_API], ports: [{ port: 53, protocol: 'udp' }], allowedSources: [ALLOWED_ELSEWHERE] })),
      ],
      services: [
        service('web', [{ name: 'http', port: 80 }, { name: 'dns', port: 53, protocol: 'udp' }]), service('api', [{ name: 'http', port: 80 }]),
        service('locked', [{ name: 'dns', port: 53, protocol: 'udp' }]),
      ],
      endpointSlices: [
        slice({ name: 'web-1', service: 'web', ports: [{ name: 'http', port: 8080 }, { name: 'dns', port: 5353, protocol: 'udp' }], endpoints: [POD_1] }),
        slice({ name: 'api-1', service: 'api', ports: [{ name: 'http', port: 8080 }], endpoints: [POD_2] }),
        slice({ name: 'locked-1', service: 'locked', ports: [{ name: 'dns', port: 5353, protocol: 'udp' }], endpoints: [POD_1] }),
      ],
      owned: new Set([VIP_WEB, VIP_API]),
    }),
    DEFAULT_SETTINGS,
  ).desired;
  expect(await ensureSysctls(a1, desired)).toEqual([]);
  applier = new DataPlaneApplier({ runner: a1 });
  expect((await applier.sync(desired)).failedMappings).toEqual([]);
  registerMappingTraffic(registry, new MappingCounterReader({ runner: a1, current: () => applier.current(), cacheMs: 0 }), silentLogger());
}, 60_000);

afterAll(async () => {
  if (topo) {
    const report = await topo.teardown();
    expect(report.leftoverNamespaces).toEqual([]);
    expect(report.leftoverProcesses).toEqual([]);
  }
}, 60_000);

describe('per-Mapping counters from our rule and set counters', () => {
  it('counts connections, packets and bytes through one Mapping, denied ones on the Mapping that refused them, and nothing elsewhere', async () => {
    const zero = { web: 0, api: 0, locked: 0 };
    expect(await scraped()).toEqual(zero);
    for (const verdict of ['allowed', 'denied'] as const) {
      expect(await scraped('packets', verdict)).toEqual(zero);
      expect(await scraped('bytes', verdict)).toEqual(zero);
    }

    // UDP first: one datagram per try, each a new flow, so packets and IP bytes are known exactly.
    const udp = await probe(topo, 'c1', { proto: 'udp', host: VIP_WEB, port: 53, source: CLIENT, count: 3, timeoutMs: 2000, request: 'acct' });
    expect(countResults(udp)).toEqual({ ok: 3 });
    expect(await scraped()).toEqual({ ...zero, web: 3 });
    expect(await scraped('packets', 'allowed')).toEqual({ ...zero, web: 3 });
    expect(await scraped('bytes', 'allowed')).toEqual({ ...zero, web: 3 * udpIpBytes('acct') });

    // TCP: 5 connections; every client-to-service packet after the SYN is counted too (ESTABLISHED).
    const tcp = await probe(topo, 'c1', { proto: 'tcp', host: VIP_WEB, port: 80, source: CLIENT, count: 5, timeoutMs: 2000 });
    expect(countResults(tcp)).toEqual({ ok: 5 });
    expect(await scraped()).toEqual({ ...zero, web: 8 });
    const packets = (await scraped('packets', 'allowed'))['web'] ?? 0;
    const bytes = (await scraped('bytes', 'allowed'))['web'] ?? 0;
    // SYN, ACK, request and FIN/ACK at least: 4 packets a connection, each at least 40 bytes of headers.
    expect(packets - 3).toBeGreaterThanOrEqual(5 * 4);
    expect(bytes - 3 * udpIpBytes('acct')).toBeGreaterThanOrEqual((packets - 3) * 40);

    const other = await probe(topo, 'c1', { proto: 'tcp', host: VIP_API, port: 80, source: CLIENT, count: 2, timeoutMs: 2000 });
    expect(countResults(other)).toEqual({ ok: 2 });
    expect(await scraped()).toEqual({ ...zero, web: 8, api: 2 });

    // The client is not in locked's allow-list: its datagrams are dropped and counted as denied, on locked only.
    const refused = await probe(topo, 'c1', { proto: 'udp', host: VIP_API, port: 53, source: CLIENT, count: 2, noWait: true, request: 'deny' });
    expect(countResults(refused)).toEqual({ sent: 2 });
    expect(await scraped('packets', 'denied')).toEqual({ ...zero, locked: 2 });
    expect(await scraped('bytes', 'denied')).toEqual({ ...zero, locked: 2 * udpIpBytes('deny') });
    expect((await scraped('packets', 'allowed'))['locked']).toBe(0);
    expect(await scraped()).toEqual({ ...zero, web: 8, api: 2 });
  });

  it('does not count as denied the reset of a connection this owner never saw (what clients send a new owner after a failover)', async () => {
    // An allowed client holds a TCP connection through web; the owner then forgets it (its conntrack
    // entry deleted, as on a new owner), and the client resets it: conntrack cannot pick a
    // connection up from a RST, so the packet is INVALID here. It is dropped, but no allow-list
    // refused it: a CI kill drill counted two such packets as denied before the rule matched NEW only.
    const sourcePort = 40_123;
    const script = [
      "const net = require('node:net');",
      `const s = net.connect({ host: '${VIP_WEB}', port: 80, localAddress: '${CLIENT}', localPort: ${sourcePort} }, () => {`,
      '  setTimeout(() => { s.resetAndDestroy(); setTimeout(() => process.exit(0), 300); }, 3000);',
      '});',
      "s.on('error', (e) => { console.error(e.message); process.exit(1); });",
    ].join('\n');
    const client = topo.runner('c1').run(process.execPath, ['-e', script], { timeoutMs: 15_000 });
    const entry = ['-p', 'tcp', '-s', CLIENT, '-d', VIP_WEB, '--sport', String(sourcePort), '--dport', '80'];
    const seen = async (): Promise<boolean> => (await a1.run('conntrack', ['-L', ...entry], { okExitCodes: [0, 1] })).stdout.includes('ESTABLISHED');
    const deadline = Date.now() + 2500;
    while (!(await seen()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(await seen()).toBe(true);
    const before = { allowed: await scraped('packets', 'allowed'), denied: await scraped('packets', 'denied'), dropped: await finalDrops() };
    await a1.run('conntrack', ['-D', ...entry]);
    await client;
    expect(await scraped('packets', 'denied')).toEqual(before.denied);
    expect(await scraped('packets', 'allowed')).toEqual(before.allowed);
    // The reset did arrive and was dropped by the final rule (so the check above is not vacuous).
    expect(await finalDrops()).toBeGreaterThan(before.dropped);
  });
});

/** Packets the last rule of SMARTNAT-PREROUTING (mangle), the final DROP, dropped so far. */
async function finalDrops(): Promise<number> {
  const { stdout } = await a1.run('iptables-save', ['-c', '-t', 'mangle']);
  const last = parseRuleCounters(stdout, new Set([CHAINS.manglePrerouting])).at(-1);
  if (last?.target !== 'DROP') throw new Error(`${CHAINS.manglePrerouting} does not end with a counted DROP:\n${stdout}`);
  return last.packets;
}
