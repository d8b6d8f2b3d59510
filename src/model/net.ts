// IPv4 values as the data plane needs them: parsed with ipaddr.js, re-printed canonically, kept as
// numbers for ordering and containment. Everything that reaches a rule, set or route passes here.
// Does not handle IPv6 (SmartNat is IPv4-only so far) and never resolves names.
import ipaddr from 'ipaddr.js';

/** A parsed IPv4 CIDR: `network` is the canonical network address, `text` is "a.b.c.d/len". */
export interface Ipv4Cidr {
  readonly network: number;
  readonly prefix: number;
  readonly text: string;
}

/** A parsed interface address ("203.0.113.5/24"): the host address and the subnet it implies. */
export interface InterfaceAddress {
  readonly address: number;
  readonly subnet: Ipv4Cidr;
  readonly text: string;
}

const FOUR_OCTETS = /^\d{1,3}(\.\d{1,3}){3}$/;

/** Parses a dotted-quad IPv4 address (strict: exactly four decimal octets); undefined if invalid. */
export function parseIpv4(text: string): number | undefined {
  if (!FOUR_OCTETS.test(text) || !ipaddr.IPv4.isValidFourPartDecimal(text)) return undefined;
  const bytes = ipaddr.IPv4.parse(text).toByteArray();
  return bytes.reduce((acc, b) => acc * 256 + b, 0);
}

export function formatIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

/** Re-prints an IPv4 address canonically; undefined if it is not one. */
export function canonicalIpv4(text: string): string | undefined {
  const value = parseIpv4(text);
  return value === undefined ? undefined : formatIpv4(value);
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (2 ** 32 - 2 ** (32 - prefix));
}

function networkOf(address: number, prefix: number): number {
  return prefix === 0 ? 0 : Number((BigInt(address) & BigInt(maskOf(prefix))));
}

function splitPrefix(text: string): { ip: string; prefix: number } | undefined {
  const [ip, len, extra] = text.split('/');
  if (ip === undefined || extra !== undefined) return undefined;
  if (len === undefined) return { ip, prefix: 32 };
  if (!/^\d{1,2}$/.test(len)) return undefined;
  const prefix = Number(len);
  return prefix <= 32 ? { ip, prefix } : undefined;
}

/** Parses "a.b.c.d/len" or a bare IP (as /32), normalising host bits away. */
export function parseCidr(text: string): Ipv4Cidr | undefined {
  const parts = splitPrefix(text.trim());
  if (!parts) return undefined;
  const address = parseIpv4(parts.ip);
  if (address === undefined) return undefined;
  const network = networkOf(address, parts.prefix);
  return { network, prefix: parts.prefix, text: `${formatIpv4(network)}/${parts.prefix}` };
}

/** Parses an interface address "a.b.c.d/len" keeping the host part (a bare IP is a /32). */
export function parseInterfaceAddress(text: string): InterfaceAddress | undefined {
  const parts = splitPrefix(text.trim());
  if (!parts) return undefined;
  const address = parseIpv4(parts.ip);
  const subnet = parseCidr(text);
  if (address === undefined || !subnet) return undefined;
  return { address, subnet, text: `${formatIpv4(address)}/${parts.prefix}` };
}

export function cidrContains(cidr: Ipv4Cidr, address: number): boolean {
  return networkOf(address, cidr.prefix) === cidr.network;
}

/** The netmask of a prefix length, dotted ("255.255.255.0"). */
export function netmaskText(prefix: number): string {
  return formatIpv4(maskOf(prefix));
}

/**
 * Linux interface names: 1..15 bytes, not "." or "..", no '/', ':', whitespace or control
 * characters (dev_valid_name, plus ':' which alias syntax and our tools treat specially).
 */
export function isValidInterfaceName(name: string): boolean {
  if (name.length < 1 || name.length > 15 || name === '.' || name === '..') return false;
  return /^[A-Za-z0-9_.@+-]+$/.test(name);
}

export function compareNumbers(a: number, b: number): number {
  return a - b;
}
