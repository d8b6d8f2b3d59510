// Lease timing and rate settings (ADR 0006): defaults, start-up validation, the whole-second
// value written into Lease objects. Guarantees: a validated settings object satisfies every rule
// of ADR 0006. Does not read flags or env (main.ts does) and does not measure time.

export interface LeaseSettings {
  /** Observer: a holder is expired this long after its last observed change. */
  readonly leaseDurationMs: number;
  /** Holder: self-degrade if no renewal sent this long ago has succeeded. */
  readonly renewDeadlineMs: number;
  /** Holder: renewal cadence. */
  readonly retryPeriodMs: number;
  readonly takeoverBurst: number;
  readonly takeoverPerSecond: number;
  readonly fenceBurst: number;
  /** Rebalance toward preferred owners; undefined = off (no planned moves except drain/health). */
  readonly rebalance?: RebalanceSettings;
}

export interface RebalanceSettings {
  readonly holdDownMs: number;
  readonly intervalMs: number;
  readonly maxPerInterval: number;
}

export const DEFAULT_LEASE_SETTINGS: LeaseSettings = {
  leaseDurationMs: 1500,
  renewDeadlineMs: 1200,
  retryPeriodMs: 250,
  takeoverBurst: 256,
  takeoverPerSecond: 64,
  fenceBurst: 4,
  rebalance: { holdDownMs: 60_000, intervalMs: 1000, maxPerInterval: 1 },
};

/** Margin between a holder degrading and anyone being able to take over (ADR 0006). */
export const MIN_DEGRADE_MARGIN_MS = 200;

/** Every rule a settings object breaks, in a fixed order; [] means valid. */
export function validateLeaseSettings(s: LeaseSettings): string[] {
  const problems: string[] = [];
  const positive = (name: string, v: number): void => {
    if (!Number.isFinite(v) || v <= 0) problems.push(`${name} must be a positive number (got ${v})`);
  };
  positive('leaseDurationMs', s.leaseDurationMs);
  positive('renewDeadlineMs', s.renewDeadlineMs);
  positive('retryPeriodMs', s.retryPeriodMs);
  positive('takeoverBurst', s.takeoverBurst);
  positive('takeoverPerSecond', s.takeoverPerSecond);
  positive('fenceBurst', s.fenceBurst);
  if (!(s.leaseDurationMs > s.renewDeadlineMs)) problems.push('leaseDurationMs must be greater than renewDeadlineMs');
  if (!(s.renewDeadlineMs > s.retryPeriodMs)) problems.push('renewDeadlineMs must be greater than retryPeriodMs');
  if (s.renewDeadlineMs < 2 * s.retryPeriodMs) problems.push('renewDeadlineMs must be at least 2 x retryPeriodMs');
  if (s.leaseDurationMs - s.renewDeadlineMs < MIN_DEGRADE_MARGIN_MS) {
    problems.push(`leaseDurationMs - renewDeadlineMs must be at least ${MIN_DEGRADE_MARGIN_MS} ms`);
  }
  if (s.retryPeriodMs < 50) problems.push('retryPeriodMs must be at least 50 ms');
  if (s.leaseDurationMs > 300_000) problems.push('leaseDurationMs must be at most 300000 ms');
  if (s.rebalance) {
    positive('rebalance.holdDownMs', s.rebalance.holdDownMs);
    positive('rebalance.intervalMs', s.rebalance.intervalMs);
    positive('rebalance.maxPerInterval', s.rebalance.maxPerInterval);
  }
  return problems;
}

/** The whole-second value written into `spec.leaseDurationSeconds` (informational, ADR 0006). */
export function leaseDurationSeconds(s: LeaseSettings): number {
  return Math.max(1, Math.ceil(s.leaseDurationMs / 1000));
}
