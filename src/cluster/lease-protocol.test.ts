import { describe, expect, it } from '@jest/globals';
import { ANNOTATION_DRAIN, ANNOTATION_HEALTH, agentLeaseName, type LeaseRecord } from '../plan/lease-names.js';
import { DEFAULT_LEASE_SETTINGS } from '../plan/lease-settings.js';
import { FakeClock } from './clock.js';
import { FakeLeaseStore } from './fake-lease-store.js';
import { AgentLeaseRenewer, RenewTimeoutError, fenceAgent, joinAgent, renewAgent, renewRequestTimeoutMs, type AgentIdentity } from './lease-protocol.js';
import { LeaseStoreError, type WriteResult } from './lease-store.js';

const settings = DEFAULT_LEASE_SETTINGS;
const id: AgentIdentity = { agent: 'agent-a', labels: { zone: 'z1' }, annotations: { [ANNOTATION_HEALTH]: 'ok' } };

/** A FakeLeaseStore whose writes can be made to fail like an unreachable API server. */
class FlakyStore extends FakeLeaseStore {
  down = false;
  /** Writes never answer, like a connection the API server stopped reading. */
  hung = false;
  override async replace(lease: LeaseRecord): Promise<WriteResult> {
    if (this.hung) return new Promise<WriteResult>(() => undefined);
    if (this.down) throw new LeaseStoreError('connect ECONNREFUSED', 'replace', lease.name, undefined);
    return super.replace(lease);
  }
}

async function setup(): Promise<{ store: FlakyStore; clock: FakeClock; lease: LeaseRecord }> {
  const store = new FlakyStore();
  const clock = new FakeClock(0);
  const j = await joinAgent(store, id, settings, clock);
  if (j.outcome !== 'created') throw new Error(j.outcome);
  return { store, clock, lease: j.lease };
}

describe('agent lease renewal', () => {
  it('keeps a drain annotation written by someone else and its own labels and annotations', async () => {
    const { store, clock, lease } = await setup();
    await store.patchAnnotations(lease.name, { [ANNOTATION_DRAIN]: 'true' });
    const r = await renewAgent(store, lease, { ...id, annotations: { [ANNOTATION_HEALTH]: 'linkDown' } }, settings, clock);
    expect(r).toMatchObject({ outcome: 'renewed', lease: { holder: 'agent-a', annotations: { [ANNOTATION_DRAIN]: 'true', [ANNOTATION_HEALTH]: 'linkDown' }, labels: { zone: 'z1' } } });
  });

  it('reports a fence as fenced, with the fencer', async () => {
    const { store, clock, lease } = await setup();
    expect((await fenceAgent(store, lease, 'agent-b', clock)).outcome).toBe('fenced');
    expect(await renewAgent(store, lease, id, settings, clock)).toMatchObject({ outcome: 'fenced', by: 'agent-b' });
  });

  it('treats a deleted agent lease as a fence', async () => {
    const { store, clock, lease } = await setup();
    await store.delete(agentLeaseName('agent-a'));
    expect(await renewAgent(store, lease, id, settings, clock)).toMatchObject({ outcome: 'fenced', by: '(deleted)' });
  });

  it('degrades after renewDeadline without a successful renewal sent in it, and recovers on the next success', async () => {
    const { store, clock, lease } = await setup();
    const events: string[] = [];
    const r = new AgentLeaseRenewer(store, id, settings, clock, { fenced: () => events.push('fenced'), degraded: () => events.push('degraded'), recovered: () => events.push('recovered') }, lease);
    expect((await r.renewOnce()).outcome).toBe('renewed');
    store.down = true;
    clock.advance(settings.renewDeadlineMs - 1);
    expect((await r.renewOnce()).outcome).toBe('error');
    expect(r.degraded).toBe(false);
    clock.advance(1);
    await r.renewOnce();
    expect(r.degraded).toBe(true);
    store.down = false;
    clock.advance(settings.retryPeriodMs);
    expect((await r.renewOnce()).outcome).toBe('renewed');
    expect(events).toEqual(['degraded', 'recovered']);
    expect(store.writes.filter((w) => w.op === 'replace')).toHaveLength(2);
  });

  it('gives up on a renewal that gets no answer and tries again, instead of waiting on it forever', async () => {
    const { store, clock, lease } = await setup();
    const errors: unknown[] = [];
    const r = new AgentLeaseRenewer(store, id, settings, clock, { fenced: () => undefined, degraded: () => undefined, recovered: () => undefined, error: (e) => errors.push(e) }, lease, 30);
    store.hung = true;
    const hung = await r.renewOnce();
    expect(hung.outcome).toBe('error');
    expect(errors[0]).toBeInstanceOf(RenewTimeoutError);
    store.hung = false;
    expect((await r.renewOnce()).outcome).toBe('renewed');
  });

  it('bounds one renewal attempt by half the renew deadline, never below a retry period', () => {
    expect(renewRequestTimeoutMs(settings)).toBe(Math.floor(settings.renewDeadlineMs / 2));
    expect(renewRequestTimeoutMs({ ...settings, renewDeadlineMs: 300, retryPeriodMs: 250 })).toBe(250);
  });
});
