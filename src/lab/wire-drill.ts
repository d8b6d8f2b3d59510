// A fault observed on the wire, for the lab tests that go beyond `smartnat drill`: real traffic
// through one floating address (the lab's probe, 100 TCP connects/s and 50 UDP round trips/s,
// 200 ms timeout) while every agent namespace is watched for the address (WireWatch), around a
// fault the caller injects, until traffic and the wire have settled on the lease holder.
// Guarantees: probes and monitors are stopped whatever happens. Does not judge (the tests do) and
// does not restore the lab (the fault function brings back what it stopped).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadKubeConfig } from '../cluster/kubeconfig.js';
import { KubeLeaseStore } from '../cluster/lease-store.js';
import { ExecaCommandRunner } from '../dataplane/command-runner.js';
import { addressLeaseName, agentLeaseName, ANNOTATION_HEALTH } from '../plan/lease-names.js';
import { chooseTarget, parseLabDescriptor, type DrillAgent, type DrillTarget, type LabDescriptor } from './drill-descriptor.js';
import { stableSince, summarizeProbe, type ProbeSummary } from './drill-plan.js';
import { StreamProbe } from './drill-probe.js';
import { describeLab } from './lab.js';
import { childProcesses, isRunning, readStartTime } from './processes.js';
import { PROBE_FILE } from './scripts.js';
import type { WireTimeline } from './wire-timeline.js';
import { carriersOf, WireWatch } from './wire-watch.js';

const TCP_INTERVAL_MS = 10;
const UDP_INTERVAL_MS = 20;
const PROBE_TIMEOUT_MS = 200;
/** Traffic counts as flowing again after this long without a failed try (the default lease duration). */
const STABLE_MS = 1500;
export const WIRE_DRILL_DEADLINE_MS = 20_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
export const wallNow = (): number => performance.timeOrigin + performance.now();

export interface WireObservation {
  readonly tcp: ProbeSummary;
  readonly udp: ProbeSummary;
  readonly wire: WireTimeline & { readonly initial: readonly string[]; readonly events: number };
  /** Lease holder before the fault and once settled after it. */
  readonly before: string;
  readonly after: string;
  /** The worse of the TCP and UDP gaps (longest time without a successful try). */
  readonly gapMs: number;
  /** Total time the address was on no agent's wire. */
  readonly vacantMs: number;
  /** From the fault to the first change of the address on any agent's wire; null: none. */
  readonly wireChangeMs: number | null;
  /** The previous owner's keepalived pid before and after (0: none). */
  readonly keepalived: { readonly before: number; readonly after: number };
}

export class WireDrill {
  readonly host = new ExecaCommandRunner();
  readonly #store: KubeLeaseStore;

  private constructor(
    readonly labName: string,
    readonly target: DrillTarget,
    kubeconfig: string,
    leaseNamespace: string,
  ) {
    this.#store = new KubeLeaseStore(loadKubeConfig(kubeconfig, {}), leaseNamespace);
  }

  /** For a lab that is up: targets its first mapped address from its allowed client. */
  static async open(labName: string): Promise<WireDrill> {
    const d = await labDescriptor(labName);
    return new WireDrill(labName, chooseTarget(d), d.kubeconfig, d.leaseNamespace);
  }

  async descriptor(): Promise<LabDescriptor> {
    return labDescriptor(this.labName);
  }

  async holder(): Promise<string> {
    return (await this.#store.get(addressLeaseName(this.target.address)))?.holder ?? '';
  }

  /** The health an agent publishes on its lease ('ok' when absent). */
  async agentHealth(agent: string): Promise<string> {
    return (await this.#store.get(agentLeaseName(agent)))?.annotations[ANNOTATION_HEALTH] ?? 'ok';
  }

  /** Until the lease has a holder, every agent and keepalived runs, and exactly the holder carries the address. */
  async settled(timeoutMs = 60_000): Promise<string> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const d = await this.descriptor();
      const holder = await this.holder().catch(() => '');
      const on = await carriersOf(this.host, d.agents, this.target.address);
      if (holder !== '' && d.agents.every((a) => a.pid > 0 && a.keepalivedPid > 0) && on.length === 1 && on[0] === holder) return holder;
      if (performance.now() > deadline) throw new Error(`${this.target.address} not settled after ${timeoutMs} ms: holder ${holder}, on [${on.join(',')}]`);
      await sleep(200);
    }
  }

  /**
   * Probes the address and watches every agent's wire around `fault` (given the owner; it returns
   * once the fault is complete and whatever it stopped runs again), until traffic and the wire
   * have settled.
   */
  async observe(fault: (owner: DrillAgent) => Promise<void>): Promise<WireObservation> {
    const t = this.target;
    const d = await this.descriptor();
    const before = await this.settled();
    const owner = d.agents.find((a) => a.name === before)!;
    const watch = await WireWatch.start(this.host, d.agents, t.address);
    const common = { netns: t.client.netns, script: join(d.dir, PROBE_FILE), host: t.address, source: t.client.address, timeoutMs: PROBE_TIMEOUT_MS, maxDurationMs: 120_000 };
    const probes = [
      new StreamProbe({ ...common, proto: 'tcp', port: t.tcpPort, intervalMs: TCP_INTERVAL_MS }),
      ...(t.udpPort === undefined ? [] : [new StreamProbe({ ...common, proto: 'udp', port: t.udpPort, intervalMs: UDP_INTERVAL_MS })]),
    ];
    let wire: WireObservation['wire'];
    let after: string;
    let t0 = 0;
    try {
      const steady = (ms: number): boolean => probes.every((p) => stableSince(p.sorted(), wallNow() - PROBE_TIMEOUT_MS, ms));
      const startBy = performance.now() + 15_000;
      while (!steady(1000)) {
        if (performance.now() > startBy) throw new Error(`no steady traffic through ${t.address} before the fault: ${probes.flatMap((p) => p.messages).slice(0, 3).join(' | ')}`);
        await sleep(50);
      }
      t0 = wallNow();
      await fault(owner);
      after = await this.settled(WIRE_DRILL_DEADLINE_MS);
      const stableBy = performance.now() + WIRE_DRILL_DEADLINE_MS;
      while (!steady(STABLE_MS) && performance.now() < stableBy) await sleep(50);
    } finally {
      await Promise.all(probes.map((p) => p.stop()));
      wire = await watch.stop();
    }
    const [tcp, udp] = probes.map((p) => summarizeProbe(p.sorted())) as [ProbeSummary, ProbeSummary | undefined];
    const udpSummary = udp ?? { tries: 0, ok: 0, refused: 0, failed: 0, gapMs: 0 };
    const vacantMs = Math.round(wire.vacant.reduce((s, v) => s + (v.to - v.from), 0) * 10) / 10;
    const firstChange = watch.events.filter((e) => e.t >= t0).reduce((m, e) => Math.min(m, e.t), Infinity);
    const keepalived = { before: owner.keepalivedPid, after: (await this.descriptor()).agents.find((a) => a.name === before)?.keepalivedPid ?? 0 };
    return {
      tcp, udp: udpSummary, wire, before, after, gapMs: Math.max(tcp.gapMs, udpSummary.gapMs), vacantMs,
      wireChangeMs: Number.isFinite(firstChange) ? Math.round(firstChange - t0) : null, keepalived,
    };
  }
}

async function labDescriptor(name: string): Promise<LabDescriptor> {
  const d = await describeLab({ name });
  if (!d) throw new Error(`no lab ${name}`);
  return parseLabDescriptor(JSON.parse(JSON.stringify(d)) as unknown);
}

/** One line for the test output and the docs. */
export function describeObservation(what: string, o: WireObservation): string {
  return `${what}: owner ${o.before} -> ${o.after}; gap ${o.gapMs} ms (tcp ${o.tcp.gapMs}, udp ${o.udp.gapMs}); tcp ${o.tcp.ok}/${o.tcp.tries} ok, ${o.tcp.failed} failed, ${o.tcp.refused} refused; udp ${o.udp.ok}/${o.udp.tries} ok, ${o.udp.failed} failed, ${o.udp.refused} refused; ` +
    `address on no agent ${o.vacantMs} ms in ${o.wire.vacant.length} stretch(es), on two agents ${o.wire.duplicates.length} time(s)${o.wire.duplicates.length ? ` (${o.wire.duplicates.map((d) => `${Math.round((d.to - d.from) * 10) / 10} ms`).join(', ')})` : ''}; ${o.wire.events} wire events, the first ${o.wireChangeMs ?? '-'} ms after the fault`;
}

/** The host pid of a pod agent's PID 1: the child of the recorded `unshare` that is pid 1 in its own namespace. */
export async function pidNamespaceInit(unsharePid: number): Promise<number> {
  const children = await childProcesses(unsharePid);
  for (const c of children) {
    const status = await readFile(`/proc/${c.pid}/status`, 'utf8').catch(() => '');
    const nspid = /^NSpid:\s+(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/) ?? [];
    if (nspid.length === 2 && nspid[1] === '1') return c.pid;
  }
  throw new Error(`unshare ${unsharePid} has no child that is PID 1 of its namespace (children: ${JSON.stringify(children)})`);
}

/**
 * SIGKILL of a pod agent's PID 1 (the kernel then kills everything in its PID namespace); returns
 * once `unshare` has exited too, i.e. the lab sees the agent as not running.
 */
export async function killPodAgent(agent: DrillAgent): Promise<number> {
  const pid1 = await pidNamespaceInit(agent.pid);
  const unshare = { pid: agent.pid, startTime: (await readStartTime(agent.pid)) ?? '' };
  process.kill(pid1, 'SIGKILL');
  const by = performance.now() + 10_000;
  while (await isRunning(unshare)) {
    if (performance.now() > by) throw new Error(`unshare ${agent.pid} still runs 10 s after its PID 1 ${pid1} was killed`);
    await sleep(5);
  }
  return pid1;
}
