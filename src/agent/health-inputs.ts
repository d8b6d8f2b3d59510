// What the agent's health samples beyond its links (src/plan/agent-health.ts): keepalived's state
// of each address the agent made eligible (a KeepalivedPort wrapper remembers what it wrote; the
// supervisor's notify-FIFO reader knows what keepalived answered), and internal reachability (a
// background monitor: route lookups and one ARP request per next hop, a few endpoints per round).
// Guarantees: sampling never waits on a probe (the sync reads the last finished round); the
// monitor's rounds never overlap. Does not decide health (decideHealth does) or ownership.
import type { Logger } from 'pino';
import type { CommandRunner } from '../dataplane/command-runner.js';
import { arpAnswers } from '../dataplane/arp-probe.js';
import type { TrackState, ApplyOutcome } from '../keepalived/supervisor.js';
import { canonicalIpv4 } from '../model/net.js';
import { vrrpSamples, type LinkSample } from '../plan/agent-health.js';
import type { DesiredDataPlane } from '../plan/desired.js';
import { endpointAddresses, internalNextHops, reachabilitySamples, rotatingPick, roundAnswered, type EndpointRoute, type HopResult } from '../plan/reachability.js';
import type { KeepalivedPort } from './ports.js';

/** A KeepalivedPort that remembers which addresses this agent made eligible (and still configures). */
export class EligibilityRecorder implements KeepalivedPort {
  readonly #eligible = new Map<string, boolean>();

  constructor(private readonly inner: KeepalivedPort) {}

  get eligible(): ReadonlyMap<string, boolean> {
    return this.#eligible;
  }

  async writeAgentAlive(alive: boolean): Promise<void> {
    await this.inner.writeAgentAlive(alive);
  }

  async writeTrack(address: string, state: TrackState): Promise<void> {
    await this.inner.writeTrack(address, state);
    this.#eligible.set(address, state.eligible);
  }

  async applyConfig(text: string, addresses: readonly string[]): Promise<ApplyOutcome> {
    const outcome = await this.inner.applyConfig(text, addresses);
    for (const a of [...this.#eligible.keys()]) if (!addresses.includes(a)) this.#eligible.delete(a);
    return outcome;
  }

  async stop(): Promise<void> {
    await this.inner.stop();
  }
}

/** keepalived FAULT for eligible addresses, as health samples; `states` is empty when keepalived runs elsewhere. */
export function vrrpHealth(recorder: EligibilityRecorder, states: () => ReadonlyMap<string, { readonly state: string }>): LinkSample[] {
  const byAddress = new Map([...states()].map(([address, s]) => [address, s.state] as const));
  return vrrpSamples(recorder.eligible, byAddress);
}

export interface ReachabilityMonitorOptions {
  readonly runner: CommandRunner;
  /** The data plane in force (DataPlaneApplier.current()): its endpoints are what must be reachable. */
  readonly desired: () => DesiredDataPlane | undefined;
  readonly internal: readonly string[];
  readonly log: Logger;
  /** Pause between rounds (a round itself waits at most 500 ms for ARP answers). Default 250 ms. */
  readonly intervalMs?: number;
  /** Endpoints tried per round. Default 3. */
  readonly endpointsPerRound?: number;
}

export class ReachabilityMonitor {
  #round = 0;
  #failedRounds = 0;
  #endpoints = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(private readonly o: ReachabilityMonitorOptions) {}

  /** The last finished round's verdict (no samples before the first round or without endpoints). */
  samples(): LinkSample[] {
    return reachabilitySamples(this.#endpoints, this.#failedRounds, this.o.internal);
  }

  start(): void {
    if (this.o.internal.length === 0) return;
    const loop = (): void => {
      this.runRound().then(
        () => undefined,
        (err: unknown) => this.o.log.warn({ component: 'health', err }, 'reachability round failed'),
      ).finally(() => {
        if (this.#stopped) return;
        this.#timer = setTimeout(loop, this.o.intervalMs ?? 250);
        this.#timer.unref();
      });
    };
    loop();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
  }

  /** One round: a few endpoints' routes, one ARP request per internal next hop, all at once. */
  async runRound(): Promise<void> {
    const endpoints = endpointAddresses(this.o.desired());
    this.#endpoints = endpoints.length;
    if (endpoints.length === 0) {
      this.#failedRounds = 0;
      return;
    }
    const picked = rotatingPick(endpoints, this.#round++, this.o.endpointsPerRound ?? 3);
    const routes = await Promise.all(picked.map(async (ip) => this.route(ip)));
    const hops = internalNextHops(routes, new Set(this.o.internal));
    const tried: HopResult[] = await Promise.all(hops.map(async (h) => ({ ...h, answered: await arpAnswers(this.o.runner, h.device, h.hop) })));
    const before = this.#failedRounds;
    this.#failedRounds = roundAnswered(tried) ? 0 : this.#failedRounds + 1;
    if ((before === 0) !== (this.#failedRounds === 0)) {
      this.o.log.info({ component: 'health', reachable: this.#failedRounds === 0, tried: tried.map((t) => `${t.device}/${t.hop}:${t.answered ? 'answered' : 'silent'}`) }, this.#failedRounds === 0 ? 'internal next hops answer again' : 'no internal next hop answered');
    }
  }

  private async route(ip: string): Promise<EndpointRoute> {
    try {
      const parsed: unknown = JSON.parse((await this.o.runner.run('ip', ['-j', 'route', 'get', ip])).stdout);
      const first = (Array.isArray(parsed) ? parsed[0] : undefined) as Record<string, unknown> | undefined;
      const dev = first?.['dev'];
      const gw = typeof first?.['gateway'] === 'string' ? canonicalIpv4(first['gateway']) : undefined;
      return { endpoint: ip, ...(typeof dev === 'string' ? { device: dev } : {}), ...(gw !== undefined ? { gateway: gw } : {}) };
    } catch {
      return { endpoint: ip };
    }
  }
}
