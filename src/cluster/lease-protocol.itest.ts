// The lease protocol against a real kube-apiserver + etcd: compare-and-swap races, fencing of a
// live and of a dead holder, demotion of a fenced agent, planned handoff, drain annotations kept.
import { afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { createTestNamespace, loadTestKubeConfig } from '../../test/support/kube.js';
import { ANNOTATION_DRAIN, ANNOTATION_FENCED_BY, ANNOTATION_POOL, ANNOTATION_VRID, LABEL_ROLE, addressLeaseName, agentLeaseName, type LeaseRecord } from '../plan/lease-names.js';
import { DEFAULT_LEASE_SETTINGS } from '../plan/lease-settings.js';
import { LeaseView } from '../plan/lease-view.js';
import { decideAddress, type OwnershipInput } from '../plan/ownership.js';
import { FakeClock, realClock } from './clock.js';
import {
  AgentLeaseRenewer,
  acquireAddress,
  createAddressLease,
  fenceAgent,
  handOffAddress,
  joinAgent,
  renewAgent,
  takeOverAddress,
  type AgentIdentity,
} from './lease-protocol.js';
import { KubeLeaseStore, LeaseStoreError } from './lease-store.js';

const VIP_1 = '203.0.113.10';
const VIP_2 = '203.0.113.11';
const POOL = 'uplink-a';
const settings = DEFAULT_LEASE_SETTINGS;
const D = settings.leaseDurationMs;

const identity = (agent: string): AgentIdentity => ({ agent, labels: { 'topology.kubernetes.io/zone': 'z1' }, annotations: {} });

let namespace: string;
/** Each agent gets its own client, as separate processes would. */
const storeFor = (): KubeLeaseStore => new KubeLeaseStore(loadTestKubeConfig(), namespace);
const renewers: AgentLeaseRenewer[] = [];

beforeAll(async () => {
  namespace = await createTestNamespace('leases-');
});

afterEach(async () => {
  await Promise.all(renewers.splice(0).map((r) => r.stop()));
});

async function joined(agent: string): Promise<LeaseRecord> {
  const r = await joinAgent(storeFor(), identity(agent), settings, realClock);
  if (r.outcome === 'mustHandOff') throw new Error(`unexpected ${r.outcome}`);
  return r.lease;
}

function startRenewer(agent: string, lease: LeaseRecord, fenced: string[] = []): AgentLeaseRenewer {
  const r = new AgentLeaseRenewer(storeFor(), identity(agent), settings, realClock, { fenced: (by) => fenced.push(by), degraded: () => undefined, recovered: () => undefined }, lease);
  renewers.push(r);
  r.start();
  return r;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** What an observer whose view stopped at `seen` would decide `ms` later, on its own clock. */
function observerDecision(me: string, seen: LeaseRecord[], addressLease: LeaseRecord, ms: number): ReturnType<typeof decideAddress> {
  const clock = new FakeClock(1000);
  const view = new LeaseView(D);
  view.replaceAll([...seen, addressLease], clock.now());
  clock.advance(ms);
  const input: OwnershipInput = {
    me,
    now: clock.now(),
    settings: { ...settings, rebalance: undefined },
    blind: view.blind,
    agents: view.agentViews(clock.now()),
    poolSelectors: new Map([[POOL, {}]]),
  };
  return decideAddress(input, view.addressViews()[0]!);
}

describe('LeaseStore against kube-apiserver', () => {
  it('two stores compare-and-swap the same lease version: exactly one wins, the other gets Conflict', async () => {
    const a = await joined('race-a');
    const [s1, s2] = [storeFor(), storeFor()];
    const results = await Promise.all([
      s1.replace({ ...a, annotations: { ...a.annotations, writer: 'one' } }),
      s2.replace({ ...a, annotations: { ...a.annotations, writer: 'two' } }),
    ]);
    expect(results.map((r) => r.outcome).sort()).toEqual(['conflict', 'written']);
    const winner = results.find((r) => r.outcome === 'written');
    const stored = await s1.get(a.name);
    expect(stored?.annotations.writer).toBe(winner?.outcome === 'written' ? winner.lease.annotations.writer : 'none');
  });

  it('two creates of one name: one written, the other AlreadyExists', async () => {
    const spec = { address: '203.0.113.99', pool: POOL, vrid: 99 };
    const results = await Promise.all([createAddressLease(storeFor(), spec, settings), createAddressLease(storeFor(), spec, settings)]);
    expect(results.map((r) => r.outcome).sort()).toEqual(['exists', 'moved']);
    const l = await storeFor().get(addressLeaseName('203.0.113.99'));
    expect(l).toMatchObject({ holder: '', labels: { [LABEL_ROLE]: 'address' }, annotations: { [ANNOTATION_POOL]: POOL, [ANNOTATION_VRID]: '99' } });
  });

  it('writes MicroTime renewTime the API server accepts, and reads it back as a Date', async () => {
    const a = await joined('time-a');
    const r = await renewAgent(storeFor(), a, identity('time-a'), settings, realClock);
    expect(r.outcome).toBe('renewed');
    const back = await storeFor().get(a.name);
    expect(back?.renewTime?.getTime()).not.toBeNaN();
    expect(back?.leaseDurationSeconds).toBe(2);
  });

  it('a replace of a deleted lease is NotFound and does not resurrect it (PUT would); an invalid name is an error', async () => {
    const s = storeFor();
    const a = await joined('deleted-a');
    expect((await s.delete(a.name, a.resourceVersion)).outcome).toBe('deleted');
    expect((await s.replace(a)).outcome).toBe('notFound');
    expect(await s.get(a.name)).toBeUndefined();
    await expect(s.create({ name: 'Not_A_Name', resourceVersion: '', holder: 'x', leaseDurationSeconds: 1, leaseTransitions: 0, labels: {}, annotations: {} })).rejects.toBeInstanceOf(LeaseStoreError);
  });
});

describe('fencing', () => {
  it('a live owner whose observer judged it dead keeps its address: the fencing write fails with 409', async () => {
    const owner = await joined('live-owner');
    const observed = await joined('live-observer');
    await createAddressLease(storeFor(), { address: VIP_1, pool: POOL, vrid: 1 }, settings);
    const free = (await storeFor().get(addressLeaseName(VIP_1)))!;
    const held = await acquireAddress(storeFor(), free, 'live-owner', realClock);
    expect(held.outcome).toBe('moved');
    const fenced: string[] = [];
    startRenewer('live-owner', owner, fenced);

    // The observer's watch was cut right after this read; on its clock a lease duration passes.
    const stale = (await storeFor().get(agentLeaseName('live-owner')))!;
    await sleep(3 * settings.retryPeriodMs);
    const decision = observerDecision('live-observer', [stale, observed], held.outcome === 'moved' ? held.lease : free, D + 1);
    expect(decision).toMatchObject({ action: 'takeOver', from: 'live-owner', fenceFirst: true });

    const fence = await fenceAgent(storeFor(), stale, 'live-observer', realClock);
    expect(fence.outcome).toBe('holderAlive');
    const addr = await storeFor().get(addressLeaseName(VIP_1));
    expect(addr?.holder).toBe('live-owner');
    await sleep(2 * settings.retryPeriodMs);
    expect(fenced).toEqual([]);
    const ownerNow = await storeFor().get(agentLeaseName('live-owner'));
    expect(ownerNow?.holder).toBe('live-owner');
    expect(ownerNow?.annotations[ANNOTATION_FENCED_BY]).toBeUndefined();
  });

  it('a really dead owner is fenced, then its address lease is taken; its next renewal sees 409 and it demotes', async () => {
    const dead = await joined('dead-owner');
    const taker = await joined('taker');
    await createAddressLease(storeFor(), { address: VIP_2, pool: POOL, vrid: 2 }, settings);
    const held = await acquireAddress(storeFor(), (await storeFor().get(addressLeaseName(VIP_2)))!, 'dead-owner', realClock);
    if (held.outcome !== 'moved') throw new Error('setup: acquire failed');

    // The owner stops renewing (its process is "dead"); the observer saw its last version.
    const last = (await storeFor().get(agentLeaseName('dead-owner')))!;
    const decision = observerDecision('taker', [last, taker], held.lease, D);
    expect(decision).toMatchObject({ action: 'takeOver', fenceFirst: true, reason: 'holderExpired' });

    const fence = await fenceAgent(storeFor(), last, 'taker', realClock);
    expect(fence.outcome).toBe('fenced');
    const moved = await takeOverAddress(storeFor(), held.lease, 'dead-owner', 'taker', realClock);
    expect(moved).toMatchObject({ outcome: 'moved', lease: { holder: 'taker', leaseTransitions: held.lease.leaseTransitions + 1 } });

    // A second would-be fencer working from the same observation finds it already fenced.
    expect((await fenceAgent(storeFor(), last, 'someone-else', realClock)).outcome).toBe('alreadyFenced');

    // The "dead" owner comes back with its old lease copy: its renewal sees the fence and demotes.
    const demoted: string[] = [];
    const renewer = new AgentLeaseRenewer(storeFor(), identity('dead-owner'), settings, realClock, { fenced: (by) => demoted.push(by), degraded: () => undefined, recovered: () => undefined }, dead);
    const r = await renewer.renewOnce();
    expect(r.outcome).toBe('fenced');
    expect(demoted).toEqual(['taker']);

    // It may rejoin only once no address lease names it.
    const join = await joinAgent(storeFor(), identity('dead-owner'), settings, realClock);
    expect(join.outcome).toBe('rejoined');
    expect((await storeFor().get(agentLeaseName('dead-owner')))?.annotations[ANNOTATION_FENCED_BY]).toBeUndefined();
  });

  it('a fenced agent that still holds an address lease must hand it off before rejoining', async () => {
    await joined('stuck');
    await createAddressLease(storeFor(), { address: '203.0.113.12', pool: POOL, vrid: 3 }, settings);
    const addr = await acquireAddress(storeFor(), (await storeFor().get(addressLeaseName('203.0.113.12')))!, 'stuck', realClock);
    if (addr.outcome !== 'moved') throw new Error('setup');
    expect((await fenceAgent(storeFor(), (await storeFor().get(agentLeaseName('stuck')))!, 'fencer', realClock)).outcome).toBe('fenced');
    const join = await joinAgent(storeFor(), identity('stuck'), settings, realClock);
    expect(join.outcome).toBe('mustHandOff');
    if (join.outcome !== 'mustHandOff') return;
    expect(join.addresses.map((l) => l.name)).toEqual([addressLeaseName('203.0.113.12')]);
    expect((await handOffAddress(storeFor(), join.addresses[0]!, 'stuck', 'fencer', realClock)).outcome).toBe('moved');
    expect((await joinAgent(storeFor(), identity('stuck'), settings, realClock)).outcome).toBe('rejoined');
  });
});

describe('planned handoff and drain', () => {
  it('hands the address lease straight to the successor in one compare-and-swap', async () => {
    await createAddressLease(storeFor(), { address: '203.0.113.20', pool: POOL, vrid: 4 }, settings);
    const a = await acquireAddress(storeFor(), (await storeFor().get(addressLeaseName('203.0.113.20')))!, 'ho-a', realClock);
    if (a.outcome !== 'moved') throw new Error('setup');
    const h = await handOffAddress(storeFor(), a.lease, 'ho-a', 'ho-b', realClock);
    expect(h).toMatchObject({ outcome: 'moved', lease: { holder: 'ho-b', leaseTransitions: a.lease.leaseTransitions + 1 } });
    // exactly one write: the version moved once, and a replay of the old version is refused
    expect((await handOffAddress(storeFor(), a.lease, 'ho-a', 'ho-c', realClock))).toEqual({ outcome: 'lost', reason: 'conflict' });
    expect((await storeFor().get(addressLeaseName('203.0.113.20')))?.holder).toBe('ho-b');
  });

  it('renewals keep the drain annotation they do not own, and a drain is not mistaken for a fence', async () => {
    const lease = await joined('drained');
    const fenced: string[] = [];
    const renewed: string[] = [];
    const r = new AgentLeaseRenewer(
      storeFor(),
      identity('drained'),
      settings,
      realClock,
      { fenced: (by) => fenced.push(by), degraded: () => undefined, recovered: () => undefined, renewed: (l) => renewed.push(l.resourceVersion) },
      lease,
    );
    renewers.push(r);
    r.start();
    await sleep(2 * settings.retryPeriodMs);
    const patched = await storeFor().patchAnnotations(agentLeaseName('drained'), { [ANNOTATION_DRAIN]: 'true' });
    expect(patched.outcome).toBe('written');
    const before = renewed.length;
    await sleep(4 * settings.retryPeriodMs);
    expect(renewed.length).toBeGreaterThan(before + 1);
    expect(fenced).toEqual([]);
    const now = await storeFor().get(agentLeaseName('drained'));
    expect(now).toMatchObject({ holder: 'drained', annotations: { [ANNOTATION_DRAIN]: 'true' }, labels: { 'topology.kubernetes.io/zone': 'z1', [LABEL_ROLE]: 'agent' } });

    await storeFor().patchAnnotations(agentLeaseName('drained'), { [ANNOTATION_DRAIN]: null });
    await sleep(3 * settings.retryPeriodMs);
    expect((await storeFor().get(agentLeaseName('drained')))?.annotations[ANNOTATION_DRAIN]).toBeUndefined();
    expect(fenced).toEqual([]);
  });
});
