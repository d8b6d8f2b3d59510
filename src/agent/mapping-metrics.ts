// smartnat_mapping_connections_total{namespace,mapping}: new connections per Mapping, read from our
// own nat rules' counters at scrape time (src/dataplane/counters.ts; cached there). Guarantees: the
// series are exactly the Mappings the applied state programs (a deleted Mapping's series go at the
// next read); a failed read keeps the last figures and is logged. Registered by the composition
// root (src/cli/agent.ts), which owns the runner the applier uses.
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { MappingConnections } from '../dataplane/counters.js';

export interface MappingCounterSource {
  read(): Promise<MappingConnections[]>;
}

export function registerMappingConnections(registry: Registry, source: MappingCounterSource, log: Logger): Counter<'namespace' | 'mapping'> {
  return new Counter({
    name: 'smartnat_mapping_connections_total',
    help: 'New connections per Mapping, from the packet counters of its per-port nat rules (the first packet of each connection)',
    labelNames: ['namespace', 'mapping'],
    registers: [registry],
    async collect() {
      let figures: MappingConnections[];
      try {
        figures = await source.read();
      } catch (err: unknown) {
        log.warn({ component: 'metrics', err }, 'reading rule counters failed; keeping the last figures');
        return;
      }
      this.reset();
      for (const f of figures) this.inc({ namespace: f.mapping.namespace, mapping: f.mapping.name }, f.connections);
    },
  });
}
