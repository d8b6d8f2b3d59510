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
  /** Each Mapping write takes this long on the clock (a slow API server). */
  writeMs = 0;
  clock: FakeClock | undefined;
  inFlight = 0;
  maxInFlight = 0;

  async writeMappingStatus(write: MappingWrite): Promise<StatusOutcome> {
    if (this.failMappings.has(write.ref.name)) throw new Error(`HTTP 500 writing ${write.ref.name}`);
    this.mappings.push(write);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    await Promise.resolve();
    this.clock?.advance(this.writeMs);
    this.inFlight--;
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

function setup(o: { writeConcurrency?: number; passBudgetMs?: number } = {}) {
  const clock = new FakeClock(0);
  const leases = new FakeLeaseStore('smartnat');
  const status = new FakeStatusWriter();
  status.clock = clock;
  const sink = new FakeSink();
  const duties = new LeaderDuties({ leases, status, events: new DedupingEventRecorder(sink, clock), namespace: 'smartnat', log: silentLogger(), clock, ...o });
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

describe('LeaderDuties: bounded passes (ADR 0008 amendment 2)', () => {
  const burst = Array.from({ length: 10 }, (_, i) => entry(`m${i}`, { addresses: [`203.0.113.${20 + i}`] }));

  it('stops starting status writes at the pass budget, says more, and the next pass goes on without sending the same write twice', async () => {
    const { status, duties } = setup({ writeConcurrency: 1, passBudgetMs: 1000 });
    status.writeMs = 300;
    const first = await duties.sync(input({ mappings: burst }));
    // Started at 0, 300, 600 and 900 ms; at 1200 ms the budget is spent.
    expect(first.more).toBe(true);
    expect(status.mappings.map((w) => w.ref.name)).toEqual(['m0', 'm1', 'm2', 'm3']);
    // The watch has not brought m0-m3 back yet (same stored objects): they are not written again.
    const second = await duties.sync(input({ mappings: burst }));
    expect(second.more).toBe(true);
    expect(status.mappings.map((w) => w.ref.name)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7']);
    const third = await duties.sync(input({ mappings: burst }));
    expect(third.more).toBe(false);
    expect(status.mappings.map((w) => w.ref.name).slice(8)).toEqual(['m8', 'm9']);
    // A changed stored object (the watch echo, or anyone's edit) is planned afresh and written if it still differs.
    const again = burst.map((e, i) => (i === 0 ? entry('m0', { addresses: ['203.0.113.20'] }) : e));
    await duties.sync(input({ mappings: again }));
    expect(status.mappings.map((w) => w.ref.name).slice(10)).toEqual(['m0']);
  });

  it('writes grants first: a new Mapping waiting for its claims goes before condition-only updates', async () => {
    const { status, duties, leases } = setup({ writeConcurrency: 1, passBudgetMs: 1000 });
    const settled = applyPlan(baseInput({ mappings: burst.slice(0, 6) }), (await duties.sync(input({ mappings: burst.slice(0, 6) }))).plan, '2026-01-01T01:00:00Z');
    status.mappings.length = 0;
    status.writeMs = 300;
    // Each settled Mapping's address gets a holder (its owners change: a condition-only write); m9 is new.
    const held = (await leases.list('address')).items.map((l) => ({ ...l, holder: 'a1' }));
    const pass = await duties.sync(input({ mappings: [...settled.mappings, burst[9]!], addressLeases: held }));
    expect(pass.plan.mappingWrites.map((w) => w.ref.name)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm9']);
    expect(status.mappings.map((w) => w.ref.name)[0]).toBe('m9');
    expect(pass.more).toBe(true);
  });

  it('keeps at most writeConcurrency status writes in flight', async () => {
    const { status, duties } = setup({ writeConcurrency: 3, passBudgetMs: 60_000 });
    const report = await duties.sync(input({ mappings: burst }));
    expect(report.more).toBe(false);
    expect(status.mappings).toHaveLength(10);
    expect(status.maxInFlight).toBe(3);
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
