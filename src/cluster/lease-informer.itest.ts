// The lease view fed by a real watch, through a real API server outage on a control plane of its
// own: blind while the API is down, clocks restarted on reconnect, so nothing moves.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startControlPlane, type ControlPlane } from '../../test/support/control-plane.js';
import { createTestNamespace, loadTestKubeConfig, waitFor } from '../../test/support/kube.js';
import { addressLeaseName } from '../plan/lease-names.js';
import { DEFAULT_LEASE_SETTINGS } from '../plan/lease-settings.js';
import { LeaseView } from '../plan/lease-view.js';
import { decideAddress, type OwnershipInput } from '../plan/ownership.js';
import { realClock } from './clock.js';
import { AgentLeaseRenewer, acquireAddress, createAddressLease, joinAgent, type AgentIdentity } from './lease-protocol.js';
import { LeaseInformer } from './lease-informer.js';
import { KubeLeaseStore } from './lease-store.js';

const settings = { ...DEFAULT_LEASE_SETTINGS, rebalance: undefined };
const D = settings.leaseDurationMs;
const VIP_1 = '203.0.113.30';
const POOL = 'uplink-a';
const id = (agent: string): AgentIdentity => ({ agent, labels: {}, annotations: {} });

let plane: ControlPlane;
beforeAll(async () => {
  plane = await startControlPlane();
}, 180_000);
afterAll(async () => {
  await plane?.stop();
}, 60_000);

describe('lease informer through an API server outage', () => {
  it('goes blind during the outage, restarts every clock on reconnect, and nothing moves', async () => {
    const kc = loadTestKubeConfig(plane.kubeconfigPath);
    const namespace = await createTestNamespace('outage-', kc);
    const store = new KubeLeaseStore(kc, namespace);
    const renewers: AgentLeaseRenewer[] = [];
    const events: string[] = [];
    for (const agent of ['owner', 'observer']) {
      const j = await joinAgent(store, id(agent), settings, realClock);
      if (j.outcome === 'mustHandOff') throw new Error('setup');
      const r = new AgentLeaseRenewer(new KubeLeaseStore(loadTestKubeConfig(plane.kubeconfigPath), namespace), id(agent), settings, realClock, {
        fenced: () => events.push(`${agent}:fenced`),
        degraded: () => events.push(`${agent}:degraded`),
        recovered: () => events.push(`${agent}:recovered`),
      }, j.lease);
      renewers.push(r);
      r.start();
    }
    await createAddressLease(store, { address: VIP_1, pool: POOL, vrid: 1 }, settings);
    const acquired = await acquireAddress(store, (await store.get(addressLeaseName(VIP_1)))!, 'owner', realClock);
    expect(acquired.outcome).toBe('moved');

    const view = new LeaseView(D);
    const informer = new LeaseInformer({ kc: loadTestKubeConfig(plane.kubeconfigPath), namespace, view, clock: realClock, changed: () => undefined, quietAfterMs: 4 * D, backoff: { initialMs: 100, maxMs: 500 } });
    const decide = (): ReturnType<typeof decideAddress> => {
      const now = realClock.now();
      const input: OwnershipInput = { me: 'observer', now, settings, blind: view.blind, agents: view.agentViews(now), poolSelectors: new Map([[POOL, {}]]) };
      return decideAddress(input, view.addressViews().find((a) => a.address === VIP_1)!);
    };
    try {
      await informer.start();
      await waitFor(() => !view.blind && view.addressViews().some((a) => a.holder === 'owner') && view.agentViews(realClock.now()).length === 2, { what: 'the view to fill' });
      expect(decide()).toMatchObject({ action: 'wait', reason: 'holderAlive' });

      await plane.stopApiServer();
      await waitFor(() => view.blind, { what: 'the view to go blind', timeoutMs: 10_000 });
      await new Promise((r) => setTimeout(r, 2 * D));
      expect(decide()).toMatchObject({ action: 'wait', reason: 'viewBlind' });
      expect(events).toEqual(expect.arrayContaining(['owner:degraded', 'observer:degraded']));

      await plane.startApiServer();
      await waitFor(() => !view.blind, { what: 'the watch to reconnect', timeoutMs: 30_000 });
      const reconnectedAt = realClock.now();
      // Nobody was seen for longer than a lease duration, yet the clocks restarted at reconnect.
      for (const a of view.agentViews(reconnectedAt)) expect(a.observedAt).toBeGreaterThan(reconnectedAt - D);
      expect(decide()).toMatchObject({ action: 'wait', reason: 'holderAlive' });
      await waitFor(() => events.includes('owner:recovered'), { what: 'the owner to renew again', timeoutMs: 10_000 });
      await new Promise((r) => setTimeout(r, D + 200));
      expect(decide()).toMatchObject({ action: 'wait', reason: 'holderAlive' });
      expect((await store.get(addressLeaseName(VIP_1)))?.holder).toBe('owner');
      expect(events.filter((e) => e.endsWith(':fenced'))).toEqual([]);
      expect(informer.restarts).toBeGreaterThanOrEqual(1);
    } finally {
      await informer.stop();
      await Promise.all(renewers.map((r) => r.stop()));
    }
  }, 120_000);
});
