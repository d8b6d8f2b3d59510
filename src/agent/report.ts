// What this agent reports as programmed: its own `status.configuredAddresses[address]` entries,
// per Mapping, from the data plane it actually applied (DESIGN.md 2.1). Pure. Guarantees: the
// entries depend only on the applied desired state (sorted), so an unchanged kernel gives an
// identical report and no write. Does not write (src/cluster/configured-addresses.ts does).
import type { ConfiguredAddress, Mapping } from '../api/types.js';
import type { DesiredDataPlane } from '../plan/desired.js';
import { refKey } from '../model/snapshot.js';

export interface MappingReport {
  readonly namespace: string;
  readonly name: string;
  /** address -> entry, without programmedAt (added at write time). */
  readonly entries: Readonly<Record<string, ConfiguredAddress>>;
}

/** Reports for every Mapping with a port on an owned address, keyed by namespace/name. */
export function computeReports(applied: DesiredDataPlane, agent: string, mappings: ReadonlyMap<string, Mapping>): Map<string, MappingReport> {
  const acc = new Map<string, { namespace: string; name: string; entries: Map<string, { pods: Set<string>; endpoints: Set<string> }> }>();
  for (const a of applied.addresses) {
    if (!a.owned) continue;
    for (const p of a.ports) {
      const key = refKey(p.mapping);
      const r = acc.get(key) ?? { namespace: p.mapping.namespace, name: p.mapping.name, entries: new Map() };
      acc.set(key, r);
      const e = r.entries.get(a.address) ?? { pods: new Set<string>(), endpoints: new Set<string>() };
      r.entries.set(a.address, e);
      for (const ep of p.endpoints) {
        e.pods.add(ep.ip);
        e.endpoints.add(`${ep.ip}:${ep.port}/${p.protocol}`);
      }
    }
  }
  const out = new Map<string, MappingReport>();
  for (const [key, r] of [...acc].sort(([x], [y]) => (x < y ? -1 : 1))) {
    const generation = mappings.get(key)?.generation;
    const entries: Record<string, ConfiguredAddress> = {};
    for (const [address, e] of [...r.entries].sort(([x], [y]) => (x < y ? -1 : 1))) {
      const entry: ConfiguredAddress = { owner: agent, podIPs: [...e.pods].sort(), endpoints: [...e.endpoints].sort() };
      entries[address] = generation === undefined ? entry : { ...entry, observedGeneration: generation };
    }
    out.set(key, { namespace: r.namespace, name: r.name, entries });
  }
  return out;
}
