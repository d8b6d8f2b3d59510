// The pure half of watching one floating address on every agent's wire: parse `ip -ts monitor
// address` lines into add/delete events, and turn per-agent events into the intervals where two
// agents carried the address at once (a duplicate on the wire) or none did. No I/O, no clock:
// times are the monitor's own timestamps (epoch ms, microsecond resolution).

export interface AddressEvent {
  /** Epoch ms (from the monitor's timestamp). */
  readonly t: number;
  readonly agent: string;
  /** true: the address was added to one of the agent's interfaces; false: deleted. */
  readonly added: boolean;
}

export interface WireInterval {
  readonly from: number;
  /** Exclusive end; the end of the watch when still open then. */
  readonly to: number;
  readonly agents: readonly string[];
}

export interface WireTimeline {
  /** Intervals where two or more agents carried the address. */
  readonly duplicates: readonly WireInterval[];
  /** Intervals where no agent carried it. */
  readonly vacant: readonly WireInterval[];
  /** Who carried it at the end. */
  readonly final: readonly string[];
}

// "[2026-11-26T16:35:00.380616] Deleted 3: ext0    inet 203.0.113.10/32 scope global ext0"
const LINE = /^\[(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{1,6})\] (Deleted )?\d+: \S+\s+inet (\d{1,3}(?:\.\d{1,3}){3})\/\d{1,2} /;

/**
 * One `ip -ts monitor address` line (run with TZ=UTC) about `address`, or undefined for any other
 * line (other addresses, IPv6, the continuation lines).
 */
export function parseMonitorLine(line: string, address: string): { t: number; added: boolean } | undefined {
  const m = LINE.exec(line);
  if (!m || m[9] !== address) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const micros = Number(m[7]!.padEnd(6, '0'));
  return { t: Date.UTC(y, mo - 1, d, h, mi, s) + micros / 1000, added: m[8] === undefined };
}

/**
 * Replays the events (any order; ties: deletions first, so a move at one instant is not a
 * duplicate) from the initial carriers, between `start` and `end`. An agent carries the address
 * while more adds than deletes were seen for it (it could be on two of its interfaces).
 */
export function replayWire(initial: readonly string[], events: readonly AddressEvent[], start: number, end: number): WireTimeline {
  const count = new Map<string, number>(initial.map((a) => [a, 1]));
  const carriers = (): string[] => [...count.entries()].filter(([, n]) => n > 0).map(([a]) => a).sort();
  const sorted = [...events].filter((e) => e.t >= start && e.t <= end).sort((a, b) => a.t - b.t || Number(a.added) - Number(b.added));
  const duplicates: WireInterval[] = [];
  const vacant: WireInterval[] = [];
  let since = start;
  let now = carriers();
  const close = (t: number): void => {
    if (t <= since) return;
    if (now.length > 1) duplicates.push({ from: since, to: t, agents: now });
    if (now.length === 0) vacant.push({ from: since, to: t, agents: [] });
  };
  for (const e of sorted) {
    const before = now;
    count.set(e.agent, Math.max(0, (count.get(e.agent) ?? 0) + (e.added ? 1 : -1)));
    const after = carriers();
    if (after.join(',') === before.join(',')) continue;
    close(e.t);
    since = e.t;
    now = after;
  }
  close(end);
  return { duplicates: merge(duplicates), vacant: merge(vacant), final: now };
}

/** Joins touching intervals (a change from {a1,a2} to {a1,a2,a3} is one duplicate stretch). */
function merge(intervals: readonly WireInterval[]): WireInterval[] {
  const out: WireInterval[] = [];
  for (const i of intervals) {
    const last = out[out.length - 1];
    if (last && last.to === i.from) out[out.length - 1] = { from: last.from, to: i.to, agents: [...new Set([...last.agents, ...i.agents])].sort() };
    else out.push(i);
  }
  return out;
}
