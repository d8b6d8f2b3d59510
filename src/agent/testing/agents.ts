// Test support: agents built from the real cluster parts (KubeLeaseStore, lease and resource
// informers against a real API server) with a FakeKernel behind the applier and a FakeKeepalived
// recording track states. Several agents run in one process. Never used by production code.
import type { KubeConfig } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { realClock, type Clock } from '../../cluster/clock.js';
import { ResourceInformers } from '../../cluster/informers.js';
import { LeaseInformer } from '../../cluster/lease-informer.js';
import { KubeLeaseStore } from '../../cluster/lease-store.js';
import { KubeConfiguredAddressWriter } from '../../cluster/configured-addresses.js';
import { DataPlaneApplier } from '../../dataplane/apply.js';
import { FakeKernel } from '../../dataplane/testing/fake-kernel.js';
import type { KeepalivedInput } from '../../keepalived/render.js';
import type { ApplyOutcome, TrackState } from '../../keepalived/supervisor.js';
import { silentLogger } from '../../log/logger.js';
import { DEFAULT_SETTINGS } from '../../model/settings.js';
import { parseInterfaceAddress } from '../../model/net.js';
import type { AgentFacts } from '../../model/snapshot.js';
import type { LeaseSettings } from '../../plan/lease-settings.js';
import { Agent } from '../agent.js';
import type { LeaseView } from '../../plan/lease-view.js';
import { LeaderDuties } from '../leader-duties.js';
import { leaderDutiesHook } from '../leader-hook.js';
import { LeaderElector } from '../../cluster/leader-elector.js';
import { KubeStatusWriter } from '../../cluster/status-writer.js';
import { kubeEventRecorder } from '../../cluster/events.js';
import { createAgentMetrics } from '../metrics.js';
import type { KeepalivedPort } from '../ports.js';

export class FakeKeepalived implements KeepalivedPort {
  readonly tracks = new Map<string, TrackState>();
  configs: KeepalivedInput[] = [];
  alive: boolean | undefined;
  stopped = false;
  /** Called on every track write, before it is recorded (e.g. to check the kernel's state then). */
  onTrack: ((address: string, state: TrackState) => void) | undefined;

  async writeAgentAlive(alive: boolean): Promise<void> {
    this.alive = alive;
  }
  async writeTrack(address: string, state: TrackState): Promise<void> {
    this.onTrack?.(address, state);
    this.tracks.set(address, state);
  }
  async applyConfig(text: string, addresses: readonly string[]): Promise<ApplyOutcome> {
    const input = JSON.parse(text) as KeepalivedInput;
    for (const a of addresses) if (!this.tracks.has(a)) this.tracks.set(a, { eligible: false, role: 'standby' });
    this.configs.push(input);
    return this.configs.length === 1 ? 'started' : 'reloaded';
  }
  async stop(): Promise<void> {
    this.stopped = true;
  }
  /** Addresses this keepalived would carry as a holder (eligible, holder or degraded priority). */
  holding(): string[] {
    return [...this.tracks].filter(([, t]) => t.eligible && (t.role === 'holder' || t.role === 'degraded')).map(([a]) => a).sort();
  }
}

export function agentFacts(index: number, labels: Record<string, string> = {}): AgentFacts {
  const must = (t: string): NonNullable<ReturnType<typeof parseInterfaceAddress>> => {
    const p = parseInterfaceAddress(t);
    if (!p) throw new Error(t);
    return p;
  };
  return {
    name: `agent-${index}`,
    labels,
    interfaces: [
      { name: 'ext0', role: 'external', addresses: [must(`203.0.113.${2 + index}/24`)], gateway: '203.0.113.1' },
      { name: 'int0', role: 'internal', addresses: [must(`198.51.100.${2 + index}/24`)] },
    ],
  };
}

export interface TestAgent {
  readonly agent: Agent;
  readonly kernel: FakeKernel;
  readonly keepalived: FakeKeepalived;
  readonly leaseInformer: () => LeaseInformer;
  readonly registry: Registry;
  readonly elector?: LeaderElector;
}

export interface TestAgentOptions {
  readonly kc: KubeConfig;
  readonly namespace: string;
  /** Namespaces whose Mappings/Services/slices are watched (the test's own). */
  readonly watchNamespaces: readonly string[];
  readonly name: string;
  readonly index: number;
  readonly settings: LeaseSettings;
  readonly clock?: Clock;
  readonly handoffGraceMs?: number;
  readonly labels?: Record<string, string>;
  readonly stateFile?: string;
  /** A separate kubeconfig for the lease watch (e.g. through a FreezableProxy). */
  readonly leaseKc?: KubeConfig;
  /** Campaign for smartnat-leader and run the leader's duties (which create the address leases). */
  readonly withLeader?: boolean;
}

export function makeTestAgent(o: TestAgentOptions): TestAgent {
  const kernel = new FakeKernel();
  const keepalived = new FakeKeepalived();
  const registry = new Registry();
  const clock = o.clock ?? realClock;
  let informer: LeaseInformer | undefined;
  const ref: { agent?: Agent } = {};
  const cluster = new ResourceInformers({ kc: o.kc, namespaces: o.watchNamespaces, changed: () => ref.agent?.resourcesChanged(), backoff: { initialMs: 100, maxMs: 1000 } });
  const facts = { ...agentFacts(o.index, o.labels), name: o.name };
  const store = new KubeLeaseStore(o.kc, o.namespace);
  const elector = o.withLeader
    ? new LeaderElector(store, o.name, o.settings, clock, { startedLeading: () => ref.agent?.trigger('leader'), stoppedLeading: () => ref.agent?.trigger('leader') })
    : undefined;
  const duties = o.withLeader
    ? new LeaderDuties({ leases: store, status: new KubeStatusWriter(o.kc), events: kubeEventRecorder(o.kc, o.name, clock), namespace: o.namespace, log: silentLogger(), clock, settings: o.settings })
    : undefined;
  const agent: Agent = new Agent({
    name: o.name,
    clock,
    log: silentLogger(),
    metrics: createAgentMetrics(registry),
    settings: o.settings,
    dataPlaneSettings: DEFAULT_SETTINGS,
    store,
    cluster,
    makeLeaseFeed: (view, changed) => {
      informer = new LeaseInformer({ kc: o.leaseKc ?? o.kc, namespace: o.namespace, view, clock, changed, quietAfterMs: 3 * o.settings.leaseDurationMs, backoff: { initialMs: 100, maxMs: 1000 } });
      return informer;
    },
    applier: new DataPlaneApplier({ runner: kernel, backoffMs: { initial: 100, max: 1000 } }),
    keepalived: { port: keepalived, render: (input) => JSON.stringify(input), stateDir: `/run/smartnat-test/${o.name}` },
    statusWriter: new KubeConfiguredAddressWriter(o.kc, o.name),
    local: { facts, macs: { ext0: `02:00:00:00:00:0${o.index}` } },
    ...(o.stateFile ? { stateFile: o.stateFile } : {}),
    handoffGraceMs: o.handoffGraceMs ?? 300,
    heartbeatMs: 500,
    fullResyncMs: 30_000,
    ...(elector && duties
      ? { leader: { elector, duties: leaderDutiesHook(duties, { objects: () => cluster.objects(), view: (): LeaseView => agent.view, me: o.name, settings: o.settings, clock }) } }
      : {}),
  });
  ref.agent = agent;
  return {
    agent,
    kernel,
    keepalived,
    registry,
    ...(elector ? { elector } : {}),
    leaseInformer: () => {
      if (!informer) throw new Error('lease informer not built');
      return informer;
    },
  };
}
