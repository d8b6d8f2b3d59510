// Lease names, labels and annotation keys (STYLE.md "Contracts and names"), and the plain record
// every lease is turned into at the cluster edge. Guarantees: one spelling for every key; names
// are valid DNS labels for valid inputs. Does not talk to the API server (src/cluster does).

export const ANNOTATION_PREFIX = 'smartnat.aureacentral.com';
export const LABEL_ROLE = `${ANNOTATION_PREFIX}/role`;
export const ANNOTATION_POOL = `${ANNOTATION_PREFIX}/pool`;
export const ANNOTATION_VRID = `${ANNOTATION_PREFIX}/vrid`;
export const ANNOTATION_INTERFACE = `${ANNOTATION_PREFIX}/interface`;
export const ANNOTATION_DRAIN = `${ANNOTATION_PREFIX}/drain`;
/** Set by the agent that fenced this agent lease (ADR 0005); its value is the fencer's name. */
export const ANNOTATION_FENCED_BY = `${ANNOTATION_PREFIX}/fenced-by`;
/** Absent or "ok" = healthy; otherwise the reason the agent gave up its addresses (DESIGN 3.1). */
export const ANNOTATION_HEALTH = `${ANNOTATION_PREFIX}/health`;

export type LeaseRole = 'agent' | 'address' | 'leader';

export const LEADER_LEASE_NAME = 'smartnat-leader';
const AGENT_PREFIX = 'smartnat-agent-';
const ADDRESS_PREFIX = 'smartnat-addr-';

export function agentLeaseName(agent: string): string {
  return `${AGENT_PREFIX}${agent}`;
}

/** "203.0.113.10" -> "smartnat-addr-203-0-113-10". */
export function addressLeaseName(address: string): string {
  return `${ADDRESS_PREFIX}${address.split('.').join('-')}`;
}

/** The agent a `smartnat-agent-*` name stands for, or undefined for any other name. */
export function parseAgentLeaseName(name: string): string | undefined {
  return name.startsWith(AGENT_PREFIX) && name.length > AGENT_PREFIX.length ? name.slice(AGENT_PREFIX.length) : undefined;
}

/** The address a `smartnat-addr-a-b-c-d` name stands for, or undefined. */
export function parseAddressLeaseName(name: string): string | undefined {
  if (!name.startsWith(ADDRESS_PREFIX)) return undefined;
  const parts = name.slice(ADDRESS_PREFIX.length).split('-');
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255)) return undefined;
  return parts.join('.');
}

/**
 * A Lease as the protocol sees it. `resourceVersion` is the compare-and-swap token ('' before
 * creation); `holder` '' means nobody. Times are wall-clock and informational only: nobody judges
 * expiry from them (ADR 0005).
 */
export interface LeaseRecord {
  readonly name: string;
  readonly resourceVersion: string;
  readonly holder: string;
  readonly leaseDurationSeconds: number;
  readonly leaseTransitions: number;
  readonly acquireTime?: Date;
  readonly renewTime?: Date;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
}

/** An agent lease is fenced when its holder was cleared or a fencer marked it (ADR 0005). */
export function isFenced(lease: LeaseRecord, agent: string): boolean {
  return lease.holder !== agent || lease.annotations[ANNOTATION_FENCED_BY] !== undefined;
}
