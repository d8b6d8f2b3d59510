// smartnat_keepalived_state{address,state}: keepalived's VRRP state per address as its notify FIFO
// reported it, 1 for the current state and 0 for the other three. Guarantees: label values are the
// addresses of our own instances (SN_a_b_c_d) and the four VRRP states; an address whose instance
// leaves keepalived.conf loses its series at the next applied config (the port decorator below).
// Does not read the FIFO (NotifyFifoReader does, in either keepalived mode) or judge health.
import type { Gauge } from 'prom-client';
import type { VrrpState, VrrpStateChange } from '../keepalived/notify.js';
import type { KeepalivedPort } from './ports.js';

export const VRRP_STATES: readonly VrrpState[] = ['MASTER', 'BACKUP', 'FAULT', 'STOP'];

export class KeepalivedStateMetric {
  private readonly addresses = new Set<string>();

  constructor(private readonly gauge: Gauge<'address' | 'state'>) {}

  observe(change: VrrpStateChange): void {
    this.addresses.add(change.address);
    for (const state of VRRP_STATES) this.gauge.set({ address: change.address, state }, state === change.state ? 1 : 0);
  }

  /** Drops the series of addresses no longer configured. */
  retain(configured: readonly string[]): void {
    const keep = new Set(configured);
    for (const address of [...this.addresses]) {
      if (keep.has(address)) continue;
      for (const state of VRRP_STATES) this.gauge.remove({ address, state });
      this.addresses.delete(address);
    }
  }
}

/** The KeepalivedPort with `retain` after each config keepalived accepted. */
export function withKeepalivedStateMetric(port: KeepalivedPort, metric: KeepalivedStateMetric): KeepalivedPort {
  return {
    writeAgentAlive: async (alive) => port.writeAgentAlive(alive),
    writeTrack: async (address, state) => port.writeTrack(address, state),
    applyConfig: async (text, addresses) => {
      const outcome = await port.applyConfig(text, addresses);
      metric.retain(addresses);
      return outcome;
    },
    stop: async () => port.stop(),
  };
}
