// The agent's Prometheus metrics on a registry the caller creates and passes in (nothing global,
// nothing built at import). Guarantees: every name carries the smartnat_ prefix and Prometheus
// suffixes; labels come from closed sets (reasons, phases, tools, API resources and verbs, HTTP
// codes, rule tables, set kinds, VRRP states) or from the agent's own configured objects
// (addresses, Mappings), whose series are removed when the object goes. Does not serve HTTP.
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, collectDefaultMetrics, type Registry } from 'prom-client';

export interface AgentMetrics {
  readonly ownedAddresses: Gauge;
  readonly leaseTransitions: Counter<'reason'>;
  readonly fences: Counter<'outcome'>;
  readonly syncDuration: Histogram<'phase'>;
  readonly dataplaneApplyFailures: Counter<'tool'>;
  readonly eventLoopLag: Gauge;
  readonly duplicateAddresses: Counter;
  /** One API request through an instrumented port (src/agent/api-metrics.ts). */
  readonly apiRequestDuration: Histogram<'resource' | 'verb'>;
  readonly apiRequestErrors: Counter<'resource' | 'verb' | 'code'>;
  /** Rules in our chains per table and entries of our sets per kind, after the last successful apply. */
  readonly dataplaneRules: Gauge<'table'>;
  readonly dataplaneSetEntries: Gauge<'set'>;
  /** 1 for keepalived's current VRRP state of an address, 0 for the other states. */
  readonly keepalivedState: Gauge<'address' | 'state'>;
  /** Observed by the agent that receives an address (src/agent/agent.ts), once it is in service there. */
  readonly failoverDuration: Histogram;
  readonly handoffDuration: Histogram;
  /** Stops the event-loop delay sampler. */
  close(): void;
}

/** Failover and handoff buckets, 50 ms to 30 s. */
export const HANDOVER_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 20, 30];

export function createAgentMetrics(registry: Registry): AgentMetrics {
  const registers = [registry];
  // Process and V8 heap figures (smartnat_process_resident_memory_bytes,
  // smartnat_nodejs_heap_size_used_bytes, ...), read at scrape time: RSS alone cannot tell a leak
  // from a heap that has not been collected yet.
  collectDefaultMetrics({ register: registry, prefix: 'smartnat_', eventLoopMonitoringPrecision: 100 });
  const delay: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const eventLoopLag = new Gauge({
    name: 'smartnat_event_loop_lag_seconds',
    help: 'Largest event-loop delay seen since the last scrape (renewals starve when this grows)',
    registers,
    collect() {
      this.set(delay.max / 1e9);
      delay.reset();
    },
  });
  return {
    ownedAddresses: new Gauge({ name: 'smartnat_owned_addresses', help: 'Addresses whose lease this agent holds', registers }),
    leaseTransitions: new Counter({ name: 'smartnat_lease_transitions_total', help: 'Address-lease writes by this agent that changed the holder, by reason', labelNames: ['reason'], registers }),
    fences: new Counter({ name: 'smartnat_fence_attempts_total', help: 'Fencing writes on agent leases judged expired, by outcome', labelNames: ['outcome'], registers }),
    syncDuration: new Histogram({
      name: 'smartnat_sync_duration_seconds',
      help: 'Duration of each reconcile phase',
      labelNames: ['phase'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    dataplaneApplyFailures: new Counter({ name: 'smartnat_dataplane_apply_failures_total', help: 'Failed data-plane applies, by tool', labelNames: ['tool'], registers }),
    eventLoopLag,
    duplicateAddresses: new Counter({ name: 'smartnat_duplicate_address_total', help: 'ARP probes after becoming the owner that found another host answering for the address', registers }),
    apiRequestDuration: new Histogram({
      name: 'smartnat_api_request_duration_seconds',
      help: 'Duration of the agent\'s API server requests (leases, Mapping and AddressPool status, Events), by resource and verb',
      labelNames: ['resource', 'verb'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    apiRequestErrors: new Counter({ name: 'smartnat_api_request_errors_total', help: 'API server requests that failed, by resource, verb and HTTP code (or timeout / network)', labelNames: ['resource', 'verb', 'code'], registers }),
    dataplaneRules: new Gauge({ name: 'smartnat_dataplane_rules', help: 'Rules in SmartNat\'s own chains after the last successful apply, by table', labelNames: ['table'], registers }),
    dataplaneSetEntries: new Gauge({ name: 'smartnat_dataplane_set_entries', help: 'Entries of SmartNat\'s ipsets after the last successful apply, by set kind', labelNames: ['set'], registers }),
    keepalivedState: new Gauge({ name: 'smartnat_keepalived_state', help: 'keepalived\'s VRRP state per address from its notify FIFO: 1 for the current state', labelNames: ['address', 'state'], registers }),
    failoverDuration: new Histogram({ name: 'smartnat_failover_duration_seconds', help: 'Unplanned failover taken by this agent: from the old holder\'s last observed renewal to the address in service here (NAT programmed, announced as holder)', buckets: HANDOVER_BUCKETS, registers }),
    handoffDuration: new Histogram({ name: 'smartnat_handoff_duration_seconds', help: 'Planned handoff received by this agent: from the lease naming it observed to the address in service here', buckets: HANDOVER_BUCKETS, registers }),
    close: () => delay.disable(),
  };
}
