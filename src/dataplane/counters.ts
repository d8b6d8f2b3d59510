// Per-Mapping traffic counters read from our own kernel state at scrape time (ADR 0011):
// - connections: every new connection to a mapped port passes exactly one per-port jump rule in its
//   address chain (nat SMARTNAT-A-<address> -> SMARTNAT-S-<port key>), and the nat table sees only
//   a connection's first packet, so that rule's packet counter counts the port's new connections;
// - packets/bytes allowed and denied: the counting sets smartnat-count-allowed / -denied keep
//   counters per `address,proto:port`, one member per Mapping port.
// `iptables-save -c -t nat` and `ipset save` (through the applier's CommandRunner, so in the agent's
// namespace) are parsed into data; a rule is credited to its Mapping by matching its jump target
// against the service chains of the applied state, a set member by its address and port: typed
// data, never a comment. Guarantees: only our address chains and counting sets are read; totals
// never go down while the agent runs (a restarted rule or set member, seen as a raw value below the
// last, adds its new value whole); a deleted Mapping's series go at the next read. Does not write.
import type { ObjectRef } from '../api/types.js';
import type { DesiredDataPlane } from '../plan/desired.js';
import type { CommandRunner } from './command-runner.js';
import type { IptablesTools } from './readback.js';
import { DEFAULT_IPTABLES } from './readback.js';
import { tokenize } from './render-dump.js';
import { countMember } from './render-ipset.js';
import { SETS, addressChain, serviceChain } from './render-names.js';

export interface RuleCounter {
  readonly chain: string;
  readonly target: string;
  readonly packets: number;
  readonly bytes: number;
}

const COUNTED_RULE = /^\[(\d+):(\d+)\] -A (\S+) (.*)$/;

/** The counted rules of `chains` in `iptables-save -c` output. Pure. */
export function parseRuleCounters(text: string, chains: ReadonlySet<string>): RuleCounter[] {
  const out: RuleCounter[] = [];
  for (const line of text.split('\n')) {
    const m = COUNTED_RULE.exec(line.trimEnd());
    if (!m || !chains.has(m[3] ?? '')) continue;
    const args = tokenize(m[4] ?? '');
    const j = args.indexOf('-j');
    out.push({ chain: m[3] ?? '', target: j >= 0 ? (args[j + 1] ?? '') : '', packets: Number(m[1]), bytes: Number(m[2]) });
  }
  return out;
}

export interface Traffic {
  readonly packets: number;
  readonly bytes: number;
}

const SET_MEMBER = /^add (\S+) (\S+) packets (\d+) bytes (\d+)$/;

/** member -> counters of one counting set in `ipset save` output. Pure. */
export function parseSetCounters(text: string, set: string): Map<string, Traffic> {
  const out = new Map<string, Traffic>();
  for (const line of text.split('\n')) {
    const m = SET_MEMBER.exec(line.trim());
    if (m && m[1] === set) out.set(m[2] ?? '', { packets: Number(m[3]), bytes: Number(m[4]) });
  }
  return out;
}

export interface MappingTraffic {
  readonly mapping: ObjectRef;
  /** New connections through the Mapping's ports (the packet counters of their jump rules). */
  readonly connections: number;
  /** Packets towards the Mapping's ports that passed its allow-list (first and later packets). */
  readonly allowed: Traffic;
  /** Packets towards the Mapping's ports its allow-list dropped. */
  readonly denied: Traffic;
}

export type Figure = 'connections' | 'allowedPackets' | 'allowedBytes' | 'deniedPackets' | 'deniedBytes';

/** One raw kernel counter credited to a Mapping: `element` names the rule or set member it came from. */
export interface Reading {
  readonly mapping: ObjectRef;
  readonly figure: Figure;
  readonly element: string;
  readonly raw: number;
}

export interface RawCounters {
  readonly rules: readonly RuleCounter[];
  readonly allowed: ReadonlyMap<string, Traffic>;
  readonly denied: ReadonlyMap<string, Traffic>;
}

/** Credits each counted jump and counting-set member to its Mapping. Pure. */
export function readingsOf(desired: DesiredDataPlane, raw: RawCounters): Reading[] {
  const out: Reading[] = [];
  const byChain = new Map<string, ObjectRef>();
  for (const a of desired.addresses) {
    for (const p of a.ports) {
      byChain.set(serviceChain({ ...p, address: a.address }), p.mapping);
      const member = countMember(a.address, p.protocol, p.port);
      const allowed = raw.allowed.get(member);
      const denied = raw.denied.get(member);
      if (allowed) out.push({ mapping: p.mapping, figure: 'allowedPackets', element: member, raw: allowed.packets }, { mapping: p.mapping, figure: 'allowedBytes', element: member, raw: allowed.bytes });
      if (denied) out.push({ mapping: p.mapping, figure: 'deniedPackets', element: member, raw: denied.packets }, { mapping: p.mapping, figure: 'deniedBytes', element: member, raw: denied.bytes });
    }
  }
  for (const r of raw.rules) {
    const mapping = byChain.get(r.target);
    if (mapping) out.push({ mapping, figure: 'connections', element: r.target, raw: r.packets });
  }
  return out;
}

function refKey(m: ObjectRef): string {
  return `${m.namespace}/${m.name}`;
}

/**
 * Running totals that never go down: per (Mapping, figure, element) the last raw value is kept and
 * only its increase is added; a raw value below the last is a restarted counter (a rewritten chain,
 * a set swapped in by a full sync, a member deleted and added again) and is added whole. The first
 * sight of an element adds its raw value (traffic since the kernel made it).
 */
export class TrafficTotals {
  private readonly last = new Map<string, number>();
  private readonly totals = new Map<string, Record<Figure, number>>();

  /** Feeds one reading of every element; `mappings` are the Mappings the applied state programs. */
  update(readings: readonly Reading[], mappings: readonly ObjectRef[]): MappingTraffic[] {
    const seen = new Set<string>();
    for (const r of readings) {
      const key = `${refKey(r.mapping)}|${r.figure}|${r.element}`;
      seen.add(key);
      const prev = this.last.get(key);
      const increase = prev === undefined || r.raw < prev ? r.raw : r.raw - prev;
      this.last.set(key, r.raw);
      const t = this.figures(refKey(r.mapping));
      t[r.figure] += increase;
    }
    // Elements not read this time (a port removed, a chain gone) start again from their next sight.
    for (const key of this.last.keys()) if (!seen.has(key)) this.last.delete(key);
    const wanted = new Map(mappings.map((m) => [refKey(m), m]));
    for (const key of this.totals.keys()) if (!wanted.has(key)) this.totals.delete(key);
    return [...wanted.entries()]
      .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))
      .map(([key, mapping]) => {
        const t = this.figures(key);
        return { mapping, connections: t.connections, allowed: { packets: t.allowedPackets, bytes: t.allowedBytes }, denied: { packets: t.deniedPackets, bytes: t.deniedBytes } };
      });
  }

  private figures(key: string): Record<Figure, number> {
    let t = this.totals.get(key);
    if (!t) {
      t = { connections: 0, allowedPackets: 0, allowedBytes: 0, deniedPackets: 0, deniedBytes: 0 };
      this.totals.set(key, t);
    }
    return t;
  }
}

/** The Mappings a desired state programs, once each. Pure. */
export function mappingsOf(desired: DesiredDataPlane): ObjectRef[] {
  const out = new Map<string, ObjectRef>();
  for (const a of desired.addresses) for (const p of a.ports) out.set(refKey(p.mapping), p.mapping);
  return [...out.values()];
}

export interface MappingCounterReaderOptions {
  readonly runner: CommandRunner;
  /** The state the applier put in place (DataPlaneApplier.current). */
  readonly current: () => DesiredDataPlane | undefined;
  readonly iptables?: IptablesTools;
  /** Reads at most this often; scrapes in between get the cached figures (default 2000 ms). */
  readonly cacheMs?: number;
  /** Monotonic milliseconds (default performance.now). */
  readonly now?: () => number;
}

/** Reads the counters on demand (a scrape), with a small cache so frequent scrapes run one read. */
export class MappingCounterReader {
  private cached: { at: number; value: MappingTraffic[] } | undefined;
  private inflight: Promise<MappingTraffic[]> | undefined;
  private readonly totals = new TrafficTotals();

  constructor(private readonly o: MappingCounterReaderOptions) {}

  async read(): Promise<MappingTraffic[]> {
    const now = (this.o.now ?? ((): number => performance.now()))();
    if (this.cached && now - this.cached.at < (this.o.cacheMs ?? 2000)) return this.cached.value;
    this.inflight ??= this.readNow(now).finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async readNow(at: number): Promise<MappingTraffic[]> {
    const desired = this.o.current();
    if (!desired) return [];
    const chains = new Set(desired.addresses.map((a) => addressChain(a.address)));
    const tools = this.o.iptables ?? DEFAULT_IPTABLES;
    const { stdout } = await this.o.runner.run(tools.save, ['-c', '-t', 'nat'], { timeoutMs: 5000 });
    const sets = await Promise.all([SETS.countAllowed, SETS.countDenied].map(async (set) => {
      // A set not made yet (an agent from before ADR 0011 that has not synced) reads as empty.
      const saved = await this.o.runner.run('ipset', ['save', set], { timeoutMs: 5000, okExitCodes: [0, 1] });
      return parseSetCounters(saved.exitCode === 0 ? saved.stdout : '', set);
    }));
    const raw = { rules: parseRuleCounters(stdout, chains), allowed: sets[0] ?? new Map(), denied: sets[1] ?? new Map() };
    const value = this.totals.update(readingsOf(desired, raw), mappingsOf(desired));
    this.cached = { at, value };
    return value;
  }
}
