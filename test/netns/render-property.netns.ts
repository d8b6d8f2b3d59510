// Property test against the real kernel (issue 10 item 2): for random valid snapshots, what the
// applier writes is accepted by the real ipset/iptables-restore, and the packet tracer run over
// the kernel's OWN read-back (iptables-save, ipset save) agrees with an independent oracle of the
// intended mapping: allowed source -> DNAT to exactly the ready endpoints' target ports, other
// sources and unmapped ports -> drop, owned port without endpoints -> reject, address not owned ->
// never translated. Random keepalived inputs pass the real `keepalived -t`.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { ExecaCommandRunner } from '../../src/dataplane/command-runner.js';
import { DataPlaneApplier } from '../../src/dataplane/apply.js';
import { cleanupDataPlane } from '../../src/dataplane/cleanup.js';
import { DEFAULT_IPTABLES, readIptables } from '../../src/dataplane/readback.js';
import { tracePacket, traceAll, type TracedSet, type Verdict } from '../../src/dataplane/testing/trace.js';
import { agent, mapping, ok, pool, service, slice, snapshot } from '../../src/dataplane/testing/fixtures.js';
import { DEFAULT_SETTINGS } from '../../src/model/settings.js';
import { planDataPlane } from '../../src/plan/plan-dataplane.js';
import { compileKeepalivedTemplate, renderKeepalivedConfig } from '../../src/keepalived/render.js';
import { createAgentNamespace } from '../../src/agent/testing/agent-netns.js';

jest.setTimeout(240_000);

const host = new ExecaCommandRunner();
const ns = `snpr-${randomBytes(3).toString('hex')}`;
const inNs = new ExecaCommandRunner(ns);
const dir = mkdtempSync(join(tmpdir(), 'snpr-'));

const POOL_ADDRESSES = ['203.0.113.10', '203.0.113.11', '203.0.113.12', '192.0.2.10', '192.0.2.11'];
const ALLOWED_CLIENT_NET = '198.18.1.0/24';
const ALLOWED_CLIENT = '198.18.1.7';
const BARE_CLIENT = '198.18.4.4';
const OTHER_CLIENT = '198.18.9.9';
const PODS = ['198.51.100.21', '198.51.100.22', '198.51.100.23', '198.51.100.24'];

interface PortCase {
  readonly address: string;
  readonly protocol: 'tcp' | 'udp';
  readonly port: number;
  readonly servicePort: number;
  readonly targetPort: number;
}
interface MappingCase {
  readonly name: string;
  readonly ports: readonly PortCase[];
  readonly sources: 'any' | 'net' | 'bare';
  readonly endpoints: readonly { ip: string; ready: boolean }[];
}

/** Random Mappings whose (address, protocol, port) are unique cluster-wide (the leader's rule). */
const arbWorld = fc
  .array(
    fc.record({
      address: fc.constantFrom(...POOL_ADDRESSES),
      protocol: fc.constantFrom('tcp' as const, 'udp' as const),
      port: fc.integer({ min: 1, max: 65535 }),
      servicePort: fc.integer({ min: 1, max: 65535 }),
      targetPort: fc.integer({ min: 1, max: 65535 }),
      mappingIndex: fc.integer({ min: 0, max: 3 }),
    }),
    { minLength: 1, maxLength: 10 },
  )
  .chain((ports) =>
    fc.record({
      ports: fc.constant(ports),
      sources: fc.array(fc.constantFrom('any' as const, 'net' as const, 'bare' as const), { minLength: 4, maxLength: 4 }),
      endpoints: fc.array(fc.subarray(PODS).chain((ips) => fc.tuple(...ips.map((ip) => fc.record({ ip: fc.constant(ip), ready: fc.boolean() })))), { minLength: 4, maxLength: 4 }),
      owned: fc.subarray(POOL_ADDRESSES),
    }),
  )
  .map(({ ports, sources, endpoints, owned }) => {
    const seen = new Set<string>();
    const byMapping = new Map<number, PortCase[]>();
    for (const p of ports) {
      const key = `${p.address}/${p.protocol}/${p.port}`;
      const spKey = `${p.mappingIndex}/${p.protocol}/${p.servicePort}`;
      if (seen.has(key) || seen.has(spKey)) continue;
      seen.add(key);
      seen.add(spKey);
      byMapping.set(p.mappingIndex, [...(byMapping.get(p.mappingIndex) ?? []), p]);
    }
    const mappings: MappingCase[] = [...byMapping.entries()].map(([i, ps]) => ({ name: `m${i}`, ports: ps, sources: sources[i]!, endpoints: endpoints[i]! }));
    return { mappings, owned: new Set(owned) };
  });

function buildSnapshot(world: { mappings: readonly MappingCase[]; owned: ReadonlySet<string> }) {
  const entries = [];
  const services = [];
  const slices = [];
  for (const m of world.mappings) {
    // Each port case is its own Mapping so that an address lists exactly its own ports.
    for (const [k, p] of m.ports.entries()) {
      const name = `${m.name}-${k}`;
      const allowedSources = m.sources === 'any' ? ['0.0.0.0/0'] : m.sources === 'net' ? [ALLOWED_CLIENT_NET] : [`${BARE_CLIENT}/32`];
      entries.push(ok(mapping({ name, addresses: [p.address], ports: [{ port: p.port, protocol: p.protocol, servicePort: p.servicePort }], allowedSources })));
      services.push(service(name, [{ name: 'p', port: p.servicePort, protocol: p.protocol }]));
      slices.push(slice({ name: `${name}-s`, service: name, ports: [{ name: 'p', port: p.targetPort, protocol: p.protocol }], endpoints: m.endpoints.map((e) => ({ ip: e.ip, ready: e.ready })) }));
    }
  }
  return snapshot({
    mappings: entries,
    services,
    endpointSlices: slices,
    pools: [pool('edge', ['203.0.113.10-203.0.113.12', '192.0.2.10-192.0.2.11'])],
    owned: world.owned,
    agent: agent({ twoUplinks: true }),
  });
}

async function readTraceKernel() {
  const tables = await readIptables(inNs, DEFAULT_IPTABLES);
  const saved = (await inNs.run('ipset', ['save'])).stdout.split('\n');
  const sets = new Map<string, TracedSet>();
  for (const line of saved) {
    const create = /^create (smartnat-\S+) (\S+)/.exec(line);
    if (create) sets.set(create[1]!, { type: create[2]!, entries: new Set() });
    const add = /^add (smartnat-\S+) (.+)$/.exec(line);
    if (add) (sets.get(add[1]!)!.entries as Set<string>).add(add[2]!.trim());
  }
  return { tables, sets };
}

function dnatTargets(verdicts: Verdict[]): string[] {
  return [...new Set(verdicts.map((v) => (v.kind === 'dnat' ? v.to : `(${v.kind})`)))].sort();
}

beforeAll(async () => {
  await createAgentNamespace(ns, { secondUplink: true });
});

afterAll(async () => {
  await host.run('ip', ['netns', 'del', ns], { okExitCodes: [0, 1] });
  rmSync(dir, { recursive: true, force: true });
});

describe('random snapshots through the real kernel', () => {
  it('are accepted, and the kernel read-back routes every packet as the oracle says', async () => {
    await fc.assert(
      fc.asyncProperty(arbWorld, async (world) => {
        await cleanupDataPlane({ runner: inNs, settings: DEFAULT_SETTINGS });
        const plan = planDataPlane(buildSnapshot(world), DEFAULT_SETTINGS);
        const applier = new DataPlaneApplier({ runner: inNs });
        const report = await applier.sync(plan.desired);
        expect(report.failedMappings).toEqual([]);
        const kernel = await readTraceKernel();
        for (const m of world.mappings) {
          for (const p of m.ports) {
            const inIface = p.address.startsWith('203.') ? 'ext0' : 'ext1';
            const base = { dst: p.address, proto: p.protocol, dport: p.port, inIface, state: 'NEW' as const };
            const allowed = m.sources === 'bare' ? BARE_CLIENT : ALLOWED_CLIENT;
            const ready = m.endpoints.filter((e) => e.ready);
            const used = ready.length > 0 ? ready : [];
            const verdicts = traceAll(kernel, { ...base, src: allowed });
            const context = JSON.stringify({ mapping: m.name, port: p, owned: [...world.owned], endpoints: m.endpoints });
            if (!world.owned.has(p.address)) {
              expect({ context, targets: dnatTargets(verdicts).filter((t) => !t.startsWith('(')) }).toEqual({ context, targets: [] });
              continue;
            }
            const expected = used.length > 0 ? used.map((e) => `${e.ip}:${p.targetPort}`).sort() : ['(reject)'];
            // Endpoints not ready (and none serving-terminating here) get nothing: reject.
            expect({ context, targets: dnatTargets(verdicts) }).toEqual({ context, targets: expected });
            if (m.sources !== 'any') {
              expect({ context, other: tracePacket(kernel, { ...base, src: OTHER_CLIENT }).kind }).toEqual({ context, other: 'drop' });
            }
            const unmapped = (p.port % 65535) + 1;
            const clash = world.mappings.some((o) => o.ports.some((q) => q.address === p.address && q.protocol === p.protocol && q.port === unmapped));
            if (!clash) {
              expect({ context, unmapped: tracePacket(kernel, { ...base, dport: unmapped, src: allowed }).kind }).toEqual({ context, unmapped: 'drop' });
            }
          }
        }
      }),
      { numRuns: 12 },
    );
  });

  it('random keepalived inputs pass the real keepalived -t', async () => {
    const template = compileKeepalivedTemplate(readFileSync(new URL('../../templates/keepalived.conf.hbs', import.meta.url), 'utf8'));
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.integer({ min: 1, max: 254 }), { minLength: 1, maxLength: 40 }),
        fc.uniqueArray(fc.integer({ min: 3, max: 9 }), { maxLength: 4 }),
        fc.constantFrom(10, 100, 250, 1000, 2550),
        async (hosts, peers, advertIntervalMs) => {
          const text = renderKeepalivedConfig(template, {
            agent: 'agent-a',
            stateDir: dir,
            instances: hosts.map((h, i) => ({ address: `198.19.10.${h}`, interface: i % 2 === 0 ? 'ext0' : 'ext1', vrid: i + 1, sourceAddress: i % 2 === 0 ? '203.0.113.2' : '192.0.2.2', peers: peers.map((p) => (i % 2 === 0 ? `203.0.113.${p}` : `192.0.2.${p}`)), advertIntervalMs })),
          });
          const file = join(dir, 'k.conf');
          writeFileSync(file, text);
          const check = await inNs.run('keepalived', ['-t', '-f', file], { okExitCodes: [0, 1, 2, 3, 4, 5, 6, 7, 8] });
          expect({ exit: check.exitCode, stderr: check.stderr }).toEqual({ exit: 0, stderr: expect.any(String) });
        },
      ),
      { numRuns: 15 },
    );
  });
});
