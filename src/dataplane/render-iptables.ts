// Renders the iptables side of a DesiredDataPlane (ADR 0003): first as a RuleSet (our chains ->
// rule specs, each spelled exactly as iptables-save prints it, so read-back compares as text), then
// as iptables-restore --noflush input that rewrites only chains that differ from a given current
// RuleSet, deletes our stale chains after everything that referenced them, and fixes the jumps
// from built-in chains. Pure. Does not decide *when* to do a full or partial sync (apply.ts does).
import type { DesiredAddress, DesiredDataPlane, DesiredEgress, DesiredPort } from '../plan/desired.js';
import type { JumpRule, Table } from './render-names.js';
import {
  CHAINS, CHAIN_PREFIX, JUMPS, SETS, TABLES, addressChain, egressSet, hex, jumpSpec, portComment, quoteComment, serviceChain,
} from './render-names.js';

/** chain -> rule specs (the text after "-A CHAIN "), in order. Insertion order is render order. */
export type ChainRules = ReadonlyMap<string, readonly string[]>;
export type RuleSet = Readonly<Record<Table, ChainRules>>;

export function emptyRuleSet(): RuleSet {
  return { mangle: new Map(), nat: new Map(), filter: new Map() };
}

function c(text: string): string {
  return `-m comment --comment ${quoteComment(text)}`;
}

function portMatch(p: DesiredPort): string {
  return `-p ${p.protocol} -m ${p.protocol} --dport ${p.port}`;
}

/** kube-proxy's cascade: rule i of n matches with probability 1/(n-i), as the kernel stores it. */
export function probability(remaining: number): string {
  const stored = Math.round((1 / remaining) * 0x80000000);
  return (stored / 0x80000000).toFixed(11);
}

function restoreMark(mask: string, why: string): string {
  return `${c(why)} -m conntrack --ctdir REPLY -m connmark ! --mark 0x0/${mask} -j CONNMARK --restore-mark --nfmask ${mask} --ctmask ${mask}`;
}

function uplinkOf(d: DesiredDataPlane, e: DesiredEgress): { mark: number } | undefined {
  return d.uplinks.find((u) => u.name === e.uplink);
}

/**
 * Egress (ADR 0009), original direction only (replies of ingress connections keep their restored
 * mark): a pod in an egress set, arriving on an internal interface, going anywhere but a floating
 * address, gets the packet mark of its address's uplink, so policy routing sends it out there.
 */
function egressMarkRules(d: DesiredDataPlane): string[] {
  const mask = hex(d.settings.uplinkMarkMask);
  const inputs = (d.internalInterfaces ?? []).length > 0 ? (d.internalInterfaces ?? []).map((i) => `-i ${i} `) : [''];
  return (d.egress ?? []).flatMap((e) => {
    const uplink = uplinkOf(d, e);
    if (uplink === undefined) return [];
    const match = `${c(`smartnat: egress with ${e.address}`)} -m conntrack --ctdir ORIGINAL -m set --match-set ${egressSet(e.address)} src -m set ! --match-set ${SETS.eligible} dst`;
    return inputs.map((i) => `${i}${match} -j MARK --set-xmark ${hex(uplink.mark)}/${mask}`);
  });
}

/** The source translation of egress: pods of an owned egress address leave its uplink as that address. */
function egressSnatRules(d: DesiredDataPlane): string[] {
  return (d.egress ?? []).flatMap((e) => (uplinkOf(d, e) === undefined ? [] : [
    `-o ${e.uplink} ${c(`smartnat: egress source ${e.address}`)} -m set --match-set ${egressSet(e.address)} src -j SNAT --to-source ${e.address}`,
  ]));
}

/** For hosts whose FORWARD policy is DROP: egress packets (marked above) and their replies. */
function egressForwardRules(d: DesiredDataPlane): string[] {
  const egress = d.egress ?? [];
  if (egress.length === 0) return [];
  return [
    `${c('smartnat: egress of mapped pods')} -m mark ! --mark 0x0/${hex(d.settings.uplinkMarkMask)} -j ACCEPT`,
    ...egress.map((e) => `${c(`smartnat: egress replies via ${e.address}`)} -m conntrack --ctstate RELATED,ESTABLISHED -m set --match-set ${egressSet(e.address)} dst -j ACCEPT`),
  ];
}

function mangleRules(d: DesiredDataPlane): Map<string, string[]> {
  const mask = hex(d.settings.uplinkMarkMask);
  const allow = `-m conntrack --ctstate NEW -m set --match-set ${SETS.allow} dst,dst,src`;
  const pre = [
    restoreMark(mask, 'smartnat: reply routing'),
    ...egressMarkRules(d),
    `${c('smartnat: not a floating address')} -m set ! --match-set ${SETS.eligible} dst -j RETURN`,
    `${c('smartnat: floating address not owned here')} -m set ! --match-set ${SETS.owned} dst -j DROP`,
    // Counting rules (no target; ADR 0011): one hash lookup, whatever the number of Mappings.
    `${c('smartnat: count established')} -m conntrack --ctstate RELATED,ESTABLISHED --ctdir ORIGINAL -m set --match-set ${SETS.countAllowed} dst,dst`,
    `${c('smartnat: established or related')} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN`,
    ...d.uplinks.map((u) => `-i ${u.name} ${c(`smartnat: arrived on ${u.name}`)} ${allow} -j CONNMARK --set-xmark ${hex(u.mark)}/${mask}`),
    `${c('smartnat: count allowed')} ${allow} -m set --match-set ${SETS.countAllowed} dst,dst`,
    `${c('smartnat: allowed source')} ${allow} -j RETURN`,
    // Denied = a connection attempt the allow-list refused; not a stray packet of a connection this
    // owner never saw (ctstate INVALID, e.g. a client's RST just after a failover), also dropped.
    `${c('smartnat: count not allowed')} -m conntrack --ctstate NEW -m set --match-set ${SETS.countDenied} dst,dst`,
    `${c('smartnat: not allowed')} -j DROP`,
  ];
  return new Map([
    [CHAINS.manglePrerouting, pre],
    [CHAINS.mangleOutput, [restoreMark(mask, 'smartnat: reply routing of local replies')]],
    [CHAINS.mangleMss, [`-p tcp -m tcp --tcp-flags SYN,RST SYN ${c('smartnat: clamp MSS')} -m connmark ! --mark 0x0/${mask} -j TCPMSS --clamp-mss-to-pmtu`]],
  ]);
}

function serviceRules(d: DesiredDataPlane, a: DesiredAddress, p: DesiredPort): string[] {
  const comment = c(portComment({ ...p, address: a.address }));
  const masq = hex(d.settings.masqueradeMark);
  const n = p.endpoints.length;
  const dnat = p.endpoints.map((e, i) => {
    const stat = i < n - 1 ? ` -m statistic --mode random --probability ${probability(n - i)}` : '';
    return `-p ${p.protocol} ${comment}${stat} -j DNAT --to-destination ${e.ip}:${e.port}`;
  });
  return [`${comment} -j MARK --set-xmark ${masq}/${masq}`, ...dnat];
}

/** What one address contributes: its address chain, its service chains, its reject rules. */
interface AddressFragment {
  /** Rules of SMARTNAT-A-<address>; empty = no address chain (no port has endpoints). */
  readonly addressRules: readonly string[];
  readonly services: readonly (readonly [string, readonly string[]])[];
  readonly rejects: readonly string[];
}

/**
 * address -> the fragment last computed for it and the key it was computed from. Passing the same
 * cache to successive computeRuleSet calls reuses the rules (same arrays) of addresses whose ports
 * did not change, so a sync at 1,000 Mappings re-renders only what changed. Output is identical
 * with or without a cache.
 */
export type RuleCache = Map<string, { readonly key: string; readonly fragment: AddressFragment }>;

function addressFragment(d: DesiredDataPlane, a: DesiredAddress): AddressFragment {
  const addressRules: string[] = [];
  const services: [string, string[]][] = [];
  const rejects: string[] = [];
  for (const p of a.ports) {
    const key = { ...p, address: a.address };
    const comment = c(portComment(key));
    if (p.endpoints.length === 0) {
      const how = p.protocol === 'tcp' ? 'tcp-reset' : 'icmp-port-unreachable';
      rejects.push(`-d ${a.address}/32 ${portMatch(p)} ${comment} -j REJECT --reject-with ${how}`);
      continue;
    }
    const chain = serviceChain(key);
    addressRules.push(`${portMatch(p)} ${comment} -j ${chain}`);
    services.push([chain, serviceRules(d, a, p)]);
  }
  return { addressRules, services, rejects };
}

function fragmentsOf(d: DesiredDataPlane, cache: RuleCache | undefined): (readonly [DesiredAddress, AddressFragment])[] {
  const out = d.addresses.map((a): readonly [DesiredAddress, AddressFragment] => {
    if (!cache) return [a, addressFragment(d, a)];
    const key = `${d.settings.masqueradeMark}|${JSON.stringify(a.ports)}`;
    const hit = cache.get(a.address);
    if (hit && hit.key === key) return [a, hit.fragment];
    const fragment = addressFragment(d, a);
    cache.set(a.address, { key, fragment });
    return [a, fragment];
  });
  if (cache) {
    const live = new Set(d.addresses.map((a) => a.address));
    for (const address of [...cache.keys()]) if (!live.has(address)) cache.delete(address);
  }
  return out;
}

function natRules(d: DesiredDataPlane, fragments: readonly (readonly [DesiredAddress, AddressFragment])[]): Map<string, readonly string[]> {
  const services = [`${c('smartnat: not owned here')} -m set ! --match-set ${SETS.owned} dst -j RETURN`];
  const perAddress: [string, readonly string[]][] = [];
  const perService: (readonly [string, readonly string[]])[] = [];
  for (const [a, f] of fragments) {
    if (f.addressRules.length === 0) continue;
    services.push(`-d ${a.address}/32 ${c(`smartnat: address ${a.address}`)} -j ${addressChain(a.address)}`);
    perAddress.push([addressChain(a.address), f.addressRules]);
    perService.push(...f.services);
  }
  const masq = hex(d.settings.masqueradeMark);
  return new Map<string, readonly string[]>([
    [CHAINS.natServices, services],
    [CHAINS.natPostrouting, [`${c('smartnat: masquerade toward endpoints')} -m mark --mark ${masq}/${masq} -j MASQUERADE`, ...egressSnatRules(d)]],
    ...perAddress,
    ...perService,
  ]);
}

function filterRules(d: DesiredDataPlane, fragments: readonly (readonly [DesiredAddress, AddressFragment])[]): Map<string, readonly string[]> {
  const reject = [`${c('smartnat: not owned here')} -m set ! --match-set ${SETS.owned} dst -j RETURN`, ...fragments.flatMap(([, f]) => f.rejects)];
  const forward = [
    `${c('smartnat: ports without endpoints')} -j ${CHAINS.filterReject}`,
    `${c('smartnat: connections through an uplink')} -m connmark ! --mark 0x0/${hex(d.settings.uplinkMarkMask)} -j ACCEPT`,
    ...egressForwardRules(d),
  ];
  return new Map([[CHAINS.filterForward, forward], [CHAINS.filterReject, reject]]);
}

/** Every chain SmartNat wants, with its rules, per table (see RuleCache for `cache`). */
export function computeRuleSet(desired: DesiredDataPlane, cache?: RuleCache): RuleSet {
  const fragments = fragmentsOf(desired, cache);
  return { mangle: mangleRules(desired), nat: natRules(desired, fragments), filter: filterRules(desired, fragments) };
}

/** A change to a built-in chain: delete one occurrence of a spec, or insert it at position 1. */
export interface JumpFix {
  readonly table: Table;
  readonly chain: string;
  readonly action: 'delete' | 'insert';
  readonly spec: string;
}

/** From nothing: every jump inserted at position 1. */
export function insertAllJumps(): JumpFix[] {
  return JUMPS.map((j) => ({ table: j.table, chain: j.from, action: 'insert', spec: jumpSpec(j) }));
}

/**
 * Jump fixes given the current rules of the built-in chains (from iptables-save): a jump that is
 * the chain's first rule, exactly once, is left alone; otherwise every rule jumping to our chain is
 * deleted and the canonical jump inserted at position 1.
 */
export function planJumpFixes(builtin: RuleSet): JumpFix[] {
  return JUMPS.flatMap((j: JumpRule): JumpFix[] => {
    const rules = builtin[j.table].get(j.from) ?? [];
    const spec = jumpSpec(j);
    const ours = rules.filter((r) => r.endsWith(` -j ${j.to}`) || r === `-j ${j.to}`);
    if (ours.length === 1 && rules[0] === spec) return [];
    const deletes = ours.map((r): JumpFix => ({ table: j.table, chain: j.from, action: 'delete', spec: r }));
    return [...deletes, { table: j.table, chain: j.from, action: 'insert', spec }];
  });
}

export interface RestorePlan {
  /** iptables-restore --noflush input; '' when nothing differs. */
  readonly text: string;
  /** "table/chain" of every chain declared (rewritten or flushed for deletion). */
  readonly rewritten: readonly string[];
  readonly deleted: readonly string[];
}

function sameRules(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  if (a !== undefined && a === b) return true;
  return a !== undefined && b !== undefined && a.length === b.length && a.every((r, i) => r === b[i]);
}

function renderTable(table: Table, input: RestoreInput, out: { rewritten: string[]; deleted: string[] }): string[] {
  const want = input.desired[table];
  const have = input.current[table];
  const changed = [...want.keys()].filter((chain) => !sameRules(want.get(chain), have.get(chain)));
  const stale = [...have.keys()].filter((chain) => chain.startsWith(CHAIN_PREFIX) && !want.has(chain)).sort();
  const jumps = input.jumps.filter((j) => j.table === table);
  if (changed.length === 0 && stale.length === 0 && jumps.length === 0) return [];
  const lines = [`*${table}`, ...changed.map((ch) => `:${ch} - [0:0]`), ...stale.map((ch) => `:${ch} - [0:0]`)];
  for (const chain of changed) for (const rule of want.get(chain) ?? []) lines.push(`-A ${chain} ${rule}`);
  for (const j of jumps) lines.push(j.action === 'delete' ? `-D ${j.chain} ${j.spec}` : `-I ${j.chain} 1 ${j.spec}`);
  for (const chain of stale) lines.push(`-X ${chain}`);
  lines.push('COMMIT');
  out.rewritten.push(...changed.map((ch) => `${table}/${ch}`), ...stale.map((ch) => `${table}/${ch}`));
  out.deleted.push(...stale.map((ch) => `${table}/${ch}`));
  return lines;
}

export interface RestoreInput {
  readonly desired: RuleSet;
  /** What is in the kernel now (read back) or, for a partial sync, what the last sync wrote. */
  readonly current: RuleSet;
  readonly jumps: readonly JumpFix[];
}

/** The restore input turning `current` into `desired` (only chains that differ are declared). */
export function renderIptablesRestore(input: RestoreInput): RestorePlan {
  const out = { rewritten: [] as string[], deleted: [] as string[] };
  const lines = TABLES.flatMap((t) => renderTable(t, input, out));
  return { text: lines.length ? `${lines.join('\n')}\n` : '', rewritten: out.rewritten, deleted: out.deleted };
}

/** The complete restore input a sync from nothing applies. */
export function renderIptablesFull(desired: DesiredDataPlane): string {
  return renderIptablesRestore({ desired: computeRuleSet(desired), current: emptyRuleSet(), jumps: insertAllJumps() }).text;
}
