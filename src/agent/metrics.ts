// The agent's Prometheus metrics on a registry the caller creates and passes in (nothing global,
// nothing built at import). Guarantees: every name carries the smartnat_ prefix and Prometheus
// suffixes; labels come from closed sets (reasons, phases, tools). Does not serve HTTP.
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface AgentMetrics {
  readonly ownedAddresses: Gauge;
  readonly leaseTransitions: Counter<'reason'>;
  readonly fences: Counter<'outcome'>;
  readonly syncDuration: Histogram<'phase'>;
  readonly dataplaneApplyFailures: Counter<'tool'>;
  readonly eventLoopLag: Gauge;
  readonly duplicateAddresses: Counter;
  /** Stops the event-loop delay sampler. */
  close(): void;
}

export function createAgentMetrics(registry: Registry): AgentMetrics {
  const registers = [registry];
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
    close: () => delay.disable(),
  };
}
