// Adapts LeaderDuties (src/agent/leader-duties.ts) to the agent's LeaderDutiesHook: each run reads
// the informers' objects and the agent's LeaseView into the duties' input. Guarantees: agents are
// `live` by the same rule ownership uses (local observation, not fenced). Does not gate on
// readiness: the agent calls the hook only over complete caches.
import type { ClusterObjects } from '../cluster/informers.js';
import type { Clock } from '../cluster/clock.js';
import { readLeaderMapping } from '../plan/leader-input.js';
import type { LeaseSettings } from '../plan/lease-settings.js';
import type { LeaseView } from '../plan/lease-view.js';
import { isAgentAlive } from '../plan/ownership.js';
import type { LeaderDuties, LeaderDutiesInput } from './leader-duties.js';
import type { LeaderDutiesHook } from './ports.js';
import { parseCluster } from './snapshot.js';

const leaderMappings = new WeakMap<object, ReturnType<typeof readLeaderMapping>>();

/** readLeaderMapping once per raw object (the informers hand out the same object until it changes). */
function leaderMappingOf(raw: unknown): ReturnType<typeof readLeaderMapping> {
  if (typeof raw !== 'object' || raw === null) return readLeaderMapping(raw);
  const hit = leaderMappings.get(raw);
  if (hit !== undefined) return hit;
  const entry = readLeaderMapping(raw);
  leaderMappings.set(raw, entry);
  return entry;
}

export function leaderInputOf(objects: ClusterObjects, view: LeaseView, o: { me: string; now: number; settings: LeaseSettings }): LeaderDutiesInput {
  const parsed = parseCluster(objects);
  return {
    mappings: objects.mappings.map(leaderMappingOf),
    pools: parsed.pools,
    services: parsed.services,
    addressLeases: view.addressViews().flatMap((a) => view.addressLease(a.address) ?? []),
    agents: view.agentViews(o.now).map((a) => ({ name: a.name, live: isAgentAlive(o, a) })),
  };
}

export function leaderDutiesHook(
  duties: Pick<LeaderDuties, 'sync'>,
  source: { objects: () => ClusterObjects; view: () => LeaseView; me: string; settings: LeaseSettings; clock: Clock },
): LeaderDutiesHook {
  return {
    run: async () => {
      const report = await duties.sync(leaderInputOf(source.objects(), source.view(), { me: source.me, now: source.clock.now(), settings: source.settings }));
      if (report.failures.length > 0) throw new Error(`leader pass: ${report.failures.length} write(s) failed`);
      return { more: report.more };
    },
  };
}
