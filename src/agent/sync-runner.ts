// The one reconcile entry point (STYLE.md principle 3): every trigger (watch event, lease change,
// timer, keepalived notification, renewer event) calls `trigger(reason)`, and they all land in one
// `sync()`. Guarantees: at most one sync runs and at most one is pending (triggers that arrive
// while one runs are coalesced into the next); a sync runs at least every `heartbeatMs`, at the
// time the last sync asked for (`nextWakeAt`), and asks for a full data-plane resync every
// `fullResyncMs`. Does not know what a sync does; a failing sync is reported and retried.
import type { Clock } from '../cluster/clock.js';

export interface SyncRequest {
  /** Why this sync runs (sorted, deduplicated). */
  readonly reasons: readonly string[];
  /** A periodic full resync is due: read the kernel back and repair drift. */
  readonly full: boolean;
}

export interface SyncOutcome {
  /** Monotonic time at which the caller wants another sync even without a trigger. */
  readonly nextWakeAt?: number;
  /** The full resync asked for was done (false if it was skipped, e.g. nothing synced yet). */
  readonly fullDone?: boolean;
}

export interface SyncRunnerOptions {
  readonly clock: Clock;
  readonly sync: (req: SyncRequest) => Promise<SyncOutcome>;
  readonly heartbeatMs: number;
  readonly fullResyncMs: number;
  /** Delay before retrying after a sync threw (default 500 ms). */
  readonly retryMs?: number;
  readonly onError?: (err: unknown) => void;
}

export class SyncRunner {
  private reasons = new Set<string>();
  private pending = false;
  private running = false;
  private stopped = true;
  private loop: Promise<void> | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private lastFullAt: number;
  private wakeAt: number | undefined;
  /** Monotonic time the last sync finished (successfully or not); undefined before the first. */
  lastFinishedAt: number | undefined;
  lastSucceededAt: number | undefined;
  runs = 0;

  constructor(private readonly opts: SyncRunnerOptions) {
    this.lastFullAt = opts.clock.now();
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.trigger('start');
  }

  /** Stops scheduling; waits for a running sync to finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.loop;
  }

  trigger(reason: string): void {
    if (this.stopped) return;
    this.reasons.add(reason);
    this.pending = true;
    if (!this.running) this.loop = this.drain();
  }

  /** Resolves when a sync that starts after this call has finished (tests, shutdown). */
  async settle(reason = 'settle'): Promise<void> {
    const target = this.runs + (this.running ? 2 : 1);
    this.trigger(reason);
    while (!this.stopped && this.runs < target && this.loop !== undefined) {
      const before = this.runs;
      await this.loop;
      if (this.runs === before && !this.running) return;
    }
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.pending && !this.stopped) {
        this.pending = false;
        const reasons = [...this.reasons].sort();
        this.reasons.clear();
        clearTimeout(this.timer);
        const now = this.opts.clock.now();
        const full = now - this.lastFullAt >= this.opts.fullResyncMs;
        let outcome: SyncOutcome = {};
        try {
          outcome = await this.opts.sync({ reasons, full });
          this.lastSucceededAt = this.opts.clock.now();
          if (full && outcome.fullDone !== false) this.lastFullAt = this.opts.clock.now();
        } catch (err: unknown) {
          this.opts.onError?.(err);
          outcome = { nextWakeAt: this.opts.clock.now() + (this.opts.retryMs ?? 500) };
        }
        this.runs++;
        this.lastFinishedAt = this.opts.clock.now();
        this.wakeAt = outcome.nextWakeAt;
      }
    } finally {
      this.running = false;
    }
    if (!this.stopped) this.schedule();
  }

  private schedule(): void {
    clearTimeout(this.timer);
    const now = this.opts.clock.now();
    const candidates = [now + this.opts.heartbeatMs, this.lastFullAt + this.opts.fullResyncMs];
    if (this.wakeAt !== undefined) candidates.push(this.wakeAt);
    const at = Math.min(...candidates);
    const reason = at === this.wakeAt ? 'timer' : at === candidates[1] ? 'resync' : 'heartbeat';
    this.timer = setTimeout(() => this.trigger(reason), Math.max(0, Math.ceil(at - now)));
  }
}
