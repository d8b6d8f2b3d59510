// Builds a TopologySpec into real network namespaces (veths, bridges inside segment namespaces,
// addresses, routes, sysctls, echo servers) and tears it down. Guarantees: every name carries the
// lab's unique prefix; teardown is idempotent and removes only what carries that prefix; unless the
// lab is persistent, a guard process tears it down if its owner dies first. Commands go through
// the CommandRunner; nothing is linked to the host's namespace.
import { mkdir, rm, writeFile, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ExecaCommandRunner, type CommandRunner } from '../dataplane/command-runner.js';
import { validateTopology, type TopologySpec, type NodeSpec } from './topology-spec.js';
import { formatIpv4, parseInterfaceAddress } from '../model/net.js';
import { writeLabScripts, type LabScripts } from './scripts.js';
import { startBackground, stopBackground, isRunning, type BackgroundProcess } from './processes.js';

export interface BuildOptions {
  /** Unique lab name, the prefix of every namespace ([a-z][a-z0-9]{1,9}); random "snl…" when absent. */
  readonly name?: string;
  /** Runner for commands on the host (default ExecaCommandRunner()); commands inside a node always use ExecaCommandRunner(namespace). */
  readonly runner?: CommandRunner;
  /** Directory holding one directory per lab (default: $TMPDIR/smartnat-lab). */
  readonly stateRoot?: string;
  /**
   * The lab outlives this process (`smartnat lab up`): no guard, echo servers not tied to it.
   * Default false: the lab dies with its owner.
   */
  readonly persistent?: boolean;
  /** The process whose death tears the lab down (default: this process). */
  readonly ownerPid?: number;
}

export interface TeardownReport {
  readonly namespacesDeleted: readonly string[];
  readonly processesStopped: readonly number[];
  /** Namespaces with the lab's prefix still listed after teardown (always empty on success). */
  readonly leftoverNamespaces: readonly string[];
  /** Tracked processes still running after teardown (always empty on success). */
  readonly leftoverProcesses: readonly number[];
}

export interface StartProcessOptions {
  readonly label: string;
  readonly cmd: string;
  readonly args: readonly string[];
  readonly readyFile?: string;
  readonly readyLogText?: string;
  readonly readyTimeoutMs?: number;
}

const NAME = /^[a-z][a-z0-9]{1,9}$/;
const OWNER_FILE = 'owner.json';

export function defaultStateRoot(): string {
  return join(tmpdir(), 'smartnat-lab');
}

/** A fresh lab name: "snl" + 6 random base-36 characters. */
export function uniqueLabName(): string {
  return `snl${BigInt(`0x${randomBytes(5).toString('hex')}`).toString(36).padStart(6, '0').slice(-6)}`;
}

export class Topology {
  readonly #processes: BackgroundProcess[] = [];
  #guard: BackgroundProcess | undefined;
  #tornDown = false;

  constructor(
    readonly name: string,
    readonly spec: TopologySpec,
    readonly dir: string,
    readonly host: CommandRunner,
    readonly scripts: LabScripts,
    /** The process whose death tears the lab down; undefined for a persistent lab. */
    readonly ownerPid: number | undefined,
  ) {}

  /** The namespace of a node. */
  ns(node: string): string {
    if (!this.spec.nodes.some((n) => n.name === node)) throw new Error(`topology ${this.name} has no node ${node}`);
    return `${this.name}-${node}`;
  }

  /** The namespace holding a segment's bridge (br0). */
  segmentNs(segment: string): string {
    if (!this.spec.segments.some((s) => s.name === segment)) throw new Error(`topology ${this.name} has no segment ${segment}`);
    return `${this.name}-s-${segment}`;
  }

  /** Every namespace of the lab, nodes first. */
  namespaces(): string[] {
    return [...this.spec.nodes.map((n) => `${this.name}-${n.name}`), ...this.spec.segments.map((s) => `${this.name}-s-${s.name}`)];
  }

  /** A CommandRunner whose commands run inside the node's namespace. */
  runner(node: string): CommandRunner {
    return new ExecaCommandRunner(this.ns(node));
  }

  /** The addresses (without prefix length) configured on a node, optionally of one interface. */
  addresses(node: string, ifname?: string): string[] {
    const ends = [...this.spec.segments.flatMap((s) => s.members), ...this.spec.links.flatMap((l) => [l.a, l.b])];
    return ends
      .filter((e) => e.node === node && (ifname === undefined || e.ifname === ifname))
      .flatMap((e) => e.addresses ?? [])
      .map((a) => formatIpv4(parseInterfaceAddress(a)!.address));
  }

  get processes(): readonly BackgroundProcess[] {
    return this.#processes;
  }

  /** Starts a long-running program inside a node's namespace, tracked for teardown. */
  async startProcess(node: string, o: StartProcessOptions): Promise<BackgroundProcess> {
    const id = `${node}-${o.label}-${this.#processes.length}`;
    const proc = await startBackground(this.runner(node), this.ns(node), {
      ...o,
      pidFile: join(this.dir, `${id}.pid`),
      logFile: join(this.dir, `${id}.log`),
    });
    this.#processes.push(proc);
    await this.#writeOwner();
    return proc;
  }

  async stopProcess(p: BackgroundProcess): Promise<void> {
    await stopBackground(p);
  }

  /** Removes every process and namespace of this lab, then its guard; safe to call twice or after a failed build. */
  async teardown(): Promise<TeardownReport> {
    const processes = [...this.#processes, ...(this.#guard ? [this.#guard] : [])];
    const report = await teardownLab(this.name, { runner: this.host, processes, namespaces: this.namespaces(), dir: this.dir });
    this.#tornDown = true;
    return report;
  }

  get tornDown(): boolean {
    return this.#tornDown;
  }

  /** The guard process (undefined for a persistent lab). */
  get guard(): BackgroundProcess | undefined {
    return this.#guard;
  }

  /** Starts the guard in the host's namespace: it watches ownerPid and tears the lab down if that dies first. */
  async startGuard(): Promise<void> {
    if (this.ownerPid === undefined || this.#guard) return;
    this.#guard = await startBackground(this.host, '', {
      label: 'guard',
      cmd: process.execPath,
      args: [this.scripts.guard, '--name', this.name, '--dir', this.dir, '--watch-pid', String(this.ownerPid)],
      pidFile: join(this.dir, 'guard.pid'),
      logFile: join(this.dir, 'guard.log'),
    });
    await this.#writeOwner();
  }

  async #writeOwner(): Promise<void> {
    const owner = { pid: this.ownerPid ?? 0, namespaces: this.namespaces(), processes: this.#processes, guard: this.#guard };
    await writeFile(join(this.dir, OWNER_FILE), JSON.stringify(owner, null, 2));
  }

  /** Written once at build start so a later sweep can find a lab whose owner died. */
  async recordOwner(): Promise<void> {
    await this.#writeOwner();
  }
}

/** Builds the spec into namespaces named "<name>-<node>" (and "<name>-s-<segment>" for bridges). */
export async function buildTopology(spec: TopologySpec, options: BuildOptions = {}): Promise<Topology> {
  const errors = validateTopology(spec);
  if (errors.length) throw new Error(`invalid topology: ${errors.join('; ')}`);
  const name = options.name ?? uniqueLabName();
  if (!NAME.test(name)) throw new Error(`lab name ${JSON.stringify(name)} must match ${NAME.source}`);
  const host = options.runner ?? new ExecaCommandRunner();
  const dir = join(options.stateRoot ?? defaultStateRoot(), name);
  // Never build over a lab of the same name: a failed build tears down everything with the prefix.
  const existing = await listLabNamespaces(name, host);
  if (existing.length) throw new Error(`lab ${name} already exists (${existing.length} namespaces); tear it down first`);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const scripts = await writeLabScripts(dir);
  const topo = new Topology(name, spec, dir, host, scripts, options.persistent ? undefined : (options.ownerPid ?? process.pid));
  await topo.recordOwner();
  try {
    await topo.startGuard();
    await createNamespaces(topo);
    await startEchoServers(topo);
  } catch (err: unknown) {
    await topo.teardown().catch(() => undefined);
    throw err;
  }
  return topo;
}

async function createNamespaces(topo: Topology): Promise<void> {
  const { spec, host } = topo;
  await host.run('ip', ['-batch', '-'], { input: topo.namespaces().map((ns) => `netns add ${ns}\n`).join('') });

  // veths are created from the host with each end placed straight into its namespace.
  const veths: string[] = [];
  const segmentBatch = new Map<string, string[]>();
  for (const seg of spec.segments) {
    const ns = topo.segmentNs(seg.name);
    const lines = ['link set lo up', 'link add br0 type bridge', 'link set br0 up'];
    seg.members.forEach((m, k) => {
      veths.push(`link add name ${m.ifname} netns ${topo.ns(m.node)} type veth peer name p${k} netns ${ns}`);
      lines.push(`link set p${k} master br0`, `link set p${k} up`);
    });
    segmentBatch.set(ns, lines);
  }
  for (const l of spec.links) {
    veths.push(`link add name ${l.a.ifname} netns ${topo.ns(l.a.node)} type veth peer name ${l.b.ifname} netns ${topo.ns(l.b.node)}`);
  }
  if (veths.length) await host.run('ip', ['-batch', '-'], { input: veths.map((v) => `${v}\n`).join('') });
  for (const [ns, lines] of segmentBatch) await host.run('ip', ['-n', ns, '-batch', '-'], { input: lines.map((v) => `${v}\n`).join('') });

  const ends = [...spec.segments.flatMap((s) => s.members), ...spec.links.flatMap((l) => [l.a, l.b])];
  for (const node of spec.nodes) {
    const ns = topo.ns(node.name);
    const lines = ['link set lo up'];
    for (const e of ends.filter((x) => x.node === node.name)) {
      if (e.mtu !== undefined) lines.push(`link set ${e.ifname} mtu ${e.mtu}`);
      for (const a of e.addresses ?? []) lines.push(`addr add ${a} dev ${e.ifname}`);
      lines.push(`link set ${e.ifname} up`);
    }
    await host.run('ip', ['-n', ns, '-batch', '-'], { input: lines.map((v) => `${v}\n`).join('') });
  }
  // Routes after every interface is up, so each gateway is on a live connected route.
  for (const node of spec.nodes) {
    const routes = (node.routes ?? []).map(
      (r) => `route add ${r.to}${r.via ? ` via ${r.via}` : ''}${r.dev ? ` dev ${r.dev}` : ''}${r.table !== undefined ? ` table ${r.table}` : ''}`,
    );
    if (routes.length) await host.run('ip', ['-n', topo.ns(node.name), '-batch', '-'], { input: routes.map((v) => `${v}\n`).join('') });
    const sysctls = sysctlsOf(node);
    await topo.runner(node.name).run('sysctl', ['-q', '-w', ...Object.entries(sysctls).map(([k, v]) => `${k}=${v}`)]);
  }
  for (const seg of spec.segments) {
    await new ExecaCommandRunner(topo.segmentNs(seg.name)).run('sysctl', ['-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
  }
}

function sysctlsOf(node: NodeSpec): Record<string, string> {
  const forwarding = node.forwarding ?? (node.role === 'router' || node.role === 'agent');
  return {
    // IPv6 stays off: the lab plan is IPv4 only and DAD/RS chatter would only add noise to captures.
    'net.ipv6.conf.all.disable_ipv6': '1',
    'net.ipv6.conf.default.disable_ipv6': '1',
    'net.ipv4.ip_forward': forwarding ? '1' : '0',
    ...(node.sysctls ?? {}),
  };
}

async function startEchoServers(topo: Topology): Promise<void> {
  for (const node of topo.spec.nodes) {
    const tcp = node.echo?.tcpPorts ?? [];
    const udp = node.echo?.udpPorts ?? [];
    if (tcp.length || udp.length) await startEchoServer(topo, node.name, { tcpPorts: tcp, udpPorts: udp });
  }
}

/**
 * Starts an echo server in a node (the spec's backends get theirs at build time; this is for
 * extra ones, or to bring one back after crashNode). Resolves once every port is bound.
 */
export async function startEchoServer(
  topo: Topology,
  node: string,
  ports: { readonly tcpPorts?: readonly number[]; readonly udpPorts?: readonly number[] },
): Promise<BackgroundProcess> {
  const ready = join(topo.dir, `${node}-echo-${topo.processes.length}.ready`);
  return topo.startProcess(node, {
    label: 'echo',
    cmd: process.execPath,
    args: [
      topo.scripts.echoServer,
      '--name', node,
      '--address', topo.addresses(node)[0] ?? '',
      ...(ports.tcpPorts ?? []).flatMap((p) => ['--tcp', String(p)]),
      ...(ports.udpPorts ?? []).flatMap((p) => ['--udp', String(p)]),
      '--ready', ready,
      ...(topo.ownerPid !== undefined ? ['--watch-pid', String(topo.ownerPid)] : []),
    ],
    readyFile: ready,
  });
}

/** Namespaces currently listed whose name starts with "<name>-". */
export async function listLabNamespaces(name: string, runner: CommandRunner = new ExecaCommandRunner()): Promise<string[]> {
  const { stdout } = await runner.run('ip', ['netns', 'list']);
  return stdout
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((ns) => ns.startsWith(`${name}-`));
}

/**
 * Tears down a lab by name: stops its processes (those given, plus those recorded in its
 * directory), deletes its namespaces (those given, plus those recorded: never merely everything
 * that shares the prefix, which a short name could share with someone else's), removes its
 * directory, and reports leftovers.
 */
export async function teardownLab(
  name: string,
  o: { runner?: CommandRunner; processes?: readonly BackgroundProcess[]; namespaces?: readonly string[]; dir?: string } = {},
): Promise<TeardownReport> {
  if (!NAME.test(name)) throw new Error(`lab name ${JSON.stringify(name)} must match ${NAME.source}`);
  const runner = o.runner ?? new ExecaCommandRunner();
  const dir = o.dir ?? join(defaultStateRoot(), name);
  const record = await readRecord(dir);
  const procs = [...(o.processes ?? []), ...record.processes];
  const stopped: number[] = [];
  for (const p of procs) {
    if (await isRunning(p)) {
      await stopBackground(p);
      stopped.push(p.pid);
    }
  }
  const ours = new Set([...(o.namespaces ?? []), ...record.namespaces].filter((ns) => ns.startsWith(`${name}-`)));
  const present = async (): Promise<string[]> => (await listLabNamespaces(name, runner)).filter((ns) => ours.has(ns));
  const namespaces = await present();
  for (const ns of namespaces) {
    await runner.run('ip', ['netns', 'del', ns], { okExitCodes: [0, 1] });
  }
  const leftoverNamespaces = await present();
  const leftoverProcesses: number[] = [];
  for (const p of procs) if (await isRunning(p)) leftoverProcesses.push(p.pid);
  if (!leftoverNamespaces.length && !leftoverProcesses.length) await rm(dir, { recursive: true, force: true });
  return { namespacesDeleted: namespaces, processesStopped: [...new Set(stopped)], leftoverNamespaces, leftoverProcesses };
}

export interface LabStatus {
  readonly name: string;
  /** Whether the lab's directory (its record) exists. */
  readonly recorded: boolean;
  /** The process the lab dies with; 0 for a persistent lab, undefined without a record. */
  readonly ownerPid?: number;
  readonly namespaces: readonly string[];
  readonly processes: readonly { readonly label: string; readonly pid: number; readonly netns: string; readonly running: boolean }[];
}

/** What is left of a lab, from its record and the kernel (for `smartnat lab status`). */
export async function labStatus(name: string, o: { runner?: CommandRunner; stateRoot?: string } = {}): Promise<LabStatus> {
  if (!NAME.test(name)) throw new Error(`lab name ${JSON.stringify(name)} must match ${NAME.source}`);
  const dir = join(o.stateRoot ?? defaultStateRoot(), name);
  const record = await readRecord(dir);
  const processes = await Promise.all(record.processes.map(async (p) => ({ label: p.label, pid: p.pid, netns: p.netns, running: await isRunning(p) })));
  const listed = new Set(await listLabNamespaces(name, o.runner));
  return {
    name,
    recorded: record.found,
    ...(record.pid !== undefined ? { ownerPid: record.pid } : {}),
    namespaces: record.namespaces.filter((ns) => listed.has(ns)),
    processes,
  };
}

interface LabRecord {
  readonly found: boolean;
  readonly pid?: number;
  readonly namespaces: readonly string[];
  /** The lab's processes, guard last. */
  readonly processes: readonly BackgroundProcess[];
}

async function readRecord(dir: string): Promise<LabRecord> {
  let raw: { pid?: unknown; namespaces?: unknown; processes?: unknown; guard?: unknown };
  try {
    raw = JSON.parse(await readFile(join(dir, OWNER_FILE), 'utf8')) as typeof raw;
  } catch {
    return { found: false, namespaces: [], processes: [] };
  }
  const namespaces = Array.isArray(raw.namespaces) ? raw.namespaces.filter((n): n is string => typeof n === 'string') : [];
  const processes = [...(Array.isArray(raw.processes) ? (raw.processes as BackgroundProcess[]) : []), ...(raw.guard ? [raw.guard as BackgroundProcess] : [])];
  return { found: true, ...(typeof raw.pid === 'number' ? { pid: raw.pid } : {}), namespaces, processes };
}

/** Tears down labs under the state root whose owning process has died (a crashed test run). */
export async function sweepStaleLabs(o: { stateRoot?: string; runner?: CommandRunner } = {}): Promise<string[]> {
  const root = o.stateRoot ?? defaultStateRoot();
  let names: string[];
  try {
    names = await readdir(root);
  } catch {
    return [];
  }
  const swept: string[] = [];
  for (const name of names.filter((n) => NAME.test(n))) {
    const record = await readRecord(join(root, name));
    if (!record.found) continue;
    const ownerPid = record.pid ?? 0;
    // pid 0 marks a persistent lab (`lab up`): only `lab down` removes it.
    if (!(ownerPid > 0) || ownerAlive(ownerPid)) continue;
    await teardownLab(name, { runner: o.runner, dir: join(root, name) });
    swept.push(name);
  }
  return swept;
}

function ownerAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
