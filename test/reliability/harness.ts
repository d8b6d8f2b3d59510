// Owns: what the reliability lab tests (faults.lab.ts) share: a lab of their own (name prefix
// `rl`), traffic probes through a floating address, a normalized dump of each agent's kernel state
// (rules, sets, ip rules, routes, addresses) to show that a fault left nothing behind, the ownership
// cross-check (interfaces = owned set = lease holder), metric reads, and the fault injectors:
// execve tracing with strace, iptables-restore/ipset failing in one agent's mount namespace, the
// lab's etcd restarted, extra echo backends, a full conntrack table.
// Guarantees: every injector returns an undo that the tests call in `finally`; only pids this file
// started or the lab recorded are signalled; namespaces it adds carry the lab's name (so `lab
// down` removes them too). Does not assert: the tests do.
import { CustomObjectsApi, DiscoveryV1Api, type KubeConfig, type V1EndpointSlice } from '@kubernetes/client-node';
import { execa, type ResultPromise } from 'execa';
import { mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { loadKubeConfig } from '../../src/cluster/kubeconfig.js';
import { KubeLeaseStore } from '../../src/cluster/lease-store.js';
import { ExecaCommandRunner } from '../../src/dataplane/command-runner.js';
import { SETS } from '../../src/dataplane/render-names.js';
import { etcdArgs, etcdHealthy, apiServerReady, type LabControlPlane } from '../../src/lab/control-plane.js';
import { addressesInUse, chooseTarget, parseLabDescriptor, type DrillAgent, type DrillTarget, type LabDescriptor } from '../../src/lab/drill-descriptor.js';
import { summarizeProbe, type ProbeSummary } from '../../src/lab/drill-plan.js';
import { StreamProbe } from '../../src/lab/drill-probe.js';
import { describeLab, labDown, labUp, type DownReport } from '../../src/lab/lab.js';
import { isRunning, startBackground, stopBackground, type BackgroundProcess } from '../../src/lab/processes.js';
import type { ProbeOutcome } from '../../src/lab/probe.js';
import { writeLabScripts, type LabScripts } from '../../src/lab/scripts.js';
import { DEFAULT_LEASE_SETTINGS } from '../../src/plan/lease-settings.js';
import { addressLeaseName } from '../../src/plan/lease-names.js';

export const host = new ExecaCommandRunner();
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
export const wallNow = (): number => performance.timeOrigin + performance.now();
export const round = (ms: number): number => Math.round(ms);

export interface RlLab {
  readonly name: string;
  readonly d: LabDescriptor;
  readonly kc: KubeConfig;
  readonly store: KubeLeaseStore;
  readonly scripts: LabScripts;
  readonly leaseDurationMs: number;
  readonly target: DrillTarget;
}

/** A lab name unique to these tests: `rl` + 6 random characters (lab names are 2-10 of [a-z0-9]). */
export function reliabilityLabName(): string {
  return `rl${Math.random().toString(36).slice(2, 8).padEnd(6, '0')}`;
}

export async function upLab(name: string, log: (line: string) => void): Promise<RlLab> {
  const binDir = process.env['SMARTNAT_TESTENV_BIN'];
  const up = await labUp({ name, log, ...(binDir ? { binDir } : {}) });
  const d = parseLabDescriptor(JSON.parse(JSON.stringify(up.descriptor)) as unknown);
  if (d.agents.some((a) => a.pid === 0)) throw new Error(`lab ${name} came up without running agents: ${up.warnings.join('; ')}`);
  const kc = loadKubeConfig(d.kubeconfig, {});
  const scriptDir = join(d.dir, 'reliability');
  await mkdir(scriptDir, { recursive: true });
  const lab: RlLab = {
    name, d, kc, store: new KubeLeaseStore(kc, d.leaseNamespace), scripts: await writeLabScripts(scriptDir),
    leaseDurationMs: d.leaseDurationMs ?? DEFAULT_LEASE_SETTINGS.leaseDurationMs, target: chooseTarget(d),
  };
  await waitSettled(lab);
  return lab;
}

export async function downLab(name: string, log: (line: string) => void): Promise<DownReport> {
  return labDown({ name, log });
}

/** The lab as it is now (pids change when an agent is restarted). */
export async function current(lab: RlLab): Promise<LabDescriptor> {
  const d = await describeLab({ name: lab.name });
  if (!d) throw new Error(`lab ${lab.name} is gone`);
  return parseLabDescriptor(JSON.parse(JSON.stringify(d)) as unknown);
}

/** An agent's /metrics URL (the lab descriptor names it). */
export async function metricsUrl(lab: RlLab, agent: string): Promise<string> {
  const d = await describeLab({ name: lab.name });
  const url = d?.agents.find((a) => a.name === agent)?.metrics;
  if (url === undefined) throw new Error(`lab ${lab.name} names no metrics URL for ${agent}`);
  return url;
}

/** Holder of every address lease in use. */
export async function holders(lab: RlLab): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const address of addressesInUse(lab.d)) out[address] = (await lab.store.get(addressLeaseName(address)))?.holder ?? '';
  return out;
}

export interface HolderWatch {
  /** Every holder seen, with when it was first seen (epoch ms), starting with the first read. */
  stop(): Promise<{ readonly t: number; readonly holder: string }[]>;
}

/** Reads the address lease's holder every `everyMs` from the host (not through any proxy) until stopped. */
export function watchHolder(lab: RlLab, address: string, everyMs = 100): HolderWatch {
  const seen: { t: number; holder: string }[] = [];
  let running = true;
  const loop = (async (): Promise<void> => {
    while (running) {
      const t = wallNow();
      const holder = await lab.store.get(addressLeaseName(address)).then((l) => l?.holder ?? '', () => undefined);
      if (holder !== undefined && seen[seen.length - 1]?.holder !== holder) seen.push({ t, holder });
      await sleep(everyMs);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return seen;
    },
  };
}

/** leaseTransitions of every address lease in use (a move counts one). */
export async function transitions(lab: RlLab): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const address of addressesInUse(lab.d)) out[address] = (await lab.store.get(addressLeaseName(address)))?.leaseTransitions ?? -1;
  return out;
}

export async function ownerOf(lab: RlLab, address: string = lab.target.address): Promise<DrillAgent> {
  const holder = (await holders(lab))[address];
  const agent = (await current(lab)).agents.find((a) => a.name === holder);
  if (!agent || agent.pid === 0) throw new Error(`${address} is held by ${JSON.stringify(holder)}, not a running agent of lab ${lab.name}`);
  return agent;
}

/** Waits until every address in use has a holder and is on exactly that agent's interfaces, and the cross-check is clean. */
export async function waitSettled(lab: RlLab, timeoutMs = 60_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const problems = await ownershipProblems(lab).catch((err: unknown) => [String(err)]);
    if (!problems.length) return;
    if (performance.now() > deadline) throw new Error(`lab ${lab.name} not settled after ${timeoutMs} ms: ${problems.join('; ')}`);
    await sleep(250);
  }
}

// ---- kernel state -----------------------------------------------------------------------------

export interface KernelDump {
  readonly iptables: readonly string[];
  readonly ipset: readonly string[];
  readonly rules: readonly string[];
  readonly routes: readonly string[];
  readonly addresses: readonly string[];
}

/**
 * Everything of the agent's kernel state that SmartNat could leave behind, normalized so that two
 * dumps of the same state are equal: counters and comments dropped, unordered lists sorted.
 */
export async function kernelState(netns: string): Promise<KernelDump> {
  const ns = new ExecaCommandRunner(netns);
  const [ipt, sets, rules, routes, addrs] = await Promise.all([
    ns.run('iptables-save', []),
    ns.run('ipset', ['save']),
    host.run('ip', ['-n', netns, '-4', 'rule', 'show']),
    host.run('ip', ['-n', netns, '-4', 'route', 'show', 'table', 'all']),
    host.run('ip', ['-n', netns, '-4', '-o', 'addr', 'show']),
  ]);
  const lines = (t: string): string[] => t.split('\n').map((l) => l.trimEnd()).filter((l) => l !== '');
  return {
    iptables: lines(ipt.stdout).filter((l) => !l.startsWith('#')).map((l) => l.replace(/\[\d+:\d+\]/g, '[0:0]')),
    // A set swapped in (ipset swap) is a new set with a new random hash seed (initval); the counting
    // sets' members carry traffic counters (ADR 0011), which traffic changes.
    ipset: lines(sets.stdout).map((l) => l.replace(/ initval 0x[0-9a-f]+/, '').replace(/ packets \d+ bytes \d+$/, '')).sort(),
    rules: lines(rules.stdout),
    routes: lines(routes.stdout).sort(),
    addresses: lines(addrs.stdout).map((l) => l.replace(/\\\s+valid_lft.*$/, '').replace(/\s+/g, ' ')).sort(),
  };
}

export async function kernelStates(d: LabDescriptor): Promise<Record<string, KernelDump>> {
  const out: Record<string, KernelDump> = {};
  for (const a of d.agents) out[a.name] = await kernelState(a.netns);
  return out;
}

/** Lines that differ between two sets of dumps, as "agent part +line" / "agent part -line"; [] when equal. */
export function diffStates(before: Record<string, KernelDump>, after: Record<string, KernelDump>, parts: readonly (keyof KernelDump)[] = ['iptables', 'ipset', 'rules', 'routes', 'addresses']): string[] {
  const out: string[] = [];
  for (const agent of new Set([...Object.keys(before), ...Object.keys(after)])) {
    for (const part of parts) {
      const b = before[agent]?.[part] ?? [];
      const a = after[agent]?.[part] ?? [];
      const bs = new Set(b);
      const as = new Set(a);
      const found = [...b.filter((l) => !as.has(l)).map((l) => `${agent} ${part} -${l}`), ...a.filter((l) => !bs.has(l)).map((l) => `${agent} ${part} +${l}`)];
      if (!found.length && b.join('\n') !== a.join('\n')) found.push(`${agent} ${part}: same lines, another order`);
      out.push(...found);
    }
  }
  return out;
}

/**
 * Every way ownership on the machines disagrees with the leases: a pool address must be on an
 * agent's interfaces and in its owned set exactly when that agent holds the address's lease.
 */
export async function ownershipProblems(lab: RlLab): Promise<string[]> {
  const d = await current(lab);
  const pool = new Set(d.pools.flatMap((p) => p.addresses));
  const leases = (await lab.store.list('address')).items;
  const held = (agent: string): string[] => leases.filter((l) => l.holder === agent).map((l) => leaseAddress(l.name)).filter((a) => pool.has(a)).sort();
  const problems: string[] = [];
  for (const address of addressesInUse(d)) if (!leases.some((l) => l.name === addressLeaseName(address) && l.holder !== '')) problems.push(`${address}: no holder`);
  for (const a of d.agents) {
    const dump = await kernelState(a.netns);
    const onLinks = dump.addresses.map((l) => /inet (\d+\.\d+\.\d+\.\d+)\//.exec(l)?.[1] ?? '').filter((x) => pool.has(x)).sort();
    const owned = dump.ipset.filter((l) => l.startsWith(`add ${SETS.owned} `)).map((l) => l.split(' ')[2] ?? '').sort();
    const want = held(a.name);
    if (onLinks.join() !== want.join()) problems.push(`${a.name}: interfaces carry [${onLinks.join(', ')}], it holds [${want.join(', ')}]`);
    if (owned.join() !== want.join()) problems.push(`${a.name}: ${SETS.owned} has [${owned.join(', ')}], it holds [${want.join(', ')}]`);
  }
  return problems;
}

function leaseAddress(leaseName: string): string {
  return leaseName.replace(/^smartnat-addr-/, '').replace(/-/g, '.');
}

// ---- traffic ----------------------------------------------------------------------------------

export interface TrafficReport {
  readonly tcp: ProbeSummary | null;
  readonly udp: ProbeSummary | null;
  readonly gapMs: number;
  readonly refused: number;
  readonly failed: number;
  /** Successful tries by the backend that answered (echo reply name). */
  readonly answeredBy: Readonly<Record<string, number>>;
  readonly outcomes: readonly ProbeOutcome[];
}

/** TCP connects at 100/s and UDP round trips at 50/s (200 ms timeout) from the allowed client, as the drills probe. */
export class Traffic {
  private constructor(private readonly probes: readonly { readonly proto: 'tcp' | 'udp'; readonly probe: StreamProbe }[]) {}

  /**
   * `udpFlow` instead: UDP only, every try from one fixed source port (one long-lived flow, one
   * conntrack entry) every 250 ms.
   */
  static start(lab: RlLab, o: { address?: string; tcpPort?: number; udpPort?: number | null; maxDurationMs?: number; udpFlowSourcePort?: number } = {}): Traffic {
    const t = lab.target;
    const base = { netns: t.client.netns, script: lab.scripts.probe, host: o.address ?? t.address, source: t.client.address, timeoutMs: 200, maxDurationMs: o.maxDurationMs ?? 300_000 };
    const udpPort = o.udpPort === undefined ? t.udpPort : o.udpPort;
    if (o.udpFlowSourcePort !== undefined) {
      if (udpPort === null || udpPort === undefined) throw new Error(`no UDP port on ${base.host}`);
      return new Traffic([{ proto: 'udp', probe: new StreamProbe({ ...base, proto: 'udp', port: udpPort, sourcePort: o.udpFlowSourcePort, intervalMs: 250 }) }]);
    }
    return new Traffic([
      { proto: 'tcp', probe: new StreamProbe({ ...base, proto: 'tcp', port: o.tcpPort ?? t.tcpPort, intervalMs: 10 }) },
      ...(udpPort === null || udpPort === undefined ? [] : [{ proto: 'udp' as const, probe: new StreamProbe({ ...base, proto: 'udp', port: udpPort, intervalMs: 20 }) }]),
    ]);
  }

  /** Outcomes so far (finished tries), all protocols, sorted by start time. */
  sorted(): ProbeOutcome[] {
    return this.probes.flatMap((p) => p.probe.sorted()).sort((a, b) => a.t - b.t);
  }

  /** Waits until every probe has answered `ms` in a row without a failure (bounded). */
  async steady(ms = 1000, withinMs = 20_000): Promise<void> {
    const deadline = wallNow() + withinMs;
    for (;;) {
      const now = wallNow() - 200;
      const ok = this.probes.every(({ probe: p }) => {
        const w = p.sorted().filter((o) => o.t > now - ms && o.t <= now);
        return w.length > 0 && w.every((o) => o.result === 'ok');
      });
      if (ok) return;
      if (wallNow() > deadline) throw new Error(`no steady traffic within ${withinMs} ms: ${this.probes.map(({ probe: p }) => JSON.stringify(summarizeProbe(p.sorted()))).join(' ')} ${this.probes.flatMap(({ probe: p }) => p.messages).slice(0, 3).join(' | ')}`);
      await sleep(50);
    }
  }

  async stop(): Promise<TrafficReport> {
    await Promise.all(this.probes.map(({ probe }) => probe.stop()));
    const tcpOut = this.probes.find((p) => p.proto === 'tcp')?.probe.sorted();
    const udpOut = this.probes.find((p) => p.proto === 'udp')?.probe.sorted();
    const tcp = tcpOut ? summarizeProbe(tcpOut) : null;
    const udp = udpOut ? summarizeProbe(udpOut) : null;
    const outcomes = [...(tcpOut ?? []), ...(udpOut ?? [])];
    const answeredBy: Record<string, number> = {};
    for (const o of outcomes) if (o.result === 'ok' && o.reply) answeredBy[o.reply.name] = (answeredBy[o.reply.name] ?? 0) + 1;
    const both = [tcp, udp].filter((x): x is ProbeSummary => x !== null);
    return { tcp, udp, gapMs: Math.max(0, ...both.map((x) => x.gapMs)), refused: both.reduce((n, x) => n + x.refused, 0), failed: both.reduce((n, x) => n + x.failed, 0), answeredBy, outcomes };
  }
}

/** One-line summary of a traffic report for the log and the README. */
export function describeTraffic(r: TrafficReport): string {
  const part = (name: string, p: ProbeSummary | null): string[] => (p ? [`${name} ${p.ok}/${p.tries} ok`] : []);
  return [...part('tcp', r.tcp), ...part('udp', r.udp), `refused ${r.refused}`, `failed ${r.failed}`, `gap ${r.gapMs} ms`].join(', ');
}

/** Runs the lab's probe once per `intervalMs` until a try answers; returns when (epoch ms) it started, or undefined. */
export async function firstAnswer(lab: RlLab, o: { port: number; proto: 'tcp' | 'udp'; withinMs: number }): Promise<number | undefined> {
  const t = lab.target;
  const deadline = wallNow() + o.withinMs;
  const client = new ExecaCommandRunner(t.client.netns);
  while (wallNow() < deadline) {
    const { stdout } = await client.run(process.execPath, [lab.scripts.probe, '--proto', o.proto, '--host', t.address, '--port', String(o.port), '--source', t.client.address, '--timeout', '200', '--count', '5', '--interval', '100'], { timeoutMs: 30_000 });
    const ok = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as ProbeOutcome).find((x) => x.result === 'ok');
    if (ok) return ok.t;
  }
  return undefined;
}

// ---- metrics and logs -------------------------------------------------------------------------

/** Sum of the samples of `name` whose labels include `labels`, from an agent's /metrics (0 when absent). */
export async function metricSum(url: string, name: string, labels: Readonly<Record<string, string>> = {}): Promise<number> {
  const text = await (await fetch(url, { signal: AbortSignal.timeout(5000) })).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[3]);
  }
  return sum;
}

/** The agent's log lines (pino JSON) written after byte `from`, parsed; non-JSON lines are skipped. */
export async function agentLogSince(lab: RlLab, agent: string, from: number): Promise<Record<string, unknown>[]> {
  const text = await readFile(join(lab.d.dir, 'agents', agent, 'agent.log'), 'utf8').catch(() => '');
  return text.slice(from).split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
}

export async function agentLogSize(lab: RlLab, agent: string): Promise<number> {
  return (await stat(join(lab.d.dir, 'agents', agent, 'agent.log')).catch(() => ({ size: 0 }))).size;
}

// ---- cluster objects --------------------------------------------------------------------------

interface MappingPort { port: number; protocol: string; servicePort?: number }

/** Read-modify-write of the demo Mapping's ports (retried on a conflict). */
export async function editMappingPorts(lab: RlLab, edit: (ports: MappingPort[]) => MappingPort[]): Promise<void> {
  const api = lab.kc.makeApiClient(CustomObjectsApi);
  const m = lab.d.mappings[0]!;
  const ref = { group: 'smartnat.aureacentral.com', version: 'v1alpha1', namespace: m.namespace, plural: 'mappings', name: m.name };
  for (let attempt = 0; ; attempt++) {
    const obj = (await api.getNamespacedCustomObject(ref)) as { spec: { ports: MappingPort[] } };
    obj.spec.ports = edit(obj.spec.ports);
    try {
      await api.replaceNamespacedCustomObject({ ...ref, body: obj });
      return;
    } catch (err: unknown) {
      if (attempt >= 5) throw err;
      await sleep(100);
    }
  }
}

export interface EndpointSpec { readonly address: string; readonly name: string; readonly ready?: boolean }

/** Replaces the demo EndpointSlice's endpoints (read-modify-write, retried on a conflict). */
export async function setEndpoints(lab: RlLab, endpoints: readonly EndpointSpec[]): Promise<void> {
  const api = lab.kc.makeApiClient(DiscoveryV1Api);
  const m = lab.d.mappings[0]!;
  for (let attempt = 0; ; attempt++) {
    const slice: V1EndpointSlice = await api.readNamespacedEndpointSlice({ name: 'echo-lab', namespace: m.namespace });
    slice.endpoints = endpoints.map((e) => ({ addresses: [e.address], conditions: { ready: e.ready ?? true }, hostname: e.name }));
    try {
      await api.replaceNamespacedEndpointSlice({ name: 'echo-lab', namespace: m.namespace, body: slice });
      return;
    } catch (err: unknown) {
      if (attempt >= 5) throw err;
      await sleep(50);
    }
  }
}

// ---- fault: execve tracing --------------------------------------------------------------------

export interface ExecTraceSession {
  readonly pids: readonly number[];
  readonly file: string;
  /** Detaches strace (SIGINT to the pid it started) and returns its output. */
  stop(): Promise<string>;
}

/** Pids of every process in the agents' namespaces (agents, keepalived and its children). */
export async function agentTreePids(d: LabDescriptor): Promise<number[]> {
  const pids: number[] = [];
  for (const a of d.agents) {
    const { stdout } = await host.run('ip', ['netns', 'pids', a.netns]);
    pids.push(...stdout.split('\n').map((l) => Number(l.trim())).filter((n) => Number.isInteger(n) && n > 0));
  }
  return pids;
}

async function tracerOf(pid: number): Promise<number | undefined> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => undefined);
  const m = status === undefined ? null : /^TracerPid:\s+(\d+)/m.exec(status);
  return m ? Number(m[1]) : undefined;
}

/** `strace -f -e trace=execve` attached to `pids` (and every child they start from now on). */
export async function traceExecs(pids: readonly number[], dir: string): Promise<ExecTraceSession> {
  const file = join(dir, `execve-${process.pid}.trace`);
  const child: ResultPromise = execa('strace', ['-f', '-qq', '-s', '256', '-e', 'trace=execve', '-e', 'signal=none', '-o', file, ...pids.flatMap((p) => ['-p', String(p)])], { reject: false, stdin: 'ignore', stdout: 'ignore', stderr: 'pipe' });
  const stop = async (): Promise<string> => {
    if (child.exitCode === null && child.pid !== undefined) {
      process.kill(child.pid, 'SIGINT');
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await child;
      clearTimeout(killer);
    }
    return readFile(file, 'utf8').catch(() => '');
  };
  // Attached once the kernel names strace as every process's tracer.
  const deadline = wallNow() + 15_000;
  for (;;) {
    const tracers = await Promise.all(pids.map(tracerOf));
    if (child.pid !== undefined && tracers.every((t) => t === child.pid || t === undefined)) break;
    if (child.exitCode !== null || wallNow() > deadline) {
      await stop();
      const res = await child;
      throw new Error(`strace did not attach to ${pids.join(', ')} (tracers ${tracers.join(', ')}): ${String(res.stderr).slice(-1000)}`);
    }
    await sleep(50);
  }
  return { pids, file, stop };
}

// ---- fault: iptables-restore / ipset failing --------------------------------------------------

export interface ToolCall {
  readonly t: number;
  readonly tool: string;
  readonly args: readonly string[];
  /** 'injected' for a failure this wrapper made up, else the real tool's exit code. */
  readonly result: 'injected' | number;
}

export interface ToolFailures {
  /** The PATH directory the wrappers were overlaid on (inside the agent's mount namespace only). */
  readonly overlaidOn: string;
  calls(): Promise<ToolCall[]>;
  remove(): Promise<void>;
}

/**
 * A wrapper (a Node script, no shell) for `tool` that fails its first `failures` applying calls
 * (exit 1, an error on stderr), then runs the real binary. `onlyFirstArg` limits which calls
 * apply (ipset: only `restore`; reads pass through).
 */
function wrapperSource(o: { tool: string; real: string; failures: number; state: string; log: string; onlyFirstArg?: string }): string {
  return `#!${process.execPath}
// SmartNat reliability test: ${o.tool} failing ${o.failures} times, then the real ${o.real}.
const fs = require('node:fs');
const { spawnSync } = require('node:child_process');
const args = process.argv.slice(2);
const applies = ${JSON.stringify(o.onlyFirstArg ?? null)} === null || args[0] === ${JSON.stringify(o.onlyFirstArg ?? null)};
const note = (result) => fs.appendFileSync(${JSON.stringify(o.log)}, JSON.stringify({ t: Date.now(), tool: ${JSON.stringify(o.tool)}, args, result }) + '\\n');
let input;
if (applies) {
  try { input = fs.readFileSync(0); } catch { input = Buffer.alloc(0); }
  let n = 0;
  try { n = Number(fs.readFileSync(${JSON.stringify(o.state)}, 'utf8')) || 0; } catch {}
  if (n < ${o.failures}) {
    fs.writeFileSync(${JSON.stringify(o.state)}, String(n + 1));
    note('injected');
    process.stderr.write(${JSON.stringify(o.tool)} + ': injected failure ' + (n + 1) + ' of ${o.failures} (smartnat reliability test)\\n');
    process.exit(1);
  }
}
const r = spawnSync(${JSON.stringify(o.real)}, args, input === undefined ? { stdio: 'inherit' } : { input, stdio: ['pipe', 'inherit', 'inherit'] });
note(r.status === null ? -1 : r.status);
process.exit(r.status === null ? 1 : r.status);
`;
}

async function which(tool: string, path: string): Promise<{ dir: string; file: string } | undefined> {
  for (const dir of path.split(delimiter)) {
    if (!dir.startsWith('/')) continue;
    const file = join(dir, tool);
    const s = await stat(file).catch(() => undefined);
    if (s?.isFile() && (s.mode & 0o111) !== 0) return { dir, file };
  }
  return undefined;
}

/**
 * Makes `iptables-restore` and `ipset restore` fail for one running agent: wrappers are overlaid
 * (overlayfs, read-only) on the first directory of the agent's PATH, inside the agent's own mount
 * namespace (`ip netns exec` gave it one), so nothing else on the machine sees them. remove()
 * unmounts and deletes them.
 */
export async function failToolsFor(agentPid: number, failures: { readonly iptablesRestore: number; readonly ipsetRestore: number }): Promise<ToolFailures> {
  const environ = await readFile(`/proc/${agentPid}/environ`, 'utf8');
  const path = environ.split('\0').find((e) => e.startsWith('PATH='))?.slice(5) ?? '/usr/sbin:/usr/bin:/sbin:/bin';
  const first = path.split(delimiter).find((p) => p.startsWith('/'));
  const ipt = await which('iptables-restore', path);
  const ips = await which('ipset', path);
  if (!first || !ipt || !ips) throw new Error(`agent ${agentPid}: PATH ${path} has no iptables-restore or ipset`);
  if (ipt.dir === first || ips.dir === first) throw new Error(`agent ${agentPid}: the tools live in the first PATH directory ${first}; no earlier directory to overlay`);
  const dir = await mkdtemp(join(tmpdir(), 'smartnat-rl-tools-'));
  const wrappers = join(dir, 'bin');
  await mkdir(wrappers);
  const log = join(dir, 'calls.log');
  await writeFile(log, '');
  await writeFile(join(wrappers, 'iptables-restore'), wrapperSource({ tool: 'iptables-restore', real: ipt.file, failures: failures.iptablesRestore, state: join(dir, 'iptables-restore.count'), log }), { mode: 0o755 });
  await writeFile(join(wrappers, 'ipset'), wrapperSource({ tool: 'ipset', real: ips.file, failures: failures.ipsetRestore, state: join(dir, 'ipset.count'), log, onlyFirstArg: 'restore' }), { mode: 0o755 });
  const inAgent = (args: string[]): Promise<unknown> => host.run('nsenter', ['--target', String(agentPid), '--mount', '--', ...args]);
  await inAgent(['mount', '-t', 'overlay', 'smartnat-rl-tools', '-o', `lowerdir=${wrappers}:${first}`, first]);
  let removed = false;
  return {
    overlaidOn: first,
    calls: async () => (await readFile(log, 'utf8')).split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as ToolCall),
    remove: async () => {
      if (removed) return;
      removed = true;
      // The mount lives and dies with the agent's mount namespace: nothing to undo if it is gone.
      if (await stat(`/proc/${agentPid}/ns/mnt`).then(() => true, () => false)) {
        await host.run('nsenter', ['--target', String(agentPid), '--mount', '--', 'umount', first], { okExitCodes: [0, 1, 32] });
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

// ---- fault: etcd restarted --------------------------------------------------------------------

interface LabRecordView {
  binDir?: string;
  controlPlane?: LabControlPlane;
}

export interface EtcdRestart {
  readonly oldPid: number;
  readonly newPid: number;
  /** Epoch ms: SIGTERM sent, process gone, started again, etcd healthy, API server ready again. */
  readonly stopAt: number;
  readonly goneAt: number;
  readonly startAt: number;
  readonly healthyAt: number;
  readonly apiReadyAt: number;
}

/**
 * Stops the lab's etcd (SIGTERM, SIGKILL after 15 s), keeps it down `downMs` once it has exited
 * (its listeners close at once; its graceful exit can take seconds more), starts it again on
 * the same data directory and ports, and records the new pid in the lab's lab.json so `lab down`
 * stops it. The API server is left running throughout.
 */
export async function restartLabEtcd(lab: RlLab, downMs: number): Promise<EtcdRestart> {
  const recordPath = join(lab.d.dir, 'lab.json');
  const rec = JSON.parse(await readFile(recordPath, 'utf8')) as LabRecordView & Record<string, unknown>;
  const cp = rec.controlPlane;
  if (!cp || !rec.binDir) throw new Error(`lab ${lab.name}: lab.json names no control plane or binaries`);
  const old = cp.etcd;
  if (!(await isRunning(old))) throw new Error(`lab ${lab.name}: etcd (pid ${old.pid}) is not running`);
  const stopAt = wallNow();
  await stopBackground(old, 15_000);
  const goneAt = wallNow();
  await sleep(downMs);
  const startAt = wallNow();
  const etcd: BackgroundProcess = await startBackground(host, '', {
    label: 'etcd', cmd: join(rec.binDir, 'etcd'), args: etcdArgs(cp.dir, cp.ports), pidFile: old.pidFile, logFile: old.logFile, readyTimeoutMs: 60_000,
  });
  const fresh = JSON.parse(await readFile(recordPath, 'utf8')) as LabRecordView & Record<string, unknown>;
  fresh.controlPlane = { ...(fresh.controlPlane ?? cp), etcd };
  await writeFile(`${recordPath}.rl.tmp`, JSON.stringify(fresh, null, 2));
  await rename(`${recordPath}.rl.tmp`, recordPath);
  const until = wallNow() + 60_000;
  while (!(await etcdHealthy(cp.ports))) {
    if (wallNow() > until) throw new Error(`etcd (pid ${etcd.pid}) not healthy 60 s after its restart; see ${etcd.logFile}`);
    await sleep(50);
  }
  const healthyAt = wallNow();
  const ca = await readFile(join(cp.dir, 'ca.crt'));
  while (!(await apiServerReady(cp.server, ca, cp.adminToken))) {
    if (wallNow() > until) throw new Error('kube-apiserver not ready 60 s after etcd came back');
    await sleep(50);
  }
  return { oldPid: old.pid, newPid: etcd.pid, stopAt, goneAt, startAt, healthyAt, apiReadyAt: wallNow() };
}

// ---- extra backends on the internal segment ---------------------------------------------------

export interface ExtraBackend {
  readonly name: string;
  readonly netns: string;
  readonly address: string;
  readonly echo: BackgroundProcess;
}

/**
 * An echo backend in a namespace of its own (`<lab>-<name>`) on the lab's internal segment, with
 * its own address: a real endpoint that answers TCP and UDP on `port`.
 */
export async function addBackend(lab: RlLab, o: { name: string; address: string; port: number; index: number }): Promise<ExtraBackend> {
  const netns = `${lab.name}-${o.name}`;
  const segment = `${lab.name}-s-int`;
  const peer = `rlp${o.index}`;
  await host.run('ip', ['netns', 'add', netns]);
  await host.run('ip', ['link', 'add', 'name', 'int0', 'netns', netns, 'type', 'veth', 'peer', 'name', peer, 'netns', segment]);
  await host.run('ip', ['-n', segment, 'link', 'set', peer, 'master', 'br0']);
  await host.run('ip', ['-n', segment, 'link', 'set', peer, 'up']);
  await host.run('ip', ['-n', netns, '-batch', '-'], { input: ['link set lo up', `addr add ${o.address}/24 dev int0`, 'link set int0 up', ''].join('\n') });
  const ns = new ExecaCommandRunner(netns);
  await ns.run('sysctl', ['-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
  const dir = join(lab.d.dir, 'reliability');
  const ready = join(dir, `${o.name}.ready`);
  const echo = await startBackground(ns, netns, {
    label: `echo-${o.name}`, cmd: process.execPath,
    args: [lab.scripts.echoServer, '--name', o.name, '--address', o.address, '--tcp', String(o.port), '--udp', String(o.port), '--ready', ready],
    pidFile: join(dir, `${o.name}.pid`), logFile: join(dir, `${o.name}.log`), readyFile: ready,
  });
  return { name: o.name, netns, address: o.address, echo };
}

export async function removeBackend(b: ExtraBackend): Promise<void> {
  await stopBackground(b.echo);
  await host.run('ip', ['netns', 'del', b.netns], { okExitCodes: [0, 1] });
}

// ---- fault: conntrack table full --------------------------------------------------------------

/** Filler entries: never on any wire, from one documentation range to another. */
export const FILLER_SOURCE = '198.18.200.0/24';

export async function conntrackNumbers(netns: string): Promise<{ count: number; max: number }> {
  const { stdout } = await new ExecaCommandRunner(netns).run('sysctl', ['-n', 'net.netfilter.nf_conntrack_count', 'net.netfilter.nf_conntrack_max']);
  const [count, max] = stdout.trim().split('\n').map(Number);
  return { count: count ?? NaN, max: max ?? NaN };
}

/**
 * Fills the namespace's conntrack table up to nf_conntrack_max with ASSURED UDP entries from
 * 198.18.200.0/24 to 198.18.201.0/24 (assured entries are never early-dropped), through one
 * `conntrack -R` batch. The count is per network namespace (the limit itself is global and
 * read-only inside a namespace), so nothing outside `netns` is affected.
 */
export async function fillConntrack(netns: string, dir: string): Promise<{ loaded: number; ms: number }> {
  const { count, max } = await conntrackNumbers(netns);
  const need = max - count + 1000;
  const lines: string[] = [];
  for (let i = 0; i < need; i++) {
    const a = (i % 250) + 1;
    const b = (Math.floor(i / 250) % 250) + 1;
    const port = 1024 + Math.floor(i / 62_500);
    lines.push(`-I -s 198.18.200.${a} -d 198.18.201.${b} -p udp --sport ${port} --dport 9 -t 3600 -u ASSURED\n`);
  }
  const file = join(dir, 'conntrack-filler.txt');
  await writeFile(file, lines.join(''));
  const t0 = wallNow();
  await new ExecaCommandRunner(netns).run('conntrack', ['-R', file], { okExitCodes: [0, 1], timeoutMs: 120_000 });
  const ms = wallNow() - t0;
  await rm(file, { force: true });
  return { loaded: (await conntrackNumbers(netns)).count - count, ms };
}

/** The namespace's conntrack statistics (`conntrack -S`) summed over CPUs: drop = refused for a full table, early_drop = evictions. */
export async function conntrackStats(netns: string): Promise<Record<string, number>> {
  const { stdout } = await new ExecaCommandRunner(netns).run('conntrack', ['-S']);
  const sums: Record<string, number> = {};
  for (const m of stdout.matchAll(/(\w+)=(\d+)/g)) if (m[1] !== 'cpu') sums[m[1]!] = (sums[m[1]!] ?? 0) + Number(m[2]);
  return sums;
}

/** Deletes the filler entries again (only entries from FILLER_SOURCE). */
export async function drainConntrack(netns: string): Promise<void> {
  await new ExecaCommandRunner(netns).run('conntrack', ['-D', '-s', FILLER_SOURCE], { okExitCodes: [0, 1], timeoutMs: 120_000 });
}
