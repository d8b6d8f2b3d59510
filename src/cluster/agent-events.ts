// Owns: recording an agent's own Events (core/v1, reporting component `smartnat-agent`) regarding
// its agent Lease `smartnat-agent-<agent>` in the agents' namespace, so `kubectl describe lease`
// and `kubectl get events` show what happened on that instance: DataPlaneApplyFailed, and
// FailoverCompleted / HandoffCompleted when an address it received is in service there.
// Guarantees: the Event names the Lease with its uid when the Lease can be read (kubectl describe
// selects Events by uid), without one otherwise; a failed create throws. Does not decide when an
// Event is due or de-duplicate (the caller, src/agent/dataplane-observer.ts, does).
import { CoordinationV1Api, CoreV1Api, type CoreV1Event, type KubeConfig } from './k8s.js';
import { agentLeaseName } from '../plan/lease-names.js';

export type AgentEventReason = 'DataPlaneApplyFailed' | 'FailoverCompleted' | 'HandoffCompleted';

export interface AgentEvent {
  readonly type: 'Normal' | 'Warning';
  readonly reason: AgentEventReason;
  readonly message: string;
}

export interface AgentEventSink {
  create(event: AgentEvent, at: Date): Promise<void>;
}

export interface AgentLeaseRef {
  readonly namespace: string;
  readonly agent: string;
  readonly uid?: string;
}

/** What an agent records when an address it received is in service there. Pure. */
export function takenOverEvent(e: { readonly address: string; readonly kind: 'failover' | 'handoff'; readonly from: string; readonly seconds: number }): AgentEvent {
  const from = e.from === '' ? '' : ` from ${e.from}`;
  return e.kind === 'failover'
    ? { type: 'Normal', reason: 'FailoverCompleted', message: `${e.address} taken over${from}: in service here ${e.seconds.toFixed(2)} s after the last renewal seen from its holder` }
    : { type: 'Normal', reason: 'HandoffCompleted', message: `${e.address} handed over${from}: in service here ${e.seconds.toFixed(2)} s after the lease named this agent` };
}

/** The core/v1 Event regarding the agent's Lease. Pure. */
export function agentLeaseEvent(event: AgentEvent, at: Date, lease: AgentLeaseRef): CoreV1Event {
  const name = agentLeaseName(lease.agent);
  return {
    metadata: { generateName: `${name}.`, namespace: lease.namespace },
    involvedObject: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', namespace: lease.namespace, name, ...(lease.uid === undefined ? {} : { uid: lease.uid }) },
    type: event.type,
    reason: event.reason,
    message: event.message,
    source: { component: 'smartnat-agent' },
    reportingComponent: 'smartnat.aureacentral.com/agent',
    reportingInstance: lease.agent,
    firstTimestamp: at,
    lastTimestamp: at,
    count: 1,
  };
}

export class KubeAgentEventSink implements AgentEventSink {
  private readonly core: CoreV1Api;
  private readonly leases: CoordinationV1Api;

  constructor(
    kc: KubeConfig,
    private readonly namespace: string,
    private readonly agent: string,
  ) {
    this.core = kc.makeApiClient(CoreV1Api);
    this.leases = kc.makeApiClient(CoordinationV1Api);
  }

  async create(event: AgentEvent, at: Date): Promise<void> {
    // Read every time (Events are rare: once per failure streak): a fenced agent's lease may be recreated.
    const lease = await this.leases.readNamespacedLease({ name: agentLeaseName(this.agent), namespace: this.namespace }).catch(() => undefined);
    const uid = lease?.metadata?.uid;
    const body = agentLeaseEvent(event, at, { namespace: this.namespace, agent: this.agent, ...(uid === undefined ? {} : { uid }) });
    try {
      await this.core.createNamespacedEvent({ namespace: this.namespace, body });
    } catch (err: unknown) {
      throw new Error(`recording Event ${event.reason} for Lease ${this.namespace}/${agentLeaseName(this.agent)} failed`, { cause: err });
    }
  }
}
