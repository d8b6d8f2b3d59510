// Renders the ipset side of a DesiredDataPlane (ADR 0003): the three sets' contents, and `ipset
// restore` input either full (fill a temporary set, `swap` it in, destroy it: ipset restore is not
// atomic) or as a delta (add/del with -exist). Pure; entries are printed from typed data, sorted.
import type { DesiredDataPlane } from '../plan/desired.js';
import { SETS, egressSet, tmpSetName } from './render-names.js';

export type SetType = 'hash:ip' | 'hash:ip,port' | 'hash:ip,port,net';

export interface SetContent {
  readonly type: SetType;
  /** Entries as `ipset save` prints them, in the desired state's canonical order. */
  readonly entries: readonly string[];
  /** Created with `counters` (ADR 0011): `ipset save` then prints `packets N bytes N` after each entry. */
  readonly counters?: boolean;
}

/** set name -> content; always the five sets (rules reference them even when empty), plus one egress set per egress address. */
export type SetContents = ReadonlyMap<string, SetContent>;

/** ipset refuses a /0 in hash:net types: 0.0.0.0/0 becomes two /1s. A /32 prints bare. */
export function setSources(cidr: string): string[] {
  if (cidr === '0.0.0.0/0') return ['0.0.0.0/1', '128.0.0.0/1'];
  return [cidr.endsWith('/32') ? cidr.slice(0, -3) : cidr];
}

/**
 * The five sets' contents. No sorting here: the desired state is already canonical (addresses,
 * ports and sources sorted by the planner), so walking it in order is deterministic, and cheap at
 * thousands of entries.
 */
export function computeSets(desired: DesiredDataPlane): SetContents {
  const allow = new Set<string>();
  const counted: string[] = [];
  for (const a of desired.addresses) {
    for (const p of a.ports) {
      counted.push(countMember(a.address, p.protocol, p.port));
      for (const s of p.sources) for (const net of setSources(s)) allow.add(`${a.address},${p.protocol}:${p.port},${net}`);
    }
  }
  return new Map<string, SetContent>([
    [SETS.eligible, { type: 'hash:ip', entries: desired.addresses.map((a) => a.address) }],
    [SETS.owned, { type: 'hash:ip', entries: desired.addresses.filter((a) => a.owned).map((a) => a.address) }],
    [SETS.allow, { type: 'hash:ip,port,net', entries: [...allow] }],
    [SETS.countAllowed, { type: 'hash:ip,port', entries: counted, counters: true }],
    [SETS.countDenied, { type: 'hash:ip,port', entries: counted, counters: true }],
    ...computeEgressSets(desired),
  ]);
}

/** A counting set's member for one Mapping port, as `ipset save` prints it (without its counters). */
export function countMember(address: string, protocol: string, port: number): string {
  return `${address},${protocol}:${port}`;
}

/** The entry of an `ipset save` line without the `packets N bytes N` a counting set appends. */
export function withoutCounters(entry: string): string {
  const i = entry.indexOf(' packets ');
  return i < 0 ? entry : entry.slice(0, i);
}

/**
 * One hash:ip set per egress address: its pods while the address is owned here, empty otherwise.
 * Ownership is set membership, so a failover changes set members and never rules (ADR 0003).
 */
export function computeEgressSets(desired: DesiredDataPlane): [string, SetContent][] {
  return (desired.egress ?? []).map((e) => [egressSet(e.address), { type: 'hash:ip', entries: e.owned ? e.sources : [] }]);
}

/** createLine for a set a delta adds (-exist: harmless if a full sync made it already). */
export function createLineIfMissing(name: string, content: SetContent): string {
  return `${createLine(name, content)} -exist`;
}

/** maxelem sized from the data: the next power of two above twice the count, at least 65536. */
export function maxElem(count: number): number {
  let n = 65536;
  while (n < count * 2) n *= 2;
  return n;
}

function createLine(name: string, content: SetContent): string {
  return `create ${name} ${content.type} family inet hashsize 1024 maxelem ${maxElem(content.entries.length)}${content.counters === true ? ' counters' : ''}`;
}

export interface FullSetOptions {
  /** Our sets that exist now (from `ipset list -n`): not re-created; a leftover temp set is destroyed first. */
  readonly existing: ReadonlySet<string>;
  /** Restrict to these sets (the others already match); default all. */
  readonly only?: ReadonlySet<string>;
}

/** Full rewrite through a temporary set and `swap`, one block per set. */
export function renderIpsetFull(sets: SetContents, options: FullSetOptions): string {
  const lines: string[] = [];
  for (const [name, content] of sets) {
    if (options.only && !options.only.has(name)) continue;
    const tmp = tmpSetName(name);
    if (options.existing.has(tmp)) lines.push(`destroy ${tmp}`);
    if (!options.existing.has(name)) lines.push(createLine(name, content));
    lines.push(createLine(tmp, content));
    for (const e of content.entries) lines.push(`add ${tmp} ${e}`);
    lines.push(`swap ${tmp} ${name}`, `destroy ${tmp}`);
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}

/** Delta from `previous` to `next`: deletions first, then additions (both tolerate -exist). */
export function renderIpsetDelta(previous: SetContents, next: SetContents): string {
  const lines: string[] = [];
  for (const [name, content] of next) {
    if (!previous.has(name)) lines.push(createLineIfMissing(name, content));
    const before = new Set(previous.get(name)?.entries ?? []);
    const after = new Set(content.entries);
    for (const e of before) if (!after.has(e)) lines.push(`del ${name} ${e} -exist`);
    for (const e of content.entries) if (!before.has(e)) lines.push(`add ${name} ${e} -exist`);
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}

/** Everything a sync from nothing applies. */
export function renderIpsetFromNothing(desired: DesiredDataPlane): string {
  return renderIpsetFull(computeSets(desired), { existing: new Set() });
}
