// `smartnat status` as data: addresses (pool, owner, router id, since, mappings, ready) and agents
// (alive, leader, owned, draining, health) from two reads of the leases and one of the Mappings.
// Pure. Liveness is judged as the agents judge it (ADR 0005): an agent is alive when its lease
// changed between the two reads, never by comparing its renewTime with this machine's clock.
import type { Mapping } from '../api/types.js';
import { ANNOTATION_DRAIN, ANNOTATION_HEALTH, ANNOTATION_POOL, ANNOTATION_VRID, isFenced, parseAddressLeaseName, parseAgentLeaseName, type LeaseRecord } from './lease-names.js';

export interface StatusInput {
  /** Agent leases at the first read and after the observation window. */
  readonly agentsBefore: readonly LeaseRecord[];
  readonly agentsAfter: readonly LeaseRecord[];
  readonly addresses: readonly LeaseRecord[];
  readonly leader: LeaseRecord | undefined;
  /** Parsed Mappings (invalid ones are left out by the caller and counted). */
  readonly mappings: readonly Mapping[];
}

export interface AddressStatus {
  readonly address: string;
  readonly pool: string;
  /** '' when free. */
  readonly owner: string;
  readonly vrid: number | undefined;
  /** When the current holder got it (acquireTime), ISO; undefined when free. */
  readonly since: string | undefined;
  /** namespace/name of the Mappings using the address. */
  readonly mappings: readonly string[];
  /** Every Mapping using it reports the owner's programmed entry and Ready=True. */
  readonly ready: boolean;
}

export type AgentLiveness = 'alive' | 'stale' | 'fenced';

export interface AgentStatus {
  readonly name: string;
  readonly liveness: AgentLiveness;
  readonly leader: boolean;
  readonly owned: number;
  readonly draining: boolean;
  /** The health reason the agent publishes; '' when healthy or unknown. */
  readonly health: string;
}

export interface StatusView {
  readonly addresses: readonly AddressStatus[];
  readonly agents: readonly AgentStatus[];
  readonly leader: string;
}

function byNumber(a: string, b: string): number {
  const n = (s: string): number => s.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  return n(a) - n(b);
}

function mappingReadyFor(m: Mapping, address: string, owner: string): boolean {
  const entry = m.status.configuredAddresses[address];
  const ready = m.status.conditions.find((c) => c.type === 'Ready');
  return entry !== undefined && entry.owner === owner && ready?.status === 'True';
}

export function computeStatusView(input: StatusInput): StatusView {
  const leader = input.leader?.holder ?? '';
  const usedBy = new Map<string, Mapping[]>();
  for (const m of input.mappings) {
    for (const a of m.spec.addresses) usedBy.set(a, [...(usedBy.get(a) ?? []), m]);
  }
  const addresses: AddressStatus[] = [];
  for (const lease of input.addresses) {
    const address = parseAddressLeaseName(lease.name);
    if (address === undefined) continue;
    const vrid = Number(lease.annotations[ANNOTATION_VRID]);
    const users = usedBy.get(address) ?? [];
    addresses.push({
      address,
      pool: lease.annotations[ANNOTATION_POOL] ?? '',
      owner: lease.holder,
      vrid: Number.isInteger(vrid) && vrid > 0 ? vrid : undefined,
      since: lease.holder !== '' ? lease.acquireTime?.toISOString() : undefined,
      mappings: users.map((m) => `${m.namespace}/${m.name}`).sort(),
      ready: lease.holder !== '' && users.length > 0 && users.every((m) => mappingReadyFor(m, address, lease.holder)),
    });
  }
  addresses.sort((a, b) => byNumber(a.address, b.address));

  const before = new Map(input.agentsBefore.map((l) => [l.name, l]));
  const agents: AgentStatus[] = [];
  for (const lease of input.agentsAfter) {
    const name = parseAgentLeaseName(lease.name);
    if (name === undefined) continue;
    const earlier = before.get(lease.name);
    const changed = earlier === undefined || earlier.resourceVersion !== lease.resourceVersion;
    const liveness: AgentLiveness = isFenced(lease, name) ? 'fenced' : changed ? 'alive' : 'stale';
    agents.push({
      name,
      liveness,
      leader: leader === name,
      owned: addresses.filter((a) => a.owner === name).length,
      draining: lease.annotations[ANNOTATION_DRAIN] !== undefined && lease.annotations[ANNOTATION_DRAIN] !== 'false',
      health: lease.annotations[ANNOTATION_HEALTH] ?? '',
    });
  }
  agents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { addresses, agents, leader };
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** The human table; `now` formats "since" as an age. */
export function renderStatusTable(view: StatusView, now: Date): string {
  const age = (iso: string | undefined): string => {
    if (iso === undefined) return '-';
    const s = Math.max(0, Math.round((now.getTime() - new Date(iso).getTime()) / 1000));
    return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;
  };
  const addressRows = view.addresses.map((a) => [a.address, a.pool || '-', a.owner || '(free)', a.vrid?.toString() ?? '-', age(a.since), a.mappings.join(',') || '-', a.ready ? 'yes' : 'no']);
  const agentRows = view.agents.map((g) => [g.name, g.liveness, g.leader ? 'yes' : '', String(g.owned), g.draining ? 'yes' : '', g.health || '-']);
  return [
    'ADDRESSES',
    addressRows.length > 0 ? table(['ADDRESS', 'POOL', 'OWNER', 'VRID', 'SINCE', 'MAPPINGS', 'READY'], addressRows) : '(no address in use)',
    '',
    'AGENTS',
    agentRows.length > 0 ? table(['AGENT', 'STATE', 'LEADER', 'OWNED', 'DRAINING', 'HEALTH'], agentRows) : '(no agent has joined)',
    '',
  ].join('\n');
}
