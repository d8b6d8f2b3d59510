// Per-Mapping traffic metrics, read from our own rule and counting-set counters at scrape time
// (src/dataplane/counters.ts, ADR 0011; cached there, so the three metrics share one read):
//   smartnat_mapping_connections_total{namespace,mapping}
//   smartnat_mapping_packets_total{namespace,mapping,verdict}   verdict: allowed | denied
//   smartnat_mapping_bytes_total{namespace,mapping,verdict}
// Guarantees: the series are exactly the Mappings the applied state programs (a deleted Mapping's
// series go at the next read); the figures never go down while the agent runs; a failed read keeps
// the last figures and is logged once per scrape. Registered by the composition root
// (src/cli/agent.ts), which owns the runner the applier uses.
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { MappingTraffic } from '../dataplane/counters.js';

export interface MappingCounterSource {
  read(): Promise<MappingTraffic[]>;
}

type Labels = 'namespace' | 'mapping';
type VerdictLabels = Labels | 'verdict';

export interface MappingTrafficMetrics {
  readonly connections: Counter<Labels>;
  readonly packets: Counter<VerdictLabels>;
  readonly bytes: Counter<VerdictLabels>;
}

export function registerMappingTraffic(registry: Registry, source: MappingCounterSource, log: Logger): MappingTrafficMetrics {
  // Each metric's collect() asks the source; the source's cache (and in-flight sharing) makes that one read.
  async function figures(): Promise<MappingTraffic[] | undefined> {
    try {
      return await source.read();
    } catch (err: unknown) {
      log.warn({ component: 'metrics', err }, 'reading rule and set counters failed; keeping the last figures');
      return undefined;
    }
  }
  const connections = new Counter({
    name: 'smartnat_mapping_connections_total',
    help: 'New connections per Mapping, from the packet counters of its per-port nat rules (the first packet of each connection)',
    labelNames: ['namespace', 'mapping'],
    registers: [registry],
    async collect() {
      const all = await figures();
      if (!all) return;
      this.reset();
      for (const f of all) this.inc({ namespace: f.mapping.namespace, mapping: f.mapping.name }, f.connections);
    },
  });
  const traffic = (name: string, help: string, pick: (t: { packets: number; bytes: number }) => number): Counter<VerdictLabels> => new Counter({
    name,
    help,
    labelNames: ['namespace', 'mapping', 'verdict'],
    registers: [registry],
    async collect() {
      const all = await figures();
      if (!all) return;
      this.reset();
      for (const f of all) {
        this.inc({ namespace: f.mapping.namespace, mapping: f.mapping.name, verdict: 'allowed' }, pick(f.allowed));
        this.inc({ namespace: f.mapping.namespace, mapping: f.mapping.name, verdict: 'denied' }, pick(f.denied));
      }
    },
  });
  return {
    connections,
    packets: traffic('smartnat_mapping_packets_total', "Packets towards a Mapping's addresses and ports on this agent, by allow-list verdict (allowed; denied = connection attempts refused), from the counting sets (client to service direction only)", (t) => t.packets),
    bytes: traffic('smartnat_mapping_bytes_total', "Bytes (IP length) towards a Mapping's addresses and ports on this agent, by allow-list verdict (allowed; denied = connection attempts refused), from the counting sets (client to service direction only)", (t) => t.bytes),
  };
}
