// Packet captures on a lab node's interface with tcpdump, for timing what happens on the wire
// (e.g. an ownership flip -> the first translated packet). Guarantees the filter reaches tcpdump
// as separate validated words (no shell) and that timestamps are epoch milliseconds. Does not decode.
import { readFile } from 'node:fs/promises';
import type { Topology } from './topology.js';
import type { BackgroundProcess } from './processes.js';

export interface CapturedPacket {
  /** Wall-clock time the kernel stamped on the packet (epoch ms, microsecond precision). */
  readonly t: number;
  /** tcpdump's summary line without the timestamp. */
  readonly text: string;
}

export interface Capture {
  readonly process: BackgroundProcess;
  /** Packets captured so far. */
  packets(): Promise<CapturedPacket[]>;
  stop(): Promise<void>;
}

const WORD = /^[A-Za-z0-9.:/_-]+$/;

/** Parses `tcpdump -tt -n` output: "1764165600.123456 IP a.b.c.d.p > ...". Pure. */
export function parseTcpdumpLines(text: string): CapturedPacket[] {
  return text.split('\n').flatMap((line) => {
    const m = /^(\d+\.\d+) (.*)$/.exec(line);
    return m ? [{ t: Number(m[1]) * 1000, text: m[2]! }] : [];
  });
}

/**
 * Starts tcpdump on `ifname` inside the node, resolved once it is listening. `filter` is a pcap
 * expression as words, e.g. ['udp', 'and', 'dst', 'port', '7000']; `count` stops after that many.
 */
export async function startCapture(
  topo: Topology,
  node: string,
  o: { readonly ifname: string; readonly filter: readonly string[]; readonly count?: number; readonly label?: string },
): Promise<Capture> {
  for (const w of [o.ifname, ...o.filter]) if (!WORD.test(w)) throw new Error(`bad capture word ${JSON.stringify(w)}`);
  const proc = await topo.startProcess(node, {
    label: o.label ?? 'tcpdump',
    cmd: '/usr/bin/tcpdump',
    args: ['-i', o.ifname, '-n', '-tt', '-l', ...(o.count !== undefined ? ['-c', String(o.count)] : []), ...o.filter],
    readyLogText: 'listening on',
  });
  return {
    process: proc,
    packets: async () => parseTcpdumpLines(await readFile(proc.logFile, 'utf8')),
    stop: () => topo.stopProcess(proc),
  };
}
