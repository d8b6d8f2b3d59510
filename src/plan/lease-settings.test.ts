import { describe, expect, it } from '@jest/globals';
import { DEFAULT_LEASE_SETTINGS, leaseDurationSeconds, validateLeaseSettings, type LeaseSettings } from './lease-settings.js';

const with_ = (patch: Partial<LeaseSettings>): LeaseSettings => ({ ...DEFAULT_LEASE_SETTINGS, ...patch });

describe('lease settings', () => {
  it('accepts the defaults of ADR 0006', () => {
    expect(validateLeaseSettings(DEFAULT_LEASE_SETTINGS)).toEqual([]);
  });

  it.each<[string, Partial<LeaseSettings>, string]>([
    ['duration not above deadline', { leaseDurationMs: 1200 }, 'leaseDurationMs must be greater than renewDeadlineMs'],
    ['deadline not above retry', { retryPeriodMs: 1200, renewDeadlineMs: 1200 }, 'renewDeadlineMs must be greater than retryPeriodMs'],
    ['one attempt before degrading', { retryPeriodMs: 700 }, 'renewDeadlineMs must be at least 2 x retryPeriodMs'],
    ['no degrade margin', { leaseDurationMs: 1300 }, 'leaseDurationMs - renewDeadlineMs must be at least 200 ms'],
    ['retry too fast', { retryPeriodMs: 10 }, 'retryPeriodMs must be at least 50 ms'],
    ['negative burst', { takeoverBurst: -1 }, 'takeoverBurst must be a positive number (got -1)'],
    ['rebalance hold-down zero', { rebalance: { holdDownMs: 0, intervalMs: 1000, maxPerInterval: 1 } }, 'rebalance.holdDownMs must be a positive number (got 0)'],
  ])('refuses %s', (_name, patch, problem) => {
    expect(validateLeaseSettings(with_(patch))).toContain(problem);
  });

  it('rebalance can be off', () => {
    const { rebalance: _r, ...off } = DEFAULT_LEASE_SETTINGS;
    expect(validateLeaseSettings(off)).toEqual([]);
  });

  it('writes whole seconds, rounded up, at least 1', () => {
    expect(leaseDurationSeconds(DEFAULT_LEASE_SETTINGS)).toBe(2);
    expect(leaseDurationSeconds(with_({ leaseDurationMs: 400, renewDeadlineMs: 200, retryPeriodMs: 60 }))).toBe(1);
    expect(leaseDurationSeconds(with_({ leaseDurationMs: 15000, renewDeadlineMs: 10000, retryPeriodMs: 2000 }))).toBe(15);
  });
});
