// Per-agent data-plane health with hysteresis (DESIGN.md 3.1 "Per-address health"): a fresh agent
// lease does not mean the data plane works. An external or internal link that is down makes the
// agent unhealthy after a short hold-down; it becomes healthy again only after a longer one, so a
// flapping link does not move addresses back and forth. Pure; the agent probes the links and
// publishes the result on its lease (annotation /health), where every agent's ranking reads it.
export interface LinkSample {
  readonly name: string;
  readonly role: 'external' | 'internal';
  /** Administratively up and carrier present. */
  readonly up: boolean;
}

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

/** The first failing link in a stable order (external before internal, then by name), or 'ok'. */
export function sampleReason(links: readonly LinkSample[]): string {
  const down = links
    .filter((l) => !l.up)
    .sort((a, b) => (a.role === b.role ? (a.name < b.name ? -1 : 1) : a.role === 'external' ? -1 : 1));
  const first = down[0];
  return first === undefined ? 'ok' : `${first.role}LinkDown:${first.name}`;
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
