// `smartnat drill KIND` against a lab: find the address's owner from its lease, probe through the
// address from the allowed client (TCP at 100/s and UDP at 50/s, 200 ms timeout), inject the
// fault, wait until traffic flows again (or a lease-derived deadline), then restore the lab and
// report the gap, refused/failed counts, the lease transition and the new owner (docs/drill.md).
// Guarantees: the lab is restored after every run, also after a failure (links up, API path
// passed, undrained, stopped agents and API server started again). Does not judge (drill-plan.ts does).
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ExecaCommandRunner, type CommandRunner } from '../dataplane/command-runner.js';
import { DEFAULT_LEASE_SETTINGS } from '../plan/lease-settings.js';
import { addressesInUse, chooseTarget, type DrillAgent, type DrillTarget, type LabDescriptor } from './drill-descriptor.js';
import { isLabProcess, LabHands, type SavedRoute } from './drill-lab.js';
import {
  computeDrillTimings,
  decideStop,
  expectationFor,
  judgeDrill,
  recoveredAt,
  roundMs,
  spread,
  stableSince,
  summarizeProbe,
  type DrillKind,
  type DrillTimings,
  type ProbeSummary,
  type Spread,
  type StopDecision,
} from './drill-plan.js';
import { StreamProbe } from './drill-probe.js';
import { signal } from './processes.js';
import { writeLabScripts } from './scripts.js';

export const DRILL_SCHEMA_VERSION = 1;
export const PROBE_TIMEOUT_MS = 200;
export const TCP_INTERVAL_MS = 10;
export const UDP_INTERVAL_MS = 20;
/** How long the probes may take to start and show steady traffic before the drill gives up. */
const PROBE_START_MS = 15_000;

export interface DrillOptions {
  readonly kind: DrillKind;
  readonly labName: string;
  readonly address?: string;
  /** Directory holding one directory per lab (lab.ts default when absent). */
  readonly root?: string;
  readonly repeat?: number;
  readonly host?: CommandRunner;
  /** Progress lines (stderr in the CLI). */
  readonly log?: (line: string) => void;
}

export interface DrillRunReport {
  readonly run: number;
  readonly ok: boolean;
  readonly problems: readonly string[];
  readonly previousOwner: string;
  /** Holder of the address lease once traffic flowed again. */
  readonly owner: string | null;
  readonly moved: boolean;
  readonly injectedAt: string;
  /** The worse of the TCP and UDP gaps. */
  readonly gapMs: number;
  readonly refused: number;
  readonly failed: number;
  /** From the fault (or, for held faults, from undoing it) until traffic flowed for good; null if it never did. */
  readonly recoveryMs: number | null;
  /** From the fault until the address lease changed holder; null when it did not. */
  readonly leaseTransitionMs: number | null;
  readonly stop: StopDecision;
  readonly tcp: ProbeSummary;
  readonly udp: ProbeSummary | null;
  /** Agents carrying the address after the lab was restored and had settled. */
  readonly addressOn: readonly string[];
  readonly fault: { readonly method: string; readonly heldMs?: number };
}

export interface DrillReport {
  readonly schemaVersion: number;
  readonly kind: DrillKind;
  readonly lab: string;
  readonly address: string;
  readonly tcpPort: number;
  readonly udpPort: number | null;
  readonly client: { readonly name: string; readonly address: string };
  readonly leaseDurationMs: number;
  readonly timings: DrillTimings;
  readonly probe: { readonly tcpPerSecond: number; readonly udpPerSecond: number; readonly timeoutMs: number };
  readonly ok: boolean;
  readonly runs: readonly DrillRunReport[];
  readonly summary: {
    readonly runs: number;
    readonly passed: number;
    readonly gapMs: Spread | null;
    readonly recoveryMs: Spread | null;
    readonly leaseTransitionMs: Spread | null;
    readonly refused: number;
    readonly failed: number;
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const wallNow = (): number => performance.timeOrigin + performance.now();

/** Runs `repeat` drills of one kind back to back; every run starts from a restored lab. */
export async function runDrills(o: DrillOptions): Promise<DrillReport> {
  const repeat = o.repeat ?? 1;
  const hands = new LabHands(o.host ?? new ExecaCommandRunner(), { name: o.labName, ...(o.root ? { root: o.root } : {}), ...(o.log ? { log: o.log } : {}) });
  const d = await hands.descriptor();
  const target = chooseTarget(d, o.address);
  const leaseDurationMs = d.leaseDurationMs ?? DEFAULT_LEASE_SETTINGS.leaseDurationMs;
  const timings = computeDrillTimings({ leaseDurationMs });
  const scriptDir = join(d.dir, 'drill');
  await mkdir(scriptDir, { recursive: true });
  const scripts = await writeLabScripts(scriptDir);
  const runs: DrillRunReport[] = [];
  for (let run = 1; run <= repeat; run++) {
    o.log?.(`drill ${o.kind} ${run}/${repeat} on ${target.address}`);
    const r = await runOnce({ hands, kind: o.kind, target, timings, leaseDurationMs, probeScript: scripts.probe, run, log: o.log });
    o.log?.(`  gap ${r.gapMs} ms, refused ${r.refused}, failed ${r.failed}, owner ${r.previousOwner} -> ${r.owner ?? '?'}${r.ok ? '' : `; FAILED: ${r.problems.join('; ')}`}`);
    runs.push(r);
  }
  const numbers = (f: (r: DrillRunReport) => number | null): number[] => runs.map(f).filter((v): v is number => v !== null);
  return {
    schemaVersion: DRILL_SCHEMA_VERSION,
    kind: o.kind,
    lab: d.name,
    address: target.address,
    tcpPort: target.tcpPort,
    udpPort: target.udpPort ?? null,
    client: { name: target.client.name, address: target.client.address },
    leaseDurationMs,
    timings,
    probe: { tcpPerSecond: 1000 / TCP_INTERVAL_MS, udpPerSecond: target.udpPort === undefined ? 0 : 1000 / UDP_INTERVAL_MS, timeoutMs: PROBE_TIMEOUT_MS },
    ok: runs.every((r) => r.ok),
    runs,
    summary: {
      runs: runs.length,
      passed: runs.filter((r) => r.ok).length,
      gapMs: spread(numbers((r) => r.gapMs)),
      recoveryMs: spread(numbers((r) => r.recoveryMs)),
      leaseTransitionMs: spread(numbers((r) => r.leaseTransitionMs)),
      refused: runs.reduce((s, r) => s + r.refused, 0),
      failed: runs.reduce((s, r) => s + r.failed, 0),
    },
  };
}

interface RunContext {
  readonly hands: LabHands;
  readonly kind: DrillKind;
  readonly target: DrillTarget;
  readonly timings: DrillTimings;
  readonly leaseDurationMs: number;
  readonly probeScript: string;
  readonly run: number;
  readonly log: ((line: string) => void) | undefined;
}

/** What an injected fault needs to be undone. */
interface Injected {
  readonly method: string;
  readonly victim: DrillAgent;
  links?: readonly string[];
  routes?: readonly SavedRoute[];
  undone: boolean;
}

async function runOnce(c: RunContext): Promise<DrillRunReport> {
  const { hands, kind, target, timings } = c;
  const d = await hands.descriptor();
  const before = await hands.addressHolder(d, target.address);
  if (!before || before.holder === '') throw new Error(`the address lease of ${target.address} has no holder: is the lab up and settled?`);
  const victim = d.agents.find((a) => a.name === before.holder);
  if (!victim) throw new Error(`${target.address} is held by ${before.holder}, which is not one of the lab's agents`);

  const maxDurationMs = PROBE_START_MS + timings.baselineMs + timings.holdMs + 2 * timings.deadlineMs + 5000;
  const probes = [
    new StreamProbe({ netns: target.client.netns, script: c.probeScript, proto: 'tcp', host: target.address, port: target.tcpPort, source: target.client.address, intervalMs: TCP_INTERVAL_MS, timeoutMs: PROBE_TIMEOUT_MS, maxDurationMs }),
    ...(target.udpPort === undefined
      ? []
      : [new StreamProbe({ netns: target.client.netns, script: c.probeScript, proto: 'udp', host: target.address, port: target.udpPort, source: target.client.address, intervalMs: UDP_INTERVAL_MS, timeoutMs: PROBE_TIMEOUT_MS, maxDurationMs })]),
  ];
  let injected: Injected | undefined;
  let stop: StopDecision | undefined;
  let t0 = 0;
  let undoneAt: number | undefined;
  let movedAt: number | undefined;
  let acquiredAt: number | undefined;
  try {
    // Node takes a while to start on a loaded machine: wait (bounded) until every probe has seen
    // working traffic for the whole baseline, and only then inject.
    const startBy = wallNow() + timings.baselineMs + PROBE_START_MS;
    const steady = (): boolean => probes.every((p) => stableSince(p.sorted(), wallNow() - PROBE_TIMEOUT_MS, timings.baselineMs));
    while (!steady() && wallNow() < startBy) await sleep(50);
    if (!steady()) {
      throw new Error(`no steady traffic through ${target.address} before the fault: ${probes.map((p) => JSON.stringify(summarizeProbe(p.sorted()))).join(' ')} ${probes.flatMap((p) => p.messages).slice(0, 3).join(' | ')}`);
    }
    t0 = wallNow();
    injected = await inject(c, d, victim);
    // A held fault counts from when it is complete (a stopping API server takes a while to exit).
    const holdFrom = wallNow();
    for (;;) {
      await sleep(50);
      const now = wallNow();
      if (expectationFor(kind).holdsFault && undoneAt === undefined && now - holdFrom >= timings.holdMs) {
        await undoHeld(c, injected);
        undoneAt = wallNow();
      }
      if (movedAt === undefined && !(kind === 'apiserver-down' && undoneAt === undefined)) {
        const h = await hands.addressHolder(d, target.address).catch(() => undefined);
        if (h && h.holder !== before.holder) {
          movedAt = wallNow();
          acquiredAt = h.acquiredAt;
        }
      }
      stop = decideStop({ kind, timings, injectedAt: t0, undoneAt, movedAt, protocols: probes.map((p) => p.sorted()), probeTimeoutMs: PROBE_TIMEOUT_MS, now });
      if (stop !== 'continue') break;
    }
  } catch (err: unknown) {
    await Promise.all(probes.map((p) => p.stop()));
    await restore(c, injected).catch((e: unknown) => c.log?.(`restoring the lab after a failed drill failed too: ${String(e)}`));
    throw err;
  }
  await Promise.all(probes.map((p) => p.stop()));
  const [tcp, udp] = probes.map((p) => p.sorted());
  let owner: string | null;
  try {
    if (injected.undone === false && expectationFor(kind).holdsFault) await undoHeld(c, injected);
    owner = (await retry(() => hands.addressHolder(d, target.address), timings.deadlineMs))?.holder ?? null;
  } finally {
    await restore(c, injected);
  }
  const addressOn = await settle(c, target.address);
  const finalHolder = (await hands.addressHolder(d, target.address).catch(() => undefined))?.holder;

  const tcpSummary = summarizeProbe(tcp!);
  const udpSummary = udp ? summarizeProbe(udp) : null;
  const recovered = [tcp, udp].filter((x) => x !== undefined).map((x) => recoveredAt(x, t0));
  const recoveryMs = recovered.every((x) => x !== undefined) ? roundMs(Math.max(...recovered.map((x) => x!)) - t0) : null;
  const moved = owner !== null && owner !== before.holder;
  const transitionAt = moved ? (acquiredAt !== undefined && acquiredAt >= t0 && movedAt !== undefined && acquiredAt <= movedAt ? acquiredAt : movedAt) : undefined;
  const problems = judgeDrill({
    kind,
    lease: { leaseDurationMs: c.leaseDurationMs },
    stop: stop ?? 'deadline',
    previousOwner: before.holder,
    finalOwner: owner ?? undefined,
    tcp: tcpSummary,
    udp: udpSummary ?? { tries: 0, ok: 0, refused: 0, failed: 0, gapMs: 0 },
    addressOn,
  });
  if (finalHolder !== undefined && addressOn.length === 1 && addressOn[0] !== finalHolder) problems.push(`after restoring, the address is on ${addressOn[0]} but its lease holder is ${finalHolder}`);
  return {
    run: c.run,
    ok: problems.length === 0,
    problems,
    previousOwner: before.holder,
    owner,
    moved,
    injectedAt: new Date(t0).toISOString(),
    gapMs: Math.max(tcpSummary.gapMs, udpSummary?.gapMs ?? 0),
    refused: tcpSummary.refused + (udpSummary?.refused ?? 0),
    failed: tcpSummary.failed + (udpSummary?.failed ?? 0),
    recoveryMs,
    leaseTransitionMs: transitionAt !== undefined ? roundMs(transitionAt - t0) : null,
    stop: stop ?? 'deadline',
    tcp: tcpSummary,
    udp: udpSummary,
    addressOn,
    fault: { method: injected.method, ...(undoneAt !== undefined ? { heldMs: roundMs(undoneAt - t0) } : {}) },
  };
}

async function requireLabProcess(pid: number, netns: string, word: string, what: string): Promise<void> {
  if (!(await isLabProcess(pid, netns, word))) throw new Error(`${what} (pid ${pid}) is not running in ${netns}: nothing to inject`);
}

async function inject(c: RunContext, d: LabDescriptor, victim: DrillAgent): Promise<Injected> {
  const { hands } = c;
  switch (c.kind) {
    case 'kill': {
      await requireLabProcess(victim.pid, victim.netns, 'agent', `agent ${victim.name}`);
      await requireLabProcess(victim.keepalivedPid, victim.netns, 'keepalived', `keepalived of ${victim.name}`);
      const links = await hands.links(victim);
      const routes = await hands.saveRoutes(victim);
      // The host freezes at once (SIGSTOP: nothing it does after this instant reaches the wire),
      // its links go down in one ip batch, then every process is SIGKILLed.
      signal(victim.pid, 'SIGSTOP');
      signal(victim.keepalivedPid, 'SIGSTOP');
      try {
        await hands.setLinks(victim, links, 'down');
      } finally {
        signal(victim.pid, 'SIGKILL');
        signal(victim.keepalivedPid, 'SIGKILL');
      }
      return { method: `SIGKILL agent ${victim.pid} and keepalived ${victim.keepalivedPid}, links ${links.join(',')} down`, victim, links, routes, undone: false };
    }
    case 'agent-crash':
      await requireLabProcess(victim.pid, victim.netns, 'agent', `agent ${victim.name}`);
      signal(victim.pid, 'SIGKILL');
      return { method: `SIGKILL agent ${victim.pid}`, victim, undone: false };
    case 'keepalived':
      await requireLabProcess(victim.keepalivedPid, victim.netns, 'keepalived', `keepalived of ${victim.name}`);
      signal(victim.keepalivedPid, 'SIGKILL');
      return { method: `SIGKILL keepalived ${victim.keepalivedPid}`, victim, undone: false };
    case 'drain':
      await hands.setDrain(d, victim.name, true);
      return { method: `drain annotation on ${victim.name}`, victim, undone: false };
    case 'partition':
      if (victim.apiProxyControl) {
        await hands.setApiPath(victim, 'blackhole');
        return { method: `API proxy of ${victim.name} blackholed`, victim, undone: false };
      } else {
        // Without a named proxy the management link is the agent's only API path (ADR 0010).
        const routes = await hands.saveRoutes(victim);
        await hands.setLinks(victim, ['mgmt0'], 'down');
        return { method: `mgmt0 of ${victim.name} down (the lab names no API proxy control socket)`, victim, links: ['mgmt0'], routes, undone: false };
      }
    case 'link-down': {
      const dev = await hands.deviceOf(victim, c.target.address);
      if (dev === undefined) throw new Error(`${victim.name} does not carry ${c.target.address}: nothing to take down`);
      const routes = await hands.saveRoutes(victim);
      await hands.setLinks(victim, [dev], 'down');
      return { method: `${dev} of ${victim.name} down`, victim, links: [dev], routes, undone: false };
    }
    case 'apiserver-down': {
      const pid = d.apiserver.pid;
      if (!(await isHostProcess(pid, 'kube-apiserver'))) {
        throw new Error(`the lab's API server (pid ${pid}) is not running`);
      }
      // Stopped as an operator would (SIGTERM); its graceful drain of open watches can take half a
      // minute, so SIGKILL after 5 s.
      signal(pid, 'SIGTERM');
      const killBy = wallNow() + 5_000;
      while (await isHostProcess(pid, 'kube-apiserver')) {
        if (wallNow() > killBy) signal(pid, 'SIGKILL');
        await sleep(50);
      }
      return { method: `API server ${pid} stopped (SIGTERM)`, victim, undone: false };
    }
  }
}

/** True when `pid` runs a program whose path ends with `word` (the API server runs in the host's namespace). */
async function isHostProcess(pid: number, word: string): Promise<boolean> {
  if (!Number.isInteger(pid) || pid <= 1) return false;
  try {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.split('\0').some((a) => a.endsWith(word));
  } catch {
    return false;
  }
}

/** Undoes the fault of apiserver-down or partition once it has been held. */
async function undoHeld(c: RunContext, f: Injected): Promise<void> {
  if (f.undone) return;
  if (c.kind === 'apiserver-down') await c.hands.revive();
  else if (f.links) {
    await c.hands.setLinks(f.victim, f.links, 'up');
    await c.hands.restoreRoutes(f.victim, f.routes ?? []);
  } else await c.hands.setApiPath(f.victim, 'pass');
  f.undone = true;
}

/** Brings the victim back: links up (a rebooted host carries no floating address), undrain, revive. */
async function restore(c: RunContext, f: Injected | undefined): Promise<void> {
  if (!f) return;
  const { hands } = c;
  const d = await hands.descriptor();
  if (c.kind === 'kill' && !f.undone) {
    const all = [...new Set([...addressesInUse(d), ...d.pools.flatMap((p) => p.addresses)])];
    await hands.removeAddresses(f.victim, all);
    await hands.setLinks(f.victim, f.links ?? [], 'up');
    await hands.restoreRoutes(f.victim, f.routes ?? []);
    f.undone = true;
  }
  if (c.kind === 'drain' && !f.undone) {
    await retry(() => hands.setDrain(d, f.victim.name, false).then(() => true), c.timings.deadlineMs);
    f.undone = true;
  }
  if (!(await labRunning(d))) await hands.revive();
}

async function labRunning(d: LabDescriptor): Promise<boolean> {
  for (const a of d.agents) {
    if (!(await isLabProcess(a.pid, a.netns, 'agent')) || !(await isLabProcess(a.keepalivedPid, a.netns, 'keepalived'))) return false;
  }
  return isHostProcess(d.apiserver.pid, 'kube-apiserver');
}

/**
 * Waits (up to the deadline) until every agent runs and exactly one agent carries the address,
 * the lease holder; returns the agents carrying it at the end.
 */
async function settle(c: RunContext, address: string): Promise<string[]> {
  const deadline = wallNow() + c.timings.deadlineMs;
  let on: string[] = [];
  for (;;) {
    const d = await c.hands.descriptor().catch(() => undefined);
    if (d) {
      on = await c.hands.agentsCarrying(d, address);
      const h = await c.hands.addressHolder(d, address).catch(() => undefined);
      if ((await labRunning(d)) && on.length === 1 && h?.holder === on[0]) return on;
    }
    if (wallNow() > deadline) return on;
    await sleep(200);
  }
}

async function retry<T>(f: () => Promise<T>, withinMs: number): Promise<T | undefined> {
  const deadline = wallNow() + withinMs;
  for (;;) {
    try {
      return await f();
    } catch (err: unknown) {
      if (wallNow() > deadline) throw err;
      await sleep(200);
    }
  }
}
