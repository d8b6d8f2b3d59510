// LeaderDuties with stateful fakes: a failing write never stops the others, an Event waits for
// the status write that records its transition, and the Event filter drops repeats only.
import { describe, expect, it } from '@jest/globals';
import { FakeClock } from '../cluster/clock.js';
import { DedupingEventRecorder, EventDeduper, type EventSink } from '../cluster/events.js';
import { FakeLeaseStore } from '../cluster/fake-lease-store.js';
import type { FinalizerOutcome } from '../cluster/finalizers.js';
import type { StatusOutcome, StatusWriter } from '../cluster/status-writer.js';
import { silentLogger } from '../log/logger.js';
import type { FinalizerRemoval, LeaderEvent, MappingWrite, PoolWrite } from '../plan/leader-input.js';
import { applyPlan, baseInput, entry, pool } from '../plan/leader-testing.js';
import { LeaderDuties, type LeaderDutiesInput } from './leader-duties.js';

class FakeStatusWriter implements StatusWriter {
  readonly mappings: MappingWrite[] = [];
  readonly pools: PoolWrite[] = [];
  failMappings = new Set<string>();

  async writeMappingStatus(write: MappingWrite): Promise<StatusOutcome> {
    if (this.failMappings.has(write.ref.name)) throw new Error(`HTTP 500 writing ${write.ref.name}`);
    this.mappings.push(write);
    return 'written';
  }

  async writePoolStatus(write: PoolWrite): Promise<StatusOutcome> {
    this.pools.push(write);
    return 'written';
  }

  async removeLegacyFinalizer(_removal: FinalizerRemoval): Promise<FinalizerOutcome> {
    return 'removed';
  }
}

class FakeSink implements EventSink {
  readonly events: LeaderEvent[] = [];
  async create(event: LeaderEvent): Promise<void> {
    this.events.push(event);
  }
}

function setup() {
  const clock = new FakeClock(0);
  const leases = new FakeLeaseStore('smartnat');
  const status = new FakeStatusWriter();
  const sink = new FakeSink();
  const duties = new LeaderDuties({ leases, status, events: new DedupingEventRecorder(sink, clock), namespace: 'smartnat', log: silentLogger(), clock });
  return { clock, leases, status, sink, duties };
}

function input(o: Partial<LeaderDutiesInput>): LeaderDutiesInput {
  const { now: _now, ...rest } = baseInput();
  return { ...rest, ...o };
}

describe('LeaderDuties', () => {
  it('refuses a lease store of another namespace', () => {
    const { status, sink, clock } = setup();
    expect(
      () => new LeaderDuties({ leases: new FakeLeaseStore('elsewhere'), status, events: new DedupingEventRecorder(sink, clock), namespace: 'smartnat', log: silentLogger(), clock }),
    ).toThrow(/elsewhere/);
  });

  it('one failing status write does not stop the others; its Event waits for a pass whose write succeeds', async () => {
    const { status, sink, duties, leases } = setup();
    status.failMappings.add('a');
    const mappings = [entry('a', { ports: [{ port: 0 }] }), entry('b', { ports: [{ port: 0 }] }), entry('c', { addresses: ['203.0.113.20'] })];
    const first = await duties.sync(input({ mappings, pools: [pool('pool-a')] }));
    expect(first.failures.map((f) => [f.operation, f.target])).toEqual([['mappingStatus', 'default/a']]);
    expect(status.mappings.map((w) => w.ref.name)).toEqual(['b', 'c']);
    expect(first.done.leaseCreate).toBe(1);
    expect((await leases.list('address')).items.map((l) => l.name)).toEqual(['smartnat-addr-203-0-113-20']);
    expect(sink.events.map((e) => `${e.regarding.name}:${e.reason}`)).toEqual(['b:MappingRefused', 'c:MappingAccepted']);

    status.failMappings.clear();
    const stored = applyPlan({ ...baseInput({ mappings }) }, { ...first.plan, mappingWrites: first.plan.mappingWrites.filter((w) => w.ref.name !== 'a') }, '2026-01-01T01:00:00Z');
    await duties.sync(input({ mappings: stored.mappings, addressLeases: (await leases.list('address')).items }));
    expect(sink.events.map((e) => `${e.regarding.name}:${e.reason}`)).toEqual(['b:MappingRefused', 'c:MappingAccepted', 'a:MappingRefused']);
  });
});

describe('EventDeduper', () => {
  const ev = (reason: LeaderEvent['reason'], message: string, uid = 'u1'): LeaderEvent => ({
    regarding: { namespace: 'ns', name: 'm', uid },
    type: reason === 'MappingRefused' ? 'Warning' : 'Normal',
    reason,
    message,
  });

  it('drops a repeat of the last message for the same object and reason, keeps real transitions', () => {
    const d = new EventDeduper();
    const admitted = [
      ev('MappingRefused', 'PortConflict: x'),
      ev('MappingRefused', 'PortConflict: x'),
      ev('MappingRefused', 'PortConflict: x', 'u2'),
      ev('MappingAccepted', 'ok'),
      ev('MappingRefused', 'PortConflict: x'),
      ev('OwnerChanged', 'a to b'),
      ev('OwnerChanged', 'a to b'),
      ev('OwnerChanged', 'b to a'),
    ].map((e) => d.admit(e));
    expect(admitted).toEqual([true, false, true, true, true, true, false, true]);
  });

  it('forgets the oldest objects beyond its bound', () => {
    const d = new EventDeduper(2);
    expect([d.admit(ev('OwnerChanged', 'x', 'a')), d.admit(ev('OwnerChanged', 'x', 'b')), d.admit(ev('OwnerChanged', 'x', 'c')), d.admit(ev('OwnerChanged', 'x', 'a'))]).toEqual([true, true, true, true]);
    expect(d.admit(ev('OwnerChanged', 'x', 'c'))).toBe(false);
  });

  it('an Event that failed to record is tried again', async () => {
    const clock = new FakeClock(0);
    let fail = true;
    const recorded: LeaderEvent[] = [];
    const recorder = new DedupingEventRecorder({ create: async (e) => { if (fail) throw new Error('HTTP 503'); recorded.push(e); } }, clock);
    await expect(recorder.record(ev('MappingRefused', 'r'))).rejects.toThrow('HTTP 503');
    fail = false;
    expect(await recorder.record(ev('MappingRefused', 'r'))).toBe('recorded');
    expect(await recorder.record(ev('MappingRefused', 'r'))).toBe('duplicate');
    expect(recorded).toHaveLength(1);
  });
});
