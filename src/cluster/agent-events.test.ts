import { describe, expect, it } from '@jest/globals';
import { agentLeaseEvent, takenOverEvent } from './agent-events.js';

describe('the agent\'s own Events', () => {
  it('says which address came from whom and how long it took, as FailoverCompleted or HandoffCompleted', () => {
    expect(takenOverEvent({ address: '203.0.113.10', kind: 'failover', from: 'a1', seconds: 1.8734 })).toEqual({
      type: 'Normal', reason: 'FailoverCompleted', message: '203.0.113.10 taken over from a1: in service here 1.87 s after the last renewal seen from its holder',
    });
    expect(takenOverEvent({ address: '203.0.113.11', kind: 'handoff', from: '', seconds: 0.05 })).toEqual({
      type: 'Normal', reason: 'HandoffCompleted', message: '203.0.113.11 handed over: in service here 0.05 s after the lease named this agent',
    });
  });

  it('regards the agent\'s Lease in the agents\' namespace', () => {
    const e = agentLeaseEvent(takenOverEvent({ address: '203.0.113.10', kind: 'failover', from: 'a1', seconds: 2 }), new Date(0), { namespace: 'smartnat-system', agent: 'a2', uid: 'u-1' });
    expect(e.involvedObject).toEqual({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', namespace: 'smartnat-system', name: 'smartnat-agent-a2', uid: 'u-1' });
    expect(e.reason).toBe('FailoverCompleted');
  });
});
