// Probes from a lab node: TCP connects and UDP round trips with a timeout, each try classified as
// ok / refused (RST or ICMP unreachable) / timeout (nothing came back) / error. Runs the lab's
// probe program inside the node's namespace; returns what it saw and never retries.
import type { EchoReply } from './scripts.js';
import type { Topology } from './topology.js';

export type ProbeResult = 'ok' | 'refused' | 'timeout' | 'error' | 'sent';

export interface ProbeOutcome {
  readonly seq: number;
  /** Wall-clock time (epoch ms, sub-ms precision) the try started. */
  readonly t: number;
  readonly ms: number;
  readonly result: ProbeResult;
  /** TCP: whether the handshake completed. */
  readonly connected?: boolean;
  readonly reply?: EchoReply;
  /** TCP: filler bytes received after the reply line (see request "big N"). */
  readonly bytes?: number;
  readonly error?: string;
}

export interface ProbeOptions {
  readonly proto: 'tcp' | 'udp';
  readonly host: string;
  readonly port: number;
  /** Source address to bind (one of the node's addresses). */
  readonly source?: string;
  readonly sourcePort?: number;
  /** Per-try timeout; default 1000 ms. */
  readonly timeoutMs?: number;
  /** Number of tries (default 1 unless durationMs is set). */
  readonly count?: number;
  /** Minimum time between the starts of two tries. */
  readonly intervalMs?: number;
  /** Keep trying for this long. */
  readonly durationMs?: number;
  /** Request line; "big N" asks a TCP echo server for N filler bytes. */
  readonly request?: string;
  /** UDP only: send and do not wait for a reply (result "sent"). */
  readonly noWait?: boolean;
  /**
   * Start a try every intervalMs even while earlier ones are still waiting (the drills' fixed
   * probe rate, DESIGN.md 4.1); outcomes come back sorted by start time.
   */
  readonly overlap?: boolean;
}

/** Runs the probe in `node` and returns one outcome per try. */
export async function probe(topo: Topology, node: string, o: ProbeOptions): Promise<ProbeOutcome[]> {
  const timeoutMs = o.timeoutMs ?? 1000;
  const args = [
    topo.scripts.probe,
    '--proto', o.proto,
    '--host', o.host,
    '--port', String(o.port),
    '--timeout', String(timeoutMs),
    ...(o.source !== undefined ? ['--source', o.source] : []),
    ...(o.sourcePort !== undefined ? ['--source-port', String(o.sourcePort)] : []),
    ...(o.count !== undefined ? ['--count', String(o.count)] : []),
    ...(o.intervalMs !== undefined ? ['--interval', String(o.intervalMs)] : []),
    ...(o.durationMs !== undefined ? ['--duration', String(o.durationMs)] : []),
    ...(o.request !== undefined ? ['--request', o.request] : []),
    ...(o.noWait ? ['--no-wait'] : []),
    ...(o.overlap ? ['--overlap'] : []),
  ];
  const tries = o.count ?? (o.durationMs === undefined ? 1 : 0);
  const budget = (o.durationMs ?? 0) + tries * (timeoutMs + (o.intervalMs ?? 0)) + timeoutMs + 15_000;
  const { stdout } = await topo.runner(node).run(process.execPath, args, { timeoutMs: budget });
  return stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as ProbeOutcome)
    .sort((a, b) => a.seq - b.seq);
}

/** One try; see probe(). */
export async function probeOnce(topo: Topology, node: string, o: Omit<ProbeOptions, 'count' | 'durationMs'>): Promise<ProbeOutcome> {
  const [first] = await probe(topo, node, { ...o, count: 1 });
  if (!first) throw new Error(`probe from ${node} to ${o.host}:${o.port}/${o.proto} printed nothing`);
  return first;
}

/**
 * The longest time without a successful try in a probe loop: from the start of the last success
 * before a run of failures to the start of the first success after it (or to the end of the loop).
 */
export function longestGapMs(unsorted: readonly ProbeOutcome[]): number {
  const outcomes = [...unsorted].sort((a, b) => a.t - b.t);
  if (!outcomes.length) return 0;
  let gap = 0;
  let lastOk: number | undefined = outcomes[0]!.t;
  let failing = false;
  for (const o of outcomes) {
    if (o.result === 'ok') {
      if (failing && lastOk !== undefined) gap = Math.max(gap, o.t - lastOk);
      lastOk = o.t;
      failing = false;
    } else {
      failing = true;
    }
  }
  const last = outcomes[outcomes.length - 1]!;
  if (failing && lastOk !== undefined) gap = Math.max(gap, last.t + last.ms - lastOk);
  return gap;
}

/** Counts outcomes by result, e.g. {ok: 9, timeout: 1}. */
export function countResults(outcomes: readonly ProbeOutcome[]): Partial<Record<ProbeResult, number>> {
  const counts: Partial<Record<ProbeResult, number>> = {};
  for (const o of outcomes) counts[o.result] = (counts[o.result] ?? 0) + 1;
  return counts;
}
