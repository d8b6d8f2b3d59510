// Names of everything SmartNat creates in the kernel (ADR 0003): chains, sets, rule comments,
// jump rules from built-in chains. Pure. Guarantees chain names <= 28 chars, set names <= 31,
// comments <= 255 bytes and made only of characters that need no escaping in iptables-save.
import { createHash } from 'node:crypto';
import type { ObjectRef, Protocol } from '../api/types.js';

export const CHAIN_PREFIX = 'SMARTNAT-';
export const SET_PREFIX = 'smartnat-';
export const TMP_SET_PREFIX = 'smartnat-tmp-';

export type Table = 'mangle' | 'nat' | 'filter';
/** Order of tables in restore input and of reads on resync. */
export const TABLES: readonly Table[] = ['mangle', 'nat', 'filter'];

export const CHAINS = {
  manglePrerouting: 'SMARTNAT-PREROUTING',
  mangleOutput: 'SMARTNAT-OUTPUT',
  mangleMss: 'SMARTNAT-MSS',
  natServices: 'SMARTNAT-SERVICES',
  natPostrouting: 'SMARTNAT-POSTROUTING',
  filterForward: 'SMARTNAT-FORWARD',
  filterReject: 'SMARTNAT-REJECT',
} as const;

export const SETS = {
  eligible: 'smartnat-eligible',
  owned: 'smartnat-owned',
  allow: 'smartnat-allow',
  /** Counting sets (ADR 0011): address,proto:port of every Mapping port, with packet/byte counters. */
  countAllowed: 'smartnat-count-allowed',
  countDenied: 'smartnat-count-denied',
} as const;

export const JUMP_COMMENT = 'smartnat-entry';

/** A jump from a built-in chain into ours, kept at position 1 (kube-proxy's iptablesJumpChains). */
export interface JumpRule {
  readonly table: Table;
  readonly from: string;
  readonly to: string;
}

export const JUMPS: readonly JumpRule[] = [
  { table: 'mangle', from: 'PREROUTING', to: CHAINS.manglePrerouting },
  { table: 'mangle', from: 'OUTPUT', to: CHAINS.mangleOutput },
  { table: 'mangle', from: 'FORWARD', to: CHAINS.mangleMss },
  { table: 'nat', from: 'PREROUTING', to: CHAINS.natServices },
  { table: 'nat', from: 'POSTROUTING', to: CHAINS.natPostrouting },
  { table: 'filter', from: 'INPUT', to: CHAINS.filterReject },
  { table: 'filter', from: 'FORWARD', to: CHAINS.filterForward },
];

export function jumpSpec(jump: JumpRule): string {
  return `-m comment --comment ${JUMP_COMMENT} -j ${jump.to}`;
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

// key -> hash; a pure memo (same input, same output) so a sync of 1,000 Mappings does not hash
// 2,000 keys again. Bounded: cleared when it grows past HASH_MEMO_MAX.
const hashMemo = new Map<string, string>();
const HASH_MEMO_MAX = 100_000;

/** RFC 4648 base32 (no padding) of sha256(key), first `length` characters. */
export function hashKey(key: string, length = 16): string {
  const memoKey = `${length}\u0000${key}`;
  const known = hashMemo.get(memoKey);
  if (known !== undefined) return known;
  if (hashMemo.size >= HASH_MEMO_MAX) hashMemo.clear();
  const hash = computeHash(key, length);
  hashMemo.set(memoKey, hash);
  return hash;
}

function computeHash(key: string, length: number): string {
  const bytes = createHash('sha256').update(key).digest();
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < length) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  return out;
}

export function addressChain(address: string): string {
  return `SMARTNAT-A-${address}`;
}

export interface PortKey {
  readonly mapping: ObjectRef;
  readonly address: string;
  readonly protocol: Protocol;
  readonly port: number;
}

export function serviceChain(key: PortKey): string {
  return `SMARTNAT-S-${hashKey(`${key.mapping.namespace}/${key.mapping.name}/${key.address}/${key.protocol}/${key.port}`)}`;
}

/** The egress set of one external address (ADR 0009): the pods leaving with it, while it is owned here. At most 27 characters. */
export function egressSet(address: string): string {
  return `${SET_PREFIX}eg-${address}`;
}

export function tmpSetName(set: string): string {
  return `${TMP_SET_PREFIX}${set.slice(SET_PREFIX.length)}`;
}

const COMMENT_MAX_BYTES = 255;

/** Replaces anything outside a safe alphabet, so the comment never needs escaping. */
function sanitize(text: string): string {
  return text.replace(/[^A-Za-z0-9._:/ -]/g, '_');
}

/** A rule comment of at most 255 bytes; a longer one is cut and ends with a hash of the whole. */
export function fitComment(text: string): string {
  const clean = sanitize(text);
  if (clean.length <= COMMENT_MAX_BYTES) return clean;
  const hash = hashKey(clean, 10);
  return `${clean.slice(0, COMMENT_MAX_BYTES - hash.length - 1)}~${hash}`;
}

/** The comment every per-Mapping rule carries: "ns/name address:port/proto". */
export function portComment(key: PortKey): string {
  return fitComment(`${key.mapping.namespace}/${key.mapping.name} ${key.address}:${key.port}/${key.protocol}`);
}

const NO_QUOTE = /^[A-Za-z0-9_-]+$/;

/** A comment as iptables-save prints it: bare if only [A-Za-z0-9_-], else double-quoted. */
export function quoteComment(comment: string): string {
  return NO_QUOTE.test(comment) ? comment : `"${comment.replace(/["\\']/g, (c) => `\\${c}`)}"`;
}

export function hex(n: number): string {
  return `0x${n.toString(16)}`;
}
