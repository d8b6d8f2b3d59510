// Feeds one agent's LeaseView from a watch on the leases of its namespace (client-node informer),
// restarting it with backoff after any error and when it goes quiet. Guarantees: the view is
// blind from an error until the watch reconnects, and every (re)connect resets the observation
// clocks (ADR 0005). Does not decide anything; calls `changed` so the owner can re-plan (and says
// when an event was only a renewal, which needs no re-plan).
import { CoordinationV1Api, makeInformer, type Informer, type KubeConfig, type ObjectCache, type V1Lease } from './k8s.js';
import type { LeaseView } from '../plan/lease-view.js';
import type { Clock } from './clock.js';
import { leaseFromApi } from './lease-store.js';

export interface LeaseInformerOptions {
  readonly kc: KubeConfig;
  readonly namespace: string;
  readonly view: LeaseView;
  readonly clock: Clock;
  /**
   * Called after every change of the view (events, blindness, resets), with 'renewal' when the
   * event was only a live agent renewing (LeaseView.observe): the owner may skip re-planning.
   */
  readonly changed: (what: 'renewal' | 'change') => void;
  /** Restart backoff after errors: initial, doubling to max. Default 200 ms .. 5 s. */
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
  /** No event for this long = a silently dead watch (agent leases renew every retryPeriod). */
  readonly quietAfterMs: number;
  readonly onError?: (err: unknown) => void;
}

export class LeaseInformer {
  private readonly informer: Informer<V1Lease> & ObjectCache<V1Lease>;
  private readonly backoff: { initialMs: number; maxMs: number };
  private delayMs: number;
  private lastEventAt = 0;
  private running = false;
  private restartTimer: ReturnType<typeof setTimeout> | undefined;
  private quietTimer: ReturnType<typeof setInterval> | undefined;
  /** How many times the watch was (re)started after an error or a quiet period. */
  restarts = 0;

  constructor(private readonly opts: LeaseInformerOptions) {
    const api = opts.kc.makeApiClient(CoordinationV1Api);
    this.backoff = opts.backoff ?? { initialMs: 200, maxMs: 5000 };
    this.delayMs = this.backoff.initialMs;
    this.informer = makeInformer(opts.kc, `/apis/coordination.k8s.io/v1/namespaces/${opts.namespace}/leases`, () =>
      api.listNamespacedLease({ namespace: opts.namespace }),
    );
    const seen = (obj: V1Lease): void => {
      const now = opts.clock.now();
      this.lastEventAt = now;
      this.delayMs = this.backoff.initialMs;
      const what = opts.view.observe(leaseFromApi(obj), now);
      if (what !== 'none') opts.changed(what);
    };
    this.informer.on('add', seen);
    this.informer.on('update', seen);
    this.informer.on('delete', (obj) => {
      this.lastEventAt = opts.clock.now();
      opts.view.forget(obj.metadata?.name ?? '');
      opts.changed('change');
    });
    this.informer.on('connect', () => {
      this.lastEventAt = opts.clock.now();
      opts.view.reset(opts.clock.now());
      opts.changed('change');
    });
    this.informer.on('error', (err: unknown) => this.failed(err));
  }

  async start(): Promise<void> {
    this.running = true;
    this.lastEventAt = this.opts.clock.now();
    this.quietTimer = setInterval(() => this.checkQuiet(), Math.max(50, this.opts.quietAfterMs / 2));
    await this.informer.start().catch((err: unknown) => this.failed(err));
  }

  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.restartTimer);
    clearInterval(this.quietTimer);
    await this.informer.stop();
  }

  private failed(err: unknown): void {
    this.opts.view.markBlind();
    this.opts.changed('change');
    this.opts.onError?.(err);
    this.scheduleRestart();
  }

  private checkQuiet(): void {
    if (!this.running || this.restartTimer !== undefined) return;
    if (this.opts.clock.now() - this.lastEventAt < this.opts.quietAfterMs) return;
    this.opts.view.markBlind();
    this.opts.changed('change');
    void this.informer.stop();
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    if (!this.running || this.restartTimer !== undefined) return;
    const delay = this.delayMs;
    this.delayMs = Math.min(this.backoff.maxMs, this.delayMs * 2);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (!this.running) return;
      this.restarts++;
      this.lastEventAt = this.opts.clock.now();
      this.informer.start().catch((err: unknown) => this.failed(err));
    }, delay);
  }
}
