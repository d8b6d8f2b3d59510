import { describe, expect, it } from '@jest/globals';
import {
  ANNOTATION_DRAIN,
  ANNOTATION_FENCED_BY,
  ANNOTATION_POOL,
  LABEL_ROLE,
  addressLeaseName,
  agentLeaseName,
  parseAddressLeaseName,
  parseAgentLeaseName,
  type LeaseRecord,
} from './lease-names.js';
import { LeaseView } from './lease-view.js';

const D = 1500;
const VIP_1 = '203.0.113.10';

function lease(name: string, rv: string, holder: string, patch: Partial<LeaseRecord> = {}): LeaseRecord {
  return { name, resourceVersion: rv, holder, leaseDurationSeconds: 2, leaseTransitions: 0, labels: {}, annotations: {}, ...patch };
}
const agentLease = (agent: string, rv: string, patch: Partial<LeaseRecord> = {}): LeaseRecord =>
  lease(agentLeaseName(agent), rv, agent, { labels: { [LABEL_ROLE]: 'agent', zone: 'a' }, ...patch });

describe('lease names', () => {
  it('round-trips agent and address names', () => {
    expect(addressLeaseName(VIP_1)).toBe('smartnat-addr-203-0-113-10');
    expect(parseAddressLeaseName('smartnat-addr-203-0-113-10')).toBe(VIP_1);
    expect(parseAddressLeaseName('smartnat-addr-203-0-113')).toBeUndefined();
    expect(parseAddressLeaseName('smartnat-addr-203-0-113-256')).toBeUndefined();
    expect(parseAgentLeaseName(agentLeaseName('node-1'))).toBe('node-1');
    expect(parseAgentLeaseName('smartnat-leader')).toBeUndefined();
  });
});

describe('LeaseView observation clock', () => {
  it('is blind until the first reset', () => {
    const v = new LeaseView(D);
    expect(v.blind).toBe(true);
    v.replaceAll([agentLease('agent-a', '1')], 10);
    expect(v.blind).toBe(false);
  });

  it('moves an observation time only when the resourceVersion changes', () => {
    const v = new LeaseView(D);
    v.replaceAll([agentLease('agent-a', '1')], 0);
    v.observe(agentLease('agent-a', '1'), 500); // a relist replay of the same version
    expect(v.agentViews(600)[0]).toMatchObject({ name: 'agent-a', observedAt: 0, labels: { zone: 'a' } });
    v.observe(agentLease('agent-a', '2'), 700);
    expect(v.agentViews(800)[0]).toMatchObject({ observedAt: 700 });
    expect(v.observedVersion('agent-a')).toBe('2');
  });

  it('reset after a reconnect restarts every clock', () => {
    const v = new LeaseView(D);
    v.replaceAll([agentLease('agent-a', '1'), lease(addressLeaseName(VIP_1), '5', 'agent-a', { annotations: { [ANNOTATION_POOL]: 'p' } })], 0);
    v.markBlind();
    expect(v.blind).toBe(true);
    v.reset(10_000);
    expect(v.blind).toBe(false);
    expect(v.agentViews(10_000)[0]!.observedAt).toBe(10_000);
    expect(v.addressViews()).toEqual([{ address: VIP_1, holder: 'agent-a', pool: 'p', observedAt: 10_000 }]);
  });

  it('sees fencing and drain marks', () => {
    const v = new LeaseView(D);
    v.replaceAll(
      [
        agentLease('agent-a', '1', { holder: '' }),
        agentLease('agent-b', '1', { annotations: { [ANNOTATION_FENCED_BY]: 'agent-c' } }),
        agentLease('agent-c', '1', { annotations: { [ANNOTATION_DRAIN]: 'true' } }),
      ],
      0,
    );
    expect(v.agentViews(1).map((a) => [a.name, a.fenced, a.draining])).toEqual([
      ['agent-a', true, false],
      ['agent-b', true, false],
      ['agent-c', false, true],
    ]);
  });

  it('tracks how long an agent has been ready, and forgets it when it expires', () => {
    const v = new LeaseView(D);
    v.replaceAll([agentLease('agent-a', '1')], 0);
    for (let t = 250, rv = 2; t <= 5000; t += 250, rv++) v.observe(agentLease('agent-a', String(rv)), t);
    expect(v.agentViews(5000)[0]!.readySince).toBe(0);
    expect(v.agentViews(5000 + D)[0]!.readySince).toBeUndefined();
    v.observe(agentLease('agent-a', '100'), 9000);
    expect(v.agentViews(9000)[0]!.readySince).toBe(9000);
    v.observe(agentLease('agent-a', '101', { annotations: { [ANNOTATION_DRAIN]: 'true' } }), 9100);
    expect(v.agentViews(9100)[0]!.readySince).toBeUndefined();
  });
});

describe('LeaseView change classification (what wakes a sync)', () => {
  it('calls a live agent renewing a renewal, and anything a plan reads a change', () => {
    const v = new LeaseView(D);
    expect(v.observe(agentLease('agent-a', '1'), 0)).toBe('change'); // new lease
    expect(v.observe(agentLease('agent-a', '1'), 100)).toBe('none'); // replay
    expect(v.observe(agentLease('agent-a', '2', { renewTime: new Date(250) }), 250)).toBe('renewal');
    expect(v.observe(agentLease('agent-a', '3', { annotations: { [ANNOTATION_DRAIN]: 'true' } }), 500)).toBe('change');
    expect(v.observe(agentLease('agent-a', '4', { annotations: { [ANNOTATION_DRAIN]: 'true' }, labels: { [LABEL_ROLE]: 'agent', zone: 'b' } }), 750)).toBe('change');
    expect(v.observe(agentLease('agent-a', '5', { annotations: { [ANNOTATION_DRAIN]: 'true' }, labels: { [LABEL_ROLE]: 'agent', zone: 'b' }, holder: '' }), 1000)).toBe('change');
    expect(v.observe(lease('smartnat-leader', '9', 'agent-a'), 1000)).toBe('none'); // not one of ours
  });

  it('calls a renewal after the lease had expired in this view a change (the agent came back)', () => {
    const v = new LeaseView(D);
    v.observe(agentLease('agent-a', '1'), 0);
    expect(v.observe(agentLease('agent-a', '2'), D + 1)).toBe('change');
    expect(v.observe(agentLease('agent-a', '3'), D + 200)).toBe('renewal');
  });

  it('finds leases by agent and by address after they change and forgets them', () => {
    const v = new LeaseView(D);
    v.observe(agentLease('agent-a', '1'), 0);
    v.observe(lease(addressLeaseName(VIP_1), '7', 'agent-a', { annotations: { [ANNOTATION_POOL]: 'edge' } }), 0);
    v.observe(lease(addressLeaseName(VIP_1), '8', 'agent-b', { annotations: { [ANNOTATION_POOL]: 'edge' } }), 10);
    expect(v.addressLease(VIP_1)?.holder).toBe('agent-b');
    expect(v.agentLease('agent-a')?.resourceVersion).toBe('1');
    v.forget(addressLeaseName(VIP_1));
    v.forget(agentLeaseName('agent-a'));
    expect(v.addressLease(VIP_1)).toBeUndefined();
    expect(v.agentLease('agent-a')).toBeUndefined();
  });
});
