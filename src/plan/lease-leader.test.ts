import { describe, expect, it } from '@jest/globals';
import { LEADER_LEASE_NAME, type LeaseRecord } from './lease-names.js';
import { decideLeader } from './lease-leader.js';

const D = 1500;
const held = (holder: string): LeaseRecord => ({ name: LEADER_LEASE_NAME, resourceVersion: '7', holder, leaseDurationSeconds: 2, leaseTransitions: 3, labels: {}, annotations: {} });

describe('decideLeader', () => {
  it.each<[string, LeaseRecord | undefined, number, boolean, string, string]>([
    ['absent lease', undefined, 0, true, 'create', 'absent'],
    ['I hold it', held('me'), 0, true, 'renew', 'leader'],
    ['released', held(''), 0, true, 'acquire', 'free'],
    ['holder seen just now', held('other'), D - 1, true, 'wait', 'holderAlive'],
    ['holder unchanged for a lease duration', held('other'), D, true, 'acquire', 'holderExpired'],
    ['view not settled after an API error', held('other'), 10 * D, false, 'wait', 'viewNotSettled'],
  ])('%s', (_n, lease, elapsed, settled, action, reason) => {
    expect(decideLeader('me', { lease, observedAt: 1000 }, 1000 + elapsed, D, settled)).toEqual({ action, reason });
  });
});
