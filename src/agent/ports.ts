// The ports the agent is composed from, so three agents can run in one test process against one
// real API server with FakeKernel-backed appliers and a fake keepalived. Types only.
import type { ClusterObjects } from '../cluster/informers.js';
import type { DesiredDataPlane } from '../plan/desired.js';
import type { SyncReport } from '../dataplane/apply.js';
import type { ApplyOutcome, TrackState } from '../keepalived/supervisor.js';
import type { KeepalivedInput } from '../keepalived/render.js';

/** DataPlaneApplier's surface (src/dataplane/apply.ts). */
export interface DataPlanePort {
  sync(desired: DesiredDataPlane, options?: { full?: boolean }): Promise<SyncReport>;
  setOwned(owned: ReadonlySet<string>): Promise<SyncReport>;
  current(): DesiredDataPlane | undefined;
  retryDelayMs(): number;
}

/** KeepalivedSupervisor's surface (src/keepalived/supervisor.ts). */
export interface KeepalivedPort {
  writeAgentAlive(alive: boolean): Promise<void>;
  writeTrack(address: string, state: TrackState): Promise<void>;
  applyConfig(text: string, addresses: readonly string[]): Promise<ApplyOutcome>;
  stop(): Promise<void>;
}

export interface KeepalivedWiring {
  readonly port: KeepalivedPort;
  /** Renders keepalived.conf (the compiled template bound to renderKeepalivedConfig). */
  readonly render: (input: KeepalivedInput) => string;
  /** Absolute state dir keepalived's track files and FIFO live in. */
  readonly stateDir: string;
}

/** The resource informers' surface (src/cluster/informers.ts). */
export interface ClusterSource {
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly synced: boolean;
  unsynced(): string[];
  objects(): ClusterObjects;
}

/** A lease watch feeding the agent's LeaseView (src/cluster/lease-informer.ts). */
export interface LeaseFeed {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** The elector of `smartnat-leader` (src/cluster/leader-elector.ts). */
export interface LeaderElectorPort {
  readonly isLeader: boolean;
  start(): void;
  stop(opts?: { release: boolean }): Promise<void>;
}

/** The leader's cluster-wide duties, run from the reconcile loop while this agent leads
 * (leaderDutiesHook() in src/agent/leader-duties.ts adapts LeaderDuties to it). */
export interface LeaderDutiesHook {
  /** One pass; `more` when it stopped at its budget with writes left (the agent runs the next at once). */
  run(): Promise<{ readonly more: boolean }>;
}
