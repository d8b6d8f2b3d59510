// Per-agent data-plane health with hysteresis (DESIGN.md 3.1 "Per-address health"): a fresh agent
// lease does not mean the data plane works. A failing check — an external or internal link down,
// keepalived in FAULT for an address this agent made eligible, no internal next hop of any ready
// endpoint answering — makes the agent unhealthy after a short hold-down; it becomes healthy again
// only after a longer one, so a flapping input does not move addresses back and forth. Pure; the
// agent samples its inputs and publishes the result on its lease (annotation /health), where every
// agent's ranking reads it.

/** What a sample checked: a link's state, keepalived's state of one address, internal reachability. */
export type HealthCheck = 'link' | 'vrrp' | 'reachability';

export interface LinkSample {
  /** The interface ('link', 'reachability') or the address ('vrrp'). */
  readonly name: string;
  readonly role: 'external' | 'internal';
  /** Link: administratively up and carrier present. vrrp: not in FAULT. reachability: a next hop answered. */
  readonly up: boolean;
  /** Absent = 'link'. */
  readonly check?: HealthCheck;
}

const CHECK_ORDER: Readonly<Record<HealthCheck, number>> = { link: 0, vrrp: 1, reachability: 2 };

export interface HealthSettings {
  /** A failure must last this long before the agent says it is unhealthy. */
  readonly unhealthyAfterMs: number;
  /** Everything must be fine this long before the agent says it is healthy again. */
  readonly healthyAfterMs: number;
}

export const DEFAULT_HEALTH_SETTINGS: HealthSettings = { unhealthyAfterMs: 1000, healthyAfterMs: 10_000 };

export interface HealthState {
  /** What is published: 'ok', or the reason, e.g. 'externalLinkDown:ext0'. */
  readonly published: string;
  /** The reason seen in the last sample ('ok' when nothing failed). */
  readonly observed: string;
  /** When `observed` last changed (monotonic ms). */
  readonly observedSince: number;
}

export function initialHealth(now: number): HealthState {
  return { published: 'ok', observed: 'ok', observedSince: now };
}

function reasonOf(s: LinkSample): string {
  switch (s.check ?? 'link') {
    case 'link':
      return `${s.role}LinkDown:${s.name}`;
    case 'vrrp':
      return `vrrpFault:${s.name}`;
    case 'reachability':
      return `internalUnreachable:${s.name}`;
  }
}

/**
 * The first failing sample in a stable order, or 'ok': links before keepalived before reachability
 * (a down link also faults keepalived and cuts next hops off: the reason names the cause), external
 * before internal, then by name.
 */
export function sampleReason(links: readonly LinkSample[]): string {
  const down = links
    .filter((l) => !l.up)
    .sort((a, b) => CHECK_ORDER[a.check ?? 'link'] - CHECK_ORDER[b.check ?? 'link'] || (a.role === b.role ? (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) : a.role === 'external' ? -1 : 1));
  const first = down[0];
  return first === undefined ? 'ok' : reasonOf(first);
}

/**
 * keepalived's last reported state of every address this agent has made eligible (holder,
 * degraded or releasing): FAULT there means the wire cannot carry what the lease says (its
 * interface lost its address or carrier, a track file faulted it). Addresses this agent keeps
 * ineligible are in FAULT on purpose and give no sample; an address keepalived has not reported
 * yet is not judged.
 */
export function vrrpSamples(eligible: ReadonlyMap<string, boolean>, states: ReadonlyMap<string, string>): LinkSample[] {
  return [...eligible.entries()]
    .filter(([address, on]) => on && states.has(address))
    .map(([address]) => ({ name: address, role: 'external' as const, up: states.get(address) !== 'FAULT', check: 'vrrp' as const }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export function decideHealth(prev: HealthState, links: readonly LinkSample[], now: number, s: HealthSettings): HealthState {
  const observed = sampleReason(links);
  const observedSince = observed === prev.observed ? prev.observedSince : now;
  const steadyFor = now - observedSince;
  let published = prev.published;
  if (observed === 'ok' && published !== 'ok' && steadyFor >= s.healthyAfterMs) published = 'ok';
  else if (observed !== 'ok' && published === 'ok' && steadyFor >= s.unhealthyAfterMs) published = observed;
  else if (observed !== 'ok' && published !== 'ok' && observed !== published) published = observed;
  return { published, observed, observedSince };
}

/** When the published value could next change without a new sample (for the sync's wake-up). */
export function nextHealthChangeAt(state: HealthState, s: HealthSettings): number | undefined {
  if (state.observed === 'ok' && state.published !== 'ok') return state.observedSince + s.healthyAfterMs;
  if (state.observed !== 'ok' && state.published === 'ok') return state.observedSince + s.unhealthyAfterMs;
  return undefined;
}
