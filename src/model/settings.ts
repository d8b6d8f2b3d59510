// Data-plane settings: the mark bits, routing table/pref range and protocol number SmartNat uses.
// validateSettings guarantees the marks fit in 32 bits, do not overlap each other, and reports any
// overlap with the bits kube-proxy and the major CNIs use. It does not read the host.

export interface DataPlaneSettings {
  /** Mask of the connection-mark field holding the uplink number (contiguous bits). */
  readonly uplinkMarkMask: number;
  /** The single bit the service chains set so POSTROUTING masquerades the packet. */
  readonly masqueradeMark: number;
  /** Uplink k uses routing table tableBase + k. */
  readonly tableBase: number;
  /** Uplink k's `ip rule` has preference prefBase + k. */
  readonly prefBase: number;
  /** `protocol` number tagging our ip rules and routes. */
  readonly routeProtocol: number;
  /** nf_conntrack_max to write; omitted = leave the kernel's value. */
  readonly conntrackMax?: number;
  /** nf_conntrack_tcp_timeout_established / _close_wait (kube-proxy's 86400 / 3600). */
  readonly tcpTimeoutEstablishedSeconds?: number;
  readonly tcpTimeoutCloseWaitSeconds?: number;
}

/** kube-proxy's sizing of nf_conntrack_max: 32768 per core, at least 131072. */
export function conntrackMaxFor(cores: number): number {
  return Math.max(131072, 32768 * Math.max(1, Math.floor(cores)));
}

export const DEFAULT_SETTINGS: DataPlaneSettings = {
  uplinkMarkMask: 0x000000f0,
  masqueradeMark: 0x00001000,
  tableBase: 7800,
  prefBase: 7800,
  routeProtocol: 196,
  tcpTimeoutEstablishedSeconds: 86400,
  tcpTimeoutCloseWaitSeconds: 3600,
};

/** Bits other components are known to use (DESIGN.md 3.4). */
export const FOREIGN_MARK_BITS: readonly { readonly owner: string; readonly mask: number }[] = [
  { owner: 'kube-proxy', mask: 0x0000c000 },
  { owner: 'calico', mask: 0xffff0000 },
  { owner: 'cilium', mask: 0x00000f00 },
];

export type SettingsProblem =
  | 'maskNotContiguous'
  | 'maskTooSmall'
  | 'masqueradeNotOneBit'
  | 'marksOverlap'
  | 'overlapsForeignBits'
  | 'tableRangeInvalid'
  | 'protocolInvalid';

export interface SettingsIssue {
  readonly problem: SettingsProblem;
  readonly message: string;
}

const U32 = 2 ** 32;

function isU32(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n < U32;
}

/** Lowest set bit of a mask (the shift of its field). */
export function lowestBit(mask: number): number {
  let bit = 1;
  while (bit < U32 && Math.floor(mask / bit) % 2 === 0) bit *= 2;
  return bit;
}

function overlaps(a: number, b: number): boolean {
  return (BigInt(a) & BigInt(b)) !== 0n;
}

function isContiguous(mask: number): boolean {
  if (!isU32(mask) || mask === 0) return false;
  const shifted = mask / lowestBit(mask);
  return Number.isInteger(Math.log2(shifted + 1));
}

/** How many uplinks the mark field can number (values 1..max; 0 means "not ours"). */
export function maxUplinks(settings: DataPlaneSettings): number {
  return settings.uplinkMarkMask / lowestBit(settings.uplinkMarkMask);
}

export function uplinkMark(settings: DataPlaneSettings, index: number): number {
  return index * lowestBit(settings.uplinkMarkMask);
}

function markIssues(s: DataPlaneSettings): SettingsIssue[] {
  const issues: SettingsIssue[] = [];
  if (!isContiguous(s.uplinkMarkMask)) issues.push({ problem: 'maskNotContiguous', message: `uplink mark mask 0x${s.uplinkMarkMask.toString(16)} must be one run of bits` });
  else if (maxUplinks(s) < 1) issues.push({ problem: 'maskTooSmall', message: 'uplink mark mask numbers no uplink' });
  if (!isU32(s.masqueradeMark) || lowestBit(s.masqueradeMark) !== s.masqueradeMark) {
    issues.push({ problem: 'masqueradeNotOneBit', message: `masquerade mark 0x${s.masqueradeMark.toString(16)} must be a single bit` });
  }
  if (isU32(s.uplinkMarkMask) && isU32(s.masqueradeMark) && overlaps(s.uplinkMarkMask, s.masqueradeMark)) {
    issues.push({ problem: 'marksOverlap', message: 'masquerade bit lies inside the uplink mark mask' });
  }
  for (const foreign of FOREIGN_MARK_BITS) {
    const ours = (BigInt(s.uplinkMarkMask) | BigInt(s.masqueradeMark)) & 0xffffffffn;
    if (overlaps(Number(ours), foreign.mask)) {
      issues.push({ problem: 'overlapsForeignBits', message: `mark bits 0x${ours.toString(16)} overlap ${foreign.owner}'s 0x${foreign.mask.toString(16)}` });
    }
  }
  return issues;
}

/** Checks settings once at start; an empty list means usable. */
export function validateSettings(s: DataPlaneSettings): SettingsIssue[] {
  const issues = markIssues(s);
  const top = maxUplinks(s);
  for (const [name, base] of [['table', s.tableBase], ['pref', s.prefBase]] as const) {
    if (!Number.isInteger(base) || base < 1 || base + top > 2 ** 31 - 1 || (name === 'table' && base + top >= 252 && base < 256)) {
      issues.push({ problem: 'tableRangeInvalid', message: `${name} base ${base} leaves no valid range (reserved tables 252-255)` });
    }
  }
  if (!Number.isInteger(s.routeProtocol) || s.routeProtocol < 5 || s.routeProtocol > 255) {
    issues.push({ problem: 'protocolInvalid', message: `route protocol ${s.routeProtocol} must be 5..255 (0-4 are the kernel's)` });
  }
  return issues;
}
