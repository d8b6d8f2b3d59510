// IPv4 addresses, CIDRs and ranges: strict parsing (ipaddr.js) into numbers and canonical text.
// Guarantees: accepts exactly what Go's net/netip accepts for IPv4 (dotted quad, no leading zeros,
// prefix length without leading zeros), which is what the API server's CEL isIP/isCIDR accept;
// never throws. Does not handle IPv6 (SmartNat is IPv4-only for now).

import ipaddr from 'ipaddr.js';

import type { AddressRange, Cidr, Ipv4 } from './types.js';

/** The address as an unsigned 32-bit number, or undefined unless it is a strict dotted quad. */
export function parseIpv4(text: string): number | undefined {
  if (!ipaddr.IPv4.isValidFourPartDecimal(text)) return undefined;
  const [a, b, c, d] = ipaddr.IPv4.parse(text).toByteArray();
  if (a === undefined || b === undefined || c === undefined || d === undefined) return undefined;
  return ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
}

export function formatIpv4(value: number): Ipv4 {
  return [value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff].join('.');
}

export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Go's IsGlobalUnicast for IPv4: not 0.0.0.0, 255.255.255.255, loopback, link-local or multicast. */
export function isGlobalUnicast(value: number): boolean {
  const first = value >>> 24;
  if (value === 0 || value === 0xffffffff) return false;
  if (first === 127 || (first >= 224 && first <= 239)) return false;
  return !(first === 169 && ((value >>> 16) & 0xff) === 254);
}

export interface ParsedCidr {
  /** The address as written (host bits possibly set). */
  readonly address: number;
  readonly prefix: number;
  /** The address with its host bits cleared. */
  readonly network: number;
}

const PREFIX_LENGTH = /^(0|[1-9][0-9]?)$/;

/** "a.b.c.d/n" (host bits allowed) or undefined. */
export function parseCidr(text: string): ParsedCidr | undefined {
  const slash = text.lastIndexOf('/');
  if (slash < 0) return undefined;
  const address = parseIpv4(text.slice(0, slash));
  const bits = text.slice(slash + 1);
  if (address === undefined || !PREFIX_LENGTH.test(bits)) return undefined;
  const prefix = Number(bits);
  if (prefix > 32) return undefined;
  return { address, prefix, network: (address & maskOf(prefix)) >>> 0 };
}

export function formatCidr(network: number, prefix: number): Cidr {
  return `${formatIpv4(network)}/${prefix}`;
}

/**
 * An allowed source: a CIDR, normalised to its network (10.0.0.1/16 -> 10.0.0.0/16, as the
 * original did), or a bare address as /32. Undefined when it is neither.
 */
export function parseSource(text: string): { readonly network: number; readonly prefix: number } | undefined {
  const address = parseIpv4(text);
  if (address !== undefined) return { network: address, prefix: 32 };
  const cidr = parseCidr(text);
  return cidr === undefined ? undefined : { network: cidr.network, prefix: cidr.prefix };
}

/** An AddressPool entry: an address, a CIDR (network normalised) or an inclusive range "a-b". */
export function parsePoolEntry(text: string): AddressRange | undefined {
  const address = parseIpv4(text);
  if (address !== undefined) return { first: address, last: address, text: formatIpv4(address) };
  const cidr = parseCidr(text);
  if (cidr !== undefined) {
    const last = (cidr.network | ~maskOf(cidr.prefix)) >>> 0;
    return { first: cidr.network, last, text: formatCidr(cidr.network, cidr.prefix) };
  }
  const parts = text.split('-');
  if (parts.length !== 2) return undefined;
  const first = parseIpv4(parts[0] ?? '');
  const last = parseIpv4(parts[1] ?? '');
  if (first === undefined || last === undefined || first > last) return undefined;
  return { first, last, text: `${formatIpv4(first)}-${formatIpv4(last)}` };
}

/** Whether `address` lies in the range. */
export function rangeContains(range: AddressRange, address: number): boolean {
  return address >= range.first && address <= range.last;
}
