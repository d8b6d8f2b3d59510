// Owns: the cluster-wide verdict on each Mapping: pool membership and namespace access per
// address, and (address, port, protocol) uniqueness across all namespaces (ADR 0008).
// Guarantees: no two accepted Mappings share a pair; a pair held (status.claims) by an accepted
// Mapping is never taken by another Mapping or by an edit; every Mapping refused for a clash names
// an accepted winner; deleting Mappings are ignored; the result does not depend on input order.
// Does not allocate router ids (leader-vrid.ts) or compute conditions (leader-status.ts).

import type { AddressPool, Condition, Mapping } from '../api/types.js';
import { parseIpv4 } from '../model/net.js';
import { refKey } from '../model/snapshot.js';
import { claimKey, type Verdict } from './leader-input.js';

export interface Placement {
  readonly address: string;
  readonly pool: AddressPool;
}

export type PlaceResult =
  | { readonly ok: true; readonly placements: readonly Placement[] }
  | { readonly ok: false; readonly reason: 'AddressNotInPool' | 'NamespaceNotAllowed'; readonly message: string };

function byString(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function byAddress(a: string, b: string): number {
  return (parseIpv4(a) ?? -1) - (parseIpv4(b) ?? -1) || byString(a, b);
}

/**
 * The pool of each address: the first pool by name that contains it and is open to the
 * namespace. Refused at the first address that has none (addresses in numeric order).
 */
export function placeMapping(mapping: Mapping, pools: readonly AddressPool[]): PlaceResult {
  const sorted = [...pools].sort((a, b) => byString(a.name, b.name));
  const placements: Placement[] = [];
  for (const address of [...new Set(mapping.spec.addresses)].sort(byAddress)) {
    const value = parseIpv4(address) ?? -1;
    const containing = sorted.filter((p) => p.spec.addresses.some((r) => value >= r.first && value <= r.last));
    if (containing.length === 0) {
      return { ok: false, reason: 'AddressNotInPool', message: `address ${address} is in no AddressPool` };
    }
    const open = containing.find((p) => p.spec.allowedNamespaces === undefined || p.spec.allowedNamespaces.includes(mapping.namespace));
    if (open === undefined) {
      const names = containing.map((p) => p.name).join(', ');
      return { ok: false, reason: 'NamespaceNotAllowed', message: `address ${address} is in AddressPool ${names}, closed to namespace ${mapping.namespace}` };
    }
    placements.push({ address, pool: open });
  }
  return { ok: true, placements };
}

/** Every (address, port, protocol) pair a Mapping asks for, sorted. */
export function wantedKeys(mapping: Mapping): string[] {
  const keys = new Set<string>();
  for (const address of mapping.spec.addresses) for (const p of mapping.spec.ports) keys.add(claimKey(address, p.port, p.protocol));
  return [...keys].sort();
}

/** When the Mapping was last accepted (Accepted=True lastTransitionTime), or undefined. */
export function acceptedSince(conditions: readonly Condition[]): string | undefined {
  const c = conditions.find((x) => x.type === 'Accepted');
  return c?.status === 'True' && c.lastTransitionTime !== '' ? c.lastTransitionTime : undefined;
}

interface Claimant {
  readonly mapping: Mapping;
  readonly key: string;
  readonly wanted: readonly string[];
  /** Wanted pairs recorded as held in status.claims. */
  readonly held: readonly string[];
  readonly since?: string;
}

/**
 * Holders first (earliest Accepted=True first), then newcomers (oldest first), then by
 * namespace/name and uid: a total order, so ties are broken the same way on every run.
 */
function compareClaimants(a: Claimant, b: Claimant): number {
  const holderA = a.held.length > 0 ? 0 : 1;
  const holderB = b.held.length > 0 ? 0 : 1;
  if (holderA !== holderB) return holderA - holderB;
  const sinceA = a.since ?? '\uffff';
  const sinceB = b.since ?? '\uffff';
  return (
    byString(sinceA, sinceB) ||
    byString(a.mapping.creationTimestamp, b.mapping.creationTimestamp) ||
    byString(a.key, b.key) ||
    byString(a.mapping.uid, b.mapping.uid)
  );
}

export interface ClaimResult {
  readonly verdicts: ReadonlyMap<string, Verdict>;
  /** Pairs granted to each accepted Mapping (key "namespace/name"). */
  readonly granted: ReadonlyMap<string, readonly string[]>;
}

function oneRound(claimants: readonly Claimant[], dropped: ReadonlySet<string>): { verdicts: Map<string, Verdict>; granted: Map<string, string[]> } {
  const reserved = new Map<string, Claimant>();
  for (const c of claimants) {
    if (dropped.has(c.key)) continue;
    for (const k of c.held) if (!reserved.has(k)) reserved.set(k, c);
  }
  const taken = new Map<string, Claimant>();
  const verdicts = new Map<string, Verdict>();
  const granted = new Map<string, string[]>();
  for (const c of claimants) {
    const clashes = c.wanted.flatMap((k) => {
      const other = taken.get(k) ?? reserved.get(k);
      return other !== undefined && other !== c ? [{ k, other }] : [];
    });
    if (clashes.length === 0) {
      for (const k of c.wanted) taken.set(k, c);
      verdicts.set(c.key, { accepted: true });
      granted.set(c.key, [...c.wanted]);
      continue;
    }
    const winners = [...new Set(clashes.map((x) => x.other.key))].sort();
    const shown = clashes.slice(0, 8).map((x) => `${x.k} belongs to Mapping ${x.other.key}`);
    const more = clashes.length > shown.length ? ` (and ${clashes.length - shown.length} more)` : '';
    verdicts.set(c.key, { accepted: false, reason: 'PortConflict', message: `${shown.join('; ')}${more}`, winners });
  }
  return { verdicts, granted };
}

/**
 * Resolves clashes among Mappings that passed the pool checks. A held pair is reserved for its
 * holder; a refused holder's reservations are dropped and the round repeated, so a Mapping is
 * only ever refused because of one that ends up accepted (never both refused).
 */
export function resolveClaims(mappings: readonly Mapping[]): ClaimResult {
  const claimants = mappings
    .map((mapping): Claimant => {
      const wanted = wantedKeys(mapping);
      const recorded = new Set(mapping.status.claims ?? []);
      const since = acceptedSince(mapping.status.conditions);
      return { mapping, key: refKey(mapping), wanted, held: wanted.filter((k) => recorded.has(k)), ...(since === undefined ? {} : { since }) };
    })
    .sort(compareClaimants);
  const dropped = new Set<string>();
  for (;;) {
    const round = oneRound(claimants, dropped);
    const refusedHolders = claimants.filter((c) => c.held.length > 0 && !dropped.has(c.key) && round.verdicts.get(c.key)?.accepted === false);
    if (refusedHolders.length === 0) return round;
    for (const c of refusedHolders) dropped.add(c.key);
  }
}
