import { describe, expect, it } from '@jest/globals';
import { pool } from '../dataplane/testing/fixtures.js';
import { parseInterfaceAddress } from '../model/net.js';
import type { AgentFacts } from '../model/snapshot.js';
import { ANNOTATION_INTERFACE, ANNOTATION_POOL, ANNOTATION_VRID, LABEL_ROLE, addressLeaseName, agentLeaseName, type LeaseRecord } from '../plan/lease-names.js';
import { ANNOTATION_INTERFACES } from './facts.js';
import { decideTrack, planKeepalivedInstances } from './keepalived-plan.js';

const VIP_1 = '203.0.113.10';
const VIP_2 = '203.0.113.11';
const VIP_B = '192.0.2.10';

function lease(name: string, annotations: Record<string, string>, labels: Record<string, string> = {}): LeaseRecord {
  return { name, resourceVersion: '1', holder: '', leaseDurationSeconds: 2, leaseTransitions: 0, labels, annotations };
}

function me(labels: Record<string, string>): AgentFacts {
  const a = parseInterfaceAddress('203.0.113.2/24');
  const b = parseInterfaceAddress('198.51.100.2/24');
  if (!a || !b) throw new Error('fixture');
  return { name: 'agent-a', labels, interfaces: [{ name: 'ext0', role: 'external', addresses: [a] }, { name: 'int0', role: 'internal', addresses: [b] }] };
}

function peer(agent: string, labels: Record<string, string>, ext: string): { agent: string; lease: LeaseRecord } {
  const interfaces = JSON.stringify([{ name: 'uplink', role: 'external', addresses: [ext] }, { name: 'int0', role: 'internal', addresses: ['198.51.100.9/24'] }]);
  return { agent, lease: lease(agentLeaseName(agent), { [ANNOTATION_INTERFACES]: interfaces }, { ...labels, [LABEL_ROLE]: 'agent' }) };
}

describe('planKeepalivedInstances', () => {
  const pools = [pool('edge', ['203.0.113.10-203.0.113.20'], { agentSelector: { tier: 'edge' } }), pool('other', ['192.0.2.10'])];

  it('one instance per eligible address: VRID from the lease, source on the interface whose subnet holds it, peers from eligible agents only', () => {
    const instances = planKeepalivedInstances({
      me: me({ tier: 'edge' }),
      addressLeases: [
        lease(addressLeaseName(VIP_2), { [ANNOTATION_POOL]: 'edge', [ANNOTATION_VRID]: '7' }),
        lease(addressLeaseName(VIP_1), { [ANNOTATION_POOL]: 'edge', [ANNOTATION_VRID]: '3' }),
        // No interface of ours holds 192.0.2.0/24: not eligible here.
        lease(addressLeaseName(VIP_B), { [ANNOTATION_POOL]: 'other', [ANNOTATION_VRID]: '1' }),
        // Unknown pool and a lease without a VRID: nothing to carry.
        lease(addressLeaseName('203.0.113.12'), { [ANNOTATION_POOL]: 'gone', [ANNOTATION_VRID]: '4' }),
        lease(addressLeaseName('203.0.113.13'), { [ANNOTATION_POOL]: 'edge' }),
      ],
      peerLeases: [peer('agent-c', { tier: 'edge' }, '203.0.113.4/24'), peer('agent-b', { tier: 'edge' }, '203.0.113.3/24'), peer('agent-x', { tier: 'core' }, '203.0.113.5/24')],
      pools,
    });
    expect(instances).toEqual([
      { address: VIP_1, interface: 'ext0', vrid: 3, sourceAddress: '203.0.113.2', peers: ['203.0.113.3', '203.0.113.4'], advertIntervalMs: 1000 },
      { address: VIP_2, interface: 'ext0', vrid: 7, sourceAddress: '203.0.113.2', peers: ['203.0.113.3', '203.0.113.4'], advertIntervalMs: 1000 },
    ]);
  });

  it('an agent the pool does not select carries nothing; a named interface it lacks neither', () => {
    const leases = [lease(addressLeaseName(VIP_1), { [ANNOTATION_POOL]: 'edge', [ANNOTATION_VRID]: '3' })];
    expect(planKeepalivedInstances({ me: me({ tier: 'core' }), addressLeases: leases, peerLeases: [], pools })).toEqual([]);
    const named = [lease(addressLeaseName(VIP_1), { [ANNOTATION_POOL]: 'edge', [ANNOTATION_VRID]: '3', [ANNOTATION_INTERFACE]: 'ext9' })];
    expect(planKeepalivedInstances({ me: me({ tier: 'edge' }), addressLeases: named, peerLeases: [], pools })).toEqual([]);
  });
});

describe('decideTrack', () => {
  const base = { held: new Set([VIP_1]), announceable: new Set<string>(), releasing: new Set<string>(), degraded: false };

  it('a holder is eligible only once its NAT is programmed, and at the degraded priority while it cannot renew', () => {
    expect(decideTrack(VIP_1, base)).toEqual({ eligible: false, role: 'standby' });
    expect(decideTrack(VIP_1, { ...base, announceable: new Set([VIP_1]) })).toEqual({ eligible: true, role: 'holder' });
    expect(decideTrack(VIP_1, { ...base, announceable: new Set([VIP_1]), degraded: true })).toEqual({ eligible: true, role: 'degraded' });
  });

  it('the old owner of a planned handoff releases; everyone else is ineligible', () => {
    expect(decideTrack(VIP_2, { ...base, releasing: new Set([VIP_2]) })).toEqual({ eligible: true, role: 'releasing' });
    expect(decideTrack(VIP_2, base)).toEqual({ eligible: false, role: 'standby' });
  });
});

describe('planKeepalivedInstances: egress companions (ADR 0009)', () => {
  const gateways = (texts: string[]): { egress: { gateways: { first: number; last: number; text: string }[] } } => ({
    egress: { gateways: pool('g', texts).spec.addresses.map((r) => ({ ...r })) },
  });
  const leases = [
    lease(addressLeaseName(VIP_1), { [ANNOTATION_POOL]: 'edge', [ANNOTATION_VRID]: '3' }),
    lease(addressLeaseName(VIP_2), { [ANNOTATION_POOL]: 'edge', [ANNOTATION_VRID]: '4' }),
  ];

  it('carries the pool-aligned gateway on the internal interface whose subnet holds it', () => {
    const pools = [pool('edge', ['203.0.113.10-203.0.113.20'], gateways(['198.51.100.110-198.51.100.120']))];
    const instances = planKeepalivedInstances({ me: me({}), addressLeases: leases, peerLeases: [], pools });
    expect(instances.map((i) => [i.address, i.companion])).toEqual([
      [VIP_1, { address: '198.51.100.110', interface: 'int0' }],
      [VIP_2, { address: '198.51.100.111', interface: 'int0' }],
    ]);
  });

  it('carries no companion when the pool has no egress, or the gateway is on no internal subnet of this agent', () => {
    const none = planKeepalivedInstances({ me: me({}), addressLeases: leases, peerLeases: [], pools: [pool('edge', ['203.0.113.10-203.0.113.20'])] });
    expect(none.map((i) => i.companion)).toEqual([undefined, undefined]);
    const elsewhere = planKeepalivedInstances({ me: me({}), addressLeases: leases, peerLeases: [], pools: [pool('edge', ['203.0.113.10-203.0.113.20'], gateways(['198.18.9.10-198.18.9.20']))] });
    expect(elsewhere.map((i) => i.companion)).toEqual([undefined, undefined]);
  });
});
