// Owns: `smartnat lab up|down|status`: a real etcd + kube-apiserver, the standard topology with
// three agents, a management link and API proxy per agent, the demo objects, and the agents. Every
// process it starts is recorded (pid + start time) in one directory per lab, <root>/<name>.
// Guarantees: `up` is idempotent (a healthy lab is left alone, a broken one is torn down and
// rebuilt); `down` stops what was recorded, kills what runs in the lab's namespaces, deletes every
// namespace and link carrying the name and removes the directory. Does not: touch anything else.
import { agentNodeFlags } from '../cli/node-flags.js';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join, dirname, relative, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, stringify } from 'yaml';
import { ExecaCommandRunner, type CommandRunner } from '../dataplane/command-runner.js';
import { controlProxy, type ProxyStatePatch, type ProxyStatus } from './api-proxy.js';
import { apiServerArgs, apiServerReady, freePorts, httpGet, renderKubeconfig, startLabControlPlane, stopLabControlPlane, type LabControlPlane } from './control-plane.js';
import { childProcesses, isRunning, readStartTime, signal, startBackground, stopBackground, type BackgroundProcess } from './processes.js';
import { planStandardLab, type StandardLabPlan } from './standard-lab.js';
import { buildTopology, labStatus as topologyStatus, listLabNamespaces, teardownLab } from './topology.js';
import { PROBE_FILE } from './scripts.js';

export const LAB_SCHEMA_VERSION = 1;
export const DEFAULT_LAB_NAME = 'smartnat';
/** tmpfs: a reboot clears it together with the namespaces it describes. */
export const DEFAULT_LAB_ROOT = '/run/smartnat-lab';
export const LEASE_NAMESPACE = 'smartnat-system';
export const DEMO_NAMESPACE = 'demo';
export const DEMO_PORT = 8080;
const AGENT_COUNT = 3;
const PROXY_PORT = 6443;
const METRICS_PORT = 9100;
/** The chart's keepalived.heartbeatStaleMs default. */
const WATCHDOG_STALE_AFTER_MS = 2000;
const MANAGEMENT_PREFIX = '198.19.255';
const NAME = /^[a-z][a-z0-9]{1,9}$/;
const RECORD = 'lab.json';
const SLOT_FILE = 'slot';
/** The agents' token users are in this group, bound to the chart's ClusterRole and lease Role. */
const AGENT_GROUP = 'smartnat-lab-agents';

/** `smartnat lab status --json` (docs/lab-status.schema.json). */
export interface LabDescriptor {
  readonly schemaVersion: number;
  readonly name: string;
  readonly dir: string;
  readonly kubeconfig: string;
  readonly apiserver: { readonly url: string; readonly pid: number | null };
  readonly leaseNamespace: string;
  readonly agents: readonly { readonly name: string; readonly netns: string; readonly pid: number | null; readonly keepalivedPid: number | null; readonly metrics: string; readonly apiProxyControl: string }[];
  readonly clients: readonly { readonly name: string; readonly netns: string; readonly address: string; readonly allowed: boolean }[];
  readonly backends: readonly { readonly name: string; readonly netns: string; readonly address: string }[];
  readonly pools: readonly { readonly name: string; readonly addresses: readonly string[] }[];
  readonly mappings: readonly { readonly namespace: string; readonly name: string; readonly addresses: readonly string[]; readonly ports: readonly { readonly port: number; readonly protocol: 'tcp' | 'udp' }[] }[];
}

interface AgentRecord {
  readonly name: string;
  readonly netns: string;
  /** Host end of the management veth ("<lab>-m<i>"); the agent's end is mgmt0. */
  readonly hostLink: string;
  readonly hostAddress: string;
  readonly agentAddress: string;
  readonly kubeconfig: string;
  readonly stateDir: string;
  readonly proxyControl: string;
  /**
   * Run as the chart deploys it: the agent is PID 1 of its own PID namespace (`unshare --pid`,
   * `--no-keepalived`) and keepalived runs outside it under `smartnat keepalived-watchdog`.
   */
  readonly pod?: boolean;
  proxy?: BackgroundProcess;
  /** `unshare`, whose child is the agent (PID 1 of the PID namespace), when `pod`. */
  agent?: BackgroundProcess;
  /** The keepalived watchdog in the agent's network namespace (host PID namespace), when `pod`. */
  watchdog?: BackgroundProcess;
}

interface LabRecord {
  readonly version: 1;
  readonly name: string;
  readonly dir: string;
  readonly slot: number;
  readonly mainJs: string;
  readonly withAgents: boolean;
  /** `--lease-duration` of every agent; absent = the agent's default. */
  readonly leaseDurationMs?: number;
  /** Where kube-apiserver, etcd, kubectl and helm came from. */
  readonly binDir?: string;
  complete: boolean;
  controlPlane?: LabControlPlane;
  agents: AgentRecord[];
}

export interface LabOptions {
  readonly name?: string;
  /** Directory holding one directory per lab (default /run/smartnat-lab). */
  readonly root?: string;
  readonly runner?: CommandRunner;
  /** Progress lines for a human (stderr). */
  readonly log?: (line: string) => void;
}

export interface UpOptions extends LabOptions {
  /** Directory with kube-apiserver, etcd, kubectl (else test/testenv/build.sh is run). */
  readonly binDir?: string;
  /** 'auto' (default): run the agents when this build has `smartnat agent`. */
  readonly agents?: 'auto' | 'yes' | 'no';
  /** The CLI entry point the agents and proxies run (default: dist/main.js of this checkout). */
  readonly mainJs?: string;
  /**
   * Agents (by name, e.g. 'a1') to run as the chart deploys them: PID 1 of their own PID namespace,
   * keepalived outside it under the watchdog (ADR 0007). Opt-in; the others run as plain processes
   * that start keepalived themselves. Kept for the lab's life (repairs and revives use it too).
   */
  readonly podAgents?: readonly string[];
  /**
   * The agents' lease duration (`--lease-duration`), e.g. longer than an agent takes to restart on a
   * loaded machine, to show a restart within the lease duration. Absent = the agent's default.
   */
  readonly leaseDurationMs?: number;
}

export interface UpResult {
  readonly descriptor: LabDescriptor;
  /** 'created', 'unchanged' (already healthy), 'repaired' (dead agents or proxies restarted) or 'rebuilt' (was broken). */
  readonly action: 'created' | 'unchanged' | 'repaired' | 'rebuilt';
  readonly problems: readonly string[];
  readonly warnings: readonly string[];
  /** The kubectl the lab used (kubectl may not be on PATH). */
  readonly kubectl: string;
}

export interface DownReport {
  readonly name: string;
  readonly processesStopped: readonly number[];
  readonly namespacesDeleted: readonly string[];
  readonly leftoverNamespaces: readonly string[];
  readonly leftoverProcesses: readonly number[];
  readonly leftoverLinks: readonly string[];
  readonly dirRemoved: boolean;
}

export class LabError extends Error {
  override readonly name = 'LabError';
}

/** The pure part: who is where, which pools and which demo Mapping. */
export function planLab(name: string): { plan: StandardLabPlan; spec: ReturnType<typeof planStandardLab>['spec']; pools: LabDescriptor['pools']; mapping: LabDescriptor['mappings'][number]; allowedSources: readonly string[] } {
  const { spec, plan } = planStandardLab({ agents: AGENT_COUNT, backends: [{ name: 'b1', tcpPorts: [DEMO_PORT], udpPorts: [DEMO_PORT] }], routerInterconnect: true });
  void name;
  const pools = [
    { name: 'uplink1', addresses: plan.floating.uplink1 },
    { name: 'uplink2', addresses: plan.floating.uplink2 },
  ];
  const mapping = {
    namespace: DEMO_NAMESPACE,
    name: 'echo',
    addresses: [plan.floating.uplink1[0]!, plan.floating.uplink2[0]!],
    ports: [{ port: DEMO_PORT, protocol: 'tcp' as const }, { port: DEMO_PORT, protocol: 'udp' as const }],
  };
  // c1 (behind r1) is allowed, c2 (behind r2) is not: its packets reach the Mapping's uplink-2
  // address and must be dropped by the allow-list, not by routing.
  const c1 = plan.clients.find((c) => c.name === 'c1')!;
  const allowedSources = [`${c1.addresses[0]!.split('.').slice(0, 3).join('.')}.0/24`];
  return { plan, spec, pools, mapping, allowedSources };
}

/** Management addresses of agent i (0-based) in a slot: a /30 per agent, 16 addresses per lab. */
export function managementAddresses(slot: number, i: number): { host: string; agent: string } {
  if (!Number.isInteger(slot) || slot < 0 || slot > 15 || i < 0 || i > 3) throw new RangeError(`bad management slot ${slot}/${i}`);
  const base = slot * 16 + i * 4;
  return { host: `${MANAGEMENT_PREFIX}.${base + 1}`, agent: `${MANAGEMENT_PREFIX}.${base + 2}` };
}

function checkName(name: string): void {
  if (!NAME.test(name)) throw new LabError(`lab name ${JSON.stringify(name)} must match ${NAME.source}`);
}

export function requireRoot(): void {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new LabError('the lab needs root (network namespaces, iptables, keepalived): run it with sudo');
  }
}

async function readRecord(dir: string): Promise<LabRecord | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, RECORD), 'utf8')) as LabRecord;
  } catch {
    return undefined;
  }
}

async function writeRecord(rec: LabRecord): Promise<void> {
  const tmp = join(rec.dir, `${RECORD}.tmp`);
  await writeFile(tmp, JSON.stringify(rec, null, 2));
  await rename(tmp, join(rec.dir, RECORD));
}

/** The checkout this module runs from (holds test/testenv/build.sh). */
export function findRepoRoot(from: string = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'test', 'testenv', 'build.sh')) && existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new LabError(`no SmartNat checkout (test/testenv/build.sh) at or above ${from}`);
  }
}

async function ensureBinaries(runner: CommandRunner, repo: string, given: string | undefined, log: (l: string) => void): Promise<string> {
  const need = ['kube-apiserver', 'etcd', 'kubectl', 'helm'];
  if (given !== undefined) {
    for (const b of need) if (!existsSync(join(given, b))) throw new LabError(`${given} has no ${b}`);
    return given;
  }
  log('lab: finding kube-apiserver, etcd and kubectl (test/testenv/build.sh; a cold build needs Go and takes many minutes)');
  let out: string;
  try {
    out = (await runner.run('bash', [join(repo, 'test', 'testenv', 'build.sh')], { timeoutMs: 90 * 60_000 })).stdout;
  } catch (err: unknown) {
    const hasGo = await runner.run('go', ['version']).then(() => true, () => false);
    const hint = hasGo ? '' : ' Go is not installed: install Go (https://go.dev/dl/) or set KUBEBUILDER_ASSETS to a directory with kube-apiserver and etcd.';
    throw new LabError(`building the control-plane binaries failed.${hint}`, { cause: err });
  }
  const dir = out.trim().split('\n').pop()?.trim() ?? '';
  for (const b of need) if (!existsSync(join(dir, b))) throw new LabError(`build.sh answered ${JSON.stringify(dir)}, which has no ${b}`);
  return dir;
}

async function hasAgentCommand(runner: CommandRunner, mainJs: string): Promise<boolean> {
  try {
    await runner.run(process.execPath, [mainJs, 'agent', '--help'], { timeoutMs: 30_000 });
    return true;
  } catch {
    return false;
  }
}

async function usedSlots(runner: CommandRunner, root: string, self: string): Promise<Set<number>> {
  const used = new Set<number>();
  const { stdout } = await runner.run('ip', ['-j', '-4', 'addr', 'show']);
  for (const link of JSON.parse(stdout) as { addr_info?: { local?: string }[] }[]) {
    for (const a of link.addr_info ?? []) {
      if (a.local?.startsWith(`${MANAGEMENT_PREFIX}.`)) used.add(Math.floor(Number(a.local.split('.')[3]) / 16));
    }
  }
  for (const other of await readdir(root).catch(() => [] as string[])) {
    if (other === self) continue;
    const rec = await readRecord(join(root, other));
    if (rec) used.add(rec.slot);
    const claim = await readFile(join(root, other, SLOT_FILE), 'utf8').catch(() => undefined);
    if (claim !== undefined && /^\d+\s*$/.test(claim)) used.add(Number(claim));
  }
  return used;
}

/**
 * Picks the lowest free management slot and records it. Two labs coming up at once may pick the
 * same one; each then re-reads the records, and the one whose name sorts later picks again.
 */
async function claimSlot(runner: CommandRunner, root: string, name: string): Promise<number> {
  const taken = new Set<number>();
  for (let attempt = 0; attempt < 16; attempt++) {
    const used = await usedSlots(runner, root, name);
    for (const s of taken) used.add(s);
    const slot = [...Array(16).keys()].find((s) => !used.has(s));
    if (slot === undefined) throw new LabError('no free management slot in 198.19.255.0/24 (16 labs at most)');
    await writeFile(join(root, name, SLOT_FILE), `${slot}\n`);
    await new Promise((r) => setTimeout(r, 50));
    const rivals = await slotClaims(root, name);
    if (!rivals.some((r) => r.slot === slot && r.name < name)) return slot;
    taken.add(slot);
  }
  throw new LabError('could not claim a management slot');
}

async function slotClaims(root: string, self: string): Promise<{ name: string; slot: number }[]> {
  const claims: { name: string; slot: number }[] = [];
  for (const other of await readdir(root).catch(() => [] as string[])) {
    if (other === self) continue;
    const text = await readFile(join(root, other, SLOT_FILE), 'utf8').catch(() => undefined);
    if (text !== undefined && /^\d+\s*$/.test(text)) claims.push({ name: other, slot: Number(text) });
  }
  return claims;
}

function randomToken(): string {
  return randomBytes(24).toString('hex');
}

async function kubectl(runner: CommandRunner, binDir: string, kubeconfig: string, args: readonly string[], input?: string): Promise<string> {
  const r = await runner.run(join(binDir, 'kubectl'), ['--kubeconfig', kubeconfig, ...args], { timeoutMs: 120_000, ...(input !== undefined ? { input } : {}) });
  return r.stdout;
}

/** The demo objects as one YAML stream (namespaces, Service, EndpointSlice, AddressPools, Mapping). */
export function renderDemoObjects(name: string): string {
  const { plan, pools, mapping, allowedSources } = planLab(name);
  const backend = plan.backends[0]!;
  const docs: unknown[] = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: LEASE_NAMESPACE } },
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: DEMO_NAMESPACE } },
    {
      apiVersion: 'v1', kind: 'Service', metadata: { name: 'echo', namespace: DEMO_NAMESPACE },
      spec: { ports: [{ name: 'tcp', port: DEMO_PORT, protocol: 'TCP', targetPort: DEMO_PORT }, { name: 'udp', port: DEMO_PORT, protocol: 'UDP', targetPort: DEMO_PORT }] },
    },
    {
      apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
      metadata: { name: 'echo-lab', namespace: DEMO_NAMESPACE, labels: { 'kubernetes.io/service-name': 'echo', 'endpointslice.kubernetes.io/managed-by': 'smartnat-lab' } },
      addressType: 'IPv4',
      endpoints: [{ addresses: [backend.address], conditions: { ready: true }, hostname: backend.name }],
      ports: [{ name: 'tcp', port: DEMO_PORT, protocol: 'TCP' }, { name: 'udp', port: DEMO_PORT, protocol: 'UDP' }],
    },
    ...pools.map((p, i) => ({
      apiVersion: 'smartnat.aureacentral.com/v1alpha1', kind: 'AddressPool', metadata: { name: p.name },
      spec: { addresses: [`${p.addresses[0]}-${p.addresses[p.addresses.length - 1]}`], interface: i === 0 ? 'ext0' : 'ext1' },
    })),
    {
      apiVersion: 'smartnat.aureacentral.com/v1alpha1', kind: 'Mapping', metadata: { name: mapping.name, namespace: mapping.namespace },
      spec: { addresses: mapping.addresses, allowedSources, serviceName: 'echo', ports: mapping.ports.map((p) => ({ port: p.port, protocol: p.protocol })) },
    },
  ];
  return docs.map((d) => `---\n${stringify(d, { lineWidth: 0 })}`).join('');
}

/**
 * The chart's own least-privilege RBAC (helm template), bound to the lab agents' group as well as
 * the chart's ServiceAccount: the lab's agents get exactly what an installed agent gets.
 */
async function renderAgentRbac(runner: CommandRunner, binDir: string): Promise<string> {
  const chart = join(findRepoRoot(), 'charts', 'smartnat');
  const { stdout } = await runner.run(join(binDir, 'helm'), ['template', 'smartnat', chart, '--namespace', LEASE_NAMESPACE, '--show-only', 'templates/rbac.yaml']);
  const out: string[] = [];
  for (const doc of parseAllDocuments(stdout)) {
    const obj = doc.toJSON() as { kind?: string; subjects?: unknown[] } | null;
    if (obj === null || typeof obj !== 'object') continue;
    if (obj.kind === 'ClusterRoleBinding' || obj.kind === 'RoleBinding') {
      obj.subjects = [...(obj.subjects ?? []), { kind: 'Group', name: AGENT_GROUP, apiGroup: 'rbac.authorization.k8s.io' }];
    }
    out.push(`---\n${stringify(obj, { lineWidth: 0 })}`);
  }
  if (!out.length) throw new LabError(`helm template ${chart} rendered no RBAC`);
  return out.join('');
}

/** Reads a lab's record and the kernel into the status descriptor; undefined when there is no lab. */
export async function describeLab(o: LabOptions = {}): Promise<LabDescriptor | undefined> {
  const name = o.name ?? DEFAULT_LAB_NAME;
  checkName(name);
  const dir = join(o.root ?? DEFAULT_LAB_ROOT, name);
  const rec = await readRecord(dir);
  if (!rec) return undefined;
  return descriptorOf(rec);
}

async function livePid(p: BackgroundProcess | undefined): Promise<number | null> {
  return p !== undefined && (await isRunning(p)) ? p.pid : null;
}

/** The keepalived the agent (or a pod agent's watchdog) started: its child named keepalived. */
async function keepalivedChild(parentPid: number | null): Promise<number | null> {
  if (parentPid === null) return null;
  return (await childProcesses(parentPid)).find((c) => c.comm === 'keepalived')?.pid ?? null;
}

async function descriptorOf(rec: LabRecord): Promise<LabDescriptor> {
  const { plan, pools, mapping, allowedSources } = planLab(rec.name);
  const cp = rec.controlPlane;
  const agents = await Promise.all(rec.agents.map(async (a) => {
    const pid = await livePid(a.agent);
    const keepalivedParent = a.pod ? await livePid(a.watchdog) : pid;
    return { name: a.name, netns: a.netns, pid, keepalivedPid: await keepalivedChild(keepalivedParent), metrics: `http://${a.agentAddress}:${METRICS_PORT}/metrics`, apiProxyControl: a.proxyControl };
  }));
  const allowedNet = allowedSources[0]!.split('.').slice(0, 3).join('.');
  return {
    schemaVersion: LAB_SCHEMA_VERSION,
    name: rec.name,
    dir: rec.dir,
    kubeconfig: join(rec.dir, 'kubeconfig'),
    apiserver: { url: cp?.server ?? '', pid: await livePid(cp?.apiServer) },
    leaseNamespace: LEASE_NAMESPACE,
    agents,
    clients: plan.clients.map((c) => ({ name: c.name, netns: `${rec.name}-${c.name}`, address: c.addresses[0]!, allowed: c.addresses[0]!.startsWith(`${allowedNet}.`) })),
    backends: plan.backends.map((b) => ({ name: b.name, netns: `${rec.name}-${b.name}`, address: b.address })),
    pools,
    mappings: [mapping],
  };
}

const PROXY_DOWN = 'the API proxy is not running: ';
const AGENT_DOWN = 'the agent is not running: ';

/** What is wrong with a recorded lab (empty when healthy). */
async function problemsOf(rec: LabRecord, runner: CommandRunner, root: string): Promise<string[]> {
  const problems: string[] = [];
  if (!rec.complete) problems.push('the last `up` did not finish');
  const cp = rec.controlPlane;
  if (!cp) problems.push('no control plane recorded');
  else {
    for (const p of [cp.etcd, cp.apiServer]) if (!(await isRunning(p))) problems.push(`${p.label} (pid ${p.pid}) is not running`);
  }
  for (const a of rec.agents) {
    if (!a.proxy || !(await isRunning(a.proxy))) problems.push(`${PROXY_DOWN}${a.name}`);
    if (rec.withAgents && !(await agentRunning(a))) problems.push(`${AGENT_DOWN}${a.name}`);
  }
  const topo = await topologyStatus(rec.name, { runner, stateRoot: root });
  for (const p of topo.processes) if (!p.running) problems.push(`${p.label} in ${p.netns} (pid ${p.pid}) is not running`);
  const expected = planLab(rec.name).spec;
  const want = [...expected.nodes.map((n) => `${rec.name}-${n.name}`), ...expected.segments.map((s) => `${rec.name}-s-${s.name}`)];
  const have = new Set(topo.namespaces);
  for (const ns of want) if (!have.has(ns)) problems.push(`namespace ${ns} is missing`);
  return problems;
}

/** The checked name, directory, runner and log every lab verb starts from (root required). */
function resolveLab(o: LabOptions): { name: string; root: string; dir: string; runner: CommandRunner; log: (line: string) => void } {
  requireRoot();
  const name = o.name ?? DEFAULT_LAB_NAME;
  checkName(name);
  const root = o.root ?? DEFAULT_LAB_ROOT;
  return { name, root, dir: join(root, name), runner: o.runner ?? new ExecaCommandRunner(), log: o.log ?? (() => undefined) };
}

/**
 * Brings a lab up, or leaves a healthy one alone, or tears a broken one down and rebuilds it.
 */
export async function labUp(o: UpOptions = {}): Promise<UpResult> {
  const { name, root, dir, runner, log } = resolveLab(o);
  let action: UpResult['action'] = 'created';
  let problems: string[] = [];
  const existing = await readRecord(dir);
  const strayNamespaces = await listLabNamespaces(name, runner);
  if (existing) {
    problems = await problemsOf(existing, runner, root);
    if (!problems.length) return { descriptor: await descriptorOf(existing), action: 'unchanged', problems, warnings: [], kubectl: kubectlOf(existing) };
    // Only processes died (a drill's victim, a crash): start them again, keep everything else.
    if (problems.every((p) => p.startsWith(PROXY_DOWN) || p.startsWith(AGENT_DOWN))) {
      log(`lab ${name}: restarting (${problems.join('; ')})`);
      await restartProcesses(existing, problems, runner);
      return { descriptor: await descriptorOf(existing), action: 'repaired', problems, warnings: [], kubectl: kubectlOf(existing) };
    }
    log(`lab ${name} is broken (${problems.join('; ')}): tearing it down and building it again`);
    action = 'rebuilt';
  }
  if (existing || strayNamespaces.length || existsSync(dir)) {
    if (!existing && (strayNamespaces.length || existsSync(dir))) problems.push('leftovers of an earlier lab with this name');
    await labDown({ name, root, runner, log });
    if (action === 'created' && problems.length) action = 'rebuilt';
  }

  const repo = findRepoRoot();
  const mainJs = o.mainJs ?? join(repo, 'dist', 'main.js');
  if (!existsSync(mainJs)) throw new LabError(`${mainJs} is missing: run \`npm run build\` first`);
  const binDir = await ensureBinaries(runner, repo, o.binDir, log);
  const warnings: string[] = [];
  let withAgents = o.agents === 'yes';
  if ((o.agents ?? 'auto') === 'auto') {
    withAgents = await hasAgentCommand(runner, mainJs);
    if (!withAgents) warnings.push('this build has no `smartnat agent` yet: the lab runs without agents (no traffic through floating addresses)');
  }

  await mkdir(root, { recursive: true, mode: 0o755 });
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const slot = await claimSlot(runner, root, name);
  const { spec, plan } = planLab(name);
  const unknownPods = (o.podAgents ?? []).filter((n) => !plan.agents.some((a) => a.name === n));
  if (unknownPods.length) throw new LabError(`podAgents: no agent ${unknownPods.join(', ')} (agents: ${plan.agents.map((a) => a.name).join(', ')})`);
  const rec: LabRecord = { version: 1, name, dir, slot, mainJs, withAgents, binDir, complete: false, agents: [], ...(o.leaseDurationMs !== undefined ? { leaseDurationMs: o.leaseDurationMs } : {}) };
  plan.agents.forEach((a, i) => {
    const m = managementAddresses(slot, i);
    const stateDir = join(dir, 'agents', a.name);
    rec.agents.push({
      name: a.name, netns: `${name}-${a.name}`, hostLink: `${name}-m${i + 1}`, hostAddress: m.host, agentAddress: m.agent,
      kubeconfig: join(stateDir, 'kubeconfig'), stateDir, proxyControl: join(dir, `proxy-${a.name}.sock`),
      ...(o.podAgents?.includes(a.name) ? { pod: true } : {}),
    });
  });
  await writeRecord(rec);
  try {
    await bringUp(rec, { runner, binDir, log, root, spec });
  } catch (err: unknown) {
    log(`lab: up failed (${err instanceof Error ? err.message : String(err)}); the lab is left as it is for inspection: \`smartnat lab down --name ${name}\` removes it`);
    throw err;
  }
  return { descriptor: await descriptorOf(rec), action, problems, warnings, kubectl: kubectlOf(rec) };
}

async function bringUp(rec: LabRecord, o: { runner: CommandRunner; binDir: string; log: (l: string) => void; root: string; spec: ReturnType<typeof planLab>['spec'] }): Promise<void> {
  const { runner, binDir, log } = o;
  const { name, dir } = rec;
  log(`lab ${name}: starting etcd and kube-apiserver (${dir})`);
  const [etcdClient, etcdPeer, apiServer] = (await freePorts(3)) as [number, number, number];
  const agentTokens = rec.agents.map(() => randomToken());
  const cp = await startLabControlPlane({
    dir, binDir, runner, ports: { etcdClient, etcdPeer, apiServer }, adminToken: randomToken(),
    users: rec.agents.map((a, i) => ({ token: agentTokens[i]!, name: `smartnat-lab-agent-${a.name}`, groups: [AGENT_GROUP] })),
    extraIps: rec.agents.map((a) => a.hostAddress),
  });
  rec.controlPlane = cp;
  await writeRecord(rec);

  log(`lab ${name}: installing the CRDs and the demo objects`);
  const crds = join(findRepoRoot(), 'charts', 'smartnat', 'crds');
  await kubectl(runner, binDir, cp.kubeconfigPath, ['apply', '--server-side', '-f', crds]);
  await kubectl(runner, binDir, cp.kubeconfigPath, ['wait', '--for=condition=Established', '--timeout=60s', '-f', crds]);
  await kubectl(runner, binDir, cp.kubeconfigPath, ['apply', '--server-side', '-f', '-'], renderDemoObjects(name));
  await kubectl(runner, binDir, cp.kubeconfigPath, ['apply', '--server-side', '-f', '-'], await renderAgentRbac(runner, binDir));

  log(`lab ${name}: building namespaces, segments, routers, clients and echo backends`);
  await buildTopology(o.spec, { name, stateRoot: o.root, runner, persistent: true });
  // A second uplink is a second default route with a higher metric, as on a real two-uplink
  // instance: the agent learns each external interface's gateway from the default routes.
  const { plan } = planLab(name);
  for (const a of rec.agents) {
    await runner.run('ip', ['-n', a.netns, 'route', 'add', 'default', 'via', plan.gateways.ext1, 'dev', 'ext1', 'metric', '200']);
  }

  const ca = await readFile(join(dir, 'ca.crt'));
  for (const [i, a] of rec.agents.entries()) {
    log(`lab ${name}: management link and API proxy for ${a.name} (${a.hostAddress} <-> ${a.agentAddress})`);
    await runner.run('ip', ['link', 'add', a.hostLink, 'type', 'veth', 'peer', 'name', 'mgmt0', 'netns', a.netns]);
    await runner.run('ip', ['addr', 'add', `${a.hostAddress}/30`, 'dev', a.hostLink]);
    await runner.run('ip', ['link', 'set', a.hostLink, 'up']);
    await runner.run('ip', ['-n', a.netns, 'addr', 'add', `${a.agentAddress}/30`, 'dev', 'mgmt0']);
    await runner.run('ip', ['-n', a.netns, 'link', 'set', 'mgmt0', 'up']);
    await mkdir(a.stateDir, { recursive: true, mode: 0o700 });
    a.proxy = await startProxy(rec, a, runner);
    await writeRecord(rec);
    await writeFile(a.kubeconfig, renderKubeconfig({
      server: `https://${a.hostAddress}:${PROXY_PORT}`, caPem: ca, token: agentTokens[i]!, user: `smartnat-lab-agent-${a.name}`, cluster: 'smartnat-lab', namespace: LEASE_NAMESPACE,
    }), { mode: 0o600 });
  }

  if (rec.withAgents) {
    for (const a of rec.agents) {
      log(`lab ${name}: starting smartnat agent ${a.name} in ${a.netns}${a.pod ? ' (PID 1 of its own PID namespace, keepalived under the watchdog)' : ''}`);
      await ensureAgent(rec, a);
    }
    for (const a of rec.agents) await waitHealthy(a);
  }
  rec.complete = true;
  await writeRecord(rec);
}

async function startProxy(rec: LabRecord, a: AgentRecord, runner: CommandRunner): Promise<BackgroundProcess> {
  const ready = join(rec.dir, `proxy-${a.name}.ready`);
  await rm(ready, { force: true });
  return startBackground(runner, '', {
    label: `proxy-${a.name}`, cmd: process.execPath,
    args: [rec.mainJs, 'lab', 'proxy', '--listen', `${a.hostAddress}:${PROXY_PORT}`, '--target', `127.0.0.1:${rec.controlPlane!.ports.apiServer}`, '--control', a.proxyControl, '--ready', ready],
    pidFile: join(rec.dir, `proxy-${a.name}.pid`), logFile: join(rec.dir, `proxy-${a.name}.log`), readyFile: ready, readyTimeoutMs: 30_000,
  });
}

/** The agent runs (and, for a `pod` agent, its watchdog too). */
async function agentRunning(a: AgentRecord): Promise<boolean> {
  return a.agent !== undefined && (await isRunning(a.agent)) && (!a.pod || (a.watchdog !== undefined && (await isRunning(a.watchdog))));
}

/**
 * Starts whatever of the agent is not running, recording it; true when the agent itself was
 * started (the caller waits for its /healthz). A `pod` agent first gets its watchdog (which runs
 * keepalived), then runs as `unshare --pid --fork --mount-proc --kill-child node ... agent
 * --no-keepalived`: PID 1 of a new PID namespace, as in the chart's container; killing `unshare`
 * kills it too.
 */
async function ensureAgent(rec: LabRecord, a: AgentRecord): Promise<boolean> {
  const runner = new ExecaCommandRunner(a.netns);
  if (a.pod && (!a.watchdog || !(await isRunning(a.watchdog)))) {
    a.watchdog = await startWatchdog(rec, a, runner);
    await writeRecord(rec);
  }
  if (a.agent && (await isRunning(a.agent))) return false;
  const [cmd, args] = a.pod
    ? [findProgram('unshare'), ['--pid', '--fork', '--mount-proc', '--kill-child', process.execPath, ...agentNodeFlags(), ...agentArgs(rec, a), '--no-keepalived']]
    : [process.execPath, [...agentNodeFlags(), ...agentArgs(rec, a)]];
  a.agent = await startBackground(runner, a.netns, {
    label: `agent-${a.name}`, cmd, args,
    pidFile: join(a.stateDir, 'agent.pid'), logFile: join(a.stateDir, 'agent.log'), readyTimeoutMs: 30_000,
  });
  await writeRecord(rec);
  return true;
}

/**
 * The chart's keepalived container: the watchdog on the agent's /healthz, with the chart's defaults;
 * its stale-after is never shorter than the agents' lease duration (docs/drill.md: a shorter one
 * takes a restarting holder's addresses off the wire although nobody else may take them yet).
 */
async function startWatchdog(rec: LabRecord, a: AgentRecord, runner: CommandRunner): Promise<BackgroundProcess> {
  return startBackground(runner, a.netns, {
    label: `watchdog-${a.name}`, cmd: process.execPath,
    args: [
      rec.mainJs, 'keepalived-watchdog', '--state-dir', a.stateDir,
      '--heartbeat-url', `http://${a.agentAddress}:${METRICS_PORT}/healthz`, '--stale-after', `${Math.max(WATCHDOG_STALE_AFTER_MS, rec.leaseDurationMs ?? 0)}ms`, '--interval', '250ms',
    ],
    pidFile: join(a.stateDir, 'watchdog.pid'), logFile: join(a.stateDir, 'watchdog.log'), readyLogText: 'keepalived watchdog started', readyTimeoutMs: 30_000,
  });
}

/** Absolute path of a system program (start-stop-daemon matches --exec by path). */
function findProgram(name: string): string {
  for (const dir of ['/usr/bin', '/bin', '/usr/sbin', '/sbin']) {
    if (existsSync(join(dir, name))) return join(dir, name);
  }
  throw new LabError(`${name} is not installed (util-linux)`);
}

async function restartProcesses(rec: LabRecord, problems: readonly string[], runner: CommandRunner): Promise<void> {
  for (const a of rec.agents) {
    if (problems.includes(`${PROXY_DOWN}${a.name}`)) {
      a.proxy = await startProxy(rec, a, runner);
      await writeRecord(rec);
    }
  }
  const restarted: AgentRecord[] = [];
  for (const a of rec.agents) {
    if (problems.includes(`${AGENT_DOWN}${a.name}`) && (await ensureAgent(rec, a))) restarted.push(a);
  }
  for (const a of restarted) await waitHealthy(a);
}

/** The agent's command line (planned flags of `smartnat agent`). */
function agentArgs(rec: LabRecord, a: AgentRecord): string[] {
  return [
    rec.mainJs, 'agent',
    '--name', a.name,
    '--namespace', LEASE_NAMESPACE,
    '--kubeconfig', a.kubeconfig,
    '--labels', `smartnat.aureacentral.com/lab=${rec.name}`,
    '--interface', 'ext0=external', '--interface', 'ext1=external', '--interface', 'int0=internal',
    '--state-dir', a.stateDir,
    '--metrics-address', `${a.agentAddress}:${METRICS_PORT}`,
    '--log-level', 'info',
    ...(rec.leaseDurationMs !== undefined ? ['--lease-duration', `${rec.leaseDurationMs}ms`] : []),
  ];
}

async function waitHealthy(a: AgentRecord, timeoutMs = 60_000): Promise<void> {
  const url = `http://${a.agentAddress}:${METRICS_PORT}/healthz`;
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (a.agent && !(await isRunning(a.agent))) {
      throw new LabError(`agent ${a.name} exited; last lines of ${a.agent.logFile}:\n${(await readFile(a.agent.logFile, 'utf8').catch(() => '')).split('\n').slice(-30).join('\n')}`);
    }
    const ok = await httpGet(url).then((r) => r.status === 200, () => false);
    if (ok) return;
    if (performance.now() > deadline) throw new LabError(`agent ${a.name}: ${url} not healthy after ${timeoutMs} ms (log ${a.agent?.logFile ?? '-'})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Stops everything the lab started, deletes its namespaces and links, removes its directory. */
export async function labDown(o: LabOptions = {}): Promise<DownReport> {
  const { name, dir, runner } = resolveLab(o);
  const rec = await readRecord(dir);
  const stopped: number[] = [];
  const stop = async (p: BackgroundProcess | undefined, graceMs = 5000): Promise<void> => {
    if (p && (await isRunning(p))) {
      await stopBackground(p, graceMs);
      stopped.push(p.pid);
    }
  };
  // Agents first (they stop their keepalived), then whatever still runs in the lab's namespaces.
  for (const a of rec?.agents ?? []) await stop(a.agent, 10_000);
  for (const a of rec?.agents ?? []) await stop(a.watchdog, 10_000);
  for (const ns of await listLabNamespaces(name, runner)) {
    const { stdout } = await runner.run('ip', ['netns', 'pids', ns], { okExitCodes: [0, 1] });
    for (const pid of stdout.split('\n').map(Number).filter((n) => Number.isInteger(n) && n > 0)) {
      const startTime = await readStartTime(pid);
      if (startTime === undefined) continue;
      signal(pid, 'SIGKILL');
      stopped.push(pid);
    }
  }
  for (const a of rec?.agents ?? []) await stop(a.proxy);
  if (rec?.controlPlane) {
    for (const p of [rec.controlPlane.apiServer, rec.controlPlane.etcd]) if (await isRunning(p)) stopped.push(p.pid);
    await stopLabControlPlane(rec.controlPlane);
  }
  const topo = await teardownLab(name, { runner, dir });
  stopped.push(...topo.processesStopped);
  const leftoverLinks: string[] = [];
  for (const link of await hostLinks(runner, name)) {
    await runner.run('ip', ['link', 'del', link], { okExitCodes: [0, 1] });
  }
  leftoverLinks.push(...(await hostLinks(runner, name)));
  const leftoverProcesses: number[] = [...topo.leftoverProcesses];
  const recorded = [...(rec?.agents ?? []).flatMap((a) => [a.agent, a.watchdog, a.proxy]), rec?.controlPlane?.etcd, rec?.controlPlane?.apiServer];
  for (const p of recorded) if (p && (await isRunning(p))) leftoverProcesses.push(p.pid);
  const leftoverNamespaces = await listLabNamespaces(name, runner);
  let dirRemoved = false;
  if (!leftoverProcesses.length && !leftoverNamespaces.length && !leftoverLinks.length) {
    await rm(dir, { recursive: true, force: true });
    dirRemoved = !existsSync(dir);
  }
  return { name, processesStopped: [...new Set(stopped)], namespacesDeleted: topo.namespacesDeleted, leftoverNamespaces, leftoverProcesses, leftoverLinks, dirRemoved };
}

/** Host links whose name starts with "<name>-" (the management veths). */
async function hostLinks(runner: CommandRunner, name: string): Promise<string[]> {
  const { stdout } = await runner.run('ip', ['-j', 'link', 'show']);
  return (JSON.parse(stdout) as { ifname?: string }[]).map((l) => l.ifname ?? '').filter((n) => n.startsWith(`${name}-`));
}

/** Changes (or reads) one agent's API path through its proxy. */
export async function setApiPath(o: LabOptions & { agent: string; patch?: ProxyStatePatch }): Promise<ProxyStatus> {
  const name = o.name ?? DEFAULT_LAB_NAME;
  checkName(name);
  const rec = await readRecord(join(o.root ?? DEFAULT_LAB_ROOT, name));
  if (!rec) throw new LabError(`no lab ${name} (run \`smartnat lab up --name ${name}\`)`);
  const a = rec.agents.find((x) => x.name === o.agent);
  if (!a) throw new LabError(`lab ${name} has no agent ${o.agent} (agents: ${rec.agents.map((x) => x.name).join(', ')})`);
  return controlProxy(a.proxyControl, o.patch);
}

function kubectlOf(rec: LabRecord): string {
  return rec.binDir !== undefined ? join(rec.binDir, 'kubectl') : 'kubectl';
}

/** How to run this checkout's CLI from the current directory ("node dist/main.js"). */
export function cliCommand(mainJs: string = join(findRepoRoot(), 'dist', 'main.js')): string {
  const rel = relative(process.cwd(), mainJs);
  return `node ${rel.startsWith('..') ? mainJs : rel}`;
}

/** Lines telling a newcomer what to try next. */
export function nextSteps(d: LabDescriptor, mainCommand = 'smartnat', kubectlPath = 'kubectl'): string[] {
  const c1 = d.clients.find((c) => c.allowed);
  const c2 = d.clients.find((c) => !c.allowed);
  const m = d.mappings[0]!;
  const nameFlag = d.name === DEFAULT_LAB_NAME ? '' : ` --name ${d.name}`;
  const lines = [
    `lab ${d.name} is up (${d.dir})`,
    '',
    'Try:',
    `  ${kubectlPath} --kubeconfig ${d.kubeconfig} get mappings,addresspools,leases -A`,
  ];
  if (c1) lines.push(`  echo hello | ip netns exec ${c1.netns} nc -w 2 ${m.addresses[0]} ${m.ports[0]!.port}      # ${c1.name}: allowed, the echo answers`);
  if (c2) lines.push(`  echo hello | ip netns exec ${c2.netns} nc -w 2 ${m.addresses[1] ?? m.addresses[0]} ${m.ports[0]!.port}      # ${c2.name}: not in allowedSources, no answer`);
  lines.push(
    `  ip netns exec ${c1?.netns ?? `${d.name}-c1`} node ${join(d.dir, PROBE_FILE)} --proto udp --host ${m.addresses[0]} --port ${m.ports[0]!.port}`,
    `  curl -s ${d.agents[0]?.metrics ?? ''} | grep ^smartnat_`,
    `  ${mainCommand} lab api a1 blackhole${nameFlag}   # cut a1 from the API server (then: pass, refuse, --delay MS)`,
    `  ${mainCommand} drill kill${nameFlag}             # kill the owner of ${m.addresses[0]}: every process and its links; prints the gap`,
    `  ${mainCommand} lab down${nameFlag}`,
  );
  return lines;
}

/**
 * Starts again, in place, the parts of a recorded lab that a drill stopped: the API server (etcd
 * and its data kept) and any agent that is not running (it re-adopts from its state directory).
 * The drills' restore step; a lab missing more than that (namespaces, etcd, proxies) needs `up`.
 */
export async function reviveLab(o: LabOptions & { binDir?: string } = {}): Promise<LabDescriptor> {
  const { name, dir, runner, log } = resolveLab(o);
  const rec = await readRecord(dir);
  if (!rec?.controlPlane) throw new LabError(`no lab ${name} (run \`smartnat lab up --name ${name}\`)`);
  const cp = rec.controlPlane;
  if (!(await isRunning(cp.apiServer))) {
    const binDir = await ensureBinaries(runner, findRepoRoot(), o.binDir, log);
    log(`lab ${name}: starting kube-apiserver again`);
    const apiServer = await startBackground(runner, '', {
      label: 'kube-apiserver', cmd: join(binDir, 'kube-apiserver'), args: apiServerArgs(cp.dir, cp.ports),
      pidFile: cp.apiServer.pidFile, logFile: cp.apiServer.logFile, readyTimeoutMs: 120_000,
    });
    rec.controlPlane = { ...cp, apiServer };
    await writeRecord(rec);
    const ca = await readFile(join(cp.dir, 'ca.crt'));
    const deadline = performance.now() + 120_000;
    while (!(await apiServerReady(cp.server, ca, cp.adminToken))) {
      if (!(await isRunning(apiServer)) || performance.now() > deadline) throw new LabError(`kube-apiserver did not come back; see ${apiServer.logFile}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  if (rec.withAgents) {
    const restarted: AgentRecord[] = [];
    for (const a of rec.agents) {
      if (await agentRunning(a)) continue;
      log(`lab ${name}: starting smartnat agent ${a.name} again in ${a.netns}`);
      if (await ensureAgent(rec, a)) restarted.push(a);
    }
    for (const a of restarted) await waitHealthy(a);
  }
  return descriptorOf(rec);
}
