// Per-Mapping connection counters read from our own rules: every new connection to a mapped port
// passes exactly one per-port jump rule in its address chain (nat SMARTNAT-A-<address> ->
// SMARTNAT-S-<port key>), and the nat table sees only a connection's first packet, so that rule's
// packet counter counts the port's new connections. `iptables-save -c -t nat` (through the
// applier's CommandRunner, so in the agent's namespace) is parsed into data; the jump target is
// matched against the service chains of the state the applier put in place, so a rule is credited
// to its Mapping by typed data, never by reading its comment. Guarantees: only our address chains
// are read; counters of ports in several Mappings' rules are summed per Mapping; a rewritten
// address chain restarts its rules' counters (Prometheus sees a counter reset). Does not write.
import type { ObjectRef } from '../api/types.js';
import type { DesiredDataPlane } from '../plan/desired.js';
import type { CommandRunner } from './command-runner.js';
import type { IptablesTools } from './readback.js';
import { DEFAULT_IPTABLES } from './readback.js';
import { tokenize } from './render-dump.js';
import { addressChain, serviceChain } from './render-names.js';

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

export interface MappingConnections {
  readonly mapping: ObjectRef;
  /** New connections through the Mapping's ports (the packet counters of their jump rules). */
  readonly connections: number;
}

/** Credits each counted jump to the Mapping whose service chain it targets. Pure. */
export function mappingConnections(desired: DesiredDataPlane, counters: readonly RuleCounter[]): MappingConnections[] {
  const byChain = new Map<string, ObjectRef>();
  for (const a of desired.addresses) for (const p of a.ports) byChain.set(serviceChain({ ...p, address: a.address }), p.mapping);
  const totals = new Map<string, MappingConnections>();
  for (const c of counters) {
    const mapping = byChain.get(c.target);
    if (!mapping) continue;
    const key = `${mapping.namespace}/${mapping.name}`;
    totals.set(key, { mapping, connections: (totals.get(key)?.connections ?? 0) + c.packets });
  }
  // Mappings with nothing counted yet (or no endpoints, so no jump rule) still get a zero series.
  for (const a of desired.addresses) {
    for (const p of a.ports) {
      const key = `${p.mapping.namespace}/${p.mapping.name}`;
      if (!totals.has(key)) totals.set(key, { mapping: p.mapping, connections: 0 });
    }
  }
  return [...totals.values()].sort((x, y) => (`${x.mapping.namespace}/${x.mapping.name}` < `${y.mapping.namespace}/${y.mapping.name}` ? -1 : 1));
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

/** Reads the counters on demand (a scrape), with a small cache so frequent scrapes run one iptables-save. */
export class MappingCounterReader {
  private cached: { at: number; value: MappingConnections[] } | undefined;
  private inflight: Promise<MappingConnections[]> | undefined;

  constructor(private readonly o: MappingCounterReaderOptions) {}

  async read(): Promise<MappingConnections[]> {
    const now = (this.o.now ?? ((): number => performance.now()))();
    if (this.cached && now - this.cached.at < (this.o.cacheMs ?? 2000)) return this.cached.value;
    this.inflight ??= this.readNow(now).finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async readNow(at: number): Promise<MappingConnections[]> {
    const desired = this.o.current();
    if (!desired) return [];
    const chains = new Set(desired.addresses.map((a) => addressChain(a.address)));
    const tools = this.o.iptables ?? DEFAULT_IPTABLES;
    const { stdout } = await this.o.runner.run(tools.save, ['-c', '-t', 'nat'], { timeoutMs: 5000 });
    const value = mappingConnections(desired, parseRuleCounters(stdout, chains));
    this.cached = { at, value };
    return value;
  }
}
