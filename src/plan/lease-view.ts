// One agent's local view of the leases, with *observation* times on its monotonic clock (ADR 0005).
// Guarantees: an observation time moves only when a lease's resourceVersion changes, or for every
// lease at once on reset (reconnect/relist); while blind nobody can be judged. Does not watch
// anything: the informer wrapper in src/cluster feeds it and calls reset/markBlind.
import {
  ANNOTATION_DRAIN,
  ANNOTATION_HEALTH,
  ANNOTATION_POOL,
  LABEL_ROLE,
  isFenced,
  parseAddressLeaseName,
  parseAgentLeaseName,
  type LeaseRecord,
} from './lease-names.js';
import type { AddressView, AgentView } from './ownership.js';

interface Observed {
  lease: LeaseRecord;
  observedAt: number;
  readySince?: number;
}

/** Labels an agent publishes for pool selectors: its lease labels minus our role label. */
export function agentLabels(lease: LeaseRecord): Record<string, string> {
  const { [LABEL_ROLE]: _role, ...rest } = lease.labels;
  return rest;
}

export function agentViewOf(agent: string, lease: LeaseRecord, observedAt: number, readySince?: number): AgentView {
  const health = lease.annotations[ANNOTATION_HEALTH];
  const base = {
    name: agent,
    labels: agentLabels(lease),
    draining: lease.annotations[ANNOTATION_DRAIN] !== undefined && lease.annotations[ANNOTATION_DRAIN] !== 'false',
    fenced: isFenced(lease, agent),
    healthy: health === undefined || health === 'ok',
    observedAt,
  };
  return readySince === undefined ? base : { ...base, readySince };
}

/**
 * What an observation changed: 'none' (a replay of the stored version, or not one of our leases),
 * 'renewal' (a live agent renewed: only renewTime and resourceVersion moved), 'change' (anything a
 * plan could depend on: a new lease, another holder, labels, annotations, a lease that had expired
 * in this view coming back). Renewals move the observation clock but need no re-plan: expiry is
 * judged by time, at the wake-up the ownership plan asks for (ADR 0006, "what wakes a sync").
 */
export type LeaseChange = 'none' | 'renewal' | 'change';

function sameRecord(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

/** Everything but renewTime and resourceVersion is equal. */
function onlyRenewed(prev: LeaseRecord, next: LeaseRecord): boolean {
  return (
    prev.holder === next.holder &&
    prev.leaseDurationSeconds === next.leaseDurationSeconds &&
    prev.leaseTransitions === next.leaseTransitions &&
    prev.acquireTime?.getTime() === next.acquireTime?.getTime() &&
    sameRecord(prev.labels, next.labels) &&
    sameRecord(prev.annotations, next.annotations)
  );
}

export class LeaseView {
  private readonly agents = new Map<string, Observed>();
  private readonly addresses = new Map<string, Observed>();
  /** agent name -> lease name, address -> lease name (names parse once, lookups stay O(1)). */
  private readonly agentIndex = new Map<string, string>();
  private readonly addressIndex = new Map<string, string>();
  private blindNow = true;

  constructor(private readonly leaseDurationMs: number) {}

  get blind(): boolean {
    return this.blindNow;
  }

  /** An added or updated lease. Unknown names are ignored. */
  observe(lease: LeaseRecord, now: number): LeaseChange {
    const agent = parseAgentLeaseName(lease.name);
    const address = parseAddressLeaseName(lease.name);
    const map = agent !== undefined ? this.agents : address !== undefined ? this.addresses : undefined;
    if (map === undefined) return 'none';
    const prev = map.get(lease.name);
    if (prev !== undefined && prev.lease.resourceVersion === lease.resourceVersion) return 'none';
    const next: Observed = { lease, observedAt: now };
    if (agent !== undefined) {
      const ready = this.isReady(agent, next, now);
      const since = ready ? (prev?.readySince ?? now) : undefined;
      if (since !== undefined) next.readySince = since;
      this.agentIndex.set(agent, lease.name);
    } else if (address !== undefined) {
      this.addressIndex.set(address, lease.name);
    }
    map.set(lease.name, next);
    const wasFresh = prev !== undefined && now - prev.observedAt < this.leaseDurationMs;
    return prev !== undefined && wasFresh && onlyRenewed(prev.lease, lease) ? 'renewal' : 'change';
  }

  forget(name: string): void {
    const agent = parseAgentLeaseName(name);
    const address = parseAddressLeaseName(name);
    if (agent !== undefined && this.agentIndex.get(agent) === name) this.agentIndex.delete(agent);
    if (address !== undefined && this.addressIndex.get(address) === name) this.addressIndex.delete(address);
    this.agents.delete(name);
    this.addresses.delete(name);
  }

  /** The watch (re)connected or relisted: every observation restarts now (ADR 0005). */
  reset(now: number): void {
    for (const o of [...this.agents.values(), ...this.addresses.values()]) {
      o.observedAt = now;
      if (o.readySince !== undefined) o.readySince = now;
    }
    this.blindNow = false;
  }

  /** The watch is down or the API failed: judge nobody until the next reset. */
  markBlind(): void {
    this.blindNow = true;
  }

  /** Replace the whole content after a list; a reset at `now` follows. */
  replaceAll(leases: readonly LeaseRecord[], now: number): void {
    const keep = new Set(leases.map((l) => l.name));
    for (const name of [...this.agents.keys(), ...this.addresses.keys()]) if (!keep.has(name)) this.forget(name);
    for (const l of leases) this.observe(l, now);
    this.reset(now);
  }

  agentLease(agent: string): LeaseRecord | undefined {
    const name = this.agentIndex.get(agent);
    return name === undefined ? undefined : this.agents.get(name)?.lease;
  }

  /** The resourceVersion this agent judged `agent` by: the fencing CAS token (ADR 0005). */
  observedVersion(agent: string): string | undefined {
    return this.agentLease(agent)?.resourceVersion;
  }

  agentViews(now: number): AgentView[] {
    const out: AgentView[] = [];
    for (const o of this.agents.values()) {
      const name = parseAgentLeaseName(o.lease.name);
      if (name === undefined) continue;
      if (o.readySince !== undefined && !this.isReady(name, o, now)) delete o.readySince;
      out.push(agentViewOf(name, o.lease, o.observedAt, o.readySince));
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  addressViews(): AddressView[] {
    const out: AddressView[] = [];
    for (const o of this.addresses.values()) {
      const address = parseAddressLeaseName(o.lease.name);
      if (address === undefined) continue;
      out.push({ address, holder: o.lease.holder, pool: o.lease.annotations[ANNOTATION_POOL] ?? '', observedAt: o.observedAt });
    }
    return out.sort((a, b) => (a.address < b.address ? -1 : 1));
  }

  addressLease(address: string): LeaseRecord | undefined {
    const name = this.addressIndex.get(address);
    return name === undefined ? undefined : this.addresses.get(name)?.lease;
  }

  private isReady(agent: string, o: Observed, now: number): boolean {
    const v = agentViewOf(agent, o.lease, o.observedAt);
    return !v.fenced && !v.draining && v.healthy && now - o.observedAt < this.leaseDurationMs;
  }
}
