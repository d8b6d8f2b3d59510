import { computeStatusView, renderStatusTable } from './status-view.js';
import { LABEL_ROLE, addressLeaseName, agentLeaseName, type LeaseRecord } from './lease-names.js';

const VIP_1 = '203.0.113.10';
const VIP_2 = '203.0.113.9';

function lease(name: string, holder: string, rv: string, annotations: Record<string, string> = {}): LeaseRecord {
  return { name, resourceVersion: rv, holder, leaseDurationSeconds: 2, leaseTransitions: 0, acquireTime: new Date('2026-11-26T10:00:00Z'), labels: { [LABEL_ROLE]: 'agent' }, annotations };
}

describe('status view', () => {
  const input = {
    agentsBefore: [lease(agentLeaseName('a'), 'a', '1'), lease(agentLeaseName('b'), 'b', '5')],
    agentsAfter: [lease(agentLeaseName('b'), 'b', '5'), lease(agentLeaseName('a'), 'a', '2')],
    addresses: [lease(addressLeaseName(VIP_1), 'a', '9'), lease(addressLeaseName(VIP_2), '', '3')],
    leader: lease('smartnat-leader', 'b', '7'),
    mappings: [],
  };

  it('judges liveness by change between the two reads, not by timestamps', () => {
    const view = computeStatusView(input);
    expect(view.agents.map((a) => [a.name, a.liveness, a.leader, a.owned])).toEqual([
      ['a', 'alive', false, 1],
      ['b', 'stale', true, 0],
    ]);
  });

  it('sorts addresses numerically and shows free ones', () => {
    const view = computeStatusView(input);
    expect(view.addresses.map((a) => [a.address, a.owner])).toEqual([
      [VIP_2, ''],
      [VIP_1, 'a'],
    ]);
    const text = renderStatusTable(view, new Date('2026-11-26T10:01:00Z'));
    expect(text).toMatch(/203\.0\.113\.9 +- +\(free\)/);
    expect(text).toMatch(/203\.0\.113\.10 +- +a +- +60s/);
  });
});
