import { describe, expect, it } from '@jest/globals';
import { realClock } from '../cluster/clock.js';
import { SyncRunner, type SyncRequest } from './sync-runner.js';

function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => undefined;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

describe('SyncRunner', () => {
  it('coalesces triggers that arrive while a sync runs into exactly one more sync, never two at once', async () => {
    const calls: SyncRequest[] = [];
    let concurrent = 0;
    let maxConcurrent = 0;
    const first = gate();
    const runner = new SyncRunner({
      clock: realClock,
      heartbeatMs: 60_000,
      fullResyncMs: 60_000,
      sync: async (req) => {
        calls.push(req);
        concurrent++;
        maxConcurrent = Math.max(maxConcurrent, concurrent);
        if (calls.length === 1) await first.promise;
        concurrent--;
        return {};
      },
    });
    runner.start();
    for (let i = 0; i < 10; i++) runner.trigger(i % 2 === 0 ? 'leases' : 'resources');
    first.open();
    await runner.settle();
    await runner.stop();
    expect(maxConcurrent).toBe(1);
    expect(calls.map((c) => c.reasons)).toEqual([['start'], ['leases', 'resources', 'settle']]);
  });

  it('runs again at the time the last sync asked for, and on the heartbeat without any trigger', async () => {
    const at: number[] = [];
    const t0 = performance.now();
    const runner = new SyncRunner({
      clock: realClock,
      heartbeatMs: 300,
      fullResyncMs: 60_000,
      sync: async () => {
        at.push(performance.now() - t0);
        return at.length === 1 ? { nextWakeAt: realClock.now() + 50 } : {};
      },
    });
    runner.start();
    await new Promise((r) => setTimeout(r, 500));
    await runner.stop();
    // start, the asked-for wake ~50 ms later, then a heartbeat ~300 ms after that.
    expect(at.length).toBe(3);
    expect(at[1]! - at[0]!).toBeLessThan(200);
    expect(at[2]! - at[1]!).toBeGreaterThanOrEqual(290);
  });

  it('asks for a full resync once fullResyncMs has passed, and retries after a failing sync', async () => {
    const reqs: SyncRequest[] = [];
    const errors: unknown[] = [];
    const runner = new SyncRunner({
      clock: realClock,
      heartbeatMs: 60_000,
      fullResyncMs: 100,
      retryMs: 20,
      onError: (err) => errors.push(err),
      sync: async (req) => {
        reqs.push(req);
        if (reqs.length === 1) throw new Error('boom');
        return {};
      },
    });
    runner.start();
    await new Promise((r) => setTimeout(r, 250));
    await runner.stop();
    expect(errors).toHaveLength(1);
    expect(reqs[1]?.reasons).toEqual(['timer']);
    expect(reqs.some((r) => r.full)).toBe(true);
  });
});
