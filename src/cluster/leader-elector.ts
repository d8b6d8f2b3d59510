// Elects one leader among the agents through `smartnat-leader` (client-go's algorithm over the
// LeaseStore port; decision in src/plan/lease-leader.ts). Guarantees: leadership is gained only
// by a compare-and-swap, lost when no renewal sent within renewDeadline succeeded, and expiry is
// judged on the local monotonic clock, restarted after any API error. Does not fence: the leader
// writes status and address-lease lifecycle only, never ownership.
import { LABEL_ROLE, LEADER_LEASE_NAME, type LeaseRecord } from '../plan/lease-names.js';
import { decideLeader, type LeaderAction } from '../plan/lease-leader.js';
import { leaseDurationSeconds, type LeaseSettings } from '../plan/lease-settings.js';
import type { Clock } from './clock.js';
import type { LeaseStore } from './lease-store.js';

export type StoppedLeadingReason = 'renewDeadline' | 'lost' | 'stopped';

export interface LeaderCallbacks {
  startedLeading(): void;
  stoppedLeading(reason: StoppedLeadingReason): void;
  error?(err: unknown): void;
}

export class LeaderElector {
  private lease: LeaseRecord | undefined;
  private observedAt = 0;
  private blind = true;
  private leading = false;
  private lastRenewSentAt = 0;
  private running = false;
  private loop: Promise<void> | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly store: LeaseStore,
    private readonly me: string,
    private readonly settings: LeaseSettings,
    private readonly clock: Clock,
    private readonly callbacks: LeaderCallbacks,
  ) {}

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Stop campaigning; a leader releases the lease (holder '') so a successor need not wait. */
  async stop(opts: { release: boolean } = { release: true }): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    this.wake?.();
    await this.loop;
    if (this.leading && opts.release && this.lease) {
      await this.store.replace({ ...this.lease, holder: '', renewTime: this.clock.wallTime() }).catch(() => undefined);
    }
    this.setLeading(false, 'stopped');
  }

  /** One round of the algorithm; exposed for tests that drive time by hand. */
  async tryOnce(): Promise<LeaderAction | { action: 'error' }> {
    const sentAt = this.clock.now();
    try {
      const current = await this.store.get(LEADER_LEASE_NAME);
      if (this.blind || current?.resourceVersion !== this.lease?.resourceVersion) this.observedAt = this.clock.now();
      this.blind = false;
      this.lease = current;
      const decision = decideLeader(this.me, { lease: current, observedAt: this.observedAt }, this.clock.now(), this.settings.leaseDurationMs, true);
      if (decision.action === 'wait') {
        this.setLeading(false, 'lost');
        return decision;
      }
      const written = await this.write(decision, current);
      if (written !== undefined) {
        this.lease = written;
        this.observedAt = this.clock.now();
        this.lastRenewSentAt = sentAt;
        this.setLeading(true);
      }
      this.checkDeadline();
      return decision;
    } catch (err: unknown) {
      this.blind = true;
      this.callbacks.error?.(err);
      this.checkDeadline();
      return { action: 'error' };
    }
  }

  private async write(decision: LeaderAction, current: LeaseRecord | undefined): Promise<LeaseRecord | undefined> {
    const now = this.clock.wallTime();
    if (decision.action === 'create' || current === undefined) {
      const r = await this.store.create({
        name: LEADER_LEASE_NAME,
        resourceVersion: '',
        holder: this.me,
        leaseDurationSeconds: leaseDurationSeconds(this.settings),
        leaseTransitions: 0,
        acquireTime: now,
        renewTime: now,
        labels: { [LABEL_ROLE]: 'leader' },
        annotations: {},
      });
      return r.outcome === 'written' ? r.lease : undefined;
    }
    const taking = current.holder !== this.me;
    const r = await this.store.replace({
      ...current,
      holder: this.me,
      leaseDurationSeconds: leaseDurationSeconds(this.settings),
      leaseTransitions: current.leaseTransitions + (taking ? 1 : 0),
      acquireTime: taking ? now : (current.acquireTime ?? now),
      renewTime: now,
    });
    return r.outcome === 'written' ? r.lease : undefined;
  }

  private checkDeadline(): void {
    if (this.leading && this.clock.now() - this.lastRenewSentAt >= this.settings.renewDeadlineMs) this.setLeading(false, 'renewDeadline');
  }

  private setLeading(leading: boolean, reason: StoppedLeadingReason = 'lost'): void {
    if (leading === this.leading) return;
    this.leading = leading;
    if (leading) this.callbacks.startedLeading();
    else this.callbacks.stoppedLeading(reason);
  }

  private async run(): Promise<void> {
    while (this.running) {
      const started = this.clock.now();
      await this.tryOnce();
      if (!this.running) break;
      const wait = Math.max(0, this.settings.retryPeriodMs - (this.clock.now() - started));
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        this.timer = setTimeout(resolve, wait);
      });
    }
  }
}
