// smartnat_mapping_connections_total from the rule counters of a real kernel: the applier programs
// an agent namespace of a small lab of our own (prefix `ob`), a client opens TCP connections and
// sends UDP datagrams through one Mapping's floating address, and the scrape (iptables-save -c
// through the applier's runner, parsed to data) credits them to that Mapping only.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { Registry } from 'prom-client';
import { registerMappingConnections } from '../../src/agent/mapping-metrics.js';
import { DataPlaneApplier } from '../../src/dataplane/apply.js';
import type { CommandRunner } from '../../src/dataplane/command-runner.js';
import { MappingCounterReader } from '../../src/dataplane/counters.js';
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
const CLIENT = '198.18.1.10';

const lab = planStandardLab({ agents: 1, backends: [{ name: 'b1', tcpPorts: [8080], udpPorts: [5353] }, { name: 'b2', tcpPorts: [8080] }] });

let topo: Topology;
let a1: CommandRunner;
let applier: DataPlaneApplier;
const registry = new Registry();

async function scraped(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const line of (await registry.metrics()).split('\n')) {
    const m = /^smartnat_mapping_connections_total\{namespace="([^"]+)",mapping="([^"]+)"\} (\d+)$/.exec(line);
    if (m) out[`${m[1]}/${m[2]}`] = Number(m[3]);
  }
  return out;
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
      ],
      services: [service('web', [{ name: 'http', port: 80 }, { name: 'dns', port: 53, protocol: 'udp' }]), service('api', [{ name: 'http', port: 80 }])],
      endpointSlices: [
        slice({ name: 'web-1', service: 'web', ports: [{ name: 'http', port: 8080 }, { name: 'dns', port: 5353, protocol: 'udp' }], endpoints: [POD_1] }),
        slice({ name: 'api-1', service: 'api', ports: [{ name: 'http', port: 8080 }], endpoints: [POD_2] }),
      ],
      owned: new Set([VIP_WEB, VIP_API]),
    }),
    DEFAULT_SETTINGS,
  ).desired;
  expect(await ensureSysctls(a1, desired)).toEqual([]);
  applier = new DataPlaneApplier({ runner: a1 });
  expect((await applier.sync(desired)).failedMappings).toEqual([]);
  registerMappingConnections(registry, new MappingCounterReader({ runner: a1, current: () => applier.current(), cacheMs: 0 }), silentLogger());
}, 60_000);

afterAll(async () => {
  if (topo) {
    const report = await topo.teardown();
    expect(report.leftoverNamespaces).toEqual([]);
    expect(report.leftoverProcesses).toEqual([]);
  }
}, 60_000);

describe('per-Mapping connections from our rule counters', () => {
  it('counts the connections through one Mapping, and nothing for the other', async () => {
    // The ns/name the fixtures give Mappings.
    const before = await scraped();
    const web = Object.keys(before).find((k) => k.endsWith('/web')) ?? '';
    const api = Object.keys(before).find((k) => k.endsWith('/api')) ?? '';
    expect(before).toEqual({ [web]: 0, [api]: 0 });

    const tcp = await probe(topo, 'c1', { proto: 'tcp', host: VIP_WEB, port: 80, source: CLIENT, count: 5, timeoutMs: 2000 });
    expect(countResults(tcp)).toEqual({ ok: 5 });
    const udp = await probe(topo, 'c1', { proto: 'udp', host: VIP_WEB, port: 53, source: CLIENT, count: 3, timeoutMs: 2000 });
    expect(countResults(udp)).toEqual({ ok: 3 });
    // 5 TCP connections and 3 UDP flows (a probe per source port): 8 first packets through web's rules.
    expect(await scraped()).toEqual({ [web]: 8, [api]: 0 });

    const other = await probe(topo, 'c1', { proto: 'tcp', host: VIP_API, port: 80, source: CLIENT, count: 2, timeoutMs: 2000 });
    expect(countResults(other)).toEqual({ ok: 2 });
    expect(await scraped()).toEqual({ [web]: 8, [api]: 2 });
  });
});
