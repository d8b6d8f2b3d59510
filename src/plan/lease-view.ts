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

export class LeaseView {
  private readonly agents = new Map<string, Observed>();
  private readonly addresses = new Map<string, Observed>();
  private blindNow = true;

  constructor(private readonly leaseDurationMs: number) {}

  get blind(): boolean {
    return this.blindNow;
  }

  /** An added or updated lease. Unknown names are ignored. */
  observe(lease: LeaseRecord, now: number): void {
    const agent = parseAgentLeaseName(lease.name);
    const address = parseAddressLeaseName(lease.name);
    const map = agent !== undefined ? this.agents : address !== undefined ? this.addresses : undefined;
    if (map === undefined) return;
    const prev = map.get(lease.name);
    if (prev !== undefined && prev.lease.resourceVersion === lease.resourceVersion) return;
    const next: Observed = { lease, observedAt: now };
    if (agent !== undefined) {
      const ready = this.isReady(agent, next, now);
      const since = ready ? (prev?.readySince ?? now) : undefined;
      if (since !== undefined) next.readySince = since;
    }
    map.set(lease.name, next);
  }

  forget(name: string): void {
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
    return [...this.agents.values()].find((o) => parseAgentLeaseName(o.lease.name) === agent)?.lease;
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
    return [...this.addresses.values()].find((o) => parseAddressLeaseName(o.lease.name) === address)?.lease;
  }

  private isReady(agent: string, o: Observed, now: number): boolean {
    const v = agentViewOf(agent, o.lease, o.observedAt);
    return !v.fenced && !v.draining && v.healthy && now - o.observedAt < this.leaseDurationMs;
  }
}
