// Leader election over the real API server: three electors in one process, each with its own
// client; one leader at a time; a crashed leader is replaced after the lease duration, a
// released one at once.
import { afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { createTestNamespace, loadTestKubeConfig, waitFor } from '../../test/support/kube.js';
import { LEADER_LEASE_NAME } from '../plan/lease-names.js';
import { DEFAULT_LEASE_SETTINGS } from '../plan/lease-settings.js';
import { realClock } from './clock.js';
import { LeaderElector } from './leader-elector.js';
import { KubeLeaseStore } from './lease-store.js';

const settings = DEFAULT_LEASE_SETTINGS;
let electors: LeaderElector[] = [];

afterEach(async () => {
  await Promise.all(electors.map((e) => e.stop({ release: false })));
  electors = [];
});

async function campaign(namespace: string): Promise<{ electors: LeaderElector[]; maxLeaders: () => number; stopSampling: () => void }> {
  const names = ['agent-a', 'agent-b', 'agent-c'];
  electors = names.map((n) => new LeaderElector(new KubeLeaseStore(loadTestKubeConfig(), namespace), n, settings, realClock, { startedLeading: () => undefined, stoppedLeading: () => undefined }));
  for (const e of electors) e.start();
  let max = 0;
  const live = new Set(electors);
  const sampler = setInterval(() => {
    max = Math.max(max, [...live].filter((e) => e.isLeader).length);
  }, 20);
  return {
    electors,
    maxLeaders: () => max,
    stopSampling: () => clearInterval(sampler),
  };
}

describe('leader election', () => {
  let namespace: string;
  beforeAll(async () => {
    namespace = await createTestNamespace('leader-');
  });

  it('elects exactly one leader, replaces a crashed one after the lease duration, never two at once', async () => {
    const c = await campaign(namespace);
    const first = await waitFor(() => c.electors.find((e) => e.isLeader), { what: 'a leader', timeoutMs: 10_000 });
    await new Promise((r) => setTimeout(r, 4 * settings.retryPeriodMs));
    expect(c.electors.filter((e) => e.isLeader)).toEqual([first]);

    const crashedAt = performance.now();
    await first.stop({ release: false }); // a crash: the lease still names it
    const rest = c.electors.filter((e) => e !== first);
    const second = await waitFor(() => rest.find((e) => e.isLeader), { what: 'a new leader', timeoutMs: 10_000 });
    const took = performance.now() - crashedAt;
    c.stopSampling();
    expect(took).toBeGreaterThanOrEqual(settings.leaseDurationMs - settings.retryPeriodMs);
    expect(took).toBeLessThan(settings.leaseDurationMs + 3 * settings.retryPeriodMs + 1000);
    expect(c.maxLeaders()).toBe(1);
    const lease = await new KubeLeaseStore(loadTestKubeConfig(), namespace).get(LEADER_LEASE_NAME);
    expect(lease?.leaseTransitions).toBeGreaterThanOrEqual(1);
    expect(rest.filter((e) => e.isLeader)).toEqual([second]);
  });

  it('a leader that releases on shutdown is replaced well within the lease duration', async () => {
    const ns = await createTestNamespace('leader-');
    const c = await campaign(ns);
    const first = await waitFor(() => c.electors.find((e) => e.isLeader), { what: 'a leader', timeoutMs: 10_000 });
    const stoppedAt = performance.now();
    await first.stop({ release: true });
    const rest = c.electors.filter((e) => e !== first);
    await waitFor(() => rest.find((e) => e.isLeader), { what: 'a new leader', timeoutMs: 10_000, intervalMs: 20 });
    c.stopSampling();
    expect(performance.now() - stoppedAt).toBeLessThan(settings.leaseDurationMs);
    expect(c.maxLeaders()).toBe(1);
  });
});
