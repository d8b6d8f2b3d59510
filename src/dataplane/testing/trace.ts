// A tiny packet tracer over a rule dump and set contents (FakeKernel's, or parsed iptables-save
// and ipset save): where does a packet (src, dst, port, proto, in-interface, conntrack state) end
// up — DNAT to an endpoint, dropped, rejected or untouched? It evaluates only the matches and
// targets SmartNat renders and throws on anything else, so a test can never pass by ignoring a
// rule. Statistic matches are explored: `traceAll` lists every possible outcome.
import { cidrContains, parseCidr, parseIpv4 } from '../../model/net.js';
import type { IptablesDump } from '../render-dump.js';
import { tokenize } from '../render-dump.js';

export interface TracedSet {
  readonly type: string;
  readonly entries: ReadonlySet<string>;
}

export interface TraceKernel {
  readonly tables: IptablesDump;
  readonly sets: ReadonlyMap<string, TracedSet>;
  /** Addresses assigned to the host (packets to them go to INPUT unless DNAT'd). */
  readonly localAddresses?: readonly string[];
}

export interface Packet {
  readonly src: string;
  readonly dst: string;
  readonly proto: 'tcp' | 'udp' | 'icmp';
  readonly dport?: number;
  readonly inIface: string;
  readonly state?: 'NEW' | 'ESTABLISHED' | 'RELATED';
  readonly direction?: 'ORIGINAL' | 'REPLY';
  readonly connmark?: number;
  readonly syn?: boolean;
}

export type Verdict =
  | { readonly kind: 'dnat'; readonly to: string; readonly masquerade: boolean; readonly connmark: number }
  | { readonly kind: 'drop'; readonly chain: string }
  | { readonly kind: 'reject'; readonly with: string }
  | { readonly kind: 'untouched'; readonly connmark: number };

interface State {
  readonly p: Packet;
  mark: number;
  connmark: number;
  dnat?: string;
  rejectWith?: string;
  dropChain?: string;
  statisticSeen: number;
  readonly choice: number;
}

type Outcome = 'CONTINUE' | 'RETURN' | 'ACCEPT' | 'DROP' | 'REJECT' | 'DNAT' | 'MASQUERADE';

function maskMatch(value: number, spec: string): boolean {
  const [v = '0', m = '0xffffffff'] = spec.split('/');
  return Number((BigInt(value) & BigInt(m))) === Number(v);
}

function setXmark(value: number, spec: string): number {
  const [v = '0', m = '0xffffffff'] = spec.split('/');
  return Number(((BigInt(value) & ~BigInt(m)) ^ BigInt(v)) & 0xffffffffn);
}

function inNet(address: string, net: string): boolean {
  const cidr = parseCidr(net);
  const value = parseIpv4(address);
  return cidr !== undefined && value !== undefined && cidrContains(cidr, value);
}

function setMatch(k: TraceKernel, s: State, name: string, dirs: string): boolean {
  const set = k.sets.get(name);
  if (!set) throw new Error(`trace: rule uses missing set ${name}`);
  const pick = (d: string): string => (d === 'src' ? s.p.src : s.p.dst);
  if (set.type === 'hash:ip') return set.entries.has(pick(dirs.split(',')[0] ?? 'dst'));
  if (set.type === 'hash:ip,port' && dirs === 'dst,dst') return set.entries.has(`${s.p.dst},${s.p.proto}:${s.p.dport ?? 0}`);
  if (set.type === 'hash:ip,port,net' && dirs === 'dst,dst,src') {
    const prefix = `${s.p.dst},${s.p.proto}:${s.p.dport ?? 0},`;
    return [...set.entries].some((e) => e.startsWith(prefix) && inNet(s.p.src, e.slice(prefix.length)));
  }
  throw new Error(`trace: unsupported set type/dirs ${set.type} ${dirs}`);
}

interface Cursor {
  readonly t: readonly string[];
  i: number;
}

function next(c: Cursor): string {
  const v = c.t[c.i++];
  if (v === undefined) throw new Error(`trace: rule ends early: ${c.t.join(' ')}`);
  return v;
}

/** Evaluates one match option; returns whether it holds. */
function matchOption(k: TraceKernel, s: State, c: Cursor, opt: string, module: string): boolean {
  const p = s.p;
  switch (opt) {
    case '-s': return inNet(p.src, next(c));
    case '-d': return inNet(p.dst, next(c));
    case '-i': return p.inIface === next(c);
    case '-p': return p.proto === next(c);
    case '--dport': return p.dport === Number(next(c));
    case '--tcp-flags': next(c); next(c); return p.proto === 'tcp' && (p.syn ?? (p.state ?? 'NEW') === 'NEW');
    case '--comment': next(c); return true;
    case '--match-set': { const name = next(c); return setMatch(k, s, name, next(c)); }
    case '--ctstate': return next(c).split(',').includes(p.state ?? 'NEW');
    case '--ctdir': return (p.direction ?? 'ORIGINAL') === next(c);
    case '--mark': return maskMatch(module === 'connmark' ? s.connmark : s.mark, next(c));
    case '--mode': next(c); return true;
    case '--probability': next(c); return s.statisticSeen++ === s.choice;
    default: throw new Error(`trace: unsupported match option ${opt}`);
  }
}

function runTarget(s: State, c: Cursor, target: string): Outcome {
  const opts = new Map<string, string>();
  while (c.i < c.t.length) {
    const o = next(c);
    opts.set(o, o === '--restore-mark' || o === '--clamp-mss-to-pmtu' ? '' : next(c));
  }
  switch (target) {
    case 'MARK': s.mark = setXmark(s.mark, opts.get('--set-xmark') ?? '0/0'); return 'CONTINUE';
    case 'CONNMARK':
      if (opts.has('--restore-mark')) {
        const m = Number(opts.get('--nfmask') ?? '0xffffffff');
        s.mark = setXmark(s.mark, `${hexOf(s.connmark & m)}/${hexOf(m)}`);
      } else s.connmark = setXmark(s.connmark, opts.get('--set-xmark') ?? '0/0');
      return 'CONTINUE';
    case 'TCPMSS': case 'LOG': return 'CONTINUE';
    case 'DNAT': s.dnat = opts.get('--to-destination'); return 'DNAT';
    case 'REJECT': s.rejectWith = opts.get('--reject-with') ?? 'icmp-port-unreachable'; return 'REJECT';
    case 'ACCEPT': case 'DROP': case 'RETURN': case 'MASQUERADE': return target;
    default: throw new Error(`trace: unsupported target ${target}`);
  }
}

function hexOf(n: number): string {
  return `0x${n.toString(16)}`;
}

function evalChain(k: TraceKernel, s: State, table: string, chain: string, depth = 0): Outcome {
  if (depth > 16) throw new Error('trace: chain recursion');
  const dump = k.tables.get(table)?.get(chain);
  if (!dump) throw new Error(`trace: jump to missing chain ${table}/${chain}`);
  for (const rule of dump.rules) {
    const outcome = evalRule(k, s, table, rule, depth);
    if (outcome === 'DROP' && !s.dropChain) s.dropChain = chain;
    if (outcome !== 'CONTINUE') return outcome;
  }
  return dump.policy === '-' ? 'RETURN' : (dump.policy as Outcome);
}

function evalRule(k: TraceKernel, s: State, table: string, rule: string, depth: number): Outcome {
  const c: Cursor = { t: tokenize(rule), i: 0 };
  let module = '';
  while (c.i < c.t.length) {
    let tok = next(c);
    if (tok === '-m') { module = next(c); continue; }
    if (tok === '-j') {
      const target = next(c);
      if (k.tables.get(table)?.has(target)) {
        const sub = evalChain(k, s, table, target, depth + 1);
        return sub === 'RETURN' ? 'CONTINUE' : sub;
      }
      return runTarget(s, c, target);
    }
    const negate = tok === '!';
    if (negate) tok = next(c);
    if (matchOption(k, s, c, tok, module) === negate) return 'CONTINUE';
  }
  return 'CONTINUE';
}

function traceOnce(k: TraceKernel, p: Packet, choice: number): { verdict: Verdict; statisticSeen: number } {
  const s: State = { p, mark: 0, connmark: p.connmark ?? 0, statisticSeen: 0, choice };
  const done = (verdict: Verdict): { verdict: Verdict; statisticSeen: number } => ({ verdict, statisticSeen: s.statisticSeen });
  if (evalChain(k, s, 'mangle', 'PREROUTING') === 'DROP') return done({ kind: 'drop', chain: s.dropChain ?? 'PREROUTING' });
  if ((p.state ?? 'NEW') === 'NEW') evalChain(k, s, 'nat', 'PREROUTING');
  const local = !s.dnat && (k.localAddresses ?? []).includes(p.dst);
  const filter = evalChain(k, s, 'filter', local ? 'INPUT' : 'FORWARD');
  if (filter === 'REJECT') return done({ kind: 'reject', with: s.rejectWith ?? '' });
  if (filter === 'DROP') return done({ kind: 'drop', chain: s.dropChain ?? 'filter' });
  if (!s.dnat) return done({ kind: 'untouched', connmark: s.connmark });
  const post = evalChain(k, s, 'nat', 'POSTROUTING');
  return done({ kind: 'dnat', to: s.dnat, masquerade: post === 'MASQUERADE', connmark: s.connmark });
}

/** One outcome: the `choice`-th statistic match evaluated is the one that fires (default: first). */
export function tracePacket(k: TraceKernel, p: Packet, choice = 0): Verdict {
  return traceOnce(k, p, choice).verdict;
}

/** Every distinct outcome over the statistic cascade (e.g. each endpoint a connection can reach). */
export function traceAll(k: TraceKernel, p: Packet): Verdict[] {
  const seen = new Map<string, Verdict>();
  for (let choice = 0; ; choice++) {
    const { verdict, statisticSeen } = traceOnce(k, p, choice);
    seen.set(JSON.stringify(verdict), verdict);
    if (choice >= statisticSeen) break;
  }
  return [...seen.values()];
}
