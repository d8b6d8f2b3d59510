// End to end in one lab of its own (its own --name): the echo answers through every address in
// use from the allowed client and never from the other one, and each drill kind meets its
// expectation with real agents, keepalived, iptables and traffic. The lab is brought down in
// afterAll whatever happened. Needs root and a built dist/ (`npm run build`), as `lab up` does.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { drainAgent } from '../cli/drain.js';
import { loadKubeConfig } from '../cluster/kubeconfig.js';
import { KubeLeaseStore } from '../cluster/lease-store.js';
import { ExecaCommandRunner } from '../dataplane/command-runner.js';
import { addressLeaseName } from '../plan/lease-names.js';
import { addressesInUse, parseLabDescriptor, type LabDescriptor } from './drill-descriptor.js';
import { runDrills, type DrillReport } from './drill.js';
import { DRILL_KINDS, type DrillKind } from './drill-plan.js';
import { labDown, labUp } from './lab.js';
import type { ProbeOutcome } from './probe.js';
import { PROBE_FILE } from './scripts.js';

const NAME = `dl${randomBytes(4).toString('hex').slice(0, 6)}`;
const host = new ExecaCommandRunner();
const log = (line: string): void => {
  process.stderr.write(`[${NAME}] ${line}\n`);
};
let lab: LabDescriptor | undefined;
const reports = new Map<DrillKind, DrillReport>();
let initialEcho: readonly string[] = [];
let metricsUrls = new Map<string, string>();

beforeAll(async () => {
  const binDir = process.env['SMARTNAT_TESTENV_BIN'];
  const up = await labUp({ name: NAME, log, ...(binDir ? { binDir } : {}) });
  lab = parseLabDescriptor(JSON.parse(JSON.stringify(up.descriptor)) as unknown);
  metricsUrls = new Map(up.descriptor.agents.map((a) => [a.name, a.metrics]));
  if (lab.agents.some((a) => a.pid === 0)) throw new Error(`lab ${NAME} came up without running agents: ${up.warnings.join('; ')}`);
  await waitSettled(lab);
}, 600_000);

afterAll(async () => {
  const report = await labDown({ name: NAME, log });
  const summary = [...reports.entries()].map(([kind, r]) => `${kind}: gap p50 ${r.summary.gapMs?.p50 ?? '-'} ms, lease transition p50 ${r.summary.leaseTransitionMs?.p50 ?? '-'} ms, refused ${r.summary.refused}, failed ${r.summary.failed}`);
  if (summary.length) log(`drill results:\n  ${summary.join('\n  ')}`);
  expect({ namespaces: report.leftoverNamespaces, processes: report.leftoverProcesses, links: report.leftoverLinks }).toEqual({ namespaces: [], processes: [], links: [] });
}, 180_000);

async function tryEcho(d: LabDescriptor, client: LabDescriptor['clients'][number], address: string, port: number, proto: 'tcp' | 'udp'): Promise<ProbeOutcome[]> {
  const args = [join(d.dir, PROBE_FILE), '--proto', proto, '--host', address, '--port', String(port), '--source', client.address, '--timeout', '500', '--count', '3', '--interval', '100'];
  const { stdout } = await new ExecaCommandRunner(client.netns).run(process.execPath, args, { timeoutMs: 30_000 });
  return stdout.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as ProbeOutcome);
}

/** Every (address, port, protocol) of the lab's Mappings with what the allowed and the other clients saw. */
async function echoMatrix(d: LabDescriptor): Promise<string[]> {
  const lines: string[] = [];
  for (const address of addressesInUse(d)) {
    const ports = d.mappings.filter((m) => m.addresses.includes(address)).flatMap((m) => m.ports);
    for (const p of ports) {
      const proto = p.protocol === 'TCP' ? 'tcp' : 'udp';
      for (const client of d.clients) {
        const outcomes = await tryEcho(d, client, address, p.port, proto);
        const answered = outcomes.filter((o) => o.result === 'ok' && o.reply?.name !== undefined).length;
        lines.push(`${client.allowed ? 'allowed' : 'denied'} ${client.name} -> ${address}:${p.port}/${proto}: ${answered}/${outcomes.length} answered (${outcomes.map((o) => o.error ?? o.result).join(',')})`);
      }
    }
  }
  return lines;
}

/** Lines where the allowed client was not answered every time, or the other client was answered at all. */
function allowedUnanswered(lines: readonly string[]): string[] {
  return lines.filter((l) => l.startsWith('allowed') && !/ (\d+)\/\1 answered/.test(l));
}
function deniedAnswered(lines: readonly string[]): string[] {
  return lines.filter((l) => l.startsWith('denied') && !/ 0\/\d+ answered/.test(l));
}

/** Waits until every address in use has a lease holder and is on exactly that agent's interfaces. */
async function waitSettled(d: LabDescriptor, timeoutMs = 60_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  const store = new KubeLeaseStore(loadKubeConfig(d.kubeconfig, {}), d.leaseNamespace);
  for (;;) {
    const holders = await store.list('address').then(
      ({ items }) => new Map(items.map((l) => [l.name, l.holder])),
      () => new Map<string, string>(),
    );
    let settled = true;
    for (const address of addressesInUse(d)) {
      const holder = holders.get(addressLeaseName(address));
      const on = await agentsCarrying(d, address);
      if (!holder || on.length !== 1 || on[0] !== holder) settled = false;
    }
    if (settled) return;
    if (performance.now() > deadline) throw new Error(`lab ${d.name}: addresses not settled after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function agentsCarrying(d: LabDescriptor, address: string): Promise<string[]> {
  const on: string[] = [];
  for (const a of d.agents) {
    const { stdout } = await host.run('ip', ['-n', a.netns, '-4', '-o', 'addr', 'show']);
    if (stdout.split('\n').some((l) => l.includes(` ${address}/`))) on.push(a.name);
  }
  return on;
}

async function drill(kind: DrillKind): Promise<DrillReport> {
  const r = await runDrills({ kind, labName: NAME, repeat: 1, log });
  reports.set(kind, r);
  log(`${kind}: ${JSON.stringify(r.runs)}`);
  return r;
}

describe(`drills in lab ${NAME}`, () => {
  it('the echo never answers the client outside allowedSources, through any address in use', async () => {
    const lines = await echoMatrix(lab!);
    initialEcho = lines;
    expect({ answered: deniedAnswered(lines), all: lines }).toEqual({ answered: [], all: lines });
  }, 120_000);

  it('the echo answers the allowed client through every address in use', async () => {
    const lines = await echoMatrix(lab!);
    expect({ unanswered: allowedUnanswered(lines), all: lines }).toEqual({ unanswered: [], all: lines });
  }, 120_000);

  it('keepalived: killing keepalived alone, traffic resumes and one agent carries the address', async () => {
    const r = await drill('keepalived');
    const run = r.runs[0]!;
    expect(run.problems).toEqual([]);
    expect(run.stop).toBe('recovered');
    expect(await agentsCarrying(lab!, r.address)).toEqual([run.addressOn[0]]);
  }, 300_000);

  it('drain: the address moves with no refused and no failed probe', async () => {
    const r = await drill('drain');
    const run = r.runs[0]!;
    expect(run.problems).toEqual([]);
    expect(run.owner).not.toBe(run.previousOwner);
    expect({ refused: run.refused, failed: run.failed }).toEqual({ refused: 0, failed: 0 });
    expect(run.tcp.tries).toBeGreaterThan(100);
  }, 300_000);

  it('partition: the owner cut off from the API, traffic keeps flowing and one agent carries the address', async () => {
    const r = await drill('partition');
    const run = r.runs[0]!;
    expect(run.problems).toEqual([]);
    expect(run.refused).toBe(0);
    expect(run.gapMs).toBeLessThan(r.leaseDurationMs);
    expect(await agentsCarrying(lab!, r.address)).toHaveLength(1);
  }, 300_000);

  it('apiserver-down: nothing moves and traffic keeps flowing', async () => {
    const r = await drill('apiserver-down');
    const run = r.runs[0]!;
    expect(run.problems).toEqual([]);
    expect(run.owner).toBe(run.previousOwner);
    expect(run.refused).toBe(0);
    expect(run.gapMs).toBeLessThan(r.leaseDurationMs);
    expect(run.fault.heldMs).toBeGreaterThanOrEqual(r.timings.holdMs);
  }, 300_000);

  it('agent-crash: traffic resumes and the address is on exactly one agent', async () => {
    const r = await drill('agent-crash');
    const run = r.runs[0]!;
    expect(run.problems).toEqual([]);
    expect(run.stop).toBe('recovered');
    const on = await agentsCarrying(lab!, r.address);
    expect(on).toHaveLength(1);
    expect(on).toEqual(run.addressOn);
  }, 300_000);

  it('link-down: the owner\'s uplink goes down, it turns unhealthy and hands the address off; traffic resumes via the successor', async () => {
    const r = await drill('link-down');
    const run = r.runs[0]!;
    expect(run.problems).toEqual([]);
    expect(run.moved).toBe(true);
    expect(run.owner).not.toBe(run.previousOwner);
    expect(run.stop).toBe('recovered');
    const on = await agentsCarrying(lab!, r.address);
    expect(on).toEqual([run.owner]);
  }, 300_000);

  it('kill: the address moves to another agent, traffic resumes through it, and it is on exactly one agent', async () => {
    const r = await drill('kill');
    const run = r.runs[0]!;
    expect(run.problems).toEqual([]);
    expect(run.moved).toBe(true);
    expect(run.stop).toBe('recovered');
    // The dead host answered nothing: tries failed for a while, and came back within the deadline.
    expect(run.failed).toBeGreaterThan(0);
    expect(run.recoveryMs).not.toBeNull();
    expect(run.recoveryMs!).toBeLessThan(r.timings.deadlineMs);
    const on = await agentsCarrying(lab!, r.address);
    expect(on).toEqual([run.owner]);
  }, 300_000);

  it('after every drill kind: settled, the allowed client still answered where it was before, the other never', async () => {
    expect([...reports.keys()].sort()).toEqual([...DRILL_KINDS].sort());
    await waitSettled(lab!);
    const lines = await echoMatrix(lab!);
    expect({ answered: deniedAnswered(lines), all: lines }).toEqual({ answered: [], all: lines });
    expect(allowedUnanswered(lines)).toEqual(allowedUnanswered(initialEcho));
  }, 120_000);

  it('a new owner reports a duplicate address: another host on the segment answering ARP for it (smartnat_duplicate_address_total)', async () => {
    const d = lab!;
    await waitSettled(d);
    const address = addressesInUse(d).find((a) => a.startsWith('203.0.113.'))!;
    const store = new KubeLeaseStore(loadKubeConfig(d.kubeconfig, {}), d.leaseNamespace);
    const before = (await store.get(addressLeaseName(address)))!.holder;
    const rogue = `${d.name}-r1`; // the uplink-1 router: it will answer ARP for the address too
    const counter = async (agent: string): Promise<number> => {
      const text = await (await fetch(metricsUrls.get(agent)!)).text();
      const line = text.split('\n').find((l) => l.startsWith('smartnat_duplicate_address_total '));
      return line === undefined ? 0 : Number(line.split(' ')[1]);
    };
    await host.run('ip', ['-n', rogue, 'addr', 'add', `${address}/32`, 'dev', 'up0']);
    try {
      // A planned move (the drill's probe cannot run: r1 now takes the address's traffic itself).
      await drainAgent(store, before, true);
      let after = before;
      const moveBy = performance.now() + 20_000;
      while (after === before && performance.now() < moveBy) {
        await new Promise((r) => setTimeout(r, 200));
        after = (await store.get(addressLeaseName(address)))?.holder ?? before;
      }
      expect(after).not.toBe(before);
      const deadline = performance.now() + 10_000;
      while ((await counter(after)) < 1 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 250));
      expect(await counter(after)).toBeGreaterThanOrEqual(1);
    } finally {
      await host.run('ip', ['-n', rogue, 'addr', 'del', `${address}/32`, 'dev', 'up0'], { okExitCodes: [0, 2] });
      await drainAgent(store, before, false);
    }
  }, 300_000);
});
