// The Clock port: a monotonic clock for every duration and timeout, wall time only for the
// informational Lease timestamps. Guarantees: `now()` never goes backwards. Does not schedule.
import { performance } from 'node:perf_hooks';

export interface Clock {
  /** Monotonic milliseconds (performance.now() in the real clock). */
  now(): number;
  /** Wall-clock time, written into Lease renewTime/acquireTime for humans only. */
  wallTime(): Date;
}

export const realClock: Clock = {
  now: () => performance.now(),
  wallTime: () => new Date(),
};

/** A clock tests move by hand. */
export class FakeClock implements Clock {
  constructor(private t = 0) {}
  now(): number {
    return this.t;
  }
  wallTime(): Date {
    return new Date(Date.UTC(2026, 0, 1) + Math.floor(this.t));
  }
  advance(ms: number): void {
    this.t += ms;
  }
}
