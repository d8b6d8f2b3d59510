// Faults the drills inject into a lab node (DESIGN.md 4.1): a node that dies — every process in
// its namespace SIGKILLed and every link down at the same instant — and its revival (links up,
// spec routes back). It does not restart the node's programs: their owners do that.
import type { Topology } from './topology.js';
import { signal } from './processes.js';
import { setLinkState } from './link-control.js';

export interface CrashReport {
  /** Wall-clock time (epoch ms) the kill and link-down were issued. */
  readonly atEpochMs: number;
  readonly killed: readonly number[];
  readonly linksDown: readonly string[];
}

async function nodeLinks(topo: Topology, node: string): Promise<string[]> {
  const { stdout } = await topo.host.run('ip', ['-n', topo.ns(node), '-j', 'link', 'show']);
  return (JSON.parse(stdout) as { ifname: string }[]).map((l) => l.ifname).filter((n) => n !== 'lo');
}

/** Pids of every process whose network namespace is the node's (`ip netns pids`). */
export async function nodePids(topo: Topology, node: string): Promise<number[]> {
  const { stdout } = await topo.host.run('ip', ['netns', 'pids', topo.ns(node)]);
  return stdout.split('\n').filter((l) => /^\d+$/.test(l.trim())).map(Number);
}

/**
 * Kills the node as a host dies: SIGKILL to every process in its namespace, issued while one
 * `ip -batch` takes every link down. A killed keepalived cannot remove its address; with the links
 * down the dead node stops answering anyway.
 */
export async function crashNode(topo: Topology, node: string): Promise<CrashReport> {
  const [pids, links] = await Promise.all([nodePids(topo, node), nodeLinks(topo, node)]);
  const atEpochMs = performance.timeOrigin + performance.now();
  const down = topo.host.run('ip', ['-n', topo.ns(node), '-batch', '-'], { input: links.map((l) => `link set ${l} down\n`).join('') });
  for (const pid of pids) signal(pid, 'SIGKILL');
  await down;
  return { atEpochMs, killed: pids, linksDown: links };
}

/** Brings every link of the node back up and restores its spec routes (its programs stay dead). */
export async function reviveNode(topo: Topology, node: string): Promise<void> {
  for (const link of await nodeLinks(topo, node)) await setLinkState(topo, node, link, 'up');
}
