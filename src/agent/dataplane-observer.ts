// ObservedDataPlane: a DataPlanePort decorator (wired in src/cli/agent.ts) that makes data-plane
// applies visible. After each successful sync or ownership change it sets
// smartnat_dataplane_rules{table} and smartnat_dataplane_set_entries{set} from what the applier put
// in place; when an apply fails it records one Warning Event DataPlaneApplyFailed (the tool and a
// short stderr excerpt) regarding the agent's own Lease, once per failure streak: retries that
// fail again record nothing until an apply has succeeded. Guarantees: results and errors pass
// through unchanged; the Event is recorded off the sync path (a slow or failing API server never
// delays a sync), and an Event that could not be recorded is tried again on the next failure.
// Labels are closed sets (tables; set kinds owned, eligible, allow, count (both counting sets), egress, other).
// Does not retry or count failures (the agent does, in smartnat_dataplane_apply_failures_total).
import type { Logger } from 'pino';
import type { AgentEventSink } from '../cluster/agent-events.js';
import type { Clock } from '../cluster/clock.js';
import { CommandFailedError } from '../dataplane/command-runner.js';
import { DataPlaneSyncError, type DataPlaneSizes, type SyncReport } from '../dataplane/apply.js';
import { egressSet, SETS } from '../dataplane/render-names.js';
import type { DesiredDataPlane } from '../plan/desired.js';
import type { AgentMetrics } from './metrics.js';
import type { DataPlanePort } from './ports.js';

export type SetKind = 'owned' | 'eligible' | 'allow' | 'count' | 'egress' | 'other';
const SET_KINDS: readonly SetKind[] = ['owned', 'eligible', 'allow', 'count', 'egress', 'other'];
const EGRESS_PREFIX = egressSet('');

export function setKind(name: string): SetKind {
  if (name === SETS.owned) return 'owned';
  if (name === SETS.eligible) return 'eligible';
  if (name === SETS.allow) return 'allow';
  if (name === SETS.countAllowed || name === SETS.countDenied) return 'count';
  return name.startsWith(EGRESS_PREFIX) ? 'egress' : 'other';
}

/** The tool that refused (iptables-restore, ipset, ip ...) without the `ip netns exec NS` prefix. */
export function failedTool(err: unknown): string {
  const cause = err instanceof DataPlaneSyncError ? err.cause : err;
  if (cause instanceof CommandFailedError) {
    const c = cause.command;
    const tool = c[0] === 'ip' && c[1] === 'netns' && c[2] === 'exec' ? c[4] : c[0];
    return (tool ?? 'unknown').split('/').pop() ?? 'unknown';
  }
  return err instanceof DataPlaneSyncError ? err.phase : 'unknown';
}

/** The Event message: tool, phase and the first stderr lines, at most `max` characters. */
export function applyFailedMessage(err: unknown, max = 300): string {
  const phase = err instanceof DataPlaneSyncError ? ` in phase ${err.phase}` : '';
  const cause = err instanceof DataPlaneSyncError ? err.cause : err;
  const detail = cause instanceof CommandFailedError
    ? `exit ${cause.exitCode ?? 'none'}: ${cause.stderr.trim().split('\n').filter((l) => l.trim() !== '').slice(0, 3).join(' | ')}`
    : cause instanceof Error ? cause.message : String(cause);
  const text = `data-plane apply failed${phase}: ${failedTool(err)} ${detail}; the previous rules stay in force, retrying with backoff`;
  return text.length <= max ? text : `${text.slice(0, max - 3)}...`;
}

/** The applier's surface plus what it put in place (DataPlaneApplier). */
export interface SizedDataPlane extends DataPlanePort {
  sizes(): DataPlaneSizes | undefined;
}

export interface ObservedDataPlaneOptions {
  readonly metrics: Pick<AgentMetrics, 'dataplaneRules' | 'dataplaneSetEntries'>;
  /** Where DataPlaneApplyFailed goes; absent = no Events. */
  readonly events?: AgentEventSink;
  readonly clock: Clock;
  readonly log: Logger;
}

export class ObservedDataPlane implements DataPlanePort {
  private failing = false;
  private recording: Promise<void> = Promise.resolve();

  constructor(
    private readonly inner: SizedDataPlane,
    private readonly o: ObservedDataPlaneOptions,
  ) {}

  async sync(desired: DesiredDataPlane, options?: { full?: boolean }): Promise<SyncReport> {
    return this.observe(async () => this.inner.sync(desired, options));
  }

  async setOwned(owned: ReadonlySet<string>): Promise<SyncReport> {
    return this.observe(async () => this.inner.setOwned(owned));
  }

  current(): DesiredDataPlane | undefined {
    return this.inner.current();
  }

  retryDelayMs(): number {
    return this.inner.retryDelayMs();
  }

  /** Resolves when the Event being recorded (if any) was recorded or given up (tests). */
  async settled(): Promise<void> {
    await this.recording;
  }

  private async observe(apply: () => Promise<SyncReport>): Promise<SyncReport> {
    let report: SyncReport;
    try {
      report = await apply();
    } catch (err: unknown) {
      this.failed(err);
      throw err;
    }
    this.failing = false;
    this.updateSizes();
    return report;
  }

  private updateSizes(): void {
    const sizes = this.inner.sizes();
    if (!sizes) return;
    for (const [table, n] of Object.entries(sizes.rules)) this.o.metrics.dataplaneRules.set({ table }, n);
    const perKind = new Map<SetKind, number>(SET_KINDS.map((k) => [k, 0]));
    for (const [name, n] of sizes.sets) perKind.set(setKind(name), (perKind.get(setKind(name)) ?? 0) + n);
    for (const [set, n] of perKind) this.o.metrics.dataplaneSetEntries.set({ set }, n);
  }

  private failed(err: unknown): void {
    const sink = this.o.events;
    if (this.failing || !sink) return;
    this.failing = true;
    const event = { type: 'Warning' as const, reason: 'DataPlaneApplyFailed' as const, message: applyFailedMessage(err) };
    this.recording = this.recording.then(async () => {
      try {
        await sink.create(event, this.o.clock.wallTime());
      } catch (recordErr: unknown) {
        // Not recorded: the next failure of this streak tries again.
        this.failing = false;
        this.o.log.warn({ component: 'dataplane', err: recordErr, reason: event.reason }, 'recording the Event failed');
      }
    });
  }
}
